import io
import json
import logging

import pytest

from streams.logs import JsonFormatter, configure_logging
from streams.ops.tables import render_table


def test_json_log_lines_carry_context_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kronwheel.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning(
            "dead letter %s",
            "x",
            extra={"task_id": "t-1", "topic": "tasks.due", "partition": 2, "offset": 17},
        )
        logger.info("plain")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "kronwheel.test.json"
    assert first["message"] == "dead letter x"
    assert (first["task_id"], first["topic"], first["partition"], first["offset"]) == (
        "t-1",
        "tasks.due",
        2,
        17,
    )
    assert first["ts"].endswith("Z")
    assert "task_id" not in second


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(SystemExit, match="KRONWHEEL_LOG_FORMAT"):
        configure_logging("INFO", "xml")


def test_tables_align_numbers_right_and_text_left() -> None:
    text = render_table(["topic", "lag"], [("tasks.due", 5), ("tasks.commands", 1234), ("x", None)])
    header, rule, *rows = text.splitlines()
    assert header == "topic" + " " * 12 + "lag"
    assert rule == "-" * 14 + "  " + "-" * 4
    assert rows == [
        "tasks.due" + " " * 10 + "5",
        "tasks.commands" + "  " + "1234",
        "x" + " " * 18 + "-",
    ]
