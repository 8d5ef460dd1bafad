"""The Jira TicketQueue: escalations become Jira issues (or JSM customer requests), never lost,
never duplicated, never silently stuck.

The escalation is stored first (the outbox) and delivered after, by the worker in the API process
(woken at once when an escalation is opened) or, outside the API, right away. A delivery claims its
row with a lease sized from the Jira timeout (a worst-case delivery fits in it) and every step is
recorded as it happens, renewing the lease and checking it is still ours:

1. search Jira for the escalation's own label, so a retry after a lost response adopts the ticket it
   already made; after a create whose outcome is unknown (timeout, dropped connection) no second
   create is sent until Jira's search, which lags behind, has had `settle` seconds to show it;
2. create the ticket (or pick the conversation's earlier ticket) and store its key at once;
3. post the context as an internal comment where the ticket does not carry it (JSM requests, a
   conversation escalating again), checking first whether an earlier attempt already posted it;
4. record the Jira status: delivered.

Transient failures (5xx, 429, timeouts, connection errors) retry with backoff. A 4xx that retrying
cannot fix (Jira refused the request itself) marks the escalation `failed` with Jira's reason, for an
admin to fix and retry (`answerdesk escalations retry REF [--summary ...]`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.escalation.assist_posts import AssistPoster
from assistant.escalation.contact_notes import ContactNotes
from assistant.escalation.jira_client import JiraCallFailed, JiraClient, summary_line
from assistant.escalation.queue import EscalationRecord, EscalationRequest, LocalQueue, TicketRef, get_escalation
from assistant.escalation.routing import Route, Router
from assistant.store import lease_free, utcnow

log = logging.getLogger("answerdesk.escalations")
MAX_BACKOFF = timedelta(minutes=30)
CALLS_PER_DELIVERY = 6  # search, create, read comments, comment, status, and one spare
MIN_LEASE = timedelta(seconds=60)


def idempotency_label(escalation_id: str) -> str:
    return f"answerdesk-{escalation_id[:8]}{escalation_id[-4:]}"


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** max(0, attempts - 1)))


def lease_for(timeout: float) -> timedelta:
    """Long enough for a delivery whose every call takes the whole timeout."""
    return max(MIN_LEASE, timedelta(seconds=CALLS_PER_DELIVERY * timeout + 30))


def marker(escalation_id: str) -> str:
    """The last line of every body we post: how a retry recognises its own comment."""
    return f"answerdesk escalation: {escalation_id}"


def describe(row: EscalationRecord, conversation_url: str | None) -> str:
    """The ticket body: everything an agent needs without opening answerdesk."""
    why = "asked for a human" if row.requested_by_user else "the assistant was not sure"
    lines = [f"A user asked answerdesk and {why}.", "", f"Question: {row.question}", ""]
    who = ", ".join(f"{k}: {v}" for k, v in (("role", row.role), ("tier", row.tier), ("org", row.org)) if v)
    if who:
        lines += [f"Asked by: {who}", ""]
    if row.contact_email:
        wants = "wants to be told of the answer by e-mail" if row.notify else "has not asked to be e-mailed"
        lines += [f"Contact: {row.contact_email} ({wants})", ""]
    lines += ["Conversation:"] + [f"  {t['role']}: {t['content']}" for t in row.transcript] + [""]
    lines += ["Draft answer:", row.draft_answer or "(none)", ""]
    if row.sources:
        lines += ["Sources:"] + [f"  [{s.get('n')}] {s.get('title')} - {s.get('url')}" for s in row.sources] + [""]
    confidence = row.confidence
    lines += [f"Confidence: {confidence:.2f}" if confidence is not None else "Confidence: n/a",
              f"Why: {', '.join(row.reasons) or 'user request'}"]
    if conversation_url:
        lines.append(f"Conversation: {conversation_url}")
    lines.append(marker(row.id))
    return "\n".join(lines)


def _ticket(row: EscalationRecord) -> str:
    """The ticket key, which step 2 stored before any later step runs."""
    assert row.ticket_key is not None, row.id
    return row.ticket_key


def _named(routing: dict[str, Any] | None, assignee: str | None) -> dict[str, Any] | None:
    """The route with Jira's display name for the assignee it set, when its rule gave none: the staff page
    shows a name, not an accountId."""
    if not routing or not routing.get("assignee") or routing.get("assignee_name") or not assignee:
        return routing
    return {**routing, "assignee_name": assignee}


class LostLease(Exception):
    """Another worker took the row over (our lease ran out): stop without touching Jira again."""


class Waiting(Exception):
    """Not an error: the next step has to wait (for Jira's search to catch up)."""

    def __init__(self, reason: str, until: Any) -> None:
        super().__init__(reason)
        self.until = until


class JiraQueue:
    """The TicketQueue for ANSWERDESK_ESCALATION=jira: the local table as outbox, delivered to Jira."""

    delivers = True

    def __init__(self, engine: Engine, client_factory: Callable[[], JiraClient], project: str,
                 conversation_url: str | None = None, deliver_now: bool = True, timeout: float = 20,
                 settle: float = 120, status_refresh: float = 300, router: Router | None = None) -> None:
        self.engine = engine
        self.router = router or Router([])
        # Agent assist on each new ticket, once delivered; set by the composition root (it needs the
        # model). Its failures are its own to record and retry: they never fail a delivery.
        self.assist: AssistPoster | None = None
        self.client_factory = client_factory
        self.project = project
        self.conversation_url = conversation_url
        self.deliver_now = deliver_now
        self.lease = lease_for(timeout)
        self.settle = timedelta(seconds=settle)  # how long Jira's search may lag behind a create
        self.status_refresh = timedelta(seconds=status_refresh)
        self.wake = threading.Event()  # set when an escalation waits for the background worker
        self._local = LocalQueue(engine, status="pending")
        self.notes = ContactNotes(engine, client_factory, self.lease)  # contact changes after the ticket

    # -- the seam --------------------------------------------------------------------------------
    def open(self, request: EscalationRequest) -> TicketRef:
        ref = self._local.open(request)  # stored before Jira is called (due at once): nothing is lost
        if not self.deliver_now:
            self.wake.set()
            return TicketRef(ref.id, "pending", None, None)  # just recorded: nothing to read back
        self.deliver(ref.id)
        row = get_escalation(self.engine, ref.id)
        assert row is not None  # stored above; rows are never deleted
        return TicketRef(ref.id, row.status, row.ticket_key, row.ticket_url)

    def contact_changed(self, escalation_id: str) -> None:
        """The contact changed (queue.set_contact): a ticket already made gets a note, now or by the worker."""
        if self.deliver_now:
            self.notes.post(escalation_id)
        else:
            self.wake.set()

    def in_background(self) -> threading.Event:
        """From now on `open` only records and wakes the worker, which waits on the returned event: a
        request never waits for Jira."""
        self.deliver_now = False
        return self.wake

    # -- delivery --------------------------------------------------------------------------------
    def deliver_pending(self, limit: int = 50, force: bool = False) -> dict[str, int]:
        """What the worker runs: every due pending escalation, oldest first."""
        ids = self.due(limit, force)
        done = sum(self.deliver(i) for i in ids)
        self.notes.post_pending(force=force)
        if self.assist is not None:
            self.assist.post_pending()  # posts that failed, or were cut short by a restart
        return {"due": len(ids), "delivered": done}

    def due(self, limit: int = 50, force: bool = False) -> list[str]:
        """Pending escalations due for an attempt (`force`: retry times ignored), oldest first; those another
        worker holds are left out (its lease tells)."""
        e = db.escalations.c
        now = utcnow()
        q = (sa.select(e.id).where(e.status == "pending", lease_free(e.claimed_until, now))
             .order_by(e.created_at).limit(limit))
        if not force:
            q = q.where(sa.or_(e.next_attempt_at.is_(None), e.next_attempt_at <= now))
        with self.engine.connect() as conn:
            return [str(i) for i in conn.execute(q).scalars()]

    def deliver(self, escalation_id: str) -> bool:
        token = self._claim(escalation_id)
        if token is None:
            return False  # delivered or failed already, or another worker holds it
        row = get_escalation(self.engine, escalation_id)
        assert row is not None
        try:
            client = self.client_factory()
            fresh = row.ticket_key is None
            if fresh:
                self._open_ticket(client, row, token)
            if row.delivery_step == "created_jsm" and self._route(row).assigns:
                client.route_issue(_ticket(row), self._route(row))  # the same values again on a retry: harmless
            if row.delivery_step in ("created_jsm", "reescalated"):
                self._post_context(client, row, token, check_first=not fresh or row.attempts > 1)
            key = _ticket(row)
            status, assignee = client.state(key)
        except LostLease:
            log.warning("escalation %s: another worker took it over", escalation_id)
            return False
        except Waiting as wait:
            self._reschedule(row, token, str(wait), wait.until)
            return False
        except EscalationError as exc:
            self._failed(row, token, exc)
            return False
        self._record(token, row, status="delivered", ticket_url=client.browse_url(key),
                     jira_status=status, status_checked_at=utcnow(), delivered_at=utcnow(), delivery_step=None,
                     claimed_until=None, claimed_by=None, last_error=None, routing=_named(row.routing, assignee))
        log.info("escalation %s delivered as %s", escalation_id, key)
        if self.assist is not None and row.routing is not None:  # a ticket this escalation made, not a re-escalation
            self.assist.post(key)
        return True

    def _open_ticket(self, client: JiraClient, row: EscalationRecord, token: str) -> None:
        """Step 2 (and 1): find or make the ticket, and store its key before anything else happens."""
        key = client.find_by_label(idempotency_label(row.id))
        if key is not None:  # made by an earlier attempt whose answer was lost
            self._record(token, row, ticket_key=key, create_sent_at=None, routing=self._route(row).model_dump(),
                         delivery_step="created_jsm" if client.jsm else "created")
            return
        key = self._ticket_of_conversation(row)
        if key is not None:
            self._record(token, row, ticket_key=key, delivery_step="reescalated")
            return
        sent = row.create_sent_at
        if sent is not None and utcnow() < sent + self.settle:
            raise Waiting("an earlier create got no answer; waiting for Jira's search to show its ticket "
                          "before creating another", sent + self.settle)
        route = self._route(row)
        self._record(token, row, create_sent_at=utcnow(), routing=route.model_dump(),  # recorded before it goes out
                     contact_noted=row.contact_version)  # the contact this ticket is made with
        labels = ["answerdesk", idempotency_label(row.id)] + list(row.labels or [])
        try:
            key = client.create(self.project, summary_line(row.summary or row.question),
                                describe(row, self._conv_url(row)), sorted(set(labels)), row.priority,
                                row.contact_email if row.notify else None, route,
                                on_behalf=row.contact_verified)
        except JiraCallFailed as exc:
            if not exc.maybe_sent:  # it never reached Jira: nothing to wait for
                self._record(token, row, create_sent_at=None)
            raise
        self._record(token, row, ticket_key=key, create_sent_at=None,
                     delivery_step="created_jsm" if client.jsm else "created")

    def _route(self, row: EscalationRecord) -> Route:
        """The route chosen when the ticket was first attempted (rules may change between retries: one
        ticket keeps one route), else the rules applied now."""
        if row.routing is not None:
            return Route.model_validate(row.routing)
        return self.router.route(row.role, row.tier, row.org, row.sources)

    def _post_context(self, client: JiraClient, row: EscalationRecord, token: str, check_first: bool) -> None:
        """Step 3: the context as an internal comment, once."""
        key = _ticket(row)
        if not (check_first and client.has_comment(key, marker(row.id))):
            text = describe(row, self._conv_url(row))
            if row.delivery_step == "reescalated":
                text = "The user escalated again.\n\n" + text
            client.comment(key, text, internal=True)
            self._record(token, row, delivery_step="commented", contact_noted=row.contact_version)
        else:
            self._record(token, row, delivery_step="commented")

    def _claim(self, escalation_id: str) -> str | None:
        e = db.escalations.c
        now, token = utcnow(), str(uuid.uuid4())
        with self.engine.begin() as conn:
            claimed = conn.execute(db.escalations.update().where(
                e.id == escalation_id, e.status == "pending",
                lease_free(e.claimed_until, now),
            ).values(claimed_until=now + self.lease, claimed_by=token, attempts=e.attempts + 1))
        return token if claimed.rowcount else None

    def _record(self, token: str, row: EscalationRecord, **values: Any) -> None:
        """Store a step's outcome and renew the lease, if the row is still ours."""
        e = db.escalations.c
        now = utcnow()
        values.setdefault("claimed_until", now + self.lease)
        with self.engine.begin() as conn:
            done = conn.execute(db.escalations.update().where(e.id == row.id, e.claimed_by == token)
                                .values(**values, updated_at=now))
        if not done.rowcount:
            raise LostLease(row.id)
        for name, value in values.items():
            setattr(row, name, value)

    def _reschedule(self, row: EscalationRecord, token: str, reason: str, when: Any) -> None:
        with contextlib.suppress(LostLease):  # the new holder records its own outcome
            self._record(token, row, claimed_until=None, claimed_by=None, last_error=reason, next_attempt_at=when)

    def _failed(self, row: EscalationRecord, token: str, exc: EscalationError) -> None:
        error = str(exc)[:2000]
        if isinstance(exc, JiraCallFailed) and exc.permanent:
            log.error("escalation %s failed, Jira refused it (fix, then `answerdesk escalations retry %s`): %s",
                      row.id, row.id[:8], error)
            with contextlib.suppress(LostLease):
                self._record(token, row, status="failed", claimed_until=None, claimed_by=None, last_error=error,
                             next_attempt_at=None)
            return
        attempts = int(row.attempts)
        log.warning("escalation %s not delivered (attempt %d): %s", row.id, attempts, error)
        self._reschedule(row, token, error, utcnow() + backoff(attempts))

    # -- what admins and the worker do besides delivering ---------------------------------------
    def retry(self, ref: str, summary: str | None = None) -> EscalationRecord:
        """Put a failed (or waiting) escalation back in the outbox, optionally with a summary an admin
        wrote, and deliver it now. `ref` is the id or a prefix of it (as `escalations list` shows)."""
        e = db.escalations.c
        with self.engine.connect() as conn:
            ids = list(conn.execute(sa.select(e.id).where(e.id.startswith(ref.strip(), autoescape=True))
                                    .limit(2)).scalars())
        if len(ids) != 1:
            raise EscalationError(f"No escalation {ref}" if not ids else f"{ref} matches several escalations: "
                                  "give more of the id")
        values: dict[str, Any] = {"status": "pending", "next_attempt_at": None, "updated_at": utcnow()}
        if summary is not None:
            values["summary"] = summary_line(summary)
        with self.engine.begin() as conn:
            changed = conn.execute(db.escalations.update().where(e.id == ids[0], e.status.in_(("failed", "pending")))
                                   .values(**values))
        if not changed.rowcount:
            raise EscalationError(f"Escalation {ref} is delivered already: nothing to retry")
        self.deliver(ids[0])
        row = get_escalation(self.engine, ids[0])
        assert row is not None  # rows are never deleted
        return row

    def refresh_statuses(self, limit: int = 20) -> int:
        """The worker keeps delivered tickets' Jira status fresh (oldest check first, a few per pass), so
        reading an escalation never calls Jira."""
        e = db.escalations.c
        now = utcnow()
        q = (sa.select(e.id, e.ticket_key).where(
            e.status == "delivered", e.ticket_key.is_not(None), e.delivered_at > now - timedelta(days=30),
            sa.or_(e.status_checked_at.is_(None), e.status_checked_at < now - self.status_refresh))
            .order_by(e.status_checked_at.is_not(None), e.status_checked_at).limit(limit))
        with self.engine.connect() as conn:
            due = list(conn.execute(q))
        if not due:
            return 0
        client = self.client_factory()
        done = 0
        for escalation_id, key in due:
            values: dict[str, Any] = {"status_checked_at": utcnow()}  # failed or not: next time in its turn
            try:
                values["jira_status"] = client.status(key)
                done += 1
            except EscalationError as exc:  # shown with its last known status; a ticket Jira no longer
                log.warning("status of %s not refreshed: %s", key, exc)  # has must not crowd out the rest
            with self.engine.begin() as conn:
                conn.execute(db.escalations.update().where(e.id == escalation_id).values(**values))
        return done

    def _ticket_of_conversation(self, row: EscalationRecord) -> str | None:
        e = db.escalations.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(e.ticket_key).where(  # type: ignore[no-any-return]
                e.conversation_id == row.conversation_id, e.status == "delivered", e.ticket_key.is_not(None),
                e.id != row.id).order_by(e.delivered_at).limit(1)).scalar_one_or_none()

    def _conv_url(self, row: EscalationRecord) -> str | None:
        return f"{self.conversation_url.rstrip('/')}/{row.conversation_id}" if self.conversation_url else None
