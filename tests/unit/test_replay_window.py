import pytest

from streams.core.timefmt import parse_rfc3339_ms
from streams.ops.replay.window import Window, parse_instant

NOW = parse_rfc3339_ms("2026-11-23T12:00:00Z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-2h", NOW - 2 * 3_600_000),
        ("-30m", NOW - 30 * 60_000),
        ("+10s", NOW + 10_000),
        ("-1d", NOW - 86_400_000),
        ("-500ms", NOW - 500),
        ("2026-11-23T10:00:00Z", parse_rfc3339_ms("2026-11-23T10:00:00Z")),
        ("2026-11-23T11:00:00+01:00", parse_rfc3339_ms("2026-11-23T10:00:00Z")),
    ],
)
def test_parse_instant(text: str, expected: int) -> None:
    assert parse_instant(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2h", "-2w", "2026-11-23T10:00:00", ""])
def test_parse_instant_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_instant(text, NOW)


def test_window_bounds_are_inclusive_and_optional() -> None:
    window = Window.parse("-1h", "now", NOW)
    assert window.contains(NOW - 3_600_000)
    assert window.contains(NOW)
    assert not window.contains(NOW + 1)
    assert not window.contains(NOW - 3_600_001)
    assert Window().contains(0)
    assert "the beginning" in Window().describe()


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Window.parse("now", "-1h", NOW)
