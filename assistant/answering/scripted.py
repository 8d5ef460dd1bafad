"""A scripted answerer: replies given in advance instead of a model's.

For tests of the chat flow's branches (answered, escalated, fallback on failure) that must run in
milliseconds and say exactly what the answerer wrote; also handy to demo the widget without an LLM.
The replies cite sources as [n] like a real answerer; the chat flow verifies them as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from assistant.answering.types import Source, Turn
from assistant.errors import GenerationError


@dataclass(frozen=True)
class Fail:
    """A scripted failure: stream `before` (possibly nothing), then raise `error` as a broken LLM does."""

    before: str = ""
    error: Exception = field(default_factory=lambda: GenerationError("scripted answerer failure"))


@dataclass(frozen=True)
class Call:
    """What the answerer was asked: tests check what reached it (history, sources)."""

    question: str
    sources: list[Source]
    history: list[Turn]


class ScriptedAnswerer:
    """Satisfies the `Answerer` protocol. Replies are used in order; the last one repeats."""

    def __init__(self, *replies: str | Fail, name: str = "scripted") -> None:
        if not replies:
            raise ValueError("ScriptedAnswerer needs at least one reply")
        self.name = name
        self.replies = list(replies)
        self.calls: list[Call] = []

    def stream(self, question: str, sources: list[Source], history: list[Turn]) -> Iterator[str]:
        self.calls.append(Call(question, list(sources), list(history)))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        text = reply.before if isinstance(reply, Fail) else reply
        # Word by word, split so that a marker may arrive in pieces, as tokens from an LLM do.
        yield from (piece for piece in re.split(r"(?<=\s)|(?=\[)", text) if piece)
        if isinstance(reply, Fail):
            raise reply.error
