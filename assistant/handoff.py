"""Ways to reach a human offered with a handoff, besides the ticket: configured per plan.

A paid customer may get a call-booking link and a priority e-mail, the community a forum link. The
plan is the one escalation priorities and rate limits use (customer tier, or community/agent/admin);
plans not configured get the "default" entry, and no entry at all means the ticket alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant.escalation import EscalationRequest, TicketRef, escalation_sources
from assistant.keys import Identity
from assistant.settings import HandoffOption

if TYPE_CHECKING:
    from assistant.services import Services


def handoff_options(configured: dict[str, list[HandoffOption]], identity: Identity | None) -> list[dict[str, Any]]:
    plan = identity.plan if identity else "operator"
    options = configured.get(plan, configured.get("default", []))
    return [option.model_dump() for option in options]


def request_human(services: Services, conversation_id: str, identity: Identity | None,
                  reason: str | None = None) -> TicketRef:
    """The user asks for a human (the API's POST /v1/escalations, Slack's button): the conversation so
    far goes to the support queue with the last answer's draft and sources, routed by who asked.
    The caller has already checked that `identity` may act on this conversation."""
    past = services.conversations.messages(conversation_id)
    question = next((m.content for m in reversed(past) if m.role == "user"), "")
    answer = next((m for m in reversed(past) if m.role == "assistant"), None)
    return services.queue.open(EscalationRequest(
        conversation_id=conversation_id,
        question=question or "(no question asked yet)",
        transcript=[{"role": m.role, "content": m.content} for m in past],
        draft_answer=answer.content if answer else "",
        sources=escalation_sources(answer.citations) if answer else [],
        confidence=answer.confidence if answer else None,
        reasons=["user_requested"] + ([services.conversations.scrub(reason)] if reason else []),
        requested_by_user=True,
        message_id=answer.id if answer else None,
        **services.assistant.routing(identity),
    ))
