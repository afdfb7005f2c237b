"""A TCP proxy that counts round trips at the connection, for PostgreSQL or PgBouncer alike.

It reads what the client sends (the PostgreSQL frontend protocol) and relays it unchanged. A round
trip is a message the client must wait on: a simple ``Query`` ('Q'), or a ``Sync`` ('S') that ends
an extended-protocol exchange (Parse/Bind/Execute). Each is classed as transaction control
(BEGIN, COMMIT, ROLLBACK, SAVEPOINT...) or a statement by its SQL. Connection startup (startup
packet, SSL/GSS negotiation) is counted apart. The client must not use TLS through it
(``sslmode=disable``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_NEGOTIATION_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered by one byte
_CANCEL_CODE = 80877102
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END")


def is_transaction_control(sql: str) -> bool:
    words = sql.lstrip().split(None, 1)
    return bool(words) and words[0].upper().rstrip(";") in _TRANSACTION_CONTROL


@dataclass
class WireCounts:
    startups: int = 0
    statements: int = 0
    transaction_control: int = 0
    sql: list[str] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        return self.statements + self.transaction_control


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("closed")
        chunks += chunk
    return bytes(chunks)


class CountingProxy:
    """Listens on 127.0.0.1 (``port``), relays to ``upstream_port`` (or to the Unix socket
    ``upstream_socket``, where a local server listens on no TCP port), and counts."""

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        *,
        upstream_socket: str | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.upstream_socket = upstream_socket
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._counts = WireCounts()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self._counts = WireCounts()

    def counts(self) -> WireCounts:
        with self._lock:
            c = self._counts
            return WireCounts(c.startups, c.statements, c.transaction_control, list(c.sql))

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = self._connect_upstream()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            threading.Thread(
                target=self._client_to_server, args=(client, server), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if self.upstream_socket is not None:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.upstream_socket)
            return server
        server = socket.create_connection(self.upstream)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return server

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            self._startup(client, server)
            pending_sql: list[str] = []
            while True:
                header = _read_exact(client, 5)
                kind, length = header[:1], struct.unpack("!I", header[1:])[0]
                payload = _read_exact(client, length - 4)
                if kind == b"P":
                    pending_sql.append(payload.split(b"\0", 2)[1].decode())
                elif kind in (b"Q", b"S"):
                    sql = [payload[:-1].decode()] if kind == b"Q" else pending_sql
                    self._record(sql)
                    pending_sql = []
                server.sendall(header + payload)
        except (OSError, ConnectionError):
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _startup(self, client: socket.socket, server: socket.socket) -> None:
        """Relay the untyped startup packets (after an SSL/GSS request the server answers one
        byte, which the other pump relays, and the client sends a new packet)."""
        while True:
            length = struct.unpack("!I", _read_exact(client, 4))[0]
            payload = _read_exact(client, length - 4)
            code = struct.unpack("!I", payload[:4])[0]
            # Counted before it is relayed, as statements are: counted after, the client could
            # have its answer, and the caller reset the counts, before this thread ran again.
            if code not in _NEGOTIATION_CODES and code != _CANCEL_CODE:
                with self._lock:
                    self._counts.startups += 1
            server.sendall(struct.pack("!I", length) + payload)
            if code not in _NEGOTIATION_CODES:
                return

    def _record(self, sql: list[str]) -> None:
        with self._lock:
            text = "; ".join(s.strip() for s in sql) or "(prepared)"
            self._counts.sql.append(" ".join(text.split())[:80])
            if sql and all(is_transaction_control(s) for s in sql):
                self._counts.transaction_control += 1
            else:
                self._counts.statements += 1
