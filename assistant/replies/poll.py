"""The reply worker: a thread beside the escalation outbox worker that delivers the reply outbox and,
for sites that cannot send webhooks, polls Jira every `jira_poll_interval` seconds for public comments
and resolutions on open escalations, feeding the same outbox as the webhook. A ticket whose resolution was
seen stays polled for REOPEN_DAYS more: a reopened ticket's new comments and second resolution still
come back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.escalation.jira_client import JiraClient
from assistant.replies.events import TicketEvent, comment_event, reopen_event, reporter_ids, resolution_event
from assistant.replies.outbox import ReplyOutbox
from assistant.store import utcnow

log = logging.getLogger("answerdesk.replies")
POLL_DAYS = 30  # tickets older than this are not polled any more
POLL_BATCH = 50
REOPEN_DAYS = 14  # a resolved ticket is polled this long after its last resolution, for a reopen


def open_tickets(engine: Engine, limit: int = POLL_BATCH) -> list[str]:
    """Tickets answerdesk created, delivered in the last POLL_DAYS, whose resolution was not seen or was
    seen less than REOPEN_DAYS ago; those not seen resolved come first."""
    e, r = db.escalations.c, db.replies.c
    now = utcnow()
    last = (sa.select(r.ticket_key, sa.func.max(r.created_at).label("at")).where(r.kind == "resolved")
            .group_by(r.ticket_key).subquery())
    q = (sa.select(e.ticket_key).outerjoin(last, last.c.ticket_key == e.ticket_key)
         .where(e.status == "delivered", e.ticket_key.is_not(None), e.delivered_at > now - timedelta(days=POLL_DAYS),
                sa.or_(last.c.at.is_(None), last.c.at > now - timedelta(days=REOPEN_DAYS)))
         .group_by(e.ticket_key).order_by(sa.func.count(last.c.at), sa.func.max(e.delivered_at).desc()).limit(limit))
    with engine.connect() as conn:
        return [str(k) for k in conn.execute(q).scalars()]


def poll_jira(outbox: ReplyOutbox, client: JiraClient) -> int:
    """One pass over the open tickets; returns how many replies it queued. A ticket Jira fails on is
    logged and skipped: the rest are still polled. Events carry Jira's own times (comment created,
    resolution date), not the poll's."""
    added = 0
    bot = outbox.bot.ids()
    for key in open_tickets(outbox.engine):
        try:
            comments, fields = client.updates(key)
        except EscalationError as exc:
            log.warning("poll of %s failed: %s", key, exc)
            continue
        skip = reporter_ids(fields) | bot
        events: list[TicketEvent] = [ev for c in comments if isinstance(c, dict)
                                     for ev in [comment_event(key, c, skip=skip)] if ev is not None]
        changed = resolution_event(key, fields, utcnow()) or reopen_event(key, fields, utcnow())
        if changed is not None:
            events.append(changed)
        added += outbox.record(events)
    return added


def run_replies(outbox: ReplyOutbox, stop: threading.Event, poll_every: float,
                client_factory: Callable[[], JiraClient] | None, tick: float = 1.0) -> None:
    """Deliver due replies at once when woken (a webhook recorded some) or every `tick` seconds (retries
    fall due), and poll Jira every `poll_every` seconds when that is on."""
    last_poll = 0.0
    while not stop.is_set():
        outbox.wake.wait(tick)
        if stop.is_set():
            break
        outbox.wake.clear()
        try:
            if client_factory is not None:
                outbox.bot.ids()  # read once (then cached): the webhook only uses what is known
            if client_factory is not None and poll_every > 0 and time.monotonic() - last_poll >= poll_every:
                last_poll = time.monotonic()
                poll_jira(outbox, client_factory())
            outbox.deliver_pending()
        except Exception:  # the worker must outlive any one failure; each is logged
            log.exception("reply delivery pass failed")


def start_reply_worker(outbox: ReplyOutbox, poll_every: float,
                       client_factory: Callable[[], JiraClient] | None,
                       tick: float = 1.0) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    worker = threading.Thread(target=run_replies, args=(outbox, stop, poll_every, client_factory, tick),
                              daemon=True, name="replies")
    worker.start()
    return worker, stop
