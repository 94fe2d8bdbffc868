"""What the app holds, as typed keys (one module, so route modules import no cycle)."""

from __future__ import annotations

from aiohttp import web

from streams.api.live import Hub
from streams.config import Settings
from streams.core.clock import Clock
from streams.core.model import Limits
from streams.ingest import CommandPublisher
from streams.ports import ExecutionHistory, ReadModel
from streams.views.readmodel.projector import ProjectorStatus

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
LIMITS = web.AppKey("limits", Limits)
READ_MODEL = web.AppKey("read_model", ReadModel)
HISTORY = web.AppKey("history", ExecutionHistory)
PUBLISHER = web.AppKey("publisher", CommandPublisher)
HUB = web.AppKey("hub", Hub)
PROJECTOR_STATUS = web.AppKey("projector_status", ProjectorStatus)
