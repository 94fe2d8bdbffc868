"""`python -m bench.floor`'s parts timed alone do the work they claim (a floor
made of skipped work would be no floor). The callback part runs the bare client
of `bench compare`, checked by its smoke test (KRONWHEEL_BENCH_SMOKE=1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import floor
from streams.kafka.records import decode_command, encode_command
from streams.views.readmodel.projector import Projector


@pytest.fixture
def events() -> list[floor.TaskEvents]:
    return [floor.task_events(n, "http://127.0.0.1:9") for n in range(120)]


def test_each_part_times_real_work_and_checks_its_effect(
    events: list[floor.TaskEvents], tmp_path: Path
) -> None:
    assert decode_command(encode_command(events[0].command)) == events[0].command
    for part in (floor.history_us, floor.read_model_us, floor.kept_us):
        assert part(events, tmp_path) > 0  # each raises when its rows did not land
    assert floor.codec_us(events) > 0


def test_a_part_whose_rows_do_not_land_is_refused(
    events: list[floor.TaskEvents], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A projector that skipped every record would make the read model look free.
    skipping = Projector._project
    monkeypatch.setattr(Projector, "_project", lambda self, batch: skipping(self, []))
    with pytest.raises(RuntimeError, match="read model"):
        floor.read_model_us(events, tmp_path)
