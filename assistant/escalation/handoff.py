"""Routing and handoff: who asked decides an escalation's priority and SLA label, and which ways to
reach a human are offered besides the ticket.

A paid customer may get a call-booking link and a priority e-mail, the community a forum link. The
plan is the one rate limits use too (customer tier, or community/agent/admin); plans not configured get
the "default" entry, and no entry at all means the ticket alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.conversations import Conversations
from assistant.escalation.queue import EscalationRequest, TicketQueue, TicketRef, escalation_sources
from assistant.keys import Identity
from assistant.settings import HandoffOption, Settings


@dataclass
class Routing:
    """The settings' escalation_priorities, sla_labels and handoff_options, applied to who asked."""

    priorities: dict[str, str] = field(default_factory=dict)
    sla_labels: dict[str, str] = field(default_factory=dict)
    handoff: dict[str, list[HandoffOption]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Routing:
        return cls(settings.escalation_priorities, settings.sla_labels, settings.handoff_options)

    def fields(self, identity: Identity | None) -> dict[str, Any]:
        """The escalation's who-asked fields: role, org, tier, priority and labels."""
        plan = identity.plan if identity else "operator"
        label = self.sla_labels.get(plan)
        return {
            "role": identity.role if identity else "operator",
            "org": identity.org if identity else None,
            "tier": identity.tier if identity else None,
            "priority": self.priorities.get(plan, self.priorities.get("default", "Medium")),
            "labels": ["answerdesk"] + ([label] if label else []),
        }

    def options(self, identity: Identity | None) -> list[dict[str, Any]]:
        """The ways to reach a human offered to this identity, as JSON objects."""
        plan = identity.plan if identity else "operator"
        return [option.model_dump() for option in self.handoff.get(plan, self.handoff.get("default", []))]


def request_human(conversations: Conversations, queue: TicketQueue, routing: Routing, conversation_id: str,
                  identity: Identity | None, reason: str | None = None, contact_email: str | None = None,
                  notify: bool = False) -> TicketRef:
    """The user asks for a human (the API's POST /v1/escalations, Slack's button): the conversation so
    far goes to the support queue with the last answer's draft and sources, routed by who asked.
    The caller has already checked that `identity` may act on this conversation, and the contact
    (`contact_for`)."""
    past = conversations.messages(conversation_id)
    question = next((m.content for m in reversed(past) if m.role == "user"), "")
    answer = next((m for m in reversed(past) if m.role == "assistant"), None)
    return queue.open(EscalationRequest(
        conversation_id=conversation_id,
        question=question or "(no question asked yet)",
        transcript=[{"role": m.role, "content": m.content} for m in past],
        draft_answer=answer.content if answer else "",
        sources=escalation_sources(answer.citations) if answer else [],
        confidence=answer.confidence if answer else None,
        reasons=["user_requested"] + ([conversations.scrub(reason)] if reason else []),
        requested_by_user=True,
        message_id=answer.id if answer else None,
        contact_email=contact_email,
        notify=notify and contact_email is not None,
        contact_verified=verified_contact(identity, contact_email),
        **routing.fields(identity),
    ))


def verified_contact(identity: Identity | None, contact: str | None) -> bool:
    """Whether the contact is the signed-in user's own address (from a verified identity), so JSM may
    raise the request as them; anyone could type a customer's address."""
    email = identity.email if identity else None
    return bool(email and contact and contact.lower() == email.lower())


class ContactError(ValueError):
    """A contact the API refuses with 422; the message names the field."""


def contact_for(identity: Identity | None, given: str | None, notify: bool) -> str | None:
    """Whom to tell of the answer. A signed-in user's verified e-mail is theirs and cannot be swapped
    for another (the widget shows it read-only); anyone else gives one, and must to be notified."""
    verified = identity.email if identity else None
    if verified and given and given.lower() != verified.lower():
        raise ContactError("contact_email: you are signed in; answers go to your account's e-mail address")
    contact = verified or given
    if notify and not contact:
        raise ContactError("contact_email: needed to be told of the answer (notify is true)")
    return contact
