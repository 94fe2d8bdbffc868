"""A token bucket for per-host request rates, on time passed in (monotonic seconds)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``.

    :meth:`reserve` takes a token now or books the next one, and says how long
    the caller must wait before using it; bookings queue up in order, so many
    waiters never all wake at the same instant.
    """

    def __init__(self, rate: float, burst: float, now_s: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated_s = now_s

    def reserve(self, now_s: float) -> float:
        """Take one token; returns the seconds to wait before it may be used (0 = now)."""
        elapsed = max(0.0, now_s - self._updated_s)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated_s = max(self._updated_s, now_s)
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def is_full(self, now_s: float) -> bool:
        """True when the bucket has refilled: forgetting it now changes nothing, a
        new bucket would start full too."""
        elapsed = max(0.0, now_s - self._updated_s)
        return self._tokens + elapsed * self.rate >= self.burst
