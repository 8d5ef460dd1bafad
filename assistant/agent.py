"""Agent assist: a suggested reply for a Jira ticket, with [n] citations (internal sources allowed:
this is for agents) and the similar resolved tickets, optionally posted as an internal comment."""

from __future__ import annotations

from typing import Any

from assistant.errors import EscalationError
from assistant.services import Services
from assistant.store import TICKET_KINDS


def similar_tickets(services: Services, question: str, exclude: str, limit: int = 3) -> list[dict[str, Any]]:
    sources = services.store.sources_of_kind(*TICKET_KINDS)
    if not sources:
        return []
    out: dict[tuple[str, str], dict[str, Any]] = {}  # by source too: two repositories both have issues/1
    for hit in services.retriever.search(question, k=limit * 4, where={"source": sources}):
        ch = hit.chunk
        if ch.doc_id == exclude or (ch.source, ch.doc_id) in out:
            continue
        meta = services.store.document_meta(ch.source, ch.doc_id)
        out[ch.source, ch.doc_id] = {"key": meta.get("key", ch.doc_id), "title": ch.title, "url": ch.url,
                          "resolution": meta.get("resolution"), "score": round(hit.score, 6)}
        if len(out) == limit:
            break
    return list(out.values())


def ticket_title(ticket: dict[str, Any]) -> str:
    """Titles already start with the key ("ABC-7: ...", "owner/repo#12: ..."): don't say it twice."""
    title, key = str(ticket["title"]), str(ticket["key"])
    return title if title.startswith(key) else f"{key}: {title}"


def render_comment(result: dict[str, Any]) -> str:
    lines = ["Suggested reply (answerdesk, for the agent; not sent to the customer):", "", result["draft"], ""]
    if result["citations"]:
        lines += ["Sources:"] + [f"[{c['n']}] {c['title']} - {c['url']}" for c in result["citations"]] + [""]
    if result["similar_tickets"]:
        lines.append("Similar resolved tickets:")
        lines += [f"{ticket_title(t)} ({t['resolution'] or 'resolved'}) - {t['url']}"
                  for t in result["similar_tickets"]]
    lines.append(f"Confidence: {result['confidence']:.2f}")
    return "\n".join(lines)


def suggest(services: Services, ticket_key: str, post: bool = False) -> dict[str, Any]:
    if not services.settings.jira_url:
        raise EscalationError("Jira is not configured: set ANSWERDESK_JIRA_URL, ANSWERDESK_JIRA_USER (Cloud) and "
                              "ANSWERDESK_JIRA_TOKEN to use agent assist.")
    client = services.jira_client()
    issue = client.issue(ticket_key)
    customer_said = "\n\n".join(c["body"] for c in issue["comments"] if c["public"])[-1500:]
    question = "\n\n".join(x for x in (issue["summary"], issue["description"][:1500], customer_said) if x)
    draft = services.assistant.draft(question, where=None)
    result = {
        "ticket_key": ticket_key, "summary": issue["summary"], "draft": draft.answer,
        "citations": [c.to_dict() for c in draft.citations], "confidence": draft.confidence, "flags": draft.flags,
        "similar_tickets": similar_tickets(services, question, exclude=ticket_key), "posted": False,
    }
    if post:
        client.comment(ticket_key, render_comment(result), internal=True)
        result["posted"] = True
    return result
