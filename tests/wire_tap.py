"""Round trips between the functions and the database, counted on the wire.

The functions' ``DATABASE_URL`` is pointed at :class:`bench.wire_counter.CountingProxy` (the
benchmark's counter: one module for both), placed in front of what they would reach otherwise:
PostgreSQL in the direct run, the run's PgBouncer in the PgBouncer run. Unlike a driver hook,
the proxy sees everything the driver sends, BEGIN and COMMIT included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bench.wire_counter import CountingProxy, WireCounts
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from tests.polling import wait_until
from todo_core.db import get_engine

Result = TypeVar("Result")


def proxied_url(url: str, proxy: CountingProxy) -> str:
    """``url`` with the proxy as its host and port (no TLS: the proxy reads the bytes)."""
    return (
        make_url(url)
        .difference_update_query(["host", "port"])
        .set(host="127.0.0.1", port=proxy.port)
        .update_query_dict({"sslmode": "disable"})
        .render_as_string(hide_password=False)
    )


def counting_proxy_for(url: str) -> CountingProxy:
    """A counter in front of what ``url`` reaches: a TCP port, or the Unix socket of a server
    that listens on none (the embedded PostgreSQL of ``make run``)."""
    target = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1))
    host, port = str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432)
    if host.startswith("/"):
        return CountingProxy(port, upstream_socket=f"{host}/.s.PGSQL.{port}")
    return CountingProxy(port, host)


class WireTap:
    """Counts what one request sends to the database, on a connection that is already open."""

    def __init__(self, proxy: CountingProxy) -> None:
        self.proxy = proxy

    def warm(self) -> None:
        """Open the functions' one pooled connection (startup and the dialect's first queries),
        so that what is counted next is the request alone, as in a warm Lambda container.

        The previous request's session closes just after its response has been sent (FastAPI
        exits dependencies with ``yield`` then), so wait until its connection is back in the
        pool: otherwise this would open a second one and the request could get either."""
        engine = get_engine()
        wait_until(lambda: engine.pool.checkedout() == 0)
        with engine.connect():
            pass

    def measure(self, request: Callable[[], Result]) -> tuple[Result, WireCounts]:
        """Run ``request`` on the warm connection; return its result and what went on the wire."""
        self.warm()
        self.proxy.reset()
        result = request()
        counts = self.proxy.counts()
        assert counts.startups == 0, f"the request opened a new connection: {counts.sql}"
        return result, counts
