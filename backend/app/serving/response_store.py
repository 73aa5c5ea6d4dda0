"""Responses kept in this process for `previous_response_id`, GET, DELETE and cancel.

Bounded: past MAX_STORED_RESPONSES the oldest is forgotten. A stored response keeps, besides its
body, the conversation that led to it as chat messages, so a later turn sends only what is new.
Nothing survives a restart, and each replica has its own store.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field

from ..core.errors import OpenAIError
from ..protocol import ChatMessage
from ..protocol_responses import ResponseObject

# How long a cancel waits for the generation to stop before it answers.
CANCEL_WAIT_S = 5.0


@dataclass
class StoredResponse:
    body: ResponseObject
    # The conversation through this response's output (instructions excepted: OpenAI does not
    # carry them over to the next turn).
    messages: list[ChatMessage]
    # Set by POST /v1/responses/{id}/cancel; the running generation watches it.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once the generation has ended, however it ended.
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> bool:
        return self.body.status == "in_progress"


def not_found(response_id: str, param: str | None = None) -> OpenAIError:
    return OpenAIError(
        404,
        f"No response with id '{response_id}' is stored here: it was never stored (store: false), was "
        "deleted or evicted (MAX_STORED_RESPONSES), or lives on another replica or before a restart.",
        param=param,
        code="response_not_found",
    )


class ResponseStore:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, entry: StoredResponse) -> None:
        """Keep `entry` (again, as it changes), the oldest forgotten past the capacity."""
        self._items[entry.body.id] = entry
        self._items.move_to_end(entry.body.id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, response_id: str, param: str | None = None) -> StoredResponse:
        entry = self._items.get(response_id)
        if entry is None:
            raise not_found(response_id, param)
        return entry

    def discard(self, entry: StoredResponse) -> None:
        """Forget `entry`, a request refused before it started (it has ended, too)."""
        entry.finished.set()
        if self._items.get(entry.body.id) is entry:
            del self._items[entry.body.id]

    def delete(self, response_id: str) -> None:
        entry = self.get(response_id)
        entry.cancelled.set()  # deleting a running response stops it too
        del self._items[response_id]

    async def cancel(self, response_id: str) -> ResponseObject:
        """Stops a running response; the answer so far stays, with status "cancelled"."""
        entry = self.get(response_id)
        if not entry.running:
            raise OpenAIError(
                400,
                f"Only a running response can be cancelled; response '{response_id}' is {entry.body.status}.",
                param="response_id",
                code="response_not_running",
            )
        entry.cancelled.set()
        # A request still queued notices at its first token; the body then says in_progress.
        with suppress(TimeoutError):
            await asyncio.wait_for(entry.finished.wait(), CANCEL_WAIT_S)
        return entry.body
