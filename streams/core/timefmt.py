"""RFC 3339 <-> epoch milliseconds, the only two time formats kronwheel speaks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_NAIVE_EPOCH = datetime(1970, 1, 1)
# Every instant kronwheel accepts formats back as RFC 3339 with a four-digit
# year: 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
MIN_INSTANT_MS = 0
MAX_INSTANT_MS = (datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC) - _EPOCH) // _ONE_MS
# RFC 3339 section 5.6 date-time, and nothing else fromisoformat would also take
# (week dates, basic format, a naive time, a bare date).
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 instant with an explicit offset into epoch ms (exact, no floats).

    A naive timestamp ("2026-12-01T09:00:00") is refused: an instant without a
    zone is a guess, and a scheduler must not guess. Sub-millisecond digits are
    truncated. The result is within MIN_INSTANT_MS..MAX_INSTANT_MS.
    """
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(
            "must be RFC 3339 with a time zone offset, like 2026-12-01T09:00:00Z"
            " or 2026-12-01T10:00:00+01:00"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or ".0")[1:7].ljust(6, "0"))
    if offset in ("Z", "z"):
        shift = timedelta(0)
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"offset {offset} is out of range")
        shift = timedelta(hours=hours, minutes=minutes) * (1 if offset[0] == "+" else -1)
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros
        )
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    # Naive arithmetic: an offset can push year 9999 past what an aware datetime holds.
    epoch_ms = (naive - _NAIVE_EPOCH - shift) // _ONE_MS
    if not MIN_INSTANT_MS <= epoch_ms <= MAX_INSTANT_MS:
        raise ValueError("is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    return epoch_ms


@lru_cache(maxsize=1024)
def format_rfc3339_ms(epoch_ms: int) -> str:
    """Format epoch ms as RFC 3339 UTC with milliseconds: 2026-12-01T09:00:00.000Z."""
    # isoformat (C) takes half of what strftime did, and always writes four year
    # digits. The cache serves the instants a response repeats: every create of a
    # batch request shares its "now" as created_at and updated_at.
    moment = _NAIVE_EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds") + "Z"
