"""Anonymous sessions: who started a conversation when nobody sent an API key.

The widget has no key, so the API hands it a session token with its first answer and the widget sends
it back with every later request. The token is a random id and an HMAC of it under a server secret
(ANSWERDESK_SESSION_SECRET): nothing is stored, and nobody can mint the token of a conversation they
did not start, even knowing its id or an escalation's reference number."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time

from assistant.settings import Settings

log = logging.getLogger("answerdesk.sessions")

HEADER = "X-Answerdesk-Session"
_TAG = b"answerdesk-session-v1:"
_STAFF_TAG = b"answerdesk-staff-v1:"  # a widget session token can never pass as a staff one
STAFF_TTL = 8 * 3600  # a working day; then the agent signs in again


class Sessions:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> Sessions:
        if settings.session_secret is None:
            # Settings refuse this outside development; here tokens last as long as this process.
            log.warning("ANSWERDESK_SESSION_SECRET is not set: widget sessions end when this process stops")
            return cls(secrets.token_bytes(32))
        return cls(settings.session_secret.get_secret_value().encode())

    def new(self) -> tuple[str, str]:
        """(session id, token)."""
        sid = secrets.token_urlsafe(18)
        return sid, f"{sid}.{self._sign(sid)}"

    def verify(self, token: str | None) -> str | None:
        """The session id a token carries, or None for a missing, malformed or forged one."""
        if not token or token.count(".") != 1 or len(token) > 200:
            return None
        sid, signature = token.split(".")
        return sid if sid and hmac.compare_digest(signature.encode(), self._sign(sid).encode()) else None

    def staff_token(self, key_id: str, ttl: int = STAFF_TTL) -> str:
        """The staff page's cookie: which agent/admin key signed in, until when. It names the key (which
        is re-checked, so revoking the key ends the session) and never holds it."""
        body = f"{key_id}.{int(time.time()) + ttl}"
        return f"{body}.{self._sign(body, _STAFF_TAG)}"

    def verify_staff(self, token: str | None) -> str | None:
        """The key id of a valid, unexpired staff token; None for a missing, forged or expired one."""
        if not token or token.count(".") != 2 or len(token) > 200:
            return None
        key_id, expires, signature = token.split(".")
        body = f"{key_id}.{expires}"
        if not (expires.isdigit() and hmac.compare_digest(signature.encode(), self._sign(body, _STAFF_TAG).encode())):
            return None
        return key_id if int(expires) > time.time() else None

    def _sign(self, sid: str, tag: bytes = _TAG) -> str:
        digest = hmac.new(self._secret, tag + sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
