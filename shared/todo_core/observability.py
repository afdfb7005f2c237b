"""Structured logs and metrics, the same for every function: Powertools Logger and Metrics.

* Logger: one JSON object per line, with the function's name, ``cold_start`` and
  ``correlation_id`` (API Gateway's ``requestContext.requestId``, the id in the access log).
  The event is never logged (it holds the bearer token and the body); each request logs one line
  with its method, route key, status and duration, nothing the caller sent.
* Metrics: CloudWatch embedded metric format (EMF), printed to stdout, no API calls; the
  namespace is ``POWERTOOLS_METRICS_NAMESPACE`` (set in template.yaml's Globals). Names in use:
  ``ColdStart`` (with a ``function_name`` dimension), ``TasksCreated``, ``ChatTurns`` (turns
  answered) and ``AssistantErrors`` (turns whose assistant failed).

Both live at module scope, as Powertools expects, and cost nothing per request but the one line.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "todo-api"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "TodoApi"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

TASKS_CREATED = "TasksCreated"
CHAT_TURNS = "ChatTurns"
ASSISTANT_ERRORS = "AssistantErrors"

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

_cold_start = True


class _Environment:
    """What Powertools reads of a Lambda context to name a ColdStart metric: the function."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name


def publish_cold_start(function_name: str) -> None:
    """Publish this container start's ``ColdStart`` metric now rather than with the first
    invocation's metrics. In Lambda the init-phase warm-up calls it for an on-demand start (init
    CPU is not the request's), and SnapStart's after-restore hook for each restored environment;
    elsewhere (the local server, tests) the first invocation does."""
    global _cold_start  # noqa: PLW0603  (one flag per container, as Lambda's cold start is)
    _cold_start = False
    context: Any = _Environment(function_name)  # all of LambdaContext Powertools reads here
    metrics.provider.add_cold_start_metric(context=context)


def skip_cold_start() -> None:
    """This container start is no user's cold start (provisioned concurrency, as Powertools
    counts it, or the init that SnapStart snapshots): no ``ColdStart`` for it."""
    global _cold_start  # noqa: PLW0603
    _cold_start = False


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to the metric ``name``; published when the current invocation ends."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _flush_metrics(context: Any) -> None:
    if _cold_start:
        publish_cold_start(context.function_name)
    # Powertools warns on an empty flush; most requests record no metric, which is normal here.
    if metrics.metric_set:
        metrics.flush_metrics()
    else:
        metrics.clear_metrics()


def instrument(handler: LambdaHandler) -> LambdaHandler:
    """Wrap a function's Lambda handler (a Mangum instance): logging context, one request log
    line, and the invocation's metrics."""

    @functools.wraps(handler)
    def instrumented(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        status: int | None = None
        request = event.get("requestContext") or {}
        # API Gateway's request id, read directly: Powertools' correlation_id_path would run a
        # JMESPath query on the event at every request for the same value.
        logger.set_correlation_id(request.get("requestId"))
        try:
            response = handler(event, context)
            status = int(response.get("statusCode", 0))
            return response
        finally:
            logger.info(
                "request",
                extra={
                    "http_method": (request.get("http") or {}).get("method"),
                    "route_key": event.get("routeKey"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            _flush_metrics(context)

    wrapped: LambdaHandler = logger.inject_lambda_context(
        instrumented,
        log_event=False,  # explicit: POWERTOOLS_LOGGER_LOG_EVENT must never turn it on
        clear_state=True,
    )
    return wrapped
