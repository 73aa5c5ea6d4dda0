"""Connections that cost the server without asking it anything: uvicorn closes an idle
keep-alive connection, but not one that never sends a request, nor one that sends half of one
(slowloris). This protocol gives every request REQUEST_READ_TIMEOUT_S to arrive in full, and
refuses connections beyond MAX_CONNECTIONS with a 503 (each one holds a file descriptor)."""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_BUSY_BODY = json.dumps(
    {
        "error": {
            "message": "The server has too many open connections; retry shortly.",
            "type": "server_error",
            "param": None,
            "code": "too_many_connections",
        }
    }
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class GuardedHttpProtocol(HttpToolsProtocol):
    read_timeout_s = 30.0
    max_connections = 512

    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("refusing a connection: %d open (MAX_CONNECTIONS)", len(self.connections) - 1)
            transport.write(BUSY_RESPONSE)
            transport.close()
            return
        self._arm()  # the first request must arrive in time

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # and so must each later one, from its first byte

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _too_slow(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(read_timeout_s: float, max_connections: int) -> type[GuardedHttpProtocol]:
    """The protocol class for uvicorn's `http` option, with these limits."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"read_timeout_s": read_timeout_s, "max_connections": max_connections},
    )
