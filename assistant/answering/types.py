"""Types shared by the answerers and the chat flow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from assistant.types import Hit


@dataclass(frozen=True)
class Source:
    """A retrieved chunk as the answerer sees it: numbered [n] in retrieval order."""

    n: int
    hit: Hit

    @property
    def text(self) -> str:
        return self.hit.chunk.text

    @property
    def title(self) -> str:
        return self.hit.chunk.heading_text


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


class Answerer(Protocol):
    """Writes an answer from numbered sources, citing them as [n]; yields text as it is produced."""

    name: str

    def stream(self, question: str, sources: list[Source], history: list[Turn]) -> Iterator[str]: ...
