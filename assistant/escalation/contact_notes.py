"""Contact changes on a ticket already made: the agent sees the customer's latest choice.

The widget may escalate before the customer says where to be told of the answer (an unsure answer
escalates at once; "e-mail me" comes after). The ticket then says "has not asked to be e-mailed", and
agents act on that line. So a change of contact or consent after the ticket was written (see
`queue.set_contact`) owes the ticket one internal note with the latest choice, delivered from the
escalations table like the ticket itself:

- due: a delivered escalation whose `contact_version` is past `contact_noted` (the version the ticket
  shows); a change while delivery is still pending needs no note, the ticket is made with it;
- claimed with the row's delivery lease columns (a delivered row's delivery never claims it again), so
  two workers never post the same note;
- checked first: a note Jira made but whose answer was lost carries our marker line with the version,
  so the retry finds it and does not post it again;
- the latest wins: a note reads the row when it is claimed, so two changes before it goes out make one
  note, and a change while it is in flight makes one more;
- transient failures (Jira down) retry after RETRY; a ticket Jira refuses to comment on (deleted, no
  permission) is given up on, with the reason in last_error for staff."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.escalation.jira_client import JiraCallFailed, JiraClient
from assistant.escalation.queue import EscalationRecord, get_escalation
from assistant.store import lease_free, utcnow

log = logging.getLogger("answerdesk.escalations")
RETRY = timedelta(minutes=1)


def note_marker(escalation_id: str, version: int) -> str:
    """The note's last line: how a retry recognises a note an earlier attempt posted."""
    return f"answerdesk contact update: {escalation_id} #{version}"


def note_text(row: EscalationRecord) -> str:
    if row.contact_email and row.notify:
        choice = f"The customer asked to be e-mailed the answer at {row.contact_email}."
    elif row.contact_email:
        choice = f"Contact: {row.contact_email} (the customer has not asked to be e-mailed the answer)."
    else:
        choice = "The customer removed their contact address: do not e-mail them."
    return "\n".join([choice, "This replaces the contact given earlier on this ticket.",
                      note_marker(row.id, row.contact_version)])


class ContactNotes:
    """Posts the owed contact notes; JiraQueue runs `post_pending` each worker pass."""

    def __init__(self, engine: Engine, client_factory: Callable[[], JiraClient], lease: timedelta) -> None:
        self.engine, self.client_factory, self.lease = engine, client_factory, lease

    def post_pending(self, limit: int = 20, force: bool = False) -> int:
        """Every owed note whose retry time has come (`force`: retry times ignored)."""
        e = db.escalations.c
        now = utcnow()
        q = sa.select(e.id).where(self._owed(now)).order_by(e.updated_at).limit(limit)
        if not force:
            q = q.where(sa.or_(e.next_attempt_at.is_(None), e.next_attempt_at <= now))
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        return sum(self.post(i) for i in ids)

    def post(self, escalation_id: str) -> bool:
        """Post the note this escalation owes, if it owes one and nobody else is posting it."""
        token = self._claim(escalation_id)
        if token is None:
            return False
        row = get_escalation(self.engine, escalation_id)
        assert row is not None and row.ticket_key is not None  # claimed: delivered, with its ticket
        try:
            client = self.client_factory()
            if not client.has_comment(row.ticket_key, note_marker(row.id, row.contact_version)):
                client.comment(row.ticket_key, note_text(row), internal=True)
        except EscalationError as exc:
            if isinstance(exc, JiraCallFailed) and exc.permanent:
                log.error("contact note for escalation %s not posted, Jira refused it: %s", row.id, exc)
                self._release(token, row.id, contact_noted=row.contact_version,
                              last_error=f"contact note not posted (Jira refused it): {exc}"[:2000])
            else:
                log.warning("contact note for escalation %s not posted yet: %s", row.id, exc)
                self._release(token, row.id, next_attempt_at=utcnow() + RETRY,
                              last_error=f"contact note not posted yet: {exc}"[:2000])
            return False
        self._release(token, row.id, contact_noted=row.contact_version, last_error=None)
        log.info("contact note posted on %s", row.ticket_key)
        return True

    def _owed(self, now: datetime) -> sa.ColumnElement[bool]:
        e = db.escalations.c
        return sa.and_(e.status == "delivered", e.ticket_key.is_not(None), e.contact_version > e.contact_noted,
                       lease_free(e.claimed_until, now))

    def _claim(self, escalation_id: str) -> str | None:
        now, token = utcnow(), str(uuid.uuid4())
        with self.engine.begin() as conn:
            claimed = conn.execute(db.escalations.update().where(
                db.escalations.c.id == escalation_id, self._owed(now),
            ).values(claimed_until=now + self.lease, claimed_by=token))
        return token if claimed.rowcount else None

    def _release(self, token: str, escalation_id: str, **values: object) -> None:
        e = db.escalations.c
        with self.engine.begin() as conn:
            conn.execute(db.escalations.update().where(e.id == escalation_id, e.claimed_by == token)
                         .values(claimed_until=None, claimed_by=None, **values))
