"""Bearer tokens and tenants.

The admin token (KRONWHEEL_API_TOKEN) is tenant "default" with admin rights
(it may create tokens). Every other token belongs to one tenant and is stored
only as its SHA-256, so a leaked read model leaks no usable token. Browsers
cannot set headers on a WebSocket, so /v1/stream also accepts the token as a
``bearer.<token>`` subprotocol beside ``kronwheel``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from streams.api.errors import Handler, error_response
from streams.api.keys import READ_MODEL, SETTINGS
from streams.ports import ReadModel, TokenRecord

ADMIN_TENANT = "default"
TOKEN_PREFIX = "kw_"
WS_BEARER_PREFIX = "bearer."
# Cached lookups are re-checked after this; tokens are never deleted today, so a
# short cache only bounds how long a future revocation would take to bite.
TOKEN_CACHE_S = 30.0
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
PUBLIC_PREFIXES = ("/static/",)


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    name: str
    admin: bool = False

    @property
    def issuer(self) -> str:
        """Who the audit trail says issued a command."""
        return f"{self.tenant}/{self.name}"


PRINCIPAL = web.RequestKey("principal", Principal)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(store: ReadModel, tenant: str, name: str, now_ms: int) -> str:
    """Create a token for a tenant: store its hash, return the token (shown once)."""
    token = new_token()
    store.put_token(TokenRecord(hash_token(token), tenant, name, False, now_ms))
    return token


class TokenCache:
    def __init__(self, store: ReadModel) -> None:
        self._store = store
        self._known: dict[str, tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal | None:
        digest = hash_token(token)
        cached = self._known.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        record = await asyncio.to_thread(self._store.find_token, digest)
        if record is None:
            return None
        principal = Principal(record.tenant, record.name, record.admin)
        self._known[digest] = (principal, time.monotonic() + TOKEN_CACHE_S)
        return principal


TOKENS = web.AppKey("tokens", TokenCache)


def presented_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # A browser cannot set headers on a WebSocket, so the upgrade (and only the
    # upgrade) may carry the token as a subprotocol. A REST call taking it from
    # there would let a token reach calls through a header no one audits.
    if request.method != "GET" or request.headers.get("Upgrade", "").lower() != "websocket":
        return None
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(WS_BEARER_PREFIX):
            return protocol[len(WS_BEARER_PREFIX) :]
    return None


async def authenticate(request: web.Request) -> Principal | None:
    token = presented_token(request)
    if not token:
        return None
    admin_token = request.app[SETTINGS].api_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(ADMIN_TENANT, "admin", admin=True)
    return await request.app[TOKENS].principal(token)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request.path):
        return await handler(request)
    principal = await authenticate(request)
    if principal is None:
        return error_response(401, "unauthorized", "a valid Bearer token is required")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def store_of(request: web.Request) -> ReadModel:
    return request.app[READ_MODEL]
