"""Each set of status and outcome values is one Enum, and its values are the
wire and database values: the Avro enums, and the read model's statuses."""

import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from streams.core.events import CommandKind, TaskStatus
from streams.core.model import Misfire, Outcome
from streams.core.projection import ENDED_STATUSES, SHOWN_STATUSES, ShownStatus, derive_status

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PYTHON_ENUMS: dict[str, type[StrEnum]] = {
    "CommandKind": CommandKind,
    "TaskStatus": TaskStatus,
    "Misfire": Misfire,
    "Outcome": Outcome,
}


def _avro_enums(node: Any) -> Iterator[tuple[str, list[str]]]:
    if isinstance(node, dict):
        if node.get("type") == "enum":
            yield node["name"], node["symbols"]
        for value in node.values():
            yield from _avro_enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _avro_enums(value)


def test_every_avro_enum_is_a_python_enum_with_the_same_symbols() -> None:
    seen = set()
    for path in sorted(SCHEMAS.glob("*.avsc")):
        for name, symbols in _avro_enums(json.loads(path.read_text("utf-8"))):
            assert name in PYTHON_ENUMS, f"{path.name}: enum {name} has no Python Enum"
            # The codec upper-cases the lower-case enums (Misfire, Outcome) on the wire.
            values = [member.value.upper() for member in PYTHON_ENUMS[name]]
            assert sorted(symbols) == sorted(values), f"{path.name}: {name}"
            seen.add(name)
    assert seen == set(PYTHON_ENUMS)


def test_shown_statuses_keep_their_stored_values() -> None:
    assert SHOWN_STATUSES == ("scheduled", "paused", "completed", "cancelled", "failed")
    assert {s.value for s in ENDED_STATUSES} == {"completed", "cancelled", "failed"}
    assert [o.value for o in Outcome] == ["succeeded", "failed"]


@pytest.mark.parametrize(
    ("facts", "shown"),
    [
        (("SCHEDULED", False, None, False), "scheduled"),
        (("PAUSED", True, None, False), "paused"),
        ((None, False, None, False), "scheduled"),
        (("ENDED", True, "succeeded", True), "cancelled"),
        (("CANCELLED", False, None, False), "cancelled"),
        (("ENDED", False, "failed", True), "failed"),
        (("ENDED", False, "failed", False), "completed"),
    ],
)
def test_derived_status_is_a_shown_status(facts: tuple[Any, ...], shown: str) -> None:
    status = derive_status(*facts)
    assert isinstance(status, ShownStatus)
    assert status == shown
