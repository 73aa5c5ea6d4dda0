"""The store of resumable streams (serving/resumable.py), in process: its expiry and its limits.
The answers are plain async generators standing in for a generation, so each rule is timed in
milliseconds; tests/test_api_resume.py covers the real thing over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.core.errors import OpenAIError
from app.serving.resumable import Key, ResumableStreams


class Answer:
    """`count` events, one per `step_s`, noting whether it ran to its end or was stopped."""

    def __init__(self, count: int, step_s: float = 0.0, size: int = 4) -> None:
        self.count, self.step_s, self.size = count, step_s, size
        self.ended = self.stopped = False

    async def events(self) -> AsyncIterator[str]:
        try:
            for i in range(self.count):
                await asyncio.sleep(self.step_s)
                yield str(i).rjust(self.size, "x")
            self.ended = True
        except asyncio.CancelledError:
            self.stopped = True
            raise


def key(message: str) -> Key:
    return None, "conversation", message


def keep(streams: ResumableStreams, message: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """What the POST's client reads: `events` kept under `message`, or as they are."""
    with streams.reserved(key(message)) as stream:
        return events if stream is None else stream.begin(events)


async def read(events: AsyncIterator[str], most: int | None = None) -> list[str]:
    """The events, or the first `most` of them and then hang up."""
    got: list[str] = []
    async for event in events:
        got.append(event)
        if len(got) == most:
            await events.aclose()  # type: ignore[attr-defined]
            break
    return got


def resumed(streams: ResumableStreams, message: str) -> AsyncIterator[str]:
    """The events a GET replays (the body iterator of its response, [DONE] excepted)."""
    stream = streams._items[key(message)]
    return stream.follow()


def test_left_answer_runs_on_is_replayed_whole_then_expires() -> None:
    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=0.2, capacity=4, max_bytes=1000, ping_s=15)
        answer = Answer(5, step_s=0.01)
        first = await read(keep(streams, "m", answer.events()), most=1)
        replay = await read(resumed(streams, "m"))
        assert replay[:1] == first and len(replay) == 5 and answer.ended
        assert await read(resumed(streams, "m")) == replay  # read again once it has ended
        await asyncio.sleep(0.3)
        with pytest.raises(OpenAIError) as gone:
            streams.resume(key("m"))
        assert gone.value.status == 404 and "no longer kept" in gone.value.message

    asyncio.run(scenario())


def test_answer_nobody_comes_back_for_is_stopped_after_the_ttl() -> None:
    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=0.05, capacity=4, max_bytes=1000, ping_s=15)
        answer = Answer(1000, step_s=0.01)
        await read(keep(streams, "m", answer.events()), most=1)
        await asyncio.sleep(0.2)
        assert answer.stopped and not streams._items

    asyncio.run(scenario())


def test_full_store_evicts_the_oldest_ended_else_streams_as_before() -> None:
    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=10, capacity=2, max_bytes=1000, ping_s=15)
        ended = keep(streams, "ended", Answer(1).events())
        await read(ended)
        running = Answer(1000, step_s=0.01)
        await read(keep(streams, "running", running.events()), most=1)
        # Full: the ended answer goes, the running one stays.
        newest = keep(streams, "newest", Answer(1000, step_s=0.01).events())
        assert list(streams._items) == [key("running"), key("newest")]
        # Full of running answers: the next one is not kept, and its client's leaving stops it.
        plain = Answer(1000, step_s=0.01)
        events = plain.events()
        assert keep(streams, "plain", events) is events
        await read(events, most=1)
        assert key("plain") not in streams._items
        await read(newest, most=1)
        for stream in streams._items.values():
            stream.task.cancel()

    asyncio.run(scenario())


def test_answer_past_the_byte_limit_is_no_longer_kept_and_ends_with_its_reader() -> None:
    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=10, capacity=4, max_bytes=10, ping_s=15)
        answer = Answer(1000, step_s=0.01, size=4)
        events = keep(streams, "m", answer.events())
        got = await read(events, most=5)  # 20 bytes: past the limit, but its reader gets them all
        assert len(got) == 5 and key("m") not in streams._items
        await asyncio.sleep(0.05)
        assert answer.stopped

    asyncio.run(scenario())


def test_stream_resume_s_0_keeps_nothing() -> None:
    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=0, capacity=4, max_bytes=1000, ping_s=15)
        events = Answer(1).events()
        assert keep(streams, "m", events) is events and not streams._items
        await read(events)

    asyncio.run(scenario())


def test_client_back_before_the_answer_starts_waits_for_it_or_is_told_why_it_never_did() -> None:
    """Kept from before the answer starts (a model loading, a long prompt): a reader back
    meanwhile waits for the answer, or gets the error that ended its start."""

    async def scenario() -> None:
        streams = ResumableStreams(ttl_s=10, capacity=4, max_bytes=1000, ping_s=15)
        with streams.reserved(key("m")) as stream:
            assert stream is not None
            early = asyncio.create_task(read(resumed(streams, "m")))
            await asyncio.sleep(0.01)
            await read(stream.begin(Answer(3).events()), most=1)
        assert len(await early) == 3

        with pytest.raises(OpenAIError), streams.reserved(key("refused")):
            raise OpenAIError(429, "The queue is full.")
        (error,) = await read(resumed(streams, "refused"))
        assert "The queue is full." in error

    asyncio.run(scenario())
