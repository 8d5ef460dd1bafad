"""API keys: random, shown once, stored only as a SHA-256 hash, carrying a role (and for
customers an organisation and a tier). Requests without a key are `community`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.store import utcnow

ROLES = ("customer", "agent", "admin")
KEY_PREFIX = "adk_"


@dataclass(frozen=True)
class Identity:
    role: str  # community | customer | agent | admin
    key_id: str | None = None
    org: str | None = None
    tier: str | None = None  # free | paid | ... (customers); None otherwise
    client: str = ""  # client IP, what community users are counted by
    # Who started a conversation when there is no key: "widget:<signed session id>", "user:<site>/<id>" (a
    # signed-in user the host site vouched for, assistant/widget_identity.py) or "slack:<team>/<channel>".
    session: str | None = None
    email: str | None = None  # verified: from the host site's signed token, never typed by the visitor

    @property
    def staff(self) -> bool:
        return self.role in ("agent", "admin")

    @property
    def priority(self) -> int:
        """0 goes first: agents, admins and paid customers; then everyone else."""
        return 0 if self.staff or (self.role == "customer" and self.tier == "paid") else 1

    @property
    def plan(self) -> str:
        """The name rate limits and escalation priorities are configured by."""
        if self.role == "customer":
            return self.tier or "free"
        return self.role

    @property
    def owner(self) -> str | None:
        """Who a conversation this identity starts belongs to; None: nobody can prove it later."""
        return f"key:{self.key_id}" if self.key_id else self.session

    @property
    def subject(self) -> str:
        """Who rate limits count: the key, the signed-in user, or else the client address."""
        if self.key_id:
            return f"key:{self.key_id}"
        return self.session if self.session and self.session.startswith("user:") else f"ip:{self.client}"


COMMUNITY = Identity(role="community")


def hash_key(key: str) -> str:
    # Keys are 256-bit random: a fast hash is enough, there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class Keys:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, role: str, name: str = "", org: str | None = None,
               tier: str | None = None) -> tuple[str, dict[str, Any]]:
        """Returns (the key, its record). The key itself is not stored anywhere."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "customer" and not org:
            raise ValueError("a customer key needs an organisation (--org)")
        if role != "customer" and (org or tier):
            raise ValueError("only customer keys carry an organisation and a tier")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = {"id": str(uuid.uuid4()), "key_hash": hash_key(key), "prefix": key[:10], "name": name or role,
               "role": role, "org": org, "tier": (tier or "free") if role == "customer" else None,
               "created_at": utcnow(), "revoked_at": None, "last_used_at": None}
        with self.engine.begin() as conn:
            conn.execute(db.api_keys.insert(), row)
        return key, _public(row)

    def resolve(self, key: str) -> Identity | None:
        """The identity behind a key, or None for an unknown or revoked key."""
        k = db.api_keys.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(db.api_keys).where(k.key_hash == hash_key(key))).first()
            if row is None or row.revoked_at is not None:
                return None
            conn.execute(db.api_keys.update().where(k.id == row.id).values(last_used_at=utcnow()))
        return Identity(role=row.role, key_id=row.id, org=row.org, tier=row.tier)

    def by_id(self, key_id: str) -> Identity | None:
        """The identity of a key still active, by its id (a staff page session names the key, never holds it)."""
        k = db.api_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.api_keys).where(k.id == key_id, k.revoked_at.is_(None))).first()
        return Identity(role=row.role, key_id=row.id, org=row.org, tier=row.tier) if row else None

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.api_keys).order_by(db.api_keys.c.created_at)).all()
        return [_public(dict(r._mapping)) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(db.api_keys.update().where(
                db.api_keys.c.id == key_id, db.api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        return bool(done.rowcount)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "key_hash"}
