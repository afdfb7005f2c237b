"""Property-based tests of the whole API with schemathesis, against the combined OpenAPI
document the local server publishes: every operation, all checks, valid tokens.

One check is left out: ``unsupported_method`` expects 405 for a method an operation does not
declare. Method routing is API Gateway's job, and an HTTP API answers 404 ``{"message": "Not
Found"}`` there; the local server does the same on purpose, so that it behaves as deployed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.devserver_process import running_server

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261126")


def test_schemathesis_finds_no_failure_in_any_operation(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    with running_server(app_environment, tmp_path / "server", "--no-migrate") as base:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "unsupported_method",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                "--workers",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,
            env={
                **os.environ,
                **app_environment,
                "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_auth",
                "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}:{ROOT / 'infra'}",
            },
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    report = result.stdout + result.stderr
    summary = "\n".join(report.splitlines()[-40:])
    assert result.returncode == 0, summary
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert selected is not None, summary
    assert selected.group(1) == selected.group(2)  # every operation
    assert generated is not None, summary
    assert int(generated.group(1)) >= 200, summary
    print(f"schemathesis: {selected.group(1)} operations, {generated.group(1)} cases")
