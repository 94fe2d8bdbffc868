"""Two kinds of time, kept apart.

* Wall time: epoch milliseconds (UTC). Due times, scheduled instants and
  lateness are wall time, because they are what users asked for.
* Monotonic time: seconds from an arbitrary origin. Budgets, timeouts and
  "how long did this take" use it, because wall time can jump.

Nothing in the core reads a clock; callers pass ``now_ms`` in. The adapters
take a :class:`Clock` so tests can use :class:`FakeClock` instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall time, epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds; only differences mean anything."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now_ms = start_ms
        self._mono = 0.0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._mono

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("a clock does not go backwards")
        self._now_ms += ms
        self._mono += ms / 1000.0
