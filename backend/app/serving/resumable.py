"""Answers that outlive their page: a streamed completion sent with X-Conversation-Id and
X-Message-Id runs on when its client goes away, its SSE events kept, and
GET /v1/stream/{conversation_id}/{message_id} replays them, then follows the rest live
(llama-server's /v1/stream/<conversation>, per message, so a page reloaded mid-answer picks it up);
DELETE there stops it (a client's leaving no longer does).

A stream is kept from before its answer starts (a model loading, a prompt prefilling: a client
back meanwhile waits for it), while someone reads it and for STREAM_RESUME_S after its last reader
left or it ended (whichever is later); a generation nobody came back for is then stopped, which frees its
slot. Bounded: MAX_RESUMABLE_STREAMS streams (a new one evicts the oldest that has ended; with none
ended it is streamed as without the headers) and STREAM_RESUME_MAX_BYTES of events each (past it a
stream is no longer kept: it ends when its readers leave). Only whoever started a stream may read
it. Nothing survives a restart; each replica keeps its own (Nginx routes a conversation to one).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request
from sse_starlette import EventSourceResponse

from ..core.errors import OpenAIError
from ..core.metrics import RESUMABLE_STREAMS, RESUMED_STREAMS
from .streams import sse_response, stream_error_event

log = logging.getLogger(__name__)

Key = tuple[Hashable, str, str]  # who started it, conversation id, message id


def key_of(request: Request, conversation_id: str, message_id: str) -> Key:
    """Who may read a stream: a person (any of their sessions and keys), the operator's key, or
    without accounts anyone allowed in (one local user)."""
    principal = getattr(request.state, "principal", None)
    owner = None if principal is None else (principal.user_id, principal.username)
    return owner, conversation_id, message_id


def not_kept(conversation_id: str, message_id: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The answer to message '{message_id}' of conversation '{conversation_id}' is no longer kept "
        "here: it ended or was left more than STREAM_RESUME_S ago, was never streamed with "
        "X-Conversation-Id and X-Message-Id, or lives on another replica or before a restart. "
        "Ask for it again.",
        code="stream_not_found",
    )


class ResumableStream:
    """One answer's SSE events (their data, [DONE] excepted), produced by a task of its own once
    the answer starts, and read by any number of readers, each from the first event."""

    def __init__(self, streams: ResumableStreams, key: Key) -> None:
        self.streams = streams
        self.key = key
        self.events: list[str] = []
        self.size = 0  # bytes of the events' data
        self.finished = False
        self.readers = 0
        self.kept = True  # readable by GET; false once evicted, expired, stopped or over the byte limit
        self.task: asyncio.Task[None] | None = None  # the producer, once the answer started
        self._more = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None

    def begin(self, events: AsyncIterator[str]) -> AsyncIterator[str]:
        """The answer's events for its own client, produced whether or not that client reads
        them; as they are when the stream is no longer kept (its client's leaving then stops it)."""
        if not self.kept:
            return events
        self.task = asyncio.create_task(self._produce(events))
        return self.follow()

    def abandon(self, error: BaseException) -> None:
        """The answer never started (a 429, a model that failed to load): readers get why."""
        message = error.message if isinstance(error, OpenAIError) else "The answer could not start."
        self._append(stream_error_event(message))
        self._end()

    async def _produce(self, events: AsyncIterator[str]) -> None:
        try:
            async for event in events:
                self._append(event)
                if self.kept and self.size > self.streams.max_bytes:
                    self.streams.forget(self)
        except Exception:
            # No client sees a traceback: the readers get the error event a stream ends with.
            log.exception("a kept stream failed")
            self._append(stream_error_event("The answer failed; see the server's log."))
        finally:
            self._end()

    def _end(self) -> None:
        self.finished = True
        self._wake()
        self.streams.idle(self)

    def _append(self, event: str) -> None:
        self.events.append(event)
        self.size += len(event)
        self._wake()

    def _wake(self) -> None:
        self._more.set()
        self._more = asyncio.Event()

    async def follow(self) -> AsyncIterator[str]:
        """Every event so far, then the rest as they come, until the answer ends."""
        self.readers += 1
        self.cancel_expiry()
        try:
            sent = 0
            while True:
                while sent < len(self.events):
                    yield self.events[sent]
                    sent += 1
                if self.finished:
                    return
                await self._more.wait()
        finally:
            self.readers -= 1
            self.streams.idle(self)

    def cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def expire_in(self, seconds: float) -> None:
        self.cancel_expiry()
        self._expiry = asyncio.get_running_loop().call_later(seconds, self.streams.forget, self)


@dataclass
class ResumableStreams:
    """The kept streams of this process, oldest first."""

    ttl_s: float
    capacity: int
    max_bytes: int
    ping_s: float

    def __post_init__(self) -> None:
        self._items: OrderedDict[Key, ResumableStream] = OrderedDict()

    @contextmanager
    def reserved(self, key: Key | None) -> Iterator[ResumableStream | None]:
        """A stream kept under `key` for the answer the block starts (ResumableStream.begin), or
        None: no key, or nothing may be kept (the answer then streams as without the headers).
        An error that ends the block abandons the stream."""
        stream = self._reserve(key) if key is not None and self.ttl_s > 0 else None
        try:
            yield stream
        except BaseException as exc:
            if stream is not None:
                stream.abandon(exc)
            raise

    def _reserve(self, key: Key) -> ResumableStream | None:
        if key in self._items:  # the same message asked for again: the earlier answer is stale
            self.stop(key)
        if not self._room():
            return None
        stream = ResumableStream(self, key)
        self._items[key] = stream
        RESUMABLE_STREAMS.inc()
        return stream

    def _room(self) -> bool:
        if len(self._items) < self.capacity:
            return True
        oldest_ended = next((s for s in self._items.values() if s.finished), None)
        if oldest_ended is None:
            return False
        self.forget(oldest_ended)
        return True

    def resume(self, key: Key) -> EventSourceResponse:
        """The stream kept under `key`, from its first event to [DONE]; a 404 when none is."""
        stream = self._items.get(key)
        if stream is None:
            raise not_kept(key[1], key[2])
        RESUMED_STREAMS.inc()
        return sse_response(stream.follow(), self.ping_s)

    def stop(self, key: Key) -> None:
        """Stops the answer kept under `key` (a Stop button), forgotten; a 404 when none is."""
        stream = self._items.get(key)
        if stream is None:
            raise not_kept(key[1], key[2])
        self.forget(stream)
        if stream.task is not None:
            stream.task.cancel()

    def forget(self, stream: ResumableStream) -> None:
        """No longer readable by GET; its generation ends once its readers have left."""
        stream.kept = False
        stream.cancel_expiry()
        if self._items.get(stream.key) is stream:
            del self._items[stream.key]
        self.idle(stream)

    def idle(self, stream: ResumableStream) -> None:
        """A reader left or the answer ended: with no reader left, a kept stream waits ttl_s for
        one (the clock restarts when it ends); one no longer kept stops at once."""
        if stream.readers:
            return
        if stream.kept:
            stream.expire_in(self.ttl_s)
        elif not stream.finished and stream.task is not None:
            stream.task.cancel()
