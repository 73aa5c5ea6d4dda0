"""Failed sign-ins counted per account and per address over a sliding window; past the limit,
sign-in is refused with the seconds until the oldest failure leaves the window. Kept in the
database (`sign_in_failures`), so replicas behind one load balancer share one count: an attacker
spread over N replicas gets no more tries than against one."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from ..db.models import SignInFailure


class Throttle:
    def __init__(self, engine: Engine, kind: str, limit: int, window_s: float) -> None:
        self.engine = engine
        self.kind = kind  # keeps account names and addresses apart in the one table
        self.limit = limit
        self.window = timedelta(seconds=window_s)

    def _key(self, key: str) -> str:
        return f"{self.kind}:{key}"[:300]

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        now = datetime.now(UTC)
        with self.engine.connect() as db:
            recent = (
                select(SignInFailure.at)
                .where(SignInFailure.key == self._key(key), SignInFailure.at > now - self.window)
                .order_by(SignInFailure.at.desc())
                .limit(self.limit)
                .subquery()
            )
            count, oldest = db.execute(select(func.count(), func.min(recent.c.at))).one()
        if count < self.limit:
            return 0
        # The limit-th most recent failure leaves the window last of those that block.
        return max(1, math.ceil((oldest + self.window - now).total_seconds()))

    def failed(self, key: str) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as db:
            db.execute(delete(SignInFailure).where(SignInFailure.at <= now - self.window))
            db.execute(SignInFailure.__table__.insert().values(key=self._key(key), at=now))

    def clear(self, key: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(SignInFailure).where(SignInFailure.key == self._key(key)))
