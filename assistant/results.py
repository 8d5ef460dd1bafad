"""What the assistant answers with: typed results instead of dicts read by string keys.

`Assistant.respond` returns a `ChatResult`, `Assistant.draft` a `DraftAnswer`. The API's response
schemas validate from these (pydantic `from_attributes`), the Slack bot, the CLI and the eval harness
read their attributes, and `to_dict()` gives the JSON shape `POST /v1/chat` returns (field order
included), for the SSE stream and `answerdesk ask --json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Citation:
    """One source an answer cites as [n]."""

    n: int
    title: str
    url: str
    snippet: str  # the start of the cited section, "…" when cut
    source: str  # the ingest source name, e.g. "answerdesk-docs"
    doc_id: str
    score: float  # the retrieval score, rounded to 6 places

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checks:
    """How the answer was checked: citation markers, sentence support, and the confidence's inputs."""

    removed_citations: int  # [n] markers that named no given source and were removed
    sentences: int  # sentences of the answer that make a claim
    supported_sentences: int
    unsupported_sentences: list[str]
    signals: dict[str, float]  # the confidence model's features
    reasons: list[str]  # why confidence is low, in words


@dataclass(frozen=True)
class DraftAnswer:
    """An answer with citations and confidence; nothing stored, nothing escalated (agent assist)."""

    answer: str
    citations: list[Citation]
    confidence: float
    answerer: str  # the answerer's name, e.g. "extractive" or "llm"
    flags: list[str]
    checks: Checks


@dataclass(frozen=True)
class ChatResult:
    """One answer of a conversation, as stored and returned to the user."""

    conversation_id: str
    answer: str
    citations: list[Citation]
    confidence: float
    escalated: bool
    escalation_id: str | None  # the support-queue reference when escalated
    # Ways to reach a human besides the ticket (settings.HandoffOption as dicts); empty unless escalated.
    handoff: list[dict[str, Any]]
    answerer: str
    flags: list[str]  # e.g. llm_fallback, low_confidence, human_requested
    search_query: str  # the question as used for retrieval (follow-ups are rewritten)
    checks: Checks
    message_id: str = field(default="")  # set once the exchange is stored; last, as in the API's JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResult:
        """A result read back from the JSON `POST /v1/chat` returns (e.g. by an API client or a test)."""
        return cls(**{**data, "citations": [Citation(**c) for c in data["citations"]],
                      "checks": Checks(**data["checks"])})
