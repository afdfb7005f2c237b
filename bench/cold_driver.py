"""One cold start, in a fresh process: import a function's module by path and serve one event.

``python bench/cold_driver.py <app.py> <event.json> [MODE]`` prints one JSON line (MODE: normal,
the default, no-bytecode, db-primed or restore). The clock starts at this file's first line,
before anything but the interpreter itself is loaded; it imports only what the standard library
already has in memory.

* ``normal``: milliseconds to import the module and to serve the first event, the total since
  this script started, the process's CPU time after init (``init_cpu_ms``, interpreter start
  included) and for the first event, the CPU of a warm event (the median of the last
  :data:`WARM_COUNTED` of :data:`WARM_EVENTS` more events: a container serving steady traffic,
  whose code CPython has long specialised; the first few after the first are still faster each
  time), the CPU of one more database connection (psycopg connect and close), peak RSS and how
  many modules are loaded. The first event's CPU is its own: the clock starts as the handler is
  called (the event loop this script sets first is not the function's work).
* ``no-bytecode``: the same init, with every module outside the standard library compiled from
  source as it is on Lambda when the layer ships no ``.pyc`` (/opt is read-only, so nothing is
  ever cached there); the standard library keeps its bytecode, as Lambda's runtime has it.
* ``db-primed``: a reference, not something a function does: the normal figures after an init
  that has also served the event :data:`PRIMED_EVENTS` times against the database (its whole
  path run and specialised by CPython, as the init's synthetic requests do for the part before
  the database) and then closed its connection, so that the first event still opens one. What
  the first event would cost if init could run the database path, which it cannot without
  connecting (the house style connects lazily, on the first request that needs it).
* ``restore``: SnapStart's path: init, the before-snapshot hooks, then a fork (the "restored"
  environment) that runs the after-restore hooks and serves the first event; its CPU is the
  child's own (a forked child's usage starts at zero). The parent exits at once, and the child
  waits for that before its hooks: a restored environment shares its memory with no one, while
  a child whose parent lives copies every page it writes to (about 2,000 for a first event,
  which doubled its CPU). The child still takes a page fault at its first write to each page
  (counted in ``first_event_page_faults``), as a restored environment takes one at its first
  touch of each page of the snapshot, which Lambda loads on demand.
"""

import time

_STARTED = time.perf_counter()

import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402

WARM_EVENTS = 20
WARM_COUNTED = 10
PRIMED_EVENTS = 12


class _Context:
    """The attributes of Lambda's context object that Mangum reads."""

    function_name = "cold-start"
    memory_limit_in_mb = 128
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def _cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _compile_from_source_outside_stdlib() -> None:
    """Ignore the bytecode of every module outside the standard library (what a layer without
    .pyc costs): such modules are compiled from source, as the import system does without one."""
    loader = importlib.machinery.SourceFileLoader
    stdlib = sysconfig.get_paths()["stdlib"]
    cached_get_code = loader.get_code

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        if path.startswith(stdlib) and "site-packages" not in path:
            return cached_get_code(self, fullname)
        return self.source_to_code(self.get_data(path), path)

    loader.get_code = get_code


class _ConnectTimer:
    """CPU spent opening the database connection during the first event: in psycopg's
    ``connect`` (the driver alone) and in SQLAlchemy's pool creating its connection (the driver
    plus the engine's first-connect work: the dialect's initialisation and the connect events).
    A floor without SQLAlchemy has only the first. Installed after init, so it costs the init
    nothing; its own overhead is two calls of ``getrusage`` per connection."""

    def __init__(self) -> None:
        self.driver_ms = 0.0
        self.pool_ms = 0.0
        psycopg = sys.modules.get("psycopg")
        if psycopg is not None:
            psycopg.connect = self._timed(psycopg.connect, "driver_ms")
        pool = sys.modules.get("sqlalchemy.pool.base")
        if pool is not None:
            pool.Pool._create_connection = self._timed(pool.Pool._create_connection, "pool_ms")

    def _timed(self, function, field):
        def timed(*args, **kwargs):
            started = _cpu_ms()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(self, field, getattr(self, field) + _cpu_ms() - started)

        return timed

    def result(self) -> dict:
        return {
            "first_event_connect_cpu_ms": self.pool_ms or self.driver_ms,
            "first_event_driver_connect_cpu_ms": self.driver_ms,
        }


def _run_hooks(kind: str) -> None:
    registry = sys.modules.get("snapshot_restore_py")
    if registry is None:  # a floor: no hooks
        return
    hooks = registry.get_before_snapshot() if kind == "before" else registry.get_after_restore()
    for hook, args, kwargs in hooks:
        hook(*args, **kwargs)


def _connection_cpu_ms() -> float:
    import psycopg  # noqa: PLC0415  (already imported by the function)

    samples = []
    for _ in range(3):
        started = _cpu_ms()
        psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5).close()
        samples.append(_cpu_ms() - started)
    return statistics.median(samples)


def _warm_event_cpu_ms(module, event: dict) -> float:
    warm = []
    for _ in range(WARM_EVENTS):
        started = _cpu_ms()
        module.handler(event, _Context())
        warm.append(_cpu_ms() - started)
    return statistics.median(warm[-WARM_COUNTED:])


def _prime_with_database(module, event: dict) -> int:
    """The db-primed reference's extra init: serve the event, then close the connection."""
    for _ in range(PRIMED_EVENTS):
        module.handler(event, _Context())
    sys.modules["todo_core.db"].close_connections()
    return PRIMED_EVENTS


def main() -> None:
    source, event_path = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "normal"
    with open(event_path, encoding="utf-8") as stream:
        event = json.load(stream)
    if mode == "no-bytecode":
        _compile_from_source_outside_stdlib()
    spec = importlib.util.spec_from_file_location("function_under_test", source)
    if spec is None or spec.loader is None:
        raise ImportError(source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    import_started = time.perf_counter()
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    init_cpu = _cpu_ms()
    if "asyncio" in sys.modules:  # Lambda's runtime gives Mangum an event loop
        asyncio = sys.modules["asyncio"]
        asyncio.set_event_loop(asyncio.new_event_loop())
    result = {
        "import_ms": (imported - import_started) * 1000,
        "init_cpu_ms": init_cpu,
        "python": sys.version.split()[0],
    }
    if mode == "db-primed":
        result["primed_events"] = _prime_with_database(module, event)
    if mode == "restore":
        _run_hooks("before")
        parent = os.getpid()
        if os.fork() != 0:
            os._exit(0)  # the snapshot's process is gone; the restored one goes on alone
        # A restored environment owns its memory alone. Until the parent has exited, every page
        # the child writes to would be copied for it, which no restore does: wait for that.
        while os.getppid() == parent:
            time.sleep(0.001)
        _run_hooks("after")
        timer = _ConnectTimer()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = _cpu_ms()
        response = module.handler(event, _Context())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result.update(
            {
                "first_event_cpu_ms": _cpu_ms() - started,
                "first_event_page_faults": usage.ru_minflt - faults,
                "status": int(response["statusCode"]),
                **timer.result(),
            }
        )
        print(json.dumps(result), flush=True)
        os._exit(0)
    timer = _ConnectTimer()
    started = _cpu_ms()
    response = module.handler(event, _Context())
    served = time.perf_counter()
    first_cpu = _cpu_ms() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        {
            "first_event_ms": (served - imported) * 1000,
            "total_ms": (served - _STARTED) * 1000,
            "status": int(response["statusCode"]),
            "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
            "first_event_cpu_ms": first_cpu,
            **timer.result(),
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "modules": len(sys.modules),
        }
    )
    if mode in ("normal", "db-primed"):
        result["warm_event_cpu_ms"] = _warm_event_cpu_ms(module, event)
        result["connection_cpu_ms"] = _connection_cpu_ms()
    print(json.dumps(result), flush=True)
    # A Lambda container is frozen, not finalized: skip the interpreter's teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
