"""How a Markdown page is read, in one place: ingestion (ingest/parsers) and the demo docs site
(api/web.py) both use these, so the anchors ingestion puts in citation links are the ids the site
gives its headings, and both agree on a page's front matter and title.
"""

from __future__ import annotations

from typing import Any

import yaml

from assistant import safe_yaml
from assistant.anchors import slugify, unique_anchor


class FrontMatterError(ValueError):
    """The page starts with a front matter block that is not a YAML mapping; says what is wrong."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(metadata with lower-cased keys, body) of a page with "\\n" line ends. No front matter: ({}, text).

    The body keeps the line numbers of the source (the front matter becomes blank lines), so
    markdown-it's line maps point into the original file."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:  # a lone leading '---' is just a thematic break
        return {}, text
    try:
        data = safe_yaml.load("\n".join(lines[1:end]))
    except (yaml.YAMLError, RecursionError) as exc:
        raise FrontMatterError(f"broken YAML front matter ({' '.join(str(exc).split())})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter is not a mapping")
    return {str(k).lower(): v for k, v in data.items()}, "\n" * end + "\n".join(lines[end + 1:])


def inline_text(token: Any) -> str:
    """The plain text of a markdown-it inline token: what a heading's anchor and title are made of."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):  # image.content is its alt text
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def heading_anchors(tokens: list[Any]) -> list[tuple[int, int, str, str]]:
    """(token index, level, plain text, anchor) of each top-level heading, in order; anchors are
    unique within the page (GitHub's foo, foo-1 rule)."""
    used: set[str] = set()
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0:
            text = inline_text(tokens[i + 1])
            out.append((i, int(tok.tag[1]), text, unique_anchor(slugify(text), used)))
    return out


def page_title(meta: dict[str, Any], headings: list[tuple[int, int, str, str]], fallback: str) -> str:
    """The front matter's title, else the first level-1 heading, else the fallback (from the file name)."""
    if isinstance(meta.get("title"), str) and meta["title"]:
        return str(meta["title"])
    return next((text for _, level, text, _ in headings if level == 1), None) or fallback
