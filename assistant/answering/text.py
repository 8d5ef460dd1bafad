"""Sentence splitting and term matching shared by the extractive answerer and the checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.index.keyword import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'`(\[*_])")
_MARKER = re.compile(r"\s*\[\d{1,3}\]")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")


@dataclass(frozen=True)
class Unit:
    """A sentence, list item or code block of a source, verbatim, in reading order."""

    text: str
    position: int
    is_code: bool = False


_LEADING_MARKERS = re.compile(r"^((?:\[\d{1,3}\]\s*)+)")


def split_sentences(text: str) -> list[str]:
    """Sentences; a citation written after the full stop ("... URL. [2]") stays with its sentence."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        m = _LEADING_MARKERS.match(part)
        if m and out:
            out[-1] = f"{out[-1]} {m.group(1).strip()}"
            part = part[m.end():].strip()
        if part:
            out.append(part)
    return out


def source_units(text: str) -> list[Unit]:
    """Cut Markdown-ish section text into units an answer can quote whole."""
    units: list[Unit] = []
    lines = text.split("\n")
    i, paragraph = 0, list[str]()

    def flush() -> None:
        if paragraph:
            for sentence in split_sentences(" ".join(paragraph)):
                units.append(Unit(sentence, len(units)))
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = _FENCE.match(stripped)
        if fence:
            flush()
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                block.append(lines[i])
                i += 1
            block.append(lines[i] if i < len(lines) else fence.group(1))
            units.append(Unit("\n".join(block).strip(), len(units), is_code=True))
        elif not stripped or stripped.startswith(("#", "|", ">")) or set(stripped) <= set("-=*_ "):
            flush()  # headings, tables and rules read badly out of context
        elif _LIST_ITEM.match(line):
            flush()
            paragraph.append(_LIST_ITEM.sub("", line, count=1).strip())
            flush()
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    return units


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def terms(text: str) -> set[str]:
    """Stemmed content words (stopwords out): what 'the same words' means for overlap checks."""
    return set(tokenize([text])[0])


def coverage(needles: set[str], haystack: set[str]) -> float:
    return len(needles & haystack) / len(needles) if needles else 0.0
