"""The Jira TicketQueue: escalations become Jira issues (or JSM customer requests), never lost,
never duplicated.

The escalation is stored first (the outbox) and delivered after: immediately when Jira answers,
later by the worker (with backoff) when it does not. A delivery claims its row with a lease, so two
workers never deliver the same escalation at once; before creating anything it searches Jira for
the escalation's own label, so a retry after a lost response adopts the ticket it already made
instead of opening a second. A conversation that escalates again gets a comment on its ticket."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.escalation import EscalationRequest, LocalQueue, TicketRef, get_escalation
from assistant.jira_client import JiraClient
from assistant.store import utcnow

log = logging.getLogger("answerdesk.escalations")
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=30)


def idempotency_label(escalation_id: str) -> str:
    return f"answerdesk-{escalation_id[:8]}{escalation_id[-4:]}"


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** max(0, attempts - 1)))


def describe(row: dict[str, Any], conversation_url: str | None) -> str:
    """The ticket body: everything an agent needs without opening answerdesk."""
    why = "asked for a human" if row["requested_by_user"] else "the assistant was not sure"
    lines = [f"A user asked answerdesk and {why}.", "", f"Question: {row['question']}", ""]
    who = ", ".join(f"{k}: {row[k]}" for k in ("role", "tier", "org") if row.get(k))
    if who:
        lines += [f"Asked by: {who}", ""]
    lines += ["Conversation:"] + [f"  {t['role']}: {t['content']}" for t in row["transcript"]] + [""]
    lines += ["Draft answer:", row["draft_answer"] or "(none)", ""]
    if row["sources"]:
        lines += ["Sources:"] + [f"  [{s.get('n')}] {s.get('title')} - {s.get('url')}" for s in row["sources"]] + [""]
    confidence = row.get("confidence")
    lines += [f"Confidence: {confidence:.2f}" if confidence is not None else "Confidence: n/a",
              f"Why: {', '.join(row['reasons']) or 'user request'}"]
    if conversation_url:
        lines.append(f"Conversation: {conversation_url}")
    lines.append(f"answerdesk escalation: {row['id']}")
    return "\n".join(lines)


class JiraQueue:
    def __init__(self, engine: Engine, client_factory: Callable[[], JiraClient], project: str,
                 conversation_url: str | None = None, deliver_now: bool = True) -> None:
        self.engine = engine
        self.client_factory = client_factory
        self.project = project
        self.conversation_url = conversation_url
        self.deliver_now = deliver_now
        self._local = LocalQueue(engine, status="pending")

    # -- the seam --------------------------------------------------------------------------------
    def open(self, request: EscalationRequest) -> TicketRef:
        ref = self._local.open(request)  # stored before Jira is called (due at once): nothing is lost
        if self.deliver_now:
            self.deliver(ref.id)
        row = get_escalation(self.engine, ref.id) or {}
        return TicketRef(ref.id, row.get("status", "pending"), row.get("ticket_key"), row.get("ticket_url"))

    # -- delivery --------------------------------------------------------------------------------
    def deliver_pending(self, limit: int = 50, force: bool = False) -> dict[str, int]:
        """What the worker runs: every due pending escalation, oldest first."""
        e = db.escalations.c
        q = sa.select(e.id).where(e.status == "pending").order_by(e.created_at).limit(limit)
        if not force:
            q = q.where(sa.or_(e.next_attempt_at.is_(None), e.next_attempt_at <= utcnow()))
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        done = sum(self.deliver(i) for i in ids)
        return {"due": len(ids), "delivered": done}

    def deliver(self, escalation_id: str) -> bool:
        if not self._claim(escalation_id):
            return False  # delivered already, or another worker holds it
        row = get_escalation(self.engine, escalation_id)
        assert row is not None
        try:
            client = self.client_factory()
            key = client.find_by_label(idempotency_label(escalation_id))
            if key is None:
                key = self._ticket_of_conversation(row)
                if key is not None:
                    client.comment(key, "The user escalated again.\n\n" + describe(row, self._conv_url(row)),
                                   internal=True)
                else:
                    labels = ["answerdesk", idempotency_label(escalation_id)] + list(row.get("labels") or [])
                    key = client.create(self.project, row["question"][:250], describe(row, self._conv_url(row)),
                                        sorted(set(labels)), row.get("priority"))
            status = client.status(key)
        except EscalationError as exc:
            self._failed(row, str(exc))
            return False
        with self.engine.begin() as conn:
            conn.execute(db.escalations.update().where(db.escalations.c.id == escalation_id).values(
                status="delivered", ticket_key=key, ticket_url=client.browse_url(key), jira_status=status,
                delivered_at=utcnow(), claimed_until=None, last_error=None, updated_at=utcnow()))
        log.info("escalation %s delivered as %s", escalation_id, key)
        return True

    def refresh_status(self, escalation_id: str) -> dict[str, Any] | None:
        row = get_escalation(self.engine, escalation_id)
        if row is None or not row.get("ticket_key"):
            return row
        try:
            status = self.client_factory().status(row["ticket_key"])
        except EscalationError:
            return row  # Jira down: show the last known status
        with self.engine.begin() as conn:
            conn.execute(db.escalations.update().where(db.escalations.c.id == escalation_id)
                         .values(jira_status=status))
        row["jira_status"] = status
        return row

    def _claim(self, escalation_id: str) -> bool:
        e = db.escalations.c
        now = utcnow()
        with self.engine.begin() as conn:
            claimed = conn.execute(db.escalations.update().where(
                e.id == escalation_id, e.status == "pending",
                sa.or_(e.claimed_until.is_(None), e.claimed_until < now),
            ).values(claimed_until=now + LEASE, attempts=e.attempts + 1))
        return bool(claimed.rowcount)

    def _failed(self, row: dict[str, Any], error: str) -> None:
        attempts = int(row["attempts"])
        log.warning("escalation %s not delivered (attempt %d): %s", row["id"], attempts, error)
        with self.engine.begin() as conn:
            conn.execute(db.escalations.update().where(db.escalations.c.id == row["id"]).values(
                claimed_until=None, last_error=error[:2000], next_attempt_at=utcnow() + backoff(attempts),
                updated_at=utcnow()))

    def _ticket_of_conversation(self, row: dict[str, Any]) -> str | None:
        e = db.escalations.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(e.ticket_key).where(  # type: ignore[no-any-return]
                e.conversation_id == row["conversation_id"], e.status == "delivered", e.ticket_key.is_not(None),
                e.id != row["id"]).order_by(e.delivered_at).limit(1)).scalar_one_or_none()

    def _conv_url(self, row: dict[str, Any]) -> str | None:
        return f"{self.conversation_url.rstrip('/')}/{row['conversation_id']}" if self.conversation_url else None
