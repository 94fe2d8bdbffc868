"""The time window a replay reads, from what an operator types.

Pure: the current time is an argument. Accepted forms are an RFC 3339 instant
("2026-11-23T10:00:00Z", with an explicit offset), ``now``, and a relative
offset from now ("-2h", "-30m", "+5s", "-1d", "-500ms").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streams.core.timefmt import format_rfc3339_ms, parse_rfc3339_ms

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE = re.compile(r"^([+-])(\d+)(ms|s|m|h|d)$")


def parse_instant(text: str, now_ms: int) -> int:
    """Epoch ms of ``text``; raises ValueError with a message an operator can act on."""
    value = text.strip()
    if value == "now":
        return now_ms
    relative = _RELATIVE.match(value)
    if relative:
        sign, amount, unit = relative.groups()
        delta = int(amount) * _UNIT_MS[unit]
        return now_ms + delta if sign == "+" else now_ms - delta
    try:
        return parse_rfc3339_ms(value)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a time: use RFC 3339 with an offset "
            "(2026-11-23T10:00:00Z), 'now', or a relative time like -2h, -30m, +10s"
        ) from exc


@dataclass(frozen=True, slots=True)
class Window:
    """Record timestamps to replay, both ends inclusive; None = unbounded."""

    start_ms: int | None = None
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise ValueError(
                f"the window ends ({format_rfc3339_ms(self.end_ms)}) before it starts "
                f"({format_rfc3339_ms(self.start_ms)})"
            )

    @classmethod
    def parse(cls, start: str | None, end: str | None, now_ms: int) -> Window:
        return cls(
            start_ms=parse_instant(start, now_ms) if start else None,
            end_ms=parse_instant(end, now_ms) if end else None,
        )

    def contains(self, timestamp_ms: int) -> bool:
        if self.start_ms is not None and timestamp_ms < self.start_ms:
            return False
        return self.end_ms is None or timestamp_ms <= self.end_ms

    def describe(self) -> str:
        start = format_rfc3339_ms(self.start_ms) if self.start_ms is not None else "the beginning"
        end = format_rfc3339_ms(self.end_ms) if self.end_ms is not None else "the end"
        return f"{start} .. {end}"
