"""Conversations, messages and feedback in the database."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.answering.types import Turn
from assistant.results import ChatResult
from assistant.store import utcnow


class NotFound(LookupError):
    """An id that names nothing; the API answers 404."""


@dataclass
class StoredMessage:
    id: str
    role: str
    content: str
    search_query: str | None
    citations: list[dict[str, Any]] | None
    confidence: float | None


class Conversations:
    """scrub: applied to what users write (questions, feedback comments) before it is stored or sent
    anywhere; the PII redaction unless a deployment turned it off."""

    def __init__(self, engine: Engine, scrub: Callable[[str], str] | None = None) -> None:
        self.scrub: Callable[[str], str] = scrub or (lambda text: text)
        self.engine = engine

    def ensure(self, conversation_id: str | None, owner: str | None = None, staff: bool = True) -> str:
        """The given conversation or a new one owned by `owner` (Identity.owner; None = the local operator).

        Only its owner and staff (and the local operator) may read or continue a conversation; a
        conversation nobody owns is staff-only. Someone else's is reported as not found, not as
        forbidden, and without its id: its existence is nobody else's business."""
        now = utcnow()
        c = db.conversations.c
        with self.engine.begin() as conn:
            if conversation_id is None:
                conversation_id = str(uuid.uuid4())
                key_id = owner[4:] if owner and owner.startswith("key:") else None
                conn.execute(db.conversations.insert(), {"id": conversation_id, "owner": owner, "owner_key_id": key_id,
                                                         "created_at": now, "updated_at": now})
                return conversation_id
            found = conn.execute(sa.select(c.owner, c.owner_key_id).where(c.id == conversation_id)).first()
        if found is None:
            raise NotFound("conversation not found")
        recorded = found.owner or (f"key:{found.owner_key_id}" if found.owner_key_id else None)
        if not staff and (owner is None or recorded != owner):
            raise NotFound("conversation not found")
        return conversation_id

    def message_conversation(self, message_id: str) -> str:
        with self.engine.connect() as conn:
            cid = conn.execute(sa.select(db.messages.c.conversation_id).where(
                db.messages.c.id == message_id, db.messages.c.role == "assistant")).scalar_one_or_none()
        if cid is None:
            raise NotFound("message not found")
        return str(cid)

    def messages(self, conversation_id: str, limit: int = 50) -> list[StoredMessage]:
        m = db.messages.c
        q = sa.select(db.messages).where(m.conversation_id == conversation_id).order_by(m.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = list(conn.execute(q))
        return [StoredMessage(r.id, r.role, r.content, r.search_query, r.citations, r.confidence)
                for r in reversed(rows)]

    def history(self, conversation_id: str, turns: int) -> list[Turn]:
        """The last turns between the user and the assistant; the support team's replies (role "support",
        assistant/replies) are the team's words, not the assistant's, and are not part of it."""
        if not turns:
            return []
        return [Turn(m.role, m.content) for m in self.messages(conversation_id, turns * 2 + 10)
                if m.role in ("user", "assistant")][-turns * 2:]

    def add_exchange(self, conversation_id: str, question: str, search_query: str, answer: ChatResult,
                     timings: dict[str, int | None] | None = None) -> str:
        """Store the question and the answer together; returns the answer's message id."""
        now = utcnow()
        message_id = str(uuid.uuid4())
        timings = timings or {}
        with self.engine.begin() as conn:
            seq = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(db.messages.c.seq), 0)).where(
                    db.messages.c.conversation_id == conversation_id
                )
            ).scalar_one()
            conn.execute(db.messages.insert(), [
                {"id": str(uuid.uuid4()), "conversation_id": conversation_id, "seq": seq + 1, "role": "user",
                 "content": question, "search_query": search_query, "citations": None, "confidence": None,
                 "flags": None, "answerer": None, "latency_ms": None, "first_token_ms": None, "checks": None,
                 "created_at": now},
                {"id": message_id, "conversation_id": conversation_id, "seq": seq + 2, "role": "assistant",
                 "content": answer.answer, "search_query": None,
                 "citations": [c.to_dict() for c in answer.citations],
                 "confidence": answer.confidence, "flags": answer.flags, "answerer": answer.answerer,
                 "latency_ms": timings.get("latency_ms"), "first_token_ms": timings.get("first_token_ms"),
                 "checks": dataclasses.asdict(answer.checks), "created_at": now},
            ])
            conn.execute(db.conversations.update().where(db.conversations.c.id == conversation_id)
                         .values(updated_at=now))
        return message_id

    def add_feedback(self, message_id: str, rating: str, comment: str | None) -> int:
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(db.messages.c.role).where(db.messages.c.id == message_id)
            ).scalar_one_or_none()
            if found != "assistant":
                raise NotFound("message not found")
            result = conn.execute(db.feedback.insert().values(
                message_id=message_id, rating=rating, comment=self.scrub(comment) if comment else comment,
                created_at=utcnow()))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
