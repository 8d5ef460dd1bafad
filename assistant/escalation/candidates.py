"""Closing the loop: a resolved escalation becomes a candidate eval case (the question the user asked,
the agent's final answer), reviewable and exported by `answerdesk eval from-tickets`."""

from __future__ import annotations

import sqlalchemy as sa

from assistant import db
from assistant.store import IndexStore, utcnow


def collect_escalation_candidates(store: IndexStore) -> int:
    """Resolved escalated tickets (as the Jira connector stored them) -> eval candidates (question
    asked, agent's final answer)."""
    tickets = {}
    for source in store.sources_of_kind("jira"):
        for doc in store.documents(source):
            meta = doc.meta or {}
            if meta.get("resolution") and meta.get("final_answer"):
                tickets[doc.doc_id] = meta
    e, c = db.escalations.c, db.eval_candidates.c
    added = 0
    with store.engine.begin() as conn:
        known = set(conn.execute(sa.select(c.id)).scalars())
        rows = conn.execute(sa.select(e.id, e.ticket_key, e.question).where(e.ticket_key.in_(list(tickets)))).all()
        for row in rows:
            if row.id in known:
                continue
            conn.execute(db.eval_candidates.insert(), {
                "id": row.id, "ticket_key": row.ticket_key, "question": row.question,
                "answer": tickets[row.ticket_key]["final_answer"], "status": "candidate", "created_at": utcnow()})
            added += 1
    return added
