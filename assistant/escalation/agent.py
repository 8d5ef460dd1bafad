"""Agent assist: a suggested reply for a Jira ticket, with [n] citations (internal sources allowed:
this is for agents) and the similar resolved tickets, optionally posted as an internal comment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import EscalationError
from assistant.escalation.jira_client import JiraClient
from assistant.retrieval import Retriever
from assistant.store import TICKET_KINDS, IndexStore

if TYPE_CHECKING:
    from assistant.chat import Assistant

NOT_CONFIGURED = ("Jira is not configured: set ANSWERDESK_JIRA_URL, ANSWERDESK_JIRA_USER (Cloud) and "
                  "ANSWERDESK_JIRA_TOKEN to use agent assist.")


def assist_marker(ticket_key: str) -> str:
    """The last line of a posted suggestion: how a retry recognises that it is on the ticket already."""
    return f"answerdesk assist: {ticket_key}"


@dataclass
class SimilarTicket:
    key: str
    title: str
    url: str
    resolution: str | None
    score: float

    def heading(self) -> str:
        """Titles already start with the key ("ABC-7: ...", "owner/repo#12: ..."): don't say it twice."""
        return self.title if self.title.startswith(self.key) else f"{self.key}: {self.title}"


@dataclass
class Suggestion:
    """What agent assist returns (the API's /v1/agent/suggest body, Slack's and the CLI's message)."""

    ticket_key: str
    summary: str
    draft: str
    citations: list[dict[str, Any]]
    confidence: float
    flags: list[str]
    similar_tickets: list[SimilarTicket] = field(default_factory=list)
    posted: bool = False

    def comment(self) -> str:
        """The suggestion as the internal comment posted on the ticket (and the CLI's output)."""
        lines = ["Suggested reply (answerdesk, for the agent; not sent to the customer):", "", self.draft, ""]
        if self.citations:
            lines += ["Sources:"] + [f"[{c['n']}] {c['title']} - {c['url']}" for c in self.citations] + [""]
        if self.similar_tickets:
            lines.append("Similar resolved tickets:")
            lines += [f"{t.heading()} ({t.resolution or 'resolved'}) - {t.url}" for t in self.similar_tickets]
        lines.append(f"Confidence: {self.confidence:.2f}")
        lines.append(assist_marker(self.ticket_key))
        return "\n".join(lines)


def similar_tickets(store: IndexStore, retriever: Retriever, question: str, exclude: str,
                    limit: int = 3) -> list[SimilarTicket]:
    """Resolved tickets (Jira, GitHub issues) closest to the question, one per ticket."""
    sources = store.sources_of_kind(*TICKET_KINDS)
    if not sources:
        return []
    out: dict[tuple[str, str], SimilarTicket] = {}  # by source too: two repositories both have issues/1
    for hit in retriever.search(question, k=limit * 4, where={"source": sources}):
        ch = hit.chunk
        if ch.doc_id == exclude or (ch.source, ch.doc_id) in out:
            continue
        meta = store.document_meta(ch.source, ch.doc_id)
        out[ch.source, ch.doc_id] = SimilarTicket(str(meta.get("key", ch.doc_id)), ch.title, ch.url,
                                                  meta.get("resolution"), round(hit.score, 6))
        if len(out) == limit:
            break
    return list(out.values())


class AgentAssist:
    """Drafts replies for tickets. `jira` builds the Jira client; None when Jira is not configured."""

    def __init__(self, assistant: Assistant, store: IndexStore, retriever: Retriever,
                 jira: Callable[[], JiraClient] | None) -> None:
        self.assistant, self.store, self.retriever, self.jira = assistant, store, retriever, jira

    def suggest(self, ticket_key: str, post: bool = False, question: str | None = None) -> Suggestion:
        """`question`: what to answer when the caller knows it (an escalation's own question); else the
        ticket's summary, description and the customer's public comments."""
        if self.jira is None:
            raise EscalationError(NOT_CONFIGURED)
        client = self.jira()
        issue = client.issue(ticket_key)
        if question is None:
            customer_said = "\n\n".join(c["body"] for c in issue["comments"] if c["public"])[-1500:]
            question = "\n\n".join(x for x in (issue["summary"], issue["description"][:1500], customer_said) if x)
        draft = self.assistant.draft(question, where=None)
        result = Suggestion(
            ticket_key=ticket_key, summary=issue["summary"], draft=draft.answer,
            citations=[c.to_dict() for c in draft.citations], confidence=draft.confidence, flags=draft.flags,
            similar_tickets=similar_tickets(self.store, self.retriever, question, exclude=ticket_key))
        if post:
            client.comment(ticket_key, result.comment(), internal=True)
            result.posted = True
        return result
