"""The kept log of ``kronwheel dev``: what it keeps, what it drops, how offsets move."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.ops.durable import (
    KeptLog,
    KeptRecord,
    decode_headers,
    encode_headers,
    low_watermarks,
    translate,
)
from streams.ops.keeper import CatchUp, PruneCycle

STATE = "tasks.state"
COMMANDS = "tasks.commands"


def rec(topic: str, offset: int, key: str | None, value: bytes | None, part: int = 0) -> KeptRecord:
    return KeptRecord(
        topic, part, offset, None if key is None else key.encode(), value, None, 1_000 + offset
    )


@pytest.fixture
def kept(tmp_path: Path) -> KeptLog:
    return KeptLog(tmp_path / "kept.sqlite3", STATE)


def kept_offsets(kept: KeptLog, topic: str, part: int = 0) -> list[int]:
    return kept.offsets(topic, part)


def test_only_the_latest_state_of_a_key_survives_a_prune(kept: KeptLog) -> None:
    kept.store(
        [
            rec(STATE, 0, "a", b"a1"),
            rec(STATE, 1, "b", b"b1"),
            rec(STATE, 2, "a", b"a2"),
            rec(STATE, 3, "b", None),  # b ended
            rec(STATE, 4, "c", b"c1"),
        ],
        {(STATE, 0): 5},
    )
    # The projector has read up to 4: a2 and c1 are live, the tombstone of b and
    # the older a1, b1 are no longer needed by anyone.
    kept.prune({(STATE, 0): 4}, {("api", STATE, 0): 4}, {(STATE, 0): 5})
    assert kept_offsets(kept, STATE) == [2, 4]
    assert [r.value for r in kept.records(STATE, 0)] == [b"a2", b"c1"]
    assert kept.committed() == {("api", STATE, 0): 4}
    assert kept.positions() == {(STATE, 0): 5}


def test_a_tombstone_is_kept_until_its_readers_pass_it(kept: KeptLog) -> None:
    kept.store([rec(STATE, 0, "a", b"a1"), rec(STATE, 1, "a", None)], {(STATE, 0): 2})
    kept.prune({(STATE, 0): 1}, {}, {(STATE, 0): 2})
    assert kept_offsets(kept, STATE) == [1]
    kept.prune({(STATE, 0): 2}, {}, {(STATE, 0): 2})
    assert kept_offsets(kept, STATE) == []


def test_commands_are_kept_until_every_reader_is_past_them(kept: KeptLog) -> None:
    kept.store([rec(COMMANDS, o, "t", b"c") for o in range(5)], {(COMMANDS, 0): 5})
    readers = {COMMANDS: ("processors", "api")}
    committed = {("processors", COMMANDS, 0): 4, ("api", COMMANDS, 0): 2}
    lows = low_watermarks(readers, committed, [(COMMANDS, 0)])
    assert lows == {(COMMANDS, 0): 2}
    kept.prune(lows, committed, {})
    assert kept_offsets(kept, COMMANDS) == [2, 3, 4]
    # A reader that never committed needs everything.
    assert low_watermarks(readers, {("api", COMMANDS, 0): 9}, [(COMMANDS, 0)]) == {(COMMANDS, 0): 0}


def test_the_api_journal_and_the_keeper_write_a_record_once(kept: KeptLog) -> None:
    kept.journal([rec(COMMANDS, 7, "t", b"create")])
    kept.store([rec(COMMANDS, 7, "t", b"create"), rec(COMMANDS, 8, "t", b"x")], {(COMMANDS, 0): 9})
    assert kept_offsets(kept, COMMANDS) == [7, 8]


def test_renumber_moves_records_to_their_new_offsets(kept: KeptLog) -> None:
    kept.store(
        [rec(STATE, 10, "a", b"a"), rec(STATE, 20, "b", b"b"), rec(STATE, 30, "c", b"c")],
        {(STATE, 0): 31},
    )
    kept.renumber(STATE, 0, [10, 20, 30], [0, 1, 2])
    assert [(r.offset, r.value) for r in kept.records(STATE, 0)] == [
        (0, b"a"),
        (1, b"b"),
        (2, b"c"),
    ]
    # Still live after the move: a prune past them keeps them.
    kept.prune({(STATE, 0): 3}, {}, {(STATE, 0): 3})
    assert kept_offsets(kept, STATE) == [0, 1, 2]
    # Moving up (a broker that was not empty) goes through parking, and collides with nothing.
    kept.renumber(STATE, 0, [0, 1, 2], [1, 2, 3])
    assert [r.offset for r in kept.records(STATE, 0)] == [1, 2, 3]
    with pytest.raises(ValueError, match="ascending"):
        kept.renumber(STATE, 0, [2, 1], [0, 1])


@pytest.mark.parametrize(
    ("committed", "resumes_at"),
    [(0, 0), (10, 0), (11, 1), (20, 1), (21, 2), (30, 2), (31, 3), (99, 3)],
)
def test_translate_resumes_at_the_first_record_not_yet_read(
    committed: int, resumes_at: int
) -> None:
    assert translate([10, 20, 30], [0, 1, 2], committed) == resumes_at


def test_translate_with_nothing_kept_starts_at_zero() -> None:
    assert translate([], [], 500) == 0


def test_headers_round_trip() -> None:
    headers = [("kw-schema", b"TaskCommand"), ("empty", None)]
    assert decode_headers(encode_headers(headers)) == headers
    assert encode_headers(None) is None
    assert decode_headers(None) is None


def test_a_state_past_the_cut_does_not_let_its_predecessor_go(kept: KeptLog) -> None:
    kept.store([rec(STATE, 0, "a", b"a1"), rec(STATE, 1, "a", b"a2")], {(STATE, 0): 2})
    # Everyone read both, but a2's firings are not known to be on disk yet (cut 1).
    kept.prune({(STATE, 0): 2}, {}, {(STATE, 0): 1})
    assert kept_offsets(kept, STATE) == [0, 1]
    kept.prune({(STATE, 0): 2}, {}, {(STATE, 0): 2})
    assert kept_offsets(kept, STATE) == [1]


def test_truncate_state_restores_only_below_the_cut(kept: KeptLog) -> None:
    kept.store(
        [rec(STATE, 0, "a", b"a1"), rec(STATE, 1, "b", b"b1"), rec(STATE, 2, "a", b"a2")],
        {(STATE, 0): 3},
    )
    kept.prune({(STATE, 0): 0}, {}, {(STATE, 0): 2})
    assert kept.truncate_state() == 1
    assert [r.value for r in kept.records(STATE, 0)] == [b"a1", b"b1"]
    # a1 is a's state again: a later prune keeps it.
    kept.prune({(STATE, 0): 5}, {}, {(STATE, 0): 5})
    assert kept_offsets(kept, STATE) == [0, 1]


def test_a_prune_cycle_waits_for_the_ends_and_the_batch_behind_them() -> None:
    catch_up = CatchUp({(STATE, 0): 10})
    assert not catch_up.reached({(STATE, 0): 9}, {(STATE, 0): 14})
    # Reached the queried end: the batch that holds it ends at the reported high mark.
    assert not catch_up.reached({(STATE, 0): 10}, {(STATE, 0): 14})
    assert not catch_up.reached({(STATE, 0): 13}, {(STATE, 0): 20})  # target fixed at 14
    assert catch_up.reached({(STATE, 0): 14}, {(STATE, 0): 20})


def test_the_state_cut_is_taken_before_the_due_ends_are_asked() -> None:
    due = "tasks.due"
    cycle = PruneCycle({}, CatchUp({(STATE, 0): 3}), due_topic=due, state_topic=STATE)
    asked: list[dict[tuple[str, int], int]] = []

    def due_ends() -> dict[tuple[str, int], int]:
        asked.append({(due, 0): 7})
        return asked[-1]

    assert not cycle.step({(STATE, 0): 2, (due, 0): 0}, {}, due_ends)
    assert asked == []
    assert not cycle.step({(STATE, 0): 4, (due, 0): 5}, {}, due_ends)
    assert cycle.state_cut == {(STATE, 0): 4}
    assert not cycle.step({(STATE, 0): 9, (due, 0): 6}, {}, due_ends)
    assert cycle.step({(STATE, 0): 9, (due, 0): 7}, {}, due_ends)
    assert cycle.state_cut == {(STATE, 0): 4}  # the cut does not move with later copies
    assert len(asked) == 1
