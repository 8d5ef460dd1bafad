"""Markdown: front matter and heading anchors as assistant.markdown_pages reads them (the demo docs
site uses the same rules), sections cut on top-level headings, raw HTML reduced to its visible text."""

from __future__ import annotations

from markdown_it import MarkdownIt

from assistant.markdown_pages import FrontMatterError, heading_anchors, page_title, split_front_matter
from ingest.parsers.base import ParsedDocument, ParseError, Raw, nest
from ingest.parsers.html import html_fragment_text


def parse_markdown(text: str, name: str, fallback: str) -> ParsedDocument:
    try:
        meta, body = split_front_matter(text)
    except FrontMatterError as exc:
        raise ParseError(f"{name}: {exc}") from exc
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    lines: list[str | None] = list(body.split("\n"))
    # Raw HTML blocks (comments, <script>, <div>) are reduced to their visible text so
    # hidden markup never reaches the index; everything else keeps its Markdown source.
    for tok in tokens:
        if tok.type == "html_block" and tok.level == 0 and tok.map:
            start, end = tok.map
            visible = html_fragment_text(tok.content)
            if not visible and end < len(lines) and not (lines[end] or "").strip():
                end += 1  # also drop the blank line after a vanished block
            lines[start:end] = [visible or None] + [None] * (end - start - 1)
    headings = heading_anchors(tokens)  # the demo docs site gives its headings these same ids
    # (first line, line after the heading, level, plain heading text, anchor) per top-level heading
    heads = [(lines_of[0], lines_of[1], level, heading, anchor)
             for i, level, heading, anchor in headings if (lines_of := tokens[i].map)]
    ends = [h[0] for h in heads[1:]] + [len(lines)] if heads else []

    def span(a: int, b: int) -> str:
        return "\n".join(line for line in lines[a:b] if line is not None)

    raw: list[Raw] = [(0, None, None, span(0, heads[0][0] if heads else len(lines)))]
    for (_, after, level, heading, anchor), end in zip(heads, ends, strict=True):
        raw.append((level, heading, anchor, span(after, end)))
    return ParsedDocument(page_title(meta, headings, fallback), meta, nest(raw))
