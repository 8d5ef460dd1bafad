"""What the Slack bot remembers: thread -> conversation, bot message -> answer, deliveries handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.store import utcnow

# Slack retries a delivery for about five minutes; a week covers that and repeated clicks/reactions.
KEEP_DELIVERIES = timedelta(days=7)


@dataclass(frozen=True)
class PostedAnswer:
    team_id: str
    channel_id: str
    ts: str
    thread_ts: str
    conversation_id: str
    message_id: str
    escalation_id: str | None


class SlackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, key: str) -> bool:
        """True for the first caller with this key, False for every later one (a retry, a double click)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(db.slack_deliveries.insert(), {"key": key[:300], "created_at": utcnow()})
        except sa.exc.IntegrityError:
            return False
        return True

    def release(self, key: str) -> None:
        """Undo a claim whose work failed, so a retry (a second click) may try again."""
        with self.engine.begin() as conn:
            conn.execute(db.slack_deliveries.delete().where(db.slack_deliveries.c.key == key[:300]))

    def forget_old_deliveries(self) -> int:
        with self.engine.begin() as conn:
            done = conn.execute(db.slack_deliveries.delete().where(
                db.slack_deliveries.c.created_at < utcnow() - KEEP_DELIVERIES))
        return int(done.rowcount or 0)

    def thread_conversation(self, team_id: str, channel_id: str, thread_ts: str) -> str | None:
        t = db.slack_threads.c
        with self.engine.connect() as conn:
            cid = conn.execute(sa.select(t.conversation_id).where(
                t.team_id == team_id, t.channel_id == channel_id, t.thread_ts == thread_ts)).scalar_one_or_none()
        return str(cid) if cid is not None else None

    def link_thread(self, team_id: str, channel_id: str, thread_ts: str, conversation_id: str) -> str:
        """Map the thread to the conversation; if another worker mapped it first, theirs wins and is returned."""
        try:
            with self.engine.begin() as conn:
                conn.execute(db.slack_threads.insert(), {
                    "team_id": team_id, "channel_id": channel_id, "thread_ts": thread_ts,
                    "conversation_id": conversation_id, "created_at": utcnow()})
        except sa.exc.IntegrityError:
            existing = self.thread_conversation(team_id, channel_id, thread_ts)
            if existing is None:
                raise
            return existing
        return conversation_id

    def record_answer(self, answer: PostedAnswer) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.slack_answers.insert(), {**answer.__dict__, "created_at": utcnow()})

    def answer_at(self, channel_id: str, ts: str) -> PostedAnswer | None:
        """The answer the bot posted as message `ts` in the channel, or None (not ours, or not an answer)."""
        a = db.slack_answers.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.slack_answers).where(a.channel_id == channel_id, a.ts == ts)).first()
        if row is None:
            return None
        return PostedAnswer(row.team_id, row.channel_id, row.ts, row.thread_ts, row.conversation_id,
                            row.message_id, row.escalation_id)

    def thread_escalated(self, channel_id: str, thread_ts: str) -> bool:
        a = db.slack_answers.c
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(a.ts).where(a.channel_id == channel_id, a.thread_ts == thread_ts,
                                                       a.escalation_id.is_not(None)).limit(1)).first()
        return found is not None

    def set_escalation(self, channel_id: str, ts: str, escalation_id: str) -> None:
        a = db.slack_answers.c
        with self.engine.begin() as conn:
            conn.execute(db.slack_answers.update().where(a.channel_id == channel_id, a.ts == ts)
                         .values(escalation_id=escalation_id))
