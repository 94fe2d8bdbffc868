"""Callback signatures: ``Kronwheel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``f"{t}."`` followed by the raw request body, so a receiver can
check both that kronwheel sent the body and that it is fresh. Receivers verify
with :func:`verify_signature` (copy it; it needs only the standard library):

    ok = verify_signature(secret, request.headers["Kronwheel-Signature"],
                          await request.read(), now_s=int(time.time()))
"""

from __future__ import annotations

import hashlib
import hmac

DEFAULT_TOLERANCE_S = 300


def compute_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """True when the header is a valid, fresh signature of the body under the secret."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp_s = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    expected = compute_signature(secret, timestamp_s, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
