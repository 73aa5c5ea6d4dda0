"""Failed sign-ins counted per account and per address over a sliding window; past the limit,
sign-in is refused with the seconds until the oldest failure leaves the window. In memory, per
process: each replica counts on its own (an attacker spread over N replicas gets N times the
tries, still a few per minute)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class Throttle:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self.failures[key]
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        now = time.monotonic()
        with self.lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            self._recent(key, now)
            self.failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        with self.lock:
            self.failures.pop(key, None)
