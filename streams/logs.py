"""Log set-up for every role: readable lines, or one JSON object per line.

``KRONWHEEL_LOG_FORMAT=json`` is for log shippers: each line is an object with
``ts`` (RFC 3339, ms, UTC), ``level``, ``logger``, ``message`` and, when the
call passed them with ``extra=``, ``task_id``, ``fire_id``, ``topic``,
``partition`` and ``offset``, so a firing can be followed across roles by
field instead of by regex.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from streams.core.timefmt import format_rfc3339_ms

# Context fields a call may attach with extra={...}; the JSON line carries them
# as top-level keys (the text format keeps them in the message itself).
CONTEXT_FIELDS = ("task_id", "fire_id", "topic", "partition", "offset", "role")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": format_rfc3339_ms(int(record.created * 1000)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: str) -> None:
    if log_format not in FORMATS:
        raise SystemExit(f"KRONWHEEL_LOG_FORMAT must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
