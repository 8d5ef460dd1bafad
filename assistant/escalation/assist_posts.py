"""Agent assist when a ticket arrives: answerdesk's suggested reply posted on the ticket as an internal
comment, once per ticket, whatever retries, restarts and concurrent workers do.

`post(ticket_key)` is called when an escalation's ticket is delivered, and is what a Jira
`issue_created` webhook calls for tickets made in Jira directly. Each ticket has a row in
`assist_posts`: the primary key makes one claim win, a lease lets a crashed poster's claim be taken
over, and `posted_at` says it is done. A retry after an attempt whose outcome is unknown first reads
the ticket for our marker line, so a comment Jira made but never confirmed is not posted again.
Failures are recorded and retried by the outbox worker (`post_pending`); they never fail a delivery."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.errors import EscalationError
from assistant.escalation.agent import AgentAssist, assist_marker
from assistant.store import lease_free, utcnow

log = logging.getLogger("answerdesk.assist")
LEASE = timedelta(minutes=5)  # drafting plus two Jira calls; a poster gone longer than this has crashed
MAX_ATTEMPTS = 8  # then it stays recorded as failed (last_error) rather than retrying forever
CATCH_UP = timedelta(days=2)  # delivered tickets this recent with no assist row get one (a crash in between)


class AssistPoster:
    """Posts agent assist on new tickets exactly once. `assist` is built lazily (it needs the model)."""

    def __init__(self, engine: Engine, assist: Callable[[], AgentAssist]) -> None:
        self.engine, self.assist = engine, assist

    def enqueue(self, ticket_key: str) -> bool:
        """Record that `ticket_key` wants a post, before trying it (the `issue_created` webhook): if the
        try fails or the process stops, the worker's `post_pending` still posts it. False when the ticket
        has a row already (posted, being posted, or queued): nothing more to do."""
        try:
            with self.engine.begin() as conn:
                conn.execute(db.assist_posts.insert(), {"ticket_key": ticket_key, "claimed_until": None,
                                                        "attempts": 0, "created_at": utcnow()})
        except sa.exc.IntegrityError:
            return False
        return True

    def post(self, ticket_key: str) -> bool:
        """Post the suggestion on `ticket_key` unless it is there already or another poster holds it.
        True when this call posted it (or found it posted by an attempt that lost its answer)."""
        attempts = self._claim(ticket_key)
        if attempts is None:
            return False
        try:
            assist = self.assist()
            if attempts > 1 and assist.jira is not None and assist.jira().has_comment(ticket_key,
                                                                                      assist_marker(ticket_key)):
                self._done(ticket_key)  # an earlier attempt posted it and lost Jira's answer
                return True
            assist.suggest(ticket_key, post=True, question=self._question(ticket_key))
        except EscalationError as exc:
            log.warning("agent assist not posted on %s (attempt %d): %s", ticket_key, attempts, exc)
            self._release(ticket_key, str(exc))
            return False
        except Exception as exc:  # drafting failed (model, index): recorded and retried like a Jira failure
            log.exception("agent assist failed on %s", ticket_key)
            self._release(ticket_key, f"{type(exc).__name__}: {exc}")
            return False
        self._done(ticket_key)
        log.info("agent assist posted on %s", ticket_key)
        return True

    def post_pending(self, limit: int = 10) -> int:
        """What the worker runs each pass: tickets whose post failed or was interrupted, and delivered
        escalation tickets that never got a row (the process stopped right after delivering)."""
        a, e = db.assist_posts.c, db.escalations.c
        now = utcnow()
        with self.engine.connect() as conn:
            failed = list(conn.execute(sa.select(a.ticket_key).where(
                a.posted_at.is_(None), a.attempts < MAX_ATTEMPTS,
                lease_free(a.claimed_until, now)).limit(limit)).scalars())
            missing = list(conn.execute(sa.select(e.ticket_key).where(
                e.status == "delivered", e.ticket_key.is_not(None), e.routing.is_not(None),
                e.delivered_at > now - CATCH_UP, ~sa.exists().where(a.ticket_key == e.ticket_key))
                .limit(limit)).scalars())
        return sum(self.post(key) for key in dict.fromkeys(failed + missing))

    def _question(self, ticket_key: str) -> str | None:
        """For an escalation's ticket, the user's own question (the ticket body is mostly our context)."""
        e = db.escalations.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(e.question).where(e.ticket_key == ticket_key)  # type: ignore[no-any-return]
                                .order_by(e.created_at).limit(1)).scalar_one_or_none()

    def _claim(self, ticket_key: str) -> int | None:
        """The attempt number if this poster now holds the ticket; None when posted or held elsewhere."""
        a = db.assist_posts.c
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(db.assist_posts.insert(), {"ticket_key": ticket_key, "claimed_until": now + LEASE,
                                                        "attempts": 1, "created_at": now})
            return 1
        except sa.exc.IntegrityError:
            pass  # a row exists: take it over only if unfinished and its lease ran out
        with self.engine.begin() as conn:
            taken = conn.execute(db.assist_posts.update().where(
                a.ticket_key == ticket_key, a.posted_at.is_(None),
                lease_free(a.claimed_until, now),
            ).values(claimed_until=now + LEASE, attempts=a.attempts + 1))
            if not taken.rowcount:
                return None
            return int(conn.execute(sa.select(a.attempts).where(a.ticket_key == ticket_key)).scalar_one())

    def _update(self, ticket_key: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.assist_posts.update().where(db.assist_posts.c.ticket_key == ticket_key).values(**values))

    def _done(self, ticket_key: str) -> None:
        self._update(ticket_key, posted_at=utcnow(), claimed_until=None, last_error=None)

    def _release(self, ticket_key: str, error: str) -> None:
        self._update(ticket_key, claimed_until=None, last_error=error[:2000])
