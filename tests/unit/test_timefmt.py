import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.timefmt import (
    MAX_INSTANT_MS,
    MIN_INSTANT_MS,
    format_rfc3339_ms,
    parse_rfc3339_ms,
)


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-12-01T09:00:00Z", 1_796_115_600_000),
        ("2026-12-01T10:00:00.250+01:00", 1_796_115_600_250),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ("2026-12-01t09:00:00z", 1_796_115_600_000),
        ("2026-12-01T09:00:00.123999Z", 1_796_115_600_123),  # sub-ms truncated
    ],
)
def test_parse_is_exact(text: str, epoch_ms: int) -> None:
    assert parse_rfc3339_ms(text) == epoch_ms


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339_ms("2026-12-01T09:00:00")


@pytest.mark.parametrize(
    "text",
    [
        "2026-W49-2T09:00:00Z",  # ISO week date
        "20261201T090000Z",  # ISO basic format
        "2026-12-01",  # a date is not an instant
        "2026-12-01T09:00Z",  # seconds are required
        "2026-12-01T09:00:00+0100",  # offset without its colon
        "+12026-12-01T09:00:00Z",
        "2026-12-01T09:00:00+24:00",
    ],
)
def test_only_rfc3339_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|offset"):
        parse_rfc3339_ms(text)


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-23:59",  # year 10000 in UTC: no RFC 3339 form
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "1969-12-31T23:59:59.999Z",
    ],
)
def test_instants_outside_1970_to_9999_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        parse_rfc3339_ms(text)


@pytest.mark.parametrize("epoch_ms", [0, -1, 1_796_115_600_250, 253_402_300_799_999])
def test_format_round_trips(epoch_ms: int) -> None:
    text = format_rfc3339_ms(epoch_ms)
    assert text.endswith("Z")
    if epoch_ms >= 0:
        assert parse_rfc3339_ms(text) == epoch_ms


@given(st.integers(MIN_INSTANT_MS, MAX_INSTANT_MS))
def test_every_accepted_instant_formats_to_24_characters_and_back(epoch_ms: int) -> None:
    text = format_rfc3339_ms(epoch_ms)
    assert len(text) == 24
    assert (text[10], text[19], text[23]) == ("T", ".", "Z")
    assert parse_rfc3339_ms(text) == epoch_ms
