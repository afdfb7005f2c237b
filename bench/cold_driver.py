"""One cold start, in a fresh process: import a function's module by path and serve one event.

``python bench/cold_driver.py <app.py> <event.json>`` prints one JSON line: milliseconds to
import the module, to serve the first event, the total since this script started, the status,
the process's peak RSS and how many modules it has loaded. The clock starts at this file's first
line, before anything but the interpreter itself is loaded; it imports only what the standard
library already has in memory.
"""

import time

_STARTED = time.perf_counter()

import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


class _Context:
    """The attributes of Lambda's context object that Mangum reads."""

    function_name = "cold-start"
    memory_limit_in_mb = 128
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def main() -> None:
    source, event_path = sys.argv[1], sys.argv[2]
    with open(event_path, encoding="utf-8") as stream:
        event = json.load(stream)
    spec = importlib.util.spec_from_file_location("function_under_test", source)
    if spec is None or spec.loader is None:
        raise ImportError(source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    import_started = time.perf_counter()
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    if "asyncio" in sys.modules:  # Lambda's runtime gives Mangum an event loop
        asyncio = sys.modules["asyncio"]
        asyncio.set_event_loop(asyncio.new_event_loop())
    response = module.handler(event, _Context())
    served = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "import_ms": (imported - import_started) * 1000,
                "first_event_ms": (served - imported) * 1000,
                "total_ms": (served - _STARTED) * 1000,
                "status": int(response["statusCode"]),
                "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "modules": len(sys.modules),
            }
        ),
        flush=True,
    )
    # A Lambda container is frozen, not finalized: skip the interpreter's teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
