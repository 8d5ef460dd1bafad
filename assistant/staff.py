"""What staff see of one conversation (the page a ticket's "Conversation:" link opens): every message,
the sources each answer cited, its confidence and the signals behind it, and the conversation's
escalations with their delivery state, routing and ticket. Read-only; the API decides who may see it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.conversations import NotFound

ESCALATION_FIELDS = ("id", "status", "ticket_key", "ticket_url", "jira_status", "priority", "role", "org", "tier",
                     "reasons", "requested_by_user", "confidence", "routing", "last_error", "created_at",
                     "delivered_at", "first_response_at", "resolved_at", "rating", "contact_email", "notify",
                     "contact_verified", "contact_version", "contact_noted")


def conversation_for_staff(engine: Engine, conversation_id: str) -> dict[str, Any]:
    """The whole conversation, oldest message first; NotFound for an unknown id."""
    m, e = db.messages.c, db.escalations.c
    with engine.connect() as conn:
        conv = conn.execute(sa.select(db.conversations).where(db.conversations.c.id == conversation_id)).first()
        if conv is None:
            raise NotFound("conversation not found")
        messages = conn.execute(sa.select(db.messages).where(m.conversation_id == conversation_id)
                                .order_by(m.seq)).all()
        escalations = conn.execute(sa.select(*(e[f] for f in ESCALATION_FIELDS))
                                   .where(e.conversation_id == conversation_id).order_by(e.created_at)).all()
    return {
        "id": conv.id,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
        "messages": [{
            "id": r.id, "role": r.role, "content": r.content, "created_at": r.created_at,
            "citations": r.citations or [], "confidence": r.confidence, "flags": r.flags or [],
            "answerer": r.answerer, "signals": ((r.checks or {}).get("signals") or {}),
            "reasons": ((r.checks or {}).get("reasons") or []),
        } for r in messages],
        "escalations": [_escalation(r._mapping) for r in escalations],
    }


def _escalation(row: Any) -> dict[str, Any]:
    """One escalation as staff see it; `contact_on_ticket`: whether the ticket already shows the latest
    contact (False while its note is still owed, see escalation/contact_notes.py)."""
    out = {k: v for k, v in row.items() if k not in ("contact_version", "contact_noted")}
    out["contact_on_ticket"] = row["contact_noted"] >= row["contact_version"] if row["ticket_key"] else False
    return out
