"""Usage per user, API key, model and UTC day. Counted in memory when a request ends (on the
event loop: no I/O), added to the database every few seconds and at shutdown with one upsert per
row, which several replicas may run at once on SQLite or PostgreSQL; read back for /auth/usage,
the daily token limit and, with METRICS_PER_USER, per-user Prometheus counters.

Who a request counts against is put by the guard in a context variable (`metering`), so the
serving layer records usage (`current_meter`) without the request being threaded through it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..core.metrics import USER_GENERATED_TOKENS, USER_PROMPT_TOKENS, USER_REQUESTS
from ..db.models import ApiKey, UsageDay, User
from .service import AccountError

log = logging.getLogger(__name__)

# How often each replica adds its counts to the database; also how long a user's tokens of
# today read from there are trusted (the other replicas' counts arrive no faster).
FLUSH_S = 5.0
MODEL_CHARS = 200  # the column's width
COUNTED = ("requests", "prompt_tokens", "completion_tokens")
MAX_DAYS = 366  # a report's range at most


@dataclass
class Counts:
    requests: int = 0
    prompt_tokens: int = 0  # embeddings: input tokens
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass(frozen=True)
class Bucket:
    day: date
    user_id: int | None  # None: the operator's API_KEY
    api_key_id: int | None  # None: a session or the SSO proxy (the page)
    model: str

    @property
    def key(self) -> str:
        """The row's unique name: a unique index over nullable columns would let NULLs differ,
        so it could not be the upsert's conflict target on either database."""
        return f"{self.day.isoformat()}/{self.user_id or 0}/{self.api_key_id or 0}/{self.model}"


def today() -> date:
    return datetime.now(UTC).date()


def date_range(start: date | None, end: date | None) -> tuple[date, date]:
    """A report's days: by default the 30 up to today (UTC)."""
    end = end or today()
    # (No day before 0001-01-01 to start from.)
    start = start or max(end, date.min + timedelta(days=29)) - timedelta(days=29)
    if start > end:
        raise AccountError(400, f"start ({start}) is after end ({end}).", "invalid_range", "start")
    if (end - start).days >= MAX_DAYS:
        raise AccountError(
            400, f"A report covers at most {MAX_DAYS} days; narrow start and end.", "invalid_range", "start"
        )
    return start, end


@dataclass(frozen=True)
class UsageRow:
    """One row of a report: a day, a user and one of their keys, a model."""

    day: date
    user_id: int | None
    username: str | None
    api_key_id: int | None
    key_name: str | None
    key_prefix: str | None
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Total(Counts):
    """Counts summed over some rows, with what they share (a day, a user, a key)."""

    day: date | None = None
    user_id: int | None = None
    username: str | None = None
    api_key_id: int | None = None
    key_name: str | None = None
    key_prefix: str | None = None


@dataclass
class UsageReport:
    start: date
    end: date
    total: Total
    daily: list[Total]  # every day of the range, in order, zeros included: the chart
    users: list[Total]  # per user
    keys: list[Total]  # per user and key (api_key_id None: the page)
    rows: list[UsageRow]  # per day, user, key and model: the table


def report(rows: list[UsageRow], start: date, end: date) -> UsageReport:
    """The rows summed per day, user and key, and in all."""
    total = Total()
    days = {
        start + timedelta(days=i): Total(day=start + timedelta(days=i)) for i in range((end - start).days + 1)
    }
    users: dict[int | None, Total] = {}
    keys: dict[tuple[int | None, int | None], Total] = {}
    for row in rows:
        counts = Counts(row.requests, row.prompt_tokens, row.completion_tokens)
        total.add(counts)
        days[row.day].add(counts)
        users.setdefault(row.user_id, Total(user_id=row.user_id, username=row.username)).add(counts)
        keys.setdefault(
            (row.user_id, row.api_key_id),
            Total(
                user_id=row.user_id,
                username=row.username,
                api_key_id=row.api_key_id,
                key_name=row.key_name,
                key_prefix=row.key_prefix,
            ),
        ).add(counts)
    return UsageReport(
        start, end, total, list(days.values()), list(users.values()), list(keys.values()), rows
    )


@dataclass
class UsageBook:
    """This replica's counts not yet in the database, and the way there."""

    engine: Engine
    per_user_metrics: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _pending: dict[Bucket, Counts] = field(default_factory=dict, init=False)
    _flushing: dict[Bucket, Counts] = field(default_factory=dict, init=False)  # being written now
    _one_flush: threading.Lock = field(default_factory=threading.Lock, init=False)
    _flushes: int = field(default=0, init=False)  # successful ones: a sum read before the last is stale
    # (user id, day) -> (flushes when read, trusted until, tokens stored)
    _stored: dict[tuple[int, date], tuple[int, float, int]] = field(default_factory=dict, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def add(self, meter: Meter, model: str, counts: Counts) -> None:
        bucket = Bucket(today(), meter.user_id, meter.api_key_id, model[:MODEL_CHARS])
        with self._lock:
            self._pending.setdefault(bucket, Counts()).add(counts)
        if self.per_user_metrics:
            USER_REQUESTS.labels(meter.username, model).inc(counts.requests)
            USER_PROMPT_TOKENS.labels(meter.username, model).inc(counts.prompt_tokens)
            USER_GENERATED_TOKENS.labels(meter.username, model).inc(counts.completion_tokens)

    def flush(self) -> None:
        """Adds the counts made since the last flush to the database (blocking: a worker thread's
        job). If that fails they are kept for the next one."""
        with self._one_flush:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._flushing = batch
            if not batch:
                return
            try:
                with self.engine.begin() as connection:
                    self._upsert(connection, batch)
            except Exception:
                with self._lock:
                    for bucket, counts in batch.items():
                        self._pending.setdefault(bucket, Counts()).add(counts)
                    self._flushing = {}
                raise
            with self._lock:
                self._flushing = {}
                self._flushes += 1

    def _upsert(self, connection: Connection, batch: dict[Bucket, Counts]) -> None:
        # A user or key deleted since its request ended: its counts went with it.
        users = {b.user_id for b in batch if b.user_id is not None}
        keys = {b.api_key_id for b in batch if b.api_key_id is not None}
        live_users = set(connection.scalars(select(User.id).where(User.id.in_(users)))) if users else set()
        live_keys = set(connection.scalars(select(ApiKey.id).where(ApiKey.id.in_(keys)))) if keys else set()
        rows = [
            {
                "bucket": bucket.key,
                "day": bucket.day,
                "user_id": bucket.user_id,
                "api_key_id": bucket.api_key_id,
                "model": bucket.model,
                "requests": counts.requests,
                "prompt_tokens": counts.prompt_tokens,
                "completion_tokens": counts.completion_tokens,
            }
            # In one order on every replica, so two flushes on PostgreSQL never wait on each other
            # in a circle (a deadlock).
            for bucket, counts in sorted(batch.items(), key=lambda item: item[0].key)
            if (bucket.user_id is None or bucket.user_id in live_users)
            and (bucket.api_key_id is None or bucket.api_key_id in live_keys)
        ]
        if not rows:
            return
        insert: Any = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(UsageDay)
        statement = statement.on_conflict_do_update(
            index_elements=[UsageDay.bucket],
            set_={name: getattr(UsageDay, name) + getattr(statement.excluded, name) for name in COUNTED},
        )
        connection.execute(statement, rows)

    def tokens_today(self, user_id: int) -> int:
        """The user's tokens of this UTC day: every replica's in the database (read at most every
        FLUSH_S) and this one's not yet there. Blocking."""
        day = today()
        flushes = self._flushes
        cached = self._stored.get((user_id, day))
        if cached is not None and cached[0] == flushes and cached[1] > time.monotonic():
            stored = cached[2]
        else:
            with self.engine.connect() as connection:
                stored = connection.execute(
                    select(
                        func.coalesce(func.sum(UsageDay.prompt_tokens + UsageDay.completion_tokens), 0)
                    ).where(UsageDay.user_id == user_id, UsageDay.day == day)
                ).scalar_one()
            if len(self._stored) > 10_000:
                self._stored.clear()
            self._stored[(user_id, day)] = (flushes, time.monotonic() + FLUSH_S, int(stored))
        with self._lock:
            local = sum(
                counts.total_tokens
                for bucket, counts in chain(self._pending.items(), self._flushing.items())
                if bucket.user_id == user_id and bucket.day == day
            )
        return int(stored) + local

    def rows(self, start: date, end: date, user_id: int | None = None) -> list[UsageRow]:
        """The stored rows from `start` to `end` (UTC days, both included), of one user or all.
        This replica's own counts are written first, so what it just served is in. Blocking."""
        self.flush()
        query = (
            select(
                UsageDay.day,
                UsageDay.user_id,
                User.username,
                UsageDay.api_key_id,
                ApiKey.name,
                ApiKey.prefix,
                UsageDay.model,
                *(getattr(UsageDay, name) for name in COUNTED),
            )
            .outerjoin(User, UsageDay.user_id == User.id)
            .outerjoin(ApiKey, UsageDay.api_key_id == ApiKey.id)
            .where(UsageDay.day >= start, UsageDay.day <= end)
            .order_by(UsageDay.day, UsageDay.user_id, UsageDay.api_key_id, UsageDay.model)
        )
        if user_id is not None:
            query = query.where(UsageDay.user_id == user_id)
        with self.engine.connect() as connection:
            return [UsageRow(*row) for row in connection.execute(query)]

    # The periodic flush, from start-up to shutdown

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await asyncio.to_thread(self.flush)
            except Exception as exc:  # the database is away: the counts wait for the next try
                log.warning("usage not written yet (kept for the next try): %s", exc)

    async def stop(self) -> None:
        """The last flush, after the requests have ended."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            await asyncio.to_thread(self.flush)
        except Exception as exc:
            log.warning("usage of the last %.0f s could not be written at shutdown: %s", FLUSH_S, exc)


@dataclass(frozen=True)
class Meter:
    """Who the current request counts against."""

    book: UsageBook
    user_id: int | None
    api_key_id: int | None
    username: str

    def record(self, model: str, prompt_tokens: int, completion_tokens: int = 0) -> None:
        """One request to `model` has ended, having used these tokens."""
        self.book.add(self, model, Counts(1, prompt_tokens, completion_tokens))


_METER: ContextVar[Meter | None] = ContextVar("usage_meter", default=None)


def current_meter() -> Meter | None:
    """Who the request being served counts against (None: AUTH=none, nobody counts)."""
    return _METER.get()


@contextmanager
def metering(meter: Meter) -> Iterator[None]:
    token = _METER.set(meter)
    try:
        yield
    finally:
        _METER.reset(token)
