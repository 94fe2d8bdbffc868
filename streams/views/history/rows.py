"""An ExecutionResult as a row of named columns, the same in every store."""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import Any

from streams.core.events import ExecutionResult
from streams.core.model import Outcome

RESULT_COLUMNS = (
    "fire_id",
    "task_id",
    "tenant",
    "scheduled_at_ms",
    "attempt",
    "outcome",
    "final",
    "started_at_ms",
    "finished_at_ms",
    "lateness_ms",
    "http_status",
    "error",
    "dispatcher",
)


_OUTCOME_INDEX = RESULT_COLUMNS.index("outcome")
_COLUMN_VALUES = attrgetter(*RESULT_COLUMNS)  # one C call per row, not 13 getattr


def result_values(result: ExecutionResult) -> tuple[Any, ...]:
    """The column values, in RESULT_COLUMNS order (the outcome as its text)."""
    values: tuple[Any, ...] = _COLUMN_VALUES(result)
    return (
        *values[:_OUTCOME_INDEX],
        result.outcome.value,
        *values[_OUTCOME_INDEX + 1 :],
    )


def result_from_columns(row: Mapping[str, Any]) -> ExecutionResult:
    values = {name: row[name] for name in RESULT_COLUMNS}
    values["outcome"] = Outcome(values["outcome"])
    values["final"] = bool(values["final"])
    values["dispatcher"] = values["dispatcher"] or ""
    return ExecutionResult(**values)
