"""What every format's parser produces, and the steps they share (nesting headings, code fences)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class ParseError(Exception):
    """A file that cannot be read as its format (bad encoding, broken front matter...)."""


@dataclass
class Section:
    heading_path: list[str]  # enclosing headings, outermost first, ending with this one's
    anchor: str | None  # fragment id of the heading; None for text before any heading
    text: str  # this section's own body, Markdown-ish (``` fences, "- " items), stripped


@dataclass
class ParsedDocument:
    title: str
    meta: dict[str, Any] = field(default_factory=dict)  # keys lower-cased
    sections: list[Section] = field(default_factory=list)  # document order, none empty


# (level, heading or None, anchor, text): what every format produces before nesting.
Raw = tuple[int, str | None, str | None, str]


def nest(raw: list[Raw]) -> list[Section]:
    """Turn flat (level, heading) runs into heading paths; drop sections with no text."""
    stack: list[tuple[int, str]] = []
    sections = []
    for level, heading, anchor, text in raw:
        if heading is not None:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        if text.strip():
            sections.append(Section([h for _, h in stack], anchor, text.strip()))
    return sections


def fence(code: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in code:  # a longer fence keeps embedded ``` from closing the block
        ticks += "`"
    lang = re.sub(r"[^\w+#.-]", "", lang)
    return f"{ticks}{lang}\n{code.strip(chr(10)).rstrip()}\n{ticks}"
