"""Sentence splitting and term matching shared by the extractive answerer and the checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from assistant.index.keyword import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'`(\[*_])")
_MARKER = re.compile(r"\s*\[\d{1,3}\]")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")


@dataclass(frozen=True)
class Unit:
    """A sentence, list item, table or code block of a source, in reading order.

    Text is quoted as the reader sees it rendered (see `render_inline`); code is verbatim."""

    text: str
    position: int
    kind: str = "sentence"  # sentence | item | table | code | row
    bullet: str = ""  # an item's list marker as written ("-", "1."), for quoting the list again
    row: int = -1  # a row's line in its table, the nearest "table" unit before it

    @property
    def is_code(self) -> bool:
        return self.kind == "code"


_LEADING_MARKERS = re.compile(r"^((?:\[\d{1,3}\]\s*)+)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_LINK = re.compile(r"!?\[([^\]]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+)>")
_PLACEHOLDER = 0xE000  # private-use code points stand for escaped characters while markup is removed


def render_inline(text: str, keep: str = "") -> str:
    """Markdown inline markup as a reader sees it: link text without its target, no backslash
    escapes. Code spans and emphasis stay as written: the answer is rendered as Markdown (the widget)
    or mrkdwn (Slack), so they still show as code and bold, and stripping `_`/`*` pairs would eat
    the underscores of identifiers such as `window.__name`. Characters in `keep` stay escaped (a
    table's `\\|`)."""
    out = []
    last = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_render_plain(text[last:m.start()], keep))
        out.append(m.group(0))
        last = m.end()
    out.append(_render_plain(text[last:], keep))
    return "".join(out)


def _render_plain(text: str, keep: str) -> str:
    if not text:
        return text

    def hide(m: re.Match[str]) -> str:
        return m.group(0) if m.group(1) in keep else chr(_PLACEHOLDER + ord(m.group(1)))

    text = _ESCAPED.sub(hide, text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _REF_LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1), text)
    return re.sub("[\uE000-\uE0FF]", lambda m: chr(ord(m.group(0)) - _PLACEHOLDER), text)


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


def source_units(text: str, rows: bool = False) -> list[Unit]:
    """Cut Markdown-ish section text into units an answer can quote whole: sentences of paragraphs,
    list items (with their continuation lines), tables and fenced code blocks. With `rows`, each
    table is followed by its body rows (kind "row", see `table_rows`), which the answerer ranks
    like sentences: a section that is only a table has something to match a question by."""
    units: list[Unit] = []
    lines = text.split("\n")
    i, paragraph = 0, list[str]()
    item: list[str] = []
    bullet = ""

    def flush() -> None:
        nonlocal bullet
        if paragraph:
            for sentence in split_sentences(render_inline(" ".join(paragraph))):
                if any(c.isalnum() for c in sentence):  # a stray "." is no sentence to quote and cite
                    units.append(Unit(sentence, len(units)))
            paragraph.clear()
        if item:
            units.append(Unit(render_inline(" ".join(item)), len(units), "item", bullet))
            item.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = _FENCE.match(stripped)
        bullet_match = LIST_ITEM.match(line)
        if fence:
            flush()
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                block.append(lines[i])
                i += 1
            block.append(lines[i] if i < len(lines) else fence.group(1))
            units.append(Unit("\n".join(block).strip(), len(units), "code"))
        elif stripped.startswith("|"):
            flush()
            table_lines = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                table_lines.append(render_inline(lines[i].strip(), keep="|"))
                i += 1
            table = Unit("\n".join(table_lines), len(units), "table")
            units.append(table)
            if rows:
                units += [replace(r, position=len(units) + k) for k, r in enumerate(table_rows(table))]
            continue
        elif not stripped or stripped.startswith(("#", ">")) or set(stripped) <= set("-=*_ "):
            flush()  # headings and rules read badly out of context
        elif bullet_match:
            flush()
            bullet = bullet_match.group(0).strip()
            item.append(line[bullet_match.end():].strip())
        elif item and line[:1].isspace():
            item.append(stripped)  # an item's continuation line
        else:
            if item:
                flush()
            paragraph.append(stripped)
        i += 1
    flush()
    return units


_TABLE_RULE = re.compile(r"^\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_CELL_BORDER = re.compile(r"(?<!\\)\|")


def _header_lines(lines: list[str]) -> int:
    """How many lines of a table are its head: the header row and the |---| rule under it, or none."""
    return 2 if len(lines) > 1 and _TABLE_RULE.match(lines[1]) else 0


def table_cells(line: str) -> list[str]:
    """A table line's cells as a reader sees them (an escaped pipe is a pipe)."""
    inner = line.strip().removeprefix("|")
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_BORDER.split(inner)]


def table_rows(table: Unit) -> list[Unit]:
    """A table's body rows as text that stands alone: each cell after its column's header
    ("Status: 413; When: the request body is larger ..."), so a row can be matched to a question
    by meaning and by words like a sentence. `row` is the row's line in the table, for quoting it."""
    lines = table.text.split("\n")
    start = _header_lines(lines)
    header = table_cells(lines[0]) if start else []
    out = []
    for k in range(start, len(lines)):
        cells = table_cells(lines[k])
        parts = [f"{header[c]}: {cell}" if c < len(header) and header[c] else cell
                 for c, cell in enumerate(cells) if cell]
        out.append(Unit("; ".join(parts), table.position, "row", row=k))
    return out


def table_excerpt(table: Unit, rows: list[int]) -> Unit:
    """The table's head and the given rows (line numbers, as `table_rows` gives them), word for
    word and in table order: a quote of a long table that keeps its column names."""
    lines = table.text.split("\n")
    keep = list(range(_header_lines(lines))) + sorted(set(rows))
    return Unit("\n".join(lines[k] for k in keep), table.position, "table")


def quoted_block(block: str, texts: list[str]) -> bool:
    """Whether a list or table in an answer is quoted word for word from one of `texts` (source
    texts): each line, without its list marker, appears in the rendered source."""
    lines = [line.strip() for line in block.strip().split("\n")]
    if not lines or not all(line.startswith("|") or LIST_ITEM.match(line) for line in lines):
        return False
    if _MARKER.search(block):
        return False  # it cites, so it claims: checked like any cited sentence
    rendered = [" ".join(" ".join(u.text for u in source_units(t)).split()) for t in texts]
    return all(any(" ".join(LIST_ITEM.sub("", line, count=1).split()) in r for r in rendered) for line in lines)


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


# Words of how a question is asked, not of what it is about (stemmed, as `terms` gives them).
QUESTION_WORDS = frozenset({"how", "what", "when", "where", "why", "which", "who", "whom", "whose", "do",
    "doe", "did", "can", "could", "should", "would", "will", "may", "might", "must", "need", "want", "get",
    "make", "go", "use", "i", "me", "my", "we", "our", "us", "you", "your", "it", "there", "is", "are", "am",
    "be", "anyon", "someth", "thing", "way", "possibl", "abl", "pleas"})


def terms(text: str) -> set[str]:
    """Stemmed content words (stopwords out): what 'the same words' means for overlap checks."""
    return set(tokenize([text])[0])


def coverage(needles: set[str], haystack: set[str]) -> float:
    return len(needles & haystack) / len(needles) if needles else 0.0
