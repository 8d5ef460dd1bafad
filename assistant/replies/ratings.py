"""'Did this solve your problem?' after a ticket is resolved: signed links, and the stored answers.

A rating token is the escalation id, when the link was made, and an HMAC of both under the session
secret: the link in an e-mail or a Slack thread works without a login, nobody can rate an escalation
whose link they were not sent, and a link older than ANSWERDESK_RATING_LINK_DAYS is refused (an old
mail found in a forwarded thread or a breached mailbox changes nothing). Answers are stored in
db.resolution_ratings, one per escalation (a later answer replaces an earlier one: a reopened ticket is
asked again at its next resolution); `resolution_ratings()` is what analytics reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.settings import Settings
from assistant.store import utcnow

log = logging.getLogger("answerdesk.replies")
_TAG = b"answerdesk-rating-v2:"
_UNDATED_TAG = b"answerdesk-rating-v1:"  # links sent before they carried their date: genuine, but expired
CHANNELS = ("widget", "email", "slack")


class RatingTokens:
    def __init__(self, secret: bytes, lifetime: float = 30 * 86400.0) -> None:
        self._secret = secret
        self.lifetime = lifetime  # seconds a link works after it was made

    @classmethod
    def from_settings(cls, settings: Settings) -> RatingTokens:
        lifetime = settings.rating_link_days * 86400
        if settings.session_secret is None:  # development only (Settings refuse it elsewhere)
            log.warning("ANSWERDESK_SESSION_SECRET is not set: rating links stop working when this process stops")
            return cls(secrets.token_bytes(32), lifetime)
        return cls(settings.session_secret.get_secret_value().encode(), lifetime)

    def token(self, escalation_id: str, made: float | None = None) -> str:
        signed = f"{escalation_id}.{int(time.time() if made is None else made)}"
        return f"{signed}.{self._sign(signed)}"

    def escalation(self, token: str) -> str | None:
        """The escalation a token names, or None for a malformed, forged or expired one."""
        found = self._verified(token)
        return found[0] if found and not self._expired(found[1]) else None

    def expired(self, token: str) -> bool:
        """A genuine link that is too old (a forged one is never 'expired': it is not valid). A genuine
        link from before links were dated cannot be dated: the person is told it expired, not that it
        is not valid."""
        found = self._verified(token)
        return found is not None and self._expired(found[1]) or self._undated(token)

    def _undated(self, token: str) -> bool:
        if not token or token.count(".") != 1 or len(token) > 200:
            return False
        eid, signature = token.split(".")
        return bool(eid) and hmac.compare_digest(signature.encode(), self._sign(eid, _UNDATED_TAG).encode())

    def _expired(self, made: int) -> bool:
        return time.time() - made > self.lifetime

    def _verified(self, token: str) -> tuple[str, int] | None:
        if not token or token.count(".") != 2 or len(token) > 200:
            return None
        eid, made, signature = token.split(".")
        # As bytes: compare_digest refuses non-ASCII str, and a URL path may carry any character.
        if not eid or not made.isascii() or not made.isdigit() or not hmac.compare_digest(
                signature.encode(), self._sign(f"{eid}.{made}").encode()):
            return None
        return eid, int(made)

    def _sign(self, signed: str, tag: bytes = _TAG) -> str:
        digest = hmac.new(self._secret, tag + signed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class ResolutionRating:
    escalation_id: str
    solved: bool
    channel: str
    tier: str | None
    ticket_key: str | None
    created_at: datetime
    updated_at: datetime


def rate(engine: Engine, escalation_id: str, solved: bool, channel: str) -> None:
    """Store (or replace) the answer for one escalation."""
    r = db.resolution_ratings.c
    now = utcnow()
    with engine.begin() as conn:  # the escalation carries the latest answer too: analytics reads it there
        conn.execute(db.escalations.update().where(db.escalations.c.id == escalation_id)
                     .values(rating="yes" if solved else "no"))
        changed = conn.execute(db.resolution_ratings.update().where(r.escalation_id == escalation_id)
                               .values(solved=solved, channel=channel, updated_at=now))
        if changed.rowcount:
            return
    try:
        with engine.begin() as conn:
            conn.execute(db.resolution_ratings.insert(), {"escalation_id": escalation_id, "solved": solved,
                                                         "channel": channel, "created_at": now, "updated_at": now})
    except sa.exc.IntegrityError:  # a concurrent first answer won: this one replaces it
        with engine.begin() as conn:
            conn.execute(db.resolution_ratings.update().where(r.escalation_id == escalation_id)
                         .values(solved=solved, channel=channel, updated_at=now))


def rating_of(engine: Engine, escalation_id: str) -> bool | None:
    r = db.resolution_ratings.c
    with engine.connect() as conn:
        found = conn.execute(sa.select(r.solved).where(r.escalation_id == escalation_id)).scalar_one_or_none()
    return None if found is None else bool(found)


def resolution_ratings(engine: Engine, since: datetime | None = None) -> list[ResolutionRating]:
    """Every stored answer with the escalation's tier and ticket: the rows analytics groups by tier and channel."""
    r, e = db.resolution_ratings.c, db.escalations.c
    q = (sa.select(r.escalation_id, r.solved, r.channel, e.tier, e.ticket_key, r.created_at, r.updated_at)
         .join_from(db.resolution_ratings, db.escalations, r.escalation_id == e.id).order_by(r.updated_at))
    if since is not None:
        q = q.where(r.updated_at >= since)
    with engine.connect() as conn:
        return [ResolutionRating(row.escalation_id, bool(row.solved), row.channel, row.tier, row.ticket_key,
                                 row.created_at, row.updated_at) for row in conn.execute(q)]


def summary(rows: list[ResolutionRating]) -> dict[str, Any]:
    """Solved / asked, overall and per tier and per channel."""
    def rate_of(group: list[ResolutionRating]) -> dict[str, Any]:
        solved = sum(1 for x in group if x.solved)
        return {"answers": len(group), "solved": solved, "rate": round(solved / len(group), 3) if group else None}

    tiers = sorted({x.tier or "community" for x in rows})
    return {"overall": rate_of(rows),
            "by_tier": {t: rate_of([x for x in rows if (x.tier or "community") == t]) for t in tiers},
            "by_channel": {c: rate_of([x for x in rows if x.channel == c]) for c in CHANNELS}}
