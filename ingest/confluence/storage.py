"""Confluence storage format (XHTML with ac:/ri: elements) to Markdown-ish text.

Headings stay Markdown headings, so `parse_text(..., ".md")` cuts the page into sections with anchors;
lists, tables, code blocks (the `code` and `noformat` macros) and panels (info, note, warning, tip,
panel) keep their shape because answers quote them. Navigation-only macros (toc, children, attachments)
are dropped. Page content is untrusted: nothing is fetched, executed or followed.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, NavigableString, PageElement, Tag

_PANELS = {"info": "Info", "note": "Note", "warning": "Warning", "tip": "Tip", "panel": "", "success": "Success",
           "error": "Error"}
_DROPPED_MACROS = {"toc", "toc-zone", "children", "pagetree", "pagetreesearch", "recently-updated", "attachments",
                   "contentbylabel", "livesearch", "anchor", "profile", "gallery", "viewfile", "view-file",
                   "create-from-template", "blog-posts", "space-details", "roadmap", "page-index"}
_INLINE_TAGS = {"a", "abbr", "b", "strong", "i", "em", "u", "s", "del", "ins", "sub", "sup", "span", "code", "kbd",
                "font", "small", "big", "cite", "q", "br", "time", "img", "ac:link", "ac:emoticon", "ac:image",
                "ac:inline-comment-marker", "ac:placeholder", "ri:page", "ri:user", "ri:attachment", "ri:url"}
_INLINE_MACROS = {"status", "jira", "anchor", "mention"}
_MAX_DEPTH = 200  # deeper nesting is flattened to text instead of recursing further


def storage_to_markdown(xhtml: str) -> str:
    soup = BeautifulSoup(xhtml or "", "html.parser")
    return re.sub(r"\n{3,}", "\n\n", _blocks(soup, 0)).strip()


def _param(macro: Tag, name: str) -> str:
    for p in macro.find_all("ac:parameter", recursive=False):
        if p.get("ac:name") == name:
            return " ".join(p.get_text(" ").split())
    return ""


def _is_inline(node: Tag) -> bool:
    if node.name in ("ac:structured-macro", "ac:macro"):
        return node.get("ac:name") in _INLINE_MACROS
    return node.name in _INLINE_TAGS


def _blocks(node: Tag, depth: int) -> str:
    """The children of node as blocks separated by blank lines; runs of inline content become paragraphs."""
    if depth > _MAX_DEPTH:
        return " ".join(node.get_text(" ").split())
    parts: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = _clean_inline("".join(inline))
        if text:
            parts.append(text)
        inline.clear()

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            inline.append(_squash(str(child)))
        elif isinstance(child, Tag) and _is_inline(child):
            inline.append(_inline(child, depth + 1))
        elif isinstance(child, Tag):
            flush()
            parts.append(_block(child, depth + 1))
    flush()
    return "\n\n".join(p for p in parts if p.strip())


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _clean_inline(text: str) -> str:
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(line for line in lines if line)
    return re.sub(r"^(#+)", r"\\\1", text)  # a paragraph starting with '#' is not a heading


def _inline(node: PageElement, depth: int) -> str:
    if isinstance(node, NavigableString):
        return "" if isinstance(node, Comment) else _squash(str(node))
    if not isinstance(node, Tag):
        return ""
    name = node.name
    if depth > _MAX_DEPTH:
        return _squash(node.get_text(" "))
    if name in ("ac:structured-macro", "ac:macro"):
        macro = node.get("ac:name")
        if macro == "status":
            return _param(node, "title")
        if macro == "jira":
            return f"Jira issue {_param(node, 'key')}".strip()
        return ""
    if name == "br":
        return "\n"
    if name in ("ac:emoticon", "ac:image", "img", "ac:placeholder"):
        return ""
    if name == "time":
        return str(node.get("datetime", "")) or node.get_text()
    if name == "ac:link":
        return _link_text(node)
    if name in ("ri:page", "ri:attachment", "ri:user", "ri:url"):
        return ""
    inner = "".join(_inline(c, depth + 1) for c in node.children)
    text = inner.strip()
    if not text:
        return inner
    if name in ("strong", "b"):
        return f"**{text}**"
    if name in ("em", "i", "cite"):
        return f"*{text}*"
    if name in ("code", "kbd"):
        return f"`{text}`"
    if name == "a":
        href = str(node.get("href", ""))
        return f"[{text}]({href})" if href.startswith(("http://", "https://")) and href != text else text
    return inner


def _link_text(node: Tag) -> str:
    body = node.find(["ac:plain-text-link-body", "ac:link-body"])
    if body is not None and body.get_text().strip():
        return " ".join(body.get_text(" ").split())
    page = node.find("ri:page")
    if page is not None:
        return str(page.get("ri:content-title", ""))
    attachment = node.find("ri:attachment")
    if attachment is not None:
        return str(attachment.get("ri:filename", ""))
    return "@user" if node.find("ri:user") is not None else ""


def _block(node: Tag, depth: int) -> str:
    name = node.name
    if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
        text = " ".join(_inline(node, depth).replace("\n", " ").split())
        return f"{'#' * int(name[1])} {text}" if text else ""
    if name in ("ul", "ol"):
        return _list(node, depth)
    if name == "table":
        return _table(node, depth)
    if name == "pre":
        return _fence(node.get_text())
    if name == "blockquote":
        return _quote(_blocks(node, depth))
    if name == "hr":
        return "---"
    if name in ("ac:structured-macro", "ac:macro"):
        return _macro(node, depth)
    if name == "ac:task-list":
        return "\n".join(_task(t, depth) for t in node.find_all("ac:task", recursive=False))
    if name in ("ac:adf-extension", "ac:adf-node"):
        return _adf_node(node, depth)
    if name in ("script", "style", "ac:parameter", "ac:placeholder"):
        return ""
    return _blocks(node, depth)  # p, div, section, layouts, rich-text bodies: transparent


def _fence(code: str, lang: str = "") -> str:
    code = code.strip("\n")
    ticks = "```"
    while ticks in code:
        ticks += "`"
    lang = re.sub(r"[^\w+#.-]", "", lang)
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.split("\n"))


def _macro(node: Tag, depth: int) -> str:
    macro = str(node.get("ac:name", "")).lower()
    rich = node.find("ac:rich-text-body", recursive=False)
    plain = node.find("ac:plain-text-body", recursive=False)
    if macro in ("code", "noformat", "code-block"):
        text = "".join(str(s) for s in plain.contents if isinstance(s, NavigableString)) if plain else ""
        return _fence(text, _param(node, "language"))
    if macro in _PANELS:
        label = ": ".join(x for x in (_PANELS[macro], _param(node, "title")) if x)
        body = _blocks(rich, depth) if rich is not None else ""
        return _quote((f"**{label}:** " if label else "") + body)
    if macro == "expand":
        title = _param(node, "title") or "Details"
        return f"**{title}**\n\n{_blocks(rich, depth)}" if rich is not None else ""
    if macro in _DROPPED_MACROS:
        return ""
    if macro in _INLINE_MACROS:
        return _inline(node, depth)
    if rich is not None:
        return _blocks(rich, depth)
    if plain is not None:
        return plain.get_text().strip()
    return ""


def _adf_node(node: Tag, depth: int) -> str:
    """The new editor stores some panels as ac:adf-extension; keep their content like a panel's."""
    inner = node.find("ac:adf-node") if node.name == "ac:adf-extension" else node
    if inner is None:
        return ""
    content = inner.find("ac:adf-content")
    kind = ""
    for attribute in inner.find_all("ac:adf-attribute"):
        if attribute.get("key") == "panel-type":
            kind = attribute.get_text().strip().title()
    body = _blocks(content, depth) if content is not None else ""
    return _quote(f"**{kind}:** {body}" if kind else body) if inner.get("type") == "panel" else body


def _task(task: Tag, depth: int) -> str:
    status = task.find("ac:task-status")
    body = task.find("ac:task-body")
    done = status is not None and status.get_text().strip() == "complete"
    text = " ".join(_inline(body, depth).split()) if body is not None else ""
    return f"- [{'x' if done else ' '}] {text}"


def _list(node: Tag, depth: int) -> str:
    lines: list[str] = []
    ordered = node.name == "ol"
    for n, item in enumerate(node.find_all("li", recursive=False), 1):
        marker = f"{n}. " if ordered else "- "
        body = _blocks(item, depth).replace("\n\n", "\n").split("\n")  # an item's blocks stay together
        lines.append(marker + body[0])
        lines += [(" " * len(marker) + line) if line else "" for line in body[1:]]
    return "\n".join(lines)


def _cell(cell: Tag, depth: int) -> str:
    return " ".join(_blocks(cell, depth).split()).replace("|", "\\|")


def _table(node: Tag, depth: int) -> str:
    rows = [r for r in node.find_all("tr") if r.find_parent("table") is node]
    grid = [[_cell(c, depth) for c in r.find_all(["th", "td"], recursive=False)] for r in rows]
    grid = [r for r in grid if any(r)]
    if not grid:
        return ""
    width = max(len(r) for r in grid)
    grid = [r + [""] * (width - len(r)) for r in grid]
    out = ["| " + " | ".join(grid[0]) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(r) + " |" for r in grid[1:]]
    return "\n".join(out)
