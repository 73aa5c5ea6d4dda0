"""Per-user limits: requests per minute and tokens per UTC day, the defaults USER_RPM and
USER_TOKENS_PER_DAY or an admin's figures for one account (0: none). The guard checks them when
a generation or embedding request arrives; over one, a 429 with Retry-After whose message says
which limit and when it resets. Requests per minute are counted per replica, in memory; tokens
per day across replicas (usage.py). A request let in finishes even if it takes its user past a
limit: the next one is refused."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..core.errors import OpenAIError
from .service import Principal
from .usage import UsageBook

# The routes that generate or embed, where usage is counted.
METERED_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages", "/v1/embeddings"}
)
WINDOW_S = 60.0


def metered(method: str, path: str) -> bool:
    return method == "POST" and path in METERED_PATHS


def _limit(override: int | None, default: int, setting: str) -> tuple[int, str]:
    """The limit that applies (0: none) and where it comes from, for the message."""
    if override is None:
        return default, setting
    return override, "set for this account by an admin"


def seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


def too_many(message: str, code: str, wait: int) -> OpenAIError:
    return OpenAIError(429, message, type="rate_limit_error", code=code, headers={"Retry-After": str(wait)})


@dataclass
class Limits:
    rpm: int  # USER_RPM
    tokens_per_day: int  # USER_TOKENS_PER_DAY
    book: UsageBook
    # Per user, when their requests of the last minute were let in (on this replica).
    recent: dict[int, deque[float]] = field(default_factory=dict)

    async def admit(self, who: Principal) -> None:
        """Lets a request of `who` in, or raises the 429 of the limit it is over."""
        if who.user_id is None:  # the operator's API_KEY has no limits
            return
        tokens, source = _limit(who.tokens_per_day_limit, self.tokens_per_day, "USER_TOKENS_PER_DAY")
        if tokens:
            used = await asyncio.to_thread(self.book.tokens_today, who.user_id)
            if used >= tokens:
                wait = seconds_to_midnight()
                raise too_many(
                    f"Daily token limit reached: '{who.username}' has used {used} of {tokens} tokens "
                    f"today ({source}). It resets at 00:00 UTC, in {wait} s.",
                    "tokens_per_day_exceeded",
                    wait,
                )
        self._count_request(who)

    def _count_request(self, who: Principal) -> None:
        assert who.user_id is not None
        rpm, source = _limit(who.rpm_limit, self.rpm, "USER_RPM")
        if not rpm:
            return
        now = time.monotonic()
        window = self.recent.setdefault(who.user_id, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= rpm:
            wait = max(1, math.ceil(window[0] + WINDOW_S - now))
            raise too_many(
                f"Request rate limit reached: '{who.username}' may send {rpm} "
                f"request{'s' if rpm > 1 else ''} per minute ({source}). "
                f"The next one is accepted in {wait} s.",
                "requests_per_minute_exceeded",
                wait,
            )
        window.append(now)
