"""Small calls: the schedule preview for the web form, tokens, who am I."""

from __future__ import annotations

import asyncio

from aiohttp import web

from streams.api.auth import ADMIN_TENANT, issue_token, principal_of, store_of
from streams.api.errors import ApiError, json_response
from streams.api.keys import CLOCK, LIMITS
from streams.api.params import json_body, object_fields
from streams.core.errors import ValidationError
from streams.core.ids import is_valid_tenant
from streams.core.model import parse_schedule
from streams.core.timefmt import format_rfc3339_ms
from streams.core.upcoming import local_time, schedule_zone, upcoming_fire_ms
from streams.core.validation import validate_schedule

MAX_PREVIEW = 20


async def preview_schedule(request: web.Request) -> web.Response:
    """The next n fire times of a schedule, computed by the core (the page never does cron)."""
    body = object_fields(await json_body(request), {"schedule", "n"})
    if "schedule" not in body:
        raise ValidationError.missing("schedule")
    n = body.get("n", 5)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PREVIEW:
        raise ValidationError(
            "n", f"must be an integer between 1 and {MAX_PREVIEW}", "out_of_range"
        )
    now_ms = request.app[CLOCK].now_ms()
    schedule = parse_schedule(body["schedule"], now_ms, request.app[LIMITS])
    validate_schedule(schedule, now_ms, request.app[LIMITS])
    zone_name = schedule_zone(schedule)
    times = upcoming_fire_ms(schedule, now_ms, n)
    return json_response(
        {
            "timezone": zone_name,
            "fire_times": [
                {"at": format_rfc3339_ms(t), "local": local_time(t, zone_name)} for t in times
            ],
        }
    )


async def create_token(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if not principal.admin:
        raise ApiError(403, "forbidden", "only the admin token may create tokens")
    body = object_fields(await json_body(request), {"tenant", "name"})
    tenant = body.get("tenant")
    if not isinstance(tenant, str) or not is_valid_tenant(tenant):
        raise ValidationError("tenant", "must match [a-z0-9][a-z0-9_-]{0,39}", "invalid_tenant")
    if tenant == ADMIN_TENANT:
        raise ValidationError("tenant", "is the admin's tenant", "reserved_tenant")
    name = body.get("name", "token")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise ValidationError("name", "must be a string of 1 to 100 characters")
    now_ms = request.app[CLOCK].now_ms()
    token = await asyncio.to_thread(issue_token, store_of(request), tenant, name, now_ms)
    return json_response(
        {"token": token, "tenant": tenant, "name": name, "created_at": format_rfc3339_ms(now_ms)},
        201,
    )


async def whoami(request: web.Request) -> web.Response:
    principal = principal_of(request)
    return json_response(
        {"tenant": principal.tenant, "name": principal.name, "admin": principal.admin}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/schedules:preview", preview_schedule)
    app.router.add_post("/v1/tokens", create_token)
    app.router.add_get("/v1/whoami", whoami)
