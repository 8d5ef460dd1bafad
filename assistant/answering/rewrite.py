"""Follow-up questions ("and on Windows?") made standalone before retrieval."""

from __future__ import annotations

import re
from typing import Any

from assistant.answering.text import terms
from assistant.answering.types import Turn

_FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|or|so|then|what about|how about|what if|same for|and for|and on|and in|and with)\b", re.I
)
_PRONOUN = re.compile(r"\b(it|its|that|this|those|these|they|them|there|one|ones)\b", re.I)


def rule_rewrite(question: str, previous_query: str | None) -> str:
    """Deterministic: a question that leans on the previous one is appended to it."""
    if not previous_query:
        return question
    n = len(terms(question))
    if _FOLLOW_UP.match(question) or n <= 2 or (_PRONOUN.search(question) and n <= 4):
        return f"{previous_query} {question.strip()}"
    return question


class LLMRewriter:
    """Asks the LLM for a standalone question; falls back to the rule on any failure."""

    def __init__(self, llm: Any, template: str) -> None:
        self.llm = llm
        self.template = template

    def __call__(self, question: str, previous_query: str | None, history: list[Turn]) -> str:
        if not history:
            return question
        transcript = "\n".join(f"{t.role}: {t.content[:500]}" for t in history[-6:])
        try:
            out = self.llm.invoke(self.template.format(history=transcript, question=question))
            text = str(getattr(out, "content", "")).strip().strip('"')
        except Exception:  # any LLM failure: the rule still gives a usable query
            return rule_rewrite(question, previous_query)
        return text if 0 < len(text) <= 1000 else rule_rewrite(question, previous_query)
