"""Typed results for tests that render one (Slack messages, analytics) without running the chat flow."""

from __future__ import annotations

from typing import Any

from assistant.results import ChatResult, Checks, Citation


def citation(n: int = 1, title: str = "Page", url: str = "https://docs.example/page", doc_id: str = "page",
             source: str = "docs", snippet: str = "s", score: float = 0.5) -> Citation:
    return Citation(n=n, title=title, url=url, snippet=snippet, source=source, doc_id=doc_id, score=score)


def chat_result(answer: str, citations: list[Citation] | None = None, escalated: bool = False,
                confidence: float = 0.9, flags: list[str] | None = None,
                handoff: list[dict[str, Any]] | None = None) -> ChatResult:
    return ChatResult(conversation_id="c0ffee00-0000-4000-8000-000000000000", answer=answer,
                      citations=citations or [], confidence=confidence, escalated=escalated,
                      escalation_id="esc-1" if escalated else None, handoff=handoff or [], answerer="extractive",
                      flags=flags or [], search_query=answer,
                      checks=Checks(removed_citations=0, sentences=1, supported_sentences=1,
                                    unsupported_sentences=[], signals={}, reasons=[]))
