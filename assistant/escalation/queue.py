"""The TicketQueue seam and the local queue.

The embedded default is a table in the local database (it also serves as the outbox that the Jira
queue delivers from). `open` returns a reference the user can quote. Every queue answers the whole
protocol, so callers (the API's worker, the CLI) never ask whether a method exists."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.store import lease_free, utcnow


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
    contact_email: str | None = None  # personal data: shown to staff and the owner, never logged
    notify: bool = False  # the user agreed to be told of the answer at contact_email
    contact_verified: bool = False  # contact_email is the signed-in user's own, not one typed by anyone


@dataclass
class TicketRef:
    id: str
    status: str
    ticket_key: str | None = None
    ticket_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class EscalationRecord(EscalationRequest):
    """One stored escalation (a row of db.escalations): the request plus its delivery state; what the queue,
    `list` and `get` return. status: open (local queue) | pending | delivered | failed (Jira refused it; an
    admin retries)."""

    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    ticket_key: str | None = None
    ticket_url: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    claimed_by: str | None = None
    last_error: str | None = None
    jira_status: str | None = None
    status_checked_at: datetime | None = None
    delivered_at: datetime | None = None
    summary: str | None = None
    delivery_step: str | None = None
    create_sent_at: datetime | None = None
    routing: dict[str, Any] | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    rating: str | None = None
    contact_version: int = 0
    contact_noted: int = 0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> EscalationRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def escalation_sources(citations: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """What an escalation keeps of an answer's citations: enough for an agent to open each one, and the
    source and document that routing rules match topics on."""
    return [{k: c.get(k) for k in ("n", "title", "url", "score", "source", "doc_id")} for c in citations or []]


class TicketQueue(Protocol):
    """Where escalations go. `delivers`: whether anything happens after `open` (a Jira outbox) that
    the worker and `answerdesk escalations retry` drive; for a queue that only records, the delivery
    methods are no-ops and `retry` says there is nothing to retry."""

    delivers: bool

    def open(self, request: EscalationRequest) -> TicketRef: ...

    def in_background(self) -> threading.Event | None:
        """From now on deliver in the worker, woken by the returned event; None: nothing to deliver."""
        ...

    def deliver_pending(self, limit: int = 50, force: bool = False) -> dict[str, int]: ...

    def refresh_statuses(self, limit: int = 20) -> int: ...

    def retry(self, ref: str, summary: str | None = None) -> EscalationRecord: ...

    def contact_changed(self, escalation_id: str) -> None:
        """set_contact changed the contact: tell the ticket, if one was made (the Jira queue posts a note)."""
        ...


class LocalQueue:
    """Escalations kept in the database, status `open`, for agents to pick up."""

    delivers = False

    def __init__(self, engine: Engine, status: str = "open") -> None:
        self.engine = engine
        self.status = status  # "pending" when a delivery (Jira) follows

    def open(self, request: EscalationRequest) -> TicketRef:
        if request.requested_by_user and (joined := join_waiting(self.engine, request)) is not None:
            return joined
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

    def in_background(self) -> threading.Event | None:
        return None

    def deliver_pending(self, limit: int = 50, force: bool = False) -> dict[str, int]:
        return {"due": 0, "delivered": 0}

    def refresh_statuses(self, limit: int = 20) -> int:
        return 0

    def retry(self, ref: str, summary: str | None = None) -> EscalationRecord:
        raise EscalationError("Escalations stay in the local queue (ANSWERDESK_ESCALATION=local): nothing to "
                              "retry. Agents pick them up with `answerdesk escalations list`.")

    def contact_changed(self, escalation_id: str) -> None:
        return None  # agents read the contact from the row itself


def join_waiting(engine: Engine, request: EscalationRequest) -> TicketRef | None:
    """The user asks for a human in a conversation that already has an escalation still waiting in
    the queue: open in the local queue, or pending for Jira with no ticket made and no worker on it
    (the assistant escalated on its own a moment ago, or the user clicked twice). That escalation
    becomes the user's request, so agents see one escalation, not two: the latest question,
    transcript and draft, the reasons of both, the user's contact when they gave one. None when
    there is nothing waiting: a new escalation is opened (for Jira, a comment on the conversation's
    ticket, "The user escalated again")."""
    e = db.escalations.c
    now = utcnow()
    # No delivery step recorded (a ticket's key is stored with its step) and no create sent.
    waiting = sa.and_(e.conversation_id == request.conversation_id, e.status.in_(("open", "pending")),
                      e.delivery_step.is_(None), e.create_sent_at.is_(None), e.resolved_at.is_(None),
                      lease_free(e.claimed_until, now))
    keep_contact = request.contact_email is None  # the user gave none now: the one on record stays
    values = {k: v for k, v in request.__dict__.items()
              if k != "reasons" and not (keep_contact and k in ("contact_email", "notify", "contact_verified"))
              and not (k == "message_id" and v is None)}
    try:
        with engine.begin() as conn:
            row = conn.execute(sa.select(e.id, e.status, e.reasons).where(waiting)
                               .order_by(e.created_at.desc()).limit(1)).first()
            if row is None:
                return None
            reasons = list(dict.fromkeys([*request.reasons, *(row.reasons or [])]))
            # The same conditions again: a worker that claimed the row in between keeps it, and this
            # request becomes an escalation of its own.
            done = conn.execute(db.escalations.update().where(e.id == row.id, waiting)
                                .values(**values, reasons=reasons, updated_at=now))
    except sa.exc.SQLAlchemyError as exc:
        raise EscalationError(f"Could not record the escalation: {exc.__class__.__name__}") from exc
    return TicketRef(id=row.id, status=row.status) if done.rowcount else None


def list_escalations(engine: Engine, limit: int = 100, status: str | None = None) -> list[EscalationRecord]:
    q = sa.select(db.escalations).order_by(db.escalations.c.created_at.desc()).limit(limit)
    if status:
        q = q.where(db.escalations.c.status == status)
    with engine.connect() as conn:
        return [EscalationRecord.from_row(row._mapping) for row in conn.execute(q)]


def count_escalations(engine: Engine, status: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(db.escalations.c.status == status)).scalar_one())


def get_escalation(engine: Engine, escalation_id: str) -> EscalationRecord | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.escalations).where(db.escalations.c.id == escalation_id)).first()
    return EscalationRecord.from_row(row._mapping) if row else None


def set_contact(engine: Engine, escalation_id: str, contact_email: str | None, notify: bool,
                verified: bool = False) -> bool:
    """Store whom to tell of the answer; True when that changed anything. A delivery not yet made (or
    retried) reads it from the row; a ticket already made is owed a note (`contact_version` moves past
    `contact_noted`, which the delivery records when it writes the contact into the ticket). Setting the
    same contact again changes nothing, so a widget that sends it twice does not post two notes."""
    e = db.escalations.c
    with engine.begin() as conn:
        changed = conn.execute(db.escalations.update().where(
            e.id == escalation_id,
            sa.or_(e.contact_email.is_distinct_from(contact_email), e.notify != notify,
                   e.contact_verified != verified),
        ).values(contact_email=contact_email, notify=notify, contact_verified=verified,
                 contact_version=e.contact_version + 1, updated_at=utcnow()))
    return bool(changed.rowcount)
