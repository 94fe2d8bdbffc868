import pytest

from streams.core.timefmt import format_rfc3339_ms, parse_rfc3339_ms


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-12-01T09:00:00Z", 1_796_115_600_000),
        ("2026-12-01T10:00:00.250+01:00", 1_796_115_600_250),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2026-12-01T09:00:00.123999Z", 1_796_115_600_123),  # sub-ms truncated
    ],
)
def test_parse_is_exact(text: str, epoch_ms: int) -> None:
    assert parse_rfc3339_ms(text) == epoch_ms


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339_ms("2026-12-01T09:00:00")


@pytest.mark.parametrize("epoch_ms", [0, -1, 1_796_115_600_250, 253_402_300_799_999])
def test_format_round_trips(epoch_ms: int) -> None:
    text = format_rfc3339_ms(epoch_ms)
    assert text.endswith("Z")
    assert parse_rfc3339_ms(text) == epoch_ms
