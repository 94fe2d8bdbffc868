"""RFC 3339 <-> epoch milliseconds, the only two time formats kronwheel speaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 instant with an explicit offset into epoch ms (exact, no floats).

    A naive timestamp ("2026-12-01T09:00:00") is refused: an instant without a
    zone is a guess, and a scheduler must not guess. Sub-millisecond digits are
    truncated.
    """
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("has no time zone offset (use Z or +HH:MM)")
    return (parsed - _EPOCH) // _ONE_MS


def format_rfc3339_ms(epoch_ms: int) -> str:
    """Format epoch ms as RFC 3339 UTC with milliseconds: 2026-12-01T09:00:00.000Z."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
