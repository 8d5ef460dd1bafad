"""The reply outbox: Jira's events become one row per channel, then each row is delivered exactly once.

Recording is idempotent: a row's `key` (ticket, kind, comment id or resolution date, channel) is unique, so
the same comment or resolution seen again (a replayed webhook, Jira's retry, the poll after the webhook)
adds nothing, while a ticket resolved again after a reopen asks again (one rating request per resolution:
the first did not solve it; the latest answer is the one kept). Delivery claims
a row with a lease (two workers never send one reply), retries transient failures with backoff, and
marks a row `failed` after a permanent failure or `reply_max_attempts` (logged with the reason); every
row stands alone, so a failing channel never holds up the others."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.escalation.queue import EscalationRecord, get_escalation
from assistant.replies.account import BotAccount
from assistant.replies.channels import Channel, Reply, SendFailed
from assistant.replies.events import TicketEvent
from assistant.replies.ratings import RatingTokens
from assistant.store import lease_free, utcnow

log = logging.getLogger("answerdesk.replies")
MIN_LEASE = timedelta(seconds=120)
# The longest a send can take: an SMTP conversation is up to ~10 blocking steps (connect, EHLO, STARTTLS,
# EHLO, AUTH, MAIL, RCPT, DATA, body, QUIT), each allowed ANSWERDESK_SMTP_TIMEOUT; a Slack post is up to 6
# tries of 15 s (assistant/slack/client.py) plus Retry-After waits.
SMTP_STEPS = 10
SLACK_WORST = timedelta(seconds=6 * 15 + 60)


def lease_for(smtp_timeout: float) -> timedelta:
    """A claim outlasts the slowest send, so no second worker takes a row over while it is being sent."""
    return max(MIN_LEASE, timedelta(seconds=SMTP_STEPS * smtp_timeout), SLACK_WORST) + timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=30)
KEEP_DELIVERIES = 2  # webhook delivery ids are kept this many max ages: a replay is refused by age or by id


class ReplyOutbox:
    def __init__(self, engine: Engine, channels: dict[str, Channel], tokens: RatingTokens,
                 public_url: str | None = None, max_attempts: int = 8, retry_base: float = 5.0,
                 lease: timedelta = MIN_LEASE, bot: BotAccount | None = None) -> None:
        self.engine, self.channels, self.tokens, self.lease = engine, channels, tokens, lease
        self.bot = bot or BotAccount(None, None)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_attempts, self.retry_base = max_attempts, retry_base
        self.wake = threading.Event()  # set when rows were recorded: the worker delivers at once

    # -- recording ---------------------------------------------------------------------------------
    def first_delivery(self, delivery_id: str, max_age: float) -> bool:
        """True the first time a webhook delivery id is seen; False for a replay. Old ids are forgotten
        after KEEP_DELIVERIES max ages (older deliveries are refused by their timestamp anyway)."""
        now = utcnow()
        d = db.jira_deliveries.c
        try:
            with self.engine.begin() as conn:
                conn.execute(db.jira_deliveries.delete().where(
                    d.received_at < now - timedelta(seconds=max_age * KEEP_DELIVERIES)))
                conn.execute(db.jira_deliveries.insert(), {"key": delivery_id[:300], "received_at": now})
        except sa.exc.IntegrityError:
            return False
        return True

    def forget_delivery(self, delivery_id: str) -> None:
        """Undo `first_delivery` when recording failed, so Jira's retry of it is not taken for a replay."""
        with self.engine.begin() as conn:
            conn.execute(db.jira_deliveries.delete().where(db.jira_deliveries.c.key == delivery_id[:300]))

    def record(self, events: Iterable[TicketEvent]) -> int:
        """Queue each event for every channel of the escalation whose ticket it is about; events on
        tickets answerdesk did not create are ignored. Returns how many replies were new."""
        added = 0
        for event in events:
            escalations = self._escalations(event.ticket_key)
            if not escalations:
                continue
            first = escalations[0]  # the conversation's (later escalations of it reuse this ticket)
            asker = {e.contact_email.lower() for e in escalations if e.contact_email}
            if event.kind == "comment" and event.author_ids & asker:
                continue  # the asker's own comment (e.g. by e-mail to Jira) is not an answer to them
            if event.kind == "resolved" and self._told_undated(event):
                continue
            self._timeline(event)
            if event.kind == "reopened":
                continue  # Jira's business: the asker hears of the next answer or resolution
            targets: list[tuple[str, EscalationRecord]] = [("widget", first)]
            if "slack" in self.channels and self._in_slack(first.conversation_id):
                targets.append(("slack", first))
            contact = next((e for e in reversed(escalations) if e.notify and e.contact_email), None)
            if contact is not None:
                if "email" in self.channels:
                    targets.append(("email", contact))
                else:
                    log.warning("%s: the asker wants e-mail but ANSWERDESK_SMTP_HOST is not set", event.ticket_key)
            for channel, escalation in targets:
                added += self._add(event, channel, escalation)
        if added:
            self.wake.set()
        return added

    def _timeline(self, event: TicketEvent) -> None:
        """The escalation's first human answer and resolution times, which analytics reads, as Jira dates
        them: the earliest public answer, and the latest resolution (a reopened ticket's last one counts).
        A replayed or late event moves neither the wrong way."""
        e = db.escalations.c
        at = event.at or utcnow()
        if event.kind == "comment":
            column, better = e.first_response_at, e.first_response_at > at
        elif event.kind == "resolved":
            column, better = e.resolved_at, e.resolved_at < at
        elif event.kind == "reopened":  # resolved before this: not resolved any more
            with self.engine.begin() as conn:
                conn.execute(db.escalations.update().where(e.ticket_key == event.ticket_key, e.resolved_at < at)
                             .values(resolved_at=None))
            return
        else:
            return
        with self.engine.begin() as conn:
            conn.execute(db.escalations.update().where(e.ticket_key == event.ticket_key,
                                                       sa.or_(column.is_(None), better))
                         .values({column.name: at}))

    def _add(self, event: TicketEvent, channel: str, escalation: EscalationRecord) -> int:
        now = utcnow()
        row = {"id": str(uuid.uuid4()), "key": f"{event.ticket_key}:{event.kind}:{event.ref}:{channel}"[:300],
               "escalation_id": escalation.id, "ticket_key": event.ticket_key, "kind": event.kind,
               "body": event.body, "author": (event.author or "")[:200] or None, "channel": channel,
               "state": "pending", "attempts": 0, "next_attempt_at": now, "event_at": event.at, "created_at": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(db.replies.insert(), row)
        except sa.exc.IntegrityError:
            return 0  # recorded before: nothing is sent twice
        return 1

    def _told_undated(self, event: TicketEvent) -> bool:
        """A dated resolution the asker was already told of under the undated ref (how resolutions were
        recorded before they carried Jira's resolutiondate, and still are when Jira gives none): told
        after Jira resolved it, so it is this resolution. A later one (the ticket reopened) still goes."""
        if event.ref == "resolved" or event.at is None:
            return False
        r = db.replies.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(r.id).where(
                r.ticket_key == event.ticket_key, r.key.like(f"{event.ticket_key}:resolved:resolved:%"),
                r.created_at >= event.at).limit(1)).first() is not None

    def _escalations(self, ticket_key: str) -> list[EscalationRecord]:
        e = db.escalations.c
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(db.escalations).where(e.ticket_key == ticket_key)
                                     .order_by(e.created_at)))
        return [EscalationRecord.from_row(r._mapping) for r in rows]

    def _in_slack(self, conversation_id: str) -> bool:
        t = db.slack_threads.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.thread_ts).where(t.conversation_id == conversation_id)
                                .limit(1)).first() is not None

    # -- delivery ----------------------------------------------------------------------------------
    def deliver_pending(self, limit: int = 100) -> dict[str, int]:
        r = db.replies.c
        now = utcnow()
        q = (sa.select(r.id).where(r.state == "pending", sa.or_(r.next_attempt_at.is_(None), r.next_attempt_at <= now),
                                   lease_free(r.claimed_until, now))
             .order_by(r.created_at).limit(limit))
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        done = sum(self.deliver(i) for i in ids)
        return {"due": len(ids), "delivered": done}

    def deliver(self, reply_id: str) -> bool:
        token = self._claim(reply_id)
        if token is None:
            return False
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.replies).where(db.replies.c.id == reply_id)).one()
        reply = Reply.from_row(row)
        escalation = get_escalation(self.engine, reply.escalation_id)
        channel = self.channels.get(reply.channel)
        try:
            if escalation is None or channel is None:
                raise SendFailed(f"channel {reply.channel} is not configured", permanent=True)
            url = self.rating_url(escalation.id, reply.channel) if reply.kind == "resolved" else None
            channel.send(reply, escalation, url)
        except SendFailed as exc:
            self._failed(reply, token, exc)
            return False
        except Exception as exc:  # a bug or a surprise in one channel: counted like any failure, never a stuck row
            log.exception("reply %s to %s failed unexpectedly", reply.id, reply.channel)
            self._failed(reply, token, SendFailed(f"{exc.__class__.__name__}: {exc}"))
            return False
        self._set(reply.id, token, state="delivered", delivered_at=utcnow(), last_error=None)
        log.info("reply %s (%s on %s) delivered by %s", reply.id, reply.kind, reply.ticket_key, reply.channel)
        return True

    def rating_url(self, escalation_id: str, channel: str) -> str | None:
        """The signed 'did this solve your problem?' link (needs ANSWERDESK_PUBLIC_URL)."""
        if not self.public_url:
            return None
        return f"{self.public_url}/v1/ratings/{self.tokens.token(escalation_id)}?via={channel}"

    def _claim(self, reply_id: str) -> str | None:
        r = db.replies.c
        now, token = utcnow(), str(uuid.uuid4())
        with self.engine.begin() as conn:
            claimed = conn.execute(db.replies.update().where(
                r.id == reply_id, r.state == "pending", lease_free(r.claimed_until, now),
            ).values(claimed_until=now + self.lease, claimed_by=token, attempts=r.attempts + 1))
        return token if claimed.rowcount else None

    def _set(self, reply_id: str, token: str, **values: Any) -> None:
        r = db.replies.c
        with self.engine.begin() as conn:
            conn.execute(db.replies.update().where(r.id == reply_id, r.claimed_by == token)
                         .values(claimed_until=None, claimed_by=None, **values))

    def _failed(self, reply: Reply, token: str, exc: SendFailed) -> None:
        attempts = reply.attempts + 1  # counted by the claim
        error = str(exc)[:2000]
        if exc.permanent or attempts >= self.max_attempts:
            log.error("reply %s to %s on %s failed for good after %d attempt(s): %s", reply.id, reply.channel,
                      reply.ticket_key, attempts, error)
            self._set(reply.id, token, state="failed", last_error=error, next_attempt_at=None)
            return
        wait = min(MAX_BACKOFF, timedelta(seconds=self.retry_base * 2 ** (attempts - 1)))
        log.warning("reply %s to %s not delivered (attempt %d), retrying in %s: %s", reply.id, reply.channel,
                    attempts, wait, error)
        self._set(reply.id, token, last_error=error, next_attempt_at=utcnow() + wait)


def replies_of(engine: Engine, escalation_id: str | None = None, ticket_key: str | None = None) -> list[dict[str, Any]]:
    """Reply rows (for admins, tests and the benchmark): what was queued where, and how it went."""
    r = db.replies.c
    q = sa.select(db.replies).order_by(r.created_at)
    if escalation_id:
        q = q.where(r.escalation_id == escalation_id)
    if ticket_key:
        q = q.where(r.ticket_key == ticket_key)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(q)]
