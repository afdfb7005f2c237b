"""``make lambda-check``: the built artifacts, run as Lambda runs them, answer their sample events.

python -m lambda_check [--build-dir .aws-sam/build]

For every function of template.yaml: CPython 3.13 for aarch64 (see :mod:`lambda_check.sandbox`)
starts the real runtime interface client (awslambdaric) with the function's handler, from
/var/task, with the sam-built layer read-only at /opt and only Lambda's environment variables plus
DATABASE_URL and BETTER_AUTH_SECRET. Each function talks to its own Runtime API
(:mod:`lambda_check.runtime_api`), which hands it its ``events/`` sample once the phase it belongs
to starts; its response must carry the status the sample expects. The database is created and
migrated for the check and dropped after it.

All functions initialise at once (emulation makes each init take tens of seconds of CPU). Their
events go in three phases: the ones that create or only read (create_task and chat give the ids
the next phases use), then the ones on an existing task or conversation, then the deletes.

Any failure (an import error, a wrong-architecture binary, a missing module, an init error, a
handler error, a wrong status, a timeout, a warm-up step skipped at init) fails the check with the
function's log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.sample_events import EXPECTED_STATUS, file_name
from devserver.template import load_template
from lambda_check import sandbox
from lambda_check.runtime_api import Invocations, RuntimeApi

ROOT = sandbox.ROOT
ADMIN_URL = os.environ.get(
    "LAMBDA_CHECK_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Which events wait for which: ids come from phase 1, deletes go last.
PHASES = (
    {"create_task.json", "chat.json", "health.json", "list_tasks.json", "list_conversations.json"},
    {"get_task.json", "update_task.json", "toggle_task.json", "list_messages.json"},
    {"delete_task.json", "delete_conversation.json"},
)


@dataclass
class FunctionRun:
    """One function's process, its Runtime API and what came back."""

    name: str
    event_file: str
    handler: str
    state: Invocations
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    request_id: str | None = None
    status: int | None = None
    body: Any = None
    failure: str | None = None
    invoke_ms: float | None = None

    @property
    def init_seconds(self) -> float | None:
        ready = self.state.ready_at
        return None if ready is None else ready - self.started_at


def _functions(template_path: Path) -> dict[str, str]:
    template = load_template(template_path)
    default_handler = template["Globals"]["Function"]["Handler"]
    return {
        name: resource["Properties"].get("Handler", default_handler)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@contextmanager
def _database() -> Iterator[str]:
    name = f"lambda_check_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    parts = psycopg.conninfo.conninfo_to_dict(url)
    database_url = (
        f"postgresql://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', 5432)}/{name}"
    )
    try:
        alembic = Path(sys.executable).with_name("alembic")
        subprocess.run(
            [str(alembic), "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
            check=True,
            cwd=ROOT,
            env={**os.environ, "MIGRATION_DATABASE_URL": database_url},
            capture_output=True,
        )
        yield database_url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_id(event: dict[str, Any], parameter: str, segment: str, new: str) -> dict[str, Any]:
    """``event`` aimed at another task or conversation (the sample names id 1)."""
    parameters = event.get("pathParameters") or {}
    if parameter not in parameters:
        return event
    old = f"/{segment}/{parameters[parameter]}"
    event["rawPath"] = event["rawPath"].replace(old, f"/{segment}/{new}")
    event["requestContext"]["http"]["path"] = event["rawPath"]
    parameters[parameter] = new
    return event


def _start(
    run: FunctionRun,
    *,
    root: Path,
    layer: Path,
    task: Path,
    runtime: Path,
    api: RuntimeApi,
    database_url: str,
    log: IO[bytes],
) -> None:
    environment = sandbox.lambda_environment(
        {
            "_HANDLER": run.handler,
            "AWS_LAMBDA_FUNCTION_NAME": run.name,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{run.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]lambdacheck",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": LOCAL_DEV_SECRET,
        }
    )
    argv = sandbox.command(
        root, layer=layer, task=task, runtime=runtime, argv=["-m", "awslambdaric", run.handler]
    )
    run.started_at = time.monotonic()
    run.process = subprocess.Popen(argv, env=environment, stdout=log, stderr=subprocess.STDOUT)


def _wait(run: FunctionRun, deadline: float) -> None:
    """Until ``run`` has answered its event, failed, or ``deadline`` (monotonic) has passed."""
    state, process = run.state, run.process
    assert process is not None  # noqa: S101  (started before any wait)
    with state.changed:
        while True:
            if state.init_error is not None:
                error = state.init_error.body or {}
                run.failure = f"init error: {error.get('errorType')}: {error.get('errorMessage')}"
                return
            outcome = state.outcomes.get(run.request_id or "")
            if outcome is not None:
                run.invoke_ms = (outcome.at - state.sent_at[run.request_id or ""]) * 1000
                if outcome.kind == "error":
                    body = outcome.body or {}
                    run.failure = (
                        f"handler error: {body.get('errorType')}: {body.get('errorMessage')}"
                    )
                    return
                run.body = outcome.body
                run.status = int(outcome.body.get("statusCode", 0))
                expected = EXPECTED_STATUS[run.event_file]
                log = run.log_path.read_text(encoding="utf-8", errors="replace")
                skipped = warm_up_skipped(log)
                if run.status != expected:
                    run.failure = f"status {run.status}, expected {expected}"
                elif skipped:
                    run.failure = f"the init's warm-up was cut short: {skipped[0]}"
                return
            if process.poll() is not None:
                run.failure = f"the runtime exited ({process.returncode}) before answering"
                return
            if time.monotonic() > deadline:
                phase = "init" if state.ready_at is None else "invocation"
                run.failure = f"timed out during its {phase}"
                return
            state.changed.wait(timeout=0.5)


def warm_up_skipped(log: str) -> list[str]:
    """The messages of the log's JSON lines in which :mod:`todo_core.warmup` says it skipped a
    step (it never raises: a step that fails is logged and left to the first request, which would
    hide a warm-up that does not work on the target runtime)."""
    messages = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("message") if isinstance(record, dict) else None
        if isinstance(message, str) and message.startswith("warm-up") and "skipped" in message:
            messages.append(message)
    return messages


def _ids_from(runs: dict[str, FunctionRun]) -> dict[str, str]:
    ids = {}
    created = runs.get("create_task.json")
    if created and created.failure is None:
        ids["task_id"] = str(json.loads(created.body["body"])["id"])
    chat = runs.get("chat.json")
    if chat and chat.failure is None:
        ids["conversation_id"] = str(json.loads(chat.body["body"])["conversation_id"])
    return ids


def check(build_dir: Path, *, timeout: float) -> list[FunctionRun]:
    """Run every function of the build on its sample event; returns each run's outcome."""
    root = sandbox.trixie_root("arm64")
    runtime = sandbox.runtime_client_dir(root.parent, sys.executable)
    layer = build_dir / "SharedLayer"
    if not (layer / "python").is_dir():
        raise SystemExit(f"no built layer in {build_dir}: run `make build` first")
    runs = {}
    for name, handler in _functions(ROOT / "template.yaml").items():
        event_file = file_name(name)
        runs[event_file] = FunctionRun(
            name=name,
            event_file=event_file,
            handler=handler,
            state=Invocations(function=name),
            log_path=Path(tempfile.mkstemp(prefix=f"lambda-check-{name}-", suffix=".log")[1]),
        )
    assert {e for phase in PHASES for e in phase} == set(runs), "PHASES misses a function"  # noqa: S101
    with _database() as database_url, ExitStack() as stack:
        for run in runs.values():
            api = stack.enter_context(RuntimeApi(run.state))
            log = stack.enter_context(run.log_path.open("wb"))
            _start(
                run,
                root=root,
                layer=layer,
                task=build_dir / run.name,
                runtime=runtime,
                api=api,
                database_url=database_url,
                log=log,
            )
        try:
            deadline = time.monotonic() + timeout
            ids: dict[str, str] = {}
            for phase in PHASES:
                for event_file in sorted(phase):
                    run = runs[event_file]
                    event = json.loads((ROOT / "events" / event_file).read_text(encoding="utf-8"))
                    if "task_id" in ids:
                        event = _with_id(event, "task_id", "tasks", ids["task_id"])
                    if "conversation_id" in ids:
                        event = _with_id(
                            event, "conversation_id", "conversations", ids["conversation_id"]
                        )
                    run.request_id = run.state.invoke(event)
                for event_file in sorted(phase):
                    _wait(runs[event_file], deadline)
                ids = ids or _ids_from(runs)
        finally:
            for run in runs.values():
                if run.process is not None and run.process.poll() is None:
                    run.process.kill()  # Lambda freezes and then discards the container
                if run.process is not None:
                    run.process.wait()
    return list(runs.values())


def _report(runs: Sequence[FunctionRun]) -> int:
    print(f"{'function':<28} {'init s':>8} {'invoke ms':>10} {'status':>7}  result")
    for run in sorted(runs, key=lambda r: r.name):
        init = f"{run.init_seconds:.1f}" if run.init_seconds is not None else "-"
        invoke = f"{run.invoke_ms:.0f}" if run.invoke_ms is not None else "-"
        status = str(run.status) if run.status is not None else "-"
        print(f"{run.name:<28} {init:>8} {invoke:>10} {status:>7}  {run.failure or 'ok'}")
    failed = [run for run in runs if run.failure]
    for run in failed:
        print(f"\n--- {run.name}: {run.failure}; its log (last 40 lines):")
        lines = run.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        print("\n".join(lines[-40:]))
    for run in runs:
        if run not in failed:
            run.log_path.unlink(missing_ok=True)
    print(
        f"\nlambda-check: {len(runs) - len(failed)} of {len(runs)} functions answered as expected"
    )
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for every phase")
    args = parser.parse_args(argv)
    started = time.monotonic()
    runs = check(args.build_dir.resolve(), timeout=args.timeout)
    code = _report(runs)
    print(f"lambda-check: {time.monotonic() - started:.0f} s")
    sys.exit(code)


if __name__ == "__main__":
    main()
