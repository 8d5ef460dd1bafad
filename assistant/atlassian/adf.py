"""Atlassian Document Format both ways: plain text -> ADF for what we post (Jira Cloud v3 descriptions
and comments), ADF -> Markdown-ish text for what we read (tickets to index, tickets agent assist reads).

What we post stays plain: text nodes are never parsed as markup, so a `[~user]` or `!image!` in a
question shows as typed. What we read keeps code, headings, lists and links readable, and never keeps
a person: a mention becomes [NAME]."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100  # documents are trees from outside: a hostile one must not exhaust the stack


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: a paragraph per blank-line block, a hardBreak per newline."""
    content = []
    for paragraph in text.split("\n\n"):
        nodes: list[dict[str, Any]] = []
        for i, line in enumerate(paragraph.split("\n")):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def adf_to_text(value: Any) -> str:
    """A description or comment body as text: a string as is (v2 bodies are wiki markup), an ADF
    document (v3) rendered, nothing for None."""
    if value is None:
        return ""
    return value if isinstance(value, str) else _node(value, 0).strip()


def _node(node: Any, depth: int) -> str:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return ""
    kind, attrs, content = node.get("type"), node.get("attrs") or {}, node.get("content") or []

    def inner(sep: str = "") -> str:
        return sep.join(_node(c, depth + 1) for c in content)

    if kind == "text":
        text = str(node.get("text", ""))
        return f"`{text}`" if any(m.get("type") == "code" for m in node.get("marks") or []) else text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return "[NAME]"  # a mention is a person: never kept
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url", ""))
    if kind == "emoji":
        return str(attrs.get("text", ""))
    if kind == "codeBlock":
        return f"```{attrs.get('language') or ''}\n{inner()}\n```\n\n"
    if kind == "heading":
        return f"{'#' * int(attrs.get('level', 2))} {inner()}\n\n"
    if kind in ("bulletList", "orderedList"):
        items = [_node(li, depth + 1).strip().replace("\n", "\n   ") for li in content]
        marks = [f"{n}. " if kind == "orderedList" else "- " for n in range(1, len(items) + 1)]
        return "\n".join(m + i for m, i in zip(marks, items, strict=True)) + "\n\n"
    if kind == "tableRow":
        return " | ".join(_node(c, depth + 1).strip() for c in content) + "\n"
    if kind == "rule":
        return "---\n\n"
    if kind in ("paragraph", "table", "panel", "blockquote", "expand"):
        return inner().strip() + "\n\n"
    return inner()
