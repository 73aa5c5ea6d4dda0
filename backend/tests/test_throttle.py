"""Sign-in throttling kept in the database (app/accounts/throttle.py), on SQLite and PostgreSQL:
two replicas' throttles over one database count the same failures."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from app.accounts.throttle import Throttle


def test_replicas_share_one_count_per_key_until_the_window_passes(engine: Engine) -> None:
    one, other = Throttle(engine, "account", 3, 1.5), Throttle(engine, "account", 3, 1.5)
    addresses = Throttle(engine, "address", 3, 1.5)
    for replica in (one, other, one):
        assert replica.retry_after("dave") == 0
        replica.failed("dave")
    assert 1 <= other.retry_after("dave") <= 2 and one.retry_after("dave") >= 1, "3 failures on two replicas"
    assert one.retry_after("erin") == 0, "another account is not held back"
    assert addresses.retry_after("dave") == 0, "nor the address of the same name"
    time.sleep(1.6)
    assert other.retry_after("dave") == 0, "the failures left the window"
    one.failed("dave")
    one.failed("dave")
    other.failed("dave")
    assert one.retry_after("dave") >= 1
    other.clear("dave")  # a successful sign-in on either replica
    assert one.retry_after("dave") == 0
