"""serving/streams.py in process: until_set, the Responses API's cancellable stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.serving.streams import until_set


def test_until_set_cancelled_mid_wait_closes_its_outputs_cleanly() -> None:
    """Its reader cancelled (a client gone) while an output is awaited: the outputs are closed
    once idle, not while running (a fuzzer once saw "aclose(): asynchronous generator is already
    running")."""
    closed = asyncio.Event()

    async def outputs() -> AsyncIterator[Any]:
        try:
            while True:
                await asyncio.sleep(10)
                yield 0, None
        finally:
            closed.set()

    async def scenario() -> None:
        async def read() -> None:
            async for _ in until_set(outputs(), asyncio.Event()):
                pass

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.01)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert closed.is_set()

    asyncio.run(scenario())
