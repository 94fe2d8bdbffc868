"""Reading request input: JSON bodies, bounded query numbers, paging cursors, task ids."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from streams.core.errors import ValidationError
from streams.core.ids import is_valid_task_id


async def json_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}", "invalid_json") from None


def object_fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    """The body as an object with only known fields (the first unknown one is named)."""
    if not isinstance(body, dict):
        raise ValidationError.wrong_type("body", "an object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(unknown[0], "is not a known field", "unknown_field")
    return body


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError.wrong_type(name, "an integer") from None
    if not low <= value <= high:
        raise ValidationError(name, f"must be between {low} and {high}", "out_of_range")
    return value


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ValidationError.wrong_type(name, "true or false")


def path_task_id(request: web.Request) -> str | None:
    """The task id in the path, or None when it cannot be a task id (so: a 404)."""
    task_id = request.match_info["task_id"]
    return task_id if is_valid_task_id(task_id) else None


def encode_cursor(created_at_ms: int, task_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at_ms, task_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at_ms, task_id = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationError(
            "cursor", "is not a cursor this API returned", "invalid_cursor"
        ) from None
    if not isinstance(created_at_ms, int) or not isinstance(task_id, str):
        raise ValidationError("cursor", "is not a cursor this API returned", "invalid_cursor")
    if not -(2**62) < created_at_ms < 2**62:
        raise ValidationError("cursor", "is not a cursor this API returned", "invalid_cursor")
    return created_at_ms, task_id
