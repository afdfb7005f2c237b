"""A hard deadline for the model's HTTP calls, whatever the provider sends and how slowly.

httpx (under the ``openai`` SDK) has no total timeout: its timeout bounds each network operation
(a connect, a write, a read), so a provider that sends its answer a few bytes at a time gets
every read done in time and holds one call as long as it likes, past the chat function's own
timeout. Here each of those operations waits at most what is left before the deadline of
:func:`deadline`, and one started after it fails at once with httpx's own timeout error: a call
made inside ``with deadline(at)`` is over by ``at``, in its headers as in its body.

The deadline travels in a context variable (the SDK's sync client does its I/O on the caller's
thread); outside ``deadline`` nothing changes. A call cut short closes its connection, as any
timeout does; the pool stays usable for the next turn.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore2
import httpx2

_deadline: ContextVar[float | None] = ContextVar("model_deadline", default=None)

LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
"""The SDK's own connection limits (a client given its transport would not apply them)."""


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """The HTTP calls made inside are over by ``at`` (a ``time.monotonic()`` value)."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def _time_left(timeout: float | None, timed_out: type[httpcore2.TimeoutException]) -> float | None:
    """``timeout``, cut to what is left before the deadline; ``timed_out`` once it has passed."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise timed_out("the model call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        secured = self._stream.start_tls(
            ssl_context, server_hostname, _time_left(timeout, httpcore2.ConnectTimeout)
        )
        return _DeadlineStream(secured)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    """httpcore's sync network backend, every operation's timeout cut to the deadline."""

    def __init__(self) -> None:
        self._backend = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        # socket.create_connection gives each of a host's addresses the whole timeout; one
        # address at a time here, each gets what is left.
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise httpcore2.ConnectError(str(error)) from error
        failure: Exception = httpcore2.ConnectError(f"{host} has no address")
        for *_, address in addresses:
            left = _time_left(timeout, httpcore2.ConnectTimeout)
            try:
                stream = self._backend.connect_tcp(
                    str(address[0]), port, left, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                failure = error
                continue
            return _DeadlineStream(stream)
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class DeadlineTransport(httpx2.HTTPTransport):
    """httpx's own transport (requests, responses, its errors), its pool on
    :class:`DeadlineBackend`."""

    def __init__(self, limits: httpx2.Limits = LIMITS) -> None:
        ssl_context = httpx2.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # HTTPTransport takes no network backend (httpcore's are public API, httpx does not
        # pass one on yet), so its pool is built again as it builds it, with ours.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )
