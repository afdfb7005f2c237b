"""A PgBouncer of one's own, for the tests and benchmarks that need a transaction-mode pooler
without depending on one already running: started with ``infra/pgbouncer/start.sh`` (which
installs Debian's package when it is missing and runs as root) on a free port in a directory
of its own, and stopped with ``stop.sh`` when the block ends."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "infra" / "pgbouncer" / "start.sh"
STOP = ROOT / "infra" / "pgbouncer" / "stop.sh"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class PgBouncer:
    port: int
    directory: Path
    pool_size: int

    def _environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_DIR": str(self.directory),
            "PGBOUNCER_POOL_SIZE": str(self.pool_size),
        }

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, script: Path) -> None:
        result = subprocess.run(
            ["bash", str(script)], env=self._environ(), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            log = self.directory / "pgbouncer.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{script.name} failed: {result.stderr.strip()}\n{tail}")

    def start(self) -> None:
        self._run(START)

    def stop(self) -> None:
        """Stops the pooler and waits until it has exited (a no-op if it is not running)."""
        self._run(STOP)


@contextmanager
def dedicated_pgbouncer(pool_size: int = 5) -> Iterator[PgBouncer]:
    """A transaction-mode PgBouncer in front of the local PostgreSQL, for this block only."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix=f"todo-pgbouncer-{port}-"))
    bouncer = PgBouncer(port=port, directory=directory, pool_size=pool_size)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(directory, ignore_errors=True)
