"""TicketQueue seam: where a case goes when the assistant is not sure or the user asks for a human.

The embedded default is a table in the local database (it also serves as the outbox that the
Jira queue will deliver from). `open` returns a reference the user can quote."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.store import utcnow


@dataclass
class EscalationRequest:
    conversation_id: str
    question: str
    transcript: list[dict[str, str]]
    draft_answer: str
    sources: list[dict[str, Any]]
    confidence: float | None
    reasons: list[str]
    requested_by_user: bool = False
    message_id: str | None = None
    role: str | None = None
    org: str | None = None
    tier: str | None = None
    priority: str | None = None
    labels: list[str] = field(default_factory=list)


@dataclass
class TicketRef:
    id: str
    status: str
    ticket_key: str | None = None
    ticket_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def escalation_sources(citations: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """What an escalation keeps of an answer's citations: enough for an agent to open each one."""
    return [{k: c.get(k) for k in ("n", "title", "url", "score")} for c in citations or []]


class TicketQueue(Protocol):
    def open(self, request: EscalationRequest) -> TicketRef: ...


class LocalQueue:
    """Escalations kept in the database, status `open`, for agents to pick up."""

    def __init__(self, engine: Engine, status: str = "open") -> None:
        self.engine = engine
        self.status = status  # "pending" when a delivery (Jira) follows

    def open(self, request: EscalationRequest) -> TicketRef:
        now = utcnow()
        ref = TicketRef(id=str(uuid.uuid4()), status=self.status)
        row = {**request.__dict__, "id": ref.id, "status": ref.status, "created_at": now, "updated_at": now,
               "attempts": 0}
        try:
            with self.engine.begin() as conn:
                conn.execute(db.escalations.insert(), row)
        except sa.exc.SQLAlchemyError as exc:
            raise EscalationError(f"Could not record the escalation: {exc.__class__.__name__}") from exc
        return ref


def list_escalations(engine: Engine, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(db.escalations).order_by(db.escalations.c.created_at.desc()).limit(limit)
    if status:
        q = q.where(db.escalations.c.status == status)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(q)]


def count_escalations(engine: Engine, status: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(db.escalations.c.status == status)).scalar_one())


def get_escalation(engine: Engine, escalation_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.escalations).where(db.escalations.c.id == escalation_id)).first()
    return dict(row._mapping) if row else None
