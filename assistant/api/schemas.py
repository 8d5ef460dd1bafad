"""Request and response bodies: the OpenAPI document at /docs is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from assistant.widget_identity import EMAIL

ConversationId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")]


class Citation(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    n: int = Field(description="The number used as [n] in the answer text.")
    title: str
    url: str
    snippet: str
    source: str
    doc_id: str
    score: float


class Checks(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    removed_citations: int = Field(description="[n] markers that named no given source and were removed.")
    sentences: int = Field(description="Sentences of the answer that make a claim.")
    supported_sentences: int = Field(description="Of those, how many their cited sources support.")
    unsupported_sentences: list[str] = Field(description="Sentences not supported by the sources they cite.")
    signals: dict[str, float]
    reasons: list[str]


class HandoffOption(BaseModel):
    label: str
    url: str = Field(description="An http(s) or mailto: link, e.g. a call-booking page.")
    description: str | None = None


HANDOFF = "Ways to reach a human besides the ticket, configured per plan (ANSWERDESK_HANDOFF_OPTIONS)."


class ChatResponse(BaseModel):
    """Validated from `assistant.results.ChatResult`, field for field."""

    model_config = ConfigDict(from_attributes=True)
    conversation_id: str
    message_id: str
    answer: str
    citations: list[Citation]
    confidence: float = Field(ge=0, le=1)
    escalated: bool
    escalation_id: str | None
    handoff: list[HandoffOption] = Field([], description=HANDOFF + " Empty unless escalated.")
    answerer: str
    flags: list[str] = Field(description="e.g. llm_fallback, invalid_citations_removed, unsupported_sentences, "
                                         "low_confidence, human_requested")
    search_query: str = Field(description="The question as used for retrieval (follow-ups are rewritten).")
    checks: Checks


def chat_request_model(max_chars: int) -> type[BaseModel]:
    """The question's length limit is a setting, so the model is built per app."""
    # pattern: the schema says what stripping implies, a question of only whitespace is not one.
    question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_chars,
                                                pattern=r"\S")]
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ChatRequest",
        __config__=ConfigDict(extra="forbid"),
        question=(question, Field(description=f"1 to {max_chars} characters.")),
        conversation_id=(ConversationId | None, Field(None, description="Continue this conversation.")),
    )


# Deliberately plain (one @, a dotted domain, no spaces or brackets): enough to catch typos without
# email-validator's DNS-era rules; the same shape the widget identity accepts.
ContactEmail = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL.pattern)]
CONTACT = ("Where to tell the user of the answer. A signed-in widget user's verified address is used "
           "whatever is given here (a different one is refused).")
NOTIFY = "The user agreed to be e-mailed the answer at contact_email (their consent, default false)."


class EscalationContact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_email: ContactEmail | None = Field(None, description=CONTACT)
    notify: bool = Field(False, description=NOTIFY)


class EscalationCreate(EscalationContact):
    conversation_id: ConversationId
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class Escalation(BaseModel):
    id: str
    conversation_id: str
    question: str
    draft_answer: str
    sources: list[dict[str, Any]]
    confidence: float | None
    reasons: list[str]
    requested_by_user: bool
    role: str | None = None
    org: str | None = None
    tier: str | None = None
    priority: str | None = None
    labels: list[str] | None = None
    contact_email: str | None = None
    notify: bool = False
    status: str
    ticket_key: str | None
    ticket_url: str | None
    jira_status: str | None = None
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime
    handoff: list[HandoffOption] = Field([], description=HANDOFF)


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: ConversationId
    rating: Literal["up", "down"]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class FeedbackOut(BaseModel):
    id: int
    message_id: str
    rating: str


class Problem(BaseModel):
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


class SupportReply(BaseModel):
    id: str
    kind: Literal["comment", "resolved"] = Field(description="An agent's public comment, or the ticket's resolution.")
    text: str = Field(description="Plain text from the ticket: show it as text, never as HTML.")
    author: str | None = None
    ticket_key: str | None = None
    created_at: datetime
    rating_token: str | None = Field(None, description="For `resolved`: POST /v1/ratings/{token} answers "
                                                       "'did this solve your problem?'.")
    solved: bool | None = Field(None, description="The answer already given, if any.")


class RatingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    solved: bool


class RatingOut(BaseModel):
    escalation_id: str
    solved: bool
    channel: str
