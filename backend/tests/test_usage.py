"""Usage and per-user limits against SQLite and a real PostgreSQL, without a model: counts of
several replicas flushed at once add up, a report sums them per day, user and key, the daily
token limit sees other replicas' and unflushed counts, the per-user metrics appear only when
turned on, and each limit answers 429 with a Retry-After and a message that says which."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
from db_support import FAST
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from app.accounts.limits import Limits, seconds_to_midnight
from app.accounts.service import AccountError, Accounts, Principal
from app.accounts.usage import Counts, Meter, UsageBook, date_range, report, today
from app.core.errors import OpenAIError
from app.db.engine import make_engine
from app.db.migrate import upgrade


def user_requests(user: str, model: str) -> float | None:
    return REGISTRY.get_sample_value("llm_user_requests_total", {"user": user, "model": model})


def test_replicas_flushing_at_once_add_up_and_reports_sum_them(engine: Engine, database_url: str) -> None:
    accounts = Accounts(engine, timedelta(hours=1), FAST)
    ann = accounts.create_user("ann", "correct horse", "admin")
    bob = accounts.create_user("bob", "battery staple")
    _, key = accounts.create_key(bob.id, "agent")
    # Three replicas, each its own engine (connection pool) and book.
    engines = [make_engine(database_url) for _ in range(3)]
    books = [UsageBook(e) for e in engines]
    together = threading.Barrier(len(books))

    def replica(book: UsageBook) -> None:
        by_key = Meter(book, bob.id, key.id, "bob")
        page = Meter(book, bob.id, None, "bob")
        operator = Meter(book, None, None, "operator")
        for round in range(4):
            by_key.record("chat", 10, 5)
            page.record("chat", 3, 2)
            operator.record("embed", 7)
            if round % 2:
                together.wait()  # every replica writes the same rows at the same moment
                book.flush()
        by_key.record("chat", 10, 5)  # not flushed yet

    try:
        with ThreadPoolExecutor(len(books)) as pool:
            for done in [pool.submit(replica, book) for book in books]:
                done.result(timeout=120)
        # Tokens of today: what is stored plus what a replica holds unwritten.
        assert books[0].tokens_today(bob.id) == 3 * (4 * 15 + 4 * 5) + 15
        found = books[0].rows(today(), today())  # flushes replica 0's own first
        assert {
            (r.username, r.key_name, r.model): (r.requests, r.prompt_tokens, r.completion_tokens)
            for r in found
        } == {
            ("bob", "agent", "chat"): (3 * 4 + 1, 3 * 40 + 10, 3 * 20 + 5),
            ("bob", None, "chat"): (12, 36, 24),
            (None, None, "embed"): (12, 84, 0),
        }
        for book in books[1:]:
            book.flush()
        summed = report(
            books[0].rows(today() - timedelta(days=2), today()), today() - timedelta(days=2), today()
        )
        assert [d.requests for d in summed.daily] == [0, 0, 39]
        assert summed.total.total_tokens == 3 * 5 * 15 + 36 + 24 + 84
        users = {u.username: u.total_tokens for u in summed.users}
        assert users == {"bob": 3 * 5 * 15 + 60, None: 84}
        assert {(k.username, k.key_name): k.requests for k in summed.keys} == {
            ("bob", "agent"): 15,
            ("bob", None): 12,
            (None, None): 12,
        }
        assert books[0].rows(today(), today(), ann.id) == []
        assert len(books[0].rows(today(), today(), bob.id)) == 2

        # A user deleted before their counts were written: they go with the account.
        books[0].add(Meter(books[0], bob.id, key.id, "bob"), "chat", Counts(1, 1, 1))
        accounts.delete_user(bob.id)
        books[0].flush()
        with engine.connect() as connection:
            owners = connection.execute(text("SELECT DISTINCT user_id FROM usage_days")).scalars().all()
        assert owners == [None]
    finally:
        for e in engines:
            e.dispose()


def test_report_ranges_are_checked() -> None:
    start, end = date_range(None, None)
    assert (end - start).days == 29 and end == today()
    with pytest.raises(AccountError) as backwards:
        date_range(today(), today() - timedelta(days=1))
    assert backwards.value.status == 400 and "after" in backwards.value.message
    with pytest.raises(AccountError) as long:
        date_range(today() - timedelta(days=400), today())
    assert long.value.status == 400 and "366" in long.value.message
    assert date_range(None, date.min) == (date.min, date.min)
    with pytest.raises(AccountError):
        date_range(date.max, None)  # after today


def test_per_user_metrics_only_when_turned_on(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/usage.db")
    try:
        off, on = UsageBook(engine), UsageBook(engine, per_user_metrics=True)
        Meter(off, 1, None, "quiet-user").record("m", 3, 4)
        assert user_requests("quiet-user", "m") is None
        Meter(on, 2, None, "loud-user").record("m", 3, 4)
        Meter(on, 2, None, "loud-user").record("m", 1, 1)
        assert user_requests("loud-user", "m") == 2
        tokens = {"user": "loud-user", "model": "m"}
        assert REGISTRY.get_sample_value("llm_user_generation_tokens_total", tokens) == 5
    finally:
        engine.dispose()


def refused(limits: Limits, who: Principal) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        asyncio.run(limits.admit(who))
    error = caught.value
    assert error.status == 429 and error.type == "rate_limit_error" and error.headers is not None
    return error


def test_limits_say_which_and_when_they_reset(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/usage.db")
    upgrade(engine)
    try:
        book = UsageBook(engine)
        limits = Limits(rpm=2, tokens_per_day=100, book=book)
        bob = Principal(7, "bob", "user", "api_key", 3)
        for _ in range(2):
            asyncio.run(limits.admit(bob))
        rate = refused(limits, bob)
        assert rate.code == "requests_per_minute_exceeded"
        assert "2 requests per minute (USER_RPM)" in rate.message and "'bob'" in rate.message
        assert 55 <= int(rate.headers["Retry-After"]) <= 60  # type: ignore[index]
        # An admin's figure for this account wins; 0 lifts the limit.
        asyncio.run(limits.admit(Principal(7, "bob", "user", "api_key", 3, rpm_limit=0)))
        one = Principal(8, "cy", "user", "session", rpm_limit=1)
        asyncio.run(limits.admit(one))
        assert "set for this account by an admin" in refused(limits, one).message
        # Tokens: the request that crosses the limit was let in; the next one is refused.
        Meter(book, 8, None, "cy").record("m", 60, 50)
        tokens = refused(limits, Principal(8, "cy", "user", "session", rpm_limit=0))
        assert tokens.code == "tokens_per_day_exceeded"
        assert "has used 110 of 100 tokens today (USER_TOKENS_PER_DAY)" in tokens.message
        assert "00:00 UTC" in tokens.message
        wait = int(tokens.headers["Retry-After"])  # type: ignore[index]
        assert abs(wait - seconds_to_midnight()) <= 2
        asyncio.run(
            limits.admit(Principal(8, "cy", "user", "session", rpm_limit=0, tokens_per_day_limit=1000))
        )
        # The operator's API_KEY has no limits.
        for _ in range(3):
            asyncio.run(limits.admit(Principal(None, "operator", "admin", "operator")))
    finally:
        engine.dispose()
