"""The fake's own Atlassian Document Format (ADF) code, written from Atlassian's reference
(developer.atlassian.com/cloud/jira/platform/apis/document/structure, the node and mark pages, and the
ADF JSON schema), never from answerdesk's: the fake is the oracle for the code under test, so it must not
share that code's mistakes.

- `document(text)`: the document the fake's Jira v3 returns for a field it stores as text.
- `problems(doc)`: why Jira would refuse a document a client sends; empty when it would accept it.
- `plain_text(doc)`: the text the fake stores for a document a client sends.

The stored text is a small Markdown subset, so a test can write a rich issue in one string: blocks are
separated by a blank line, a line break inside a block is a hardBreak, a ```lang fence is a codeBlock,
`# `..`###### ` starts a heading, a block whose every line starts with `- ` (or `1. `) is a bullet (ordered)
list, and `code` spans carry the code mark. `plain_text(document(t))` gives `t` back (blank lines squeezed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

FENCE = re.compile(r"^```([\w+#.-]*)\s*$")
HEADING = re.compile(r"^(#{1,6}) (.+)$")
BULLET = re.compile(r"^- (.+)$")
NUMBERED = re.compile(r"^\d+\. (.+)$")
CODE_SPAN = re.compile(r"`([^`]+)`")

# What may sit where (the reference's "content" rules for the nodes Jira accepts).
INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "mediaInline"}
LIST_ITEM_BLOCKS = {"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle"}
TOP_BLOCKS = {"paragraph", "heading", "codeBlock", "bulletList", "orderedList", "blockquote", "rule", "panel",
              "table", "mediaSingle", "mediaGroup", "expand", "blockCard"}
CHILDREN: dict[str, set[str]] = {
    "doc": TOP_BLOCKS,
    "paragraph": INLINE,
    "heading": INLINE,
    "codeBlock": {"text"},
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": LIST_ITEM_BLOCKS,
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle", "mediaGroup"},
    "panel": {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "blockCard", "rule"},
    "expand": TOP_BLOCKS - {"expand"},
    "table": {"tableRow"},
    "tableRow": {"tableHeader", "tableCell"},
    "tableHeader": TOP_BLOCKS - {"table", "expand"},
    "tableCell": TOP_BLOCKS - {"table", "expand"},
    "mediaSingle": {"media", "caption"},
    "mediaGroup": {"media"},
}
LEAVES = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "mediaInline", "rule",
          "blockCard", "media", "caption"}
NOT_EMPTY = {"bulletList", "orderedList", "listItem", "blockquote", "panel", "table", "tableRow", "mediaGroup"}
MARKS = {"code", "em", "link", "strike", "strong", "subsup", "textColor", "underline", "backgroundColor"}


# -- text -> document ------------------------------------------------------------------------------------

def document(text: str) -> dict[str, Any]:
    """The ADF document for stored text (see the module docstring for the conventions)."""
    return {"version": 1, "type": "doc", "content": [_block(lines) for lines in _blocks(text)]}


def _blocks(text: str) -> list[list[str]]:
    """Lines grouped into blocks: a blank line ends a block, except inside a fence."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fenced = False
    for line in text.strip("\n").split("\n"):
        if fenced:
            current.append(line)
            fenced = line.strip() != "```"
            if not fenced:
                blocks.append(current)
                current = []
        elif FENCE.match(line) and not current:
            current, fenced = [line], True
        elif line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _inline(line: str) -> list[dict[str, Any]]:
    """Text nodes for one line; `code` spans get the code mark. Empty text nodes are invalid ADF."""
    nodes: list[dict[str, Any]] = []
    for n, part in enumerate(CODE_SPAN.split(line)):
        if part:
            nodes.append({"type": "text", "text": part, **({"marks": [{"type": "code"}]} if n % 2 else {})})
    return nodes


def _paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for n, line in enumerate(lines):
        if n:
            content.append({"type": "hardBreak"})
        content += _inline(line)
    return {"type": "paragraph", "content": content}


def _block(lines: list[str]) -> dict[str, Any]:
    fence = FENCE.match(lines[0])
    if fence and len(lines) > 1 and lines[-1].strip() == "```":
        node: dict[str, Any] = {"type": "codeBlock"}
        if fence.group(1):
            node["attrs"] = {"language": fence.group(1)}
        code = "\n".join(lines[1:-1])
        if code:
            node["content"] = [{"type": "text", "text": code}]
        return node
    heading = HEADING.match(lines[0])
    if heading and len(lines) == 1:
        return {"type": "heading", "attrs": {"level": len(heading.group(1))}, "content": _inline(heading.group(2))}
    for pattern, kind in ((BULLET, "bulletList"), (NUMBERED, "orderedList")):
        items = [pattern.match(line) for line in lines]
        if all(items):
            return {"type": kind, "content": [{"type": "listItem", "content": [_paragraph([m.group(1)])]}
                                              for m in items if m]}
    return _paragraph(lines)


# -- document -> text ------------------------------------------------------------------------------------

def plain_text(node: Any) -> str:
    """The stored text for a document (a v2 string passes through): the inverse of `document`. Nodes the
    conventions cannot express keep their words (a mention its display text, a card its URL)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    kind, attrs = str(node.get("type")), node.get("attrs") or {}
    if kind in LEAF_TEXT:
        return LEAF_TEXT[kind](node, attrs)
    parts = [plain_text(child) for child in node.get("content") or [] if isinstance(child, dict)]
    if kind == "heading":
        return f"{'#' * int(attrs.get('level', 1))} {''.join(parts)}"
    if kind == "codeBlock":
        return "\n".join([f"```{attrs.get('language', '')}", "".join(parts), "```"])
    if kind == "bulletList":
        return "\n".join(f"- {item}" for item in parts)
    if kind == "orderedList":
        return "\n".join(f"{n}. {item}" for n, item in enumerate(parts, int(attrs.get("order", 1))))
    if kind == "blockquote":
        return "\n".join(f"> {line}" for part in parts for line in part.split("\n"))
    if kind in JOINED_BY:
        return JOINED_BY[kind].join(parts)
    return "\n\n".join(filter(None, parts))  # doc, panel, expand and the like: blocks


def _marked_text(node: dict[str, Any], _attrs: dict[str, Any]) -> str:
    marks = {m.get("type") for m in node.get("marks") or [] if isinstance(m, dict)}
    return ("`{}`" if "code" in marks else "{}").format(node.get("text", ""))


LEAF_TEXT: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "text": _marked_text,
    "hardBreak": lambda _node, _attrs: "\n",
    "rule": lambda _node, _attrs: "---",
    "mention": lambda _node, attrs: str(attrs.get("text") or f"@{attrs.get('id', '')}"),
    "emoji": lambda _node, attrs: str(attrs.get("text") or attrs.get("shortName", "")),
    "inlineCard": lambda _node, attrs: str(attrs.get("url", "")),
    "blockCard": lambda _node, attrs: str(attrs.get("url", "")),
}
JOINED_BY = {"paragraph": "", "listItem": "\n", "tableRow": " | ", "table": "\n", "tableCell": "", "tableHeader": ""}


# -- validation ------------------------------------------------------------------------------------------

def problems(doc: Any) -> list[str]:
    """What is wrong with a document a client sends, each with where it is; [] when Jira would take it."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        return ["(root): not an ADF document: expected an object with type 'doc'"]
    found = [] if doc.get("version") == 1 else [f"(root): version must be 1, not {doc.get('version')!r}"]
    return found + _check(doc, "(root)", 0)


def _check(node: dict[str, Any], where: str, depth: int) -> list[str]:
    kind = node.get("type")
    if depth > 50:
        return [f"{where}: nested too deeply"]
    out: list[str] = []
    content = node.get("content")
    if content is not None and not isinstance(content, list):
        return [f"{where}: content must be an array"]
    if kind in LEAVES and content:
        out.append(f"{where}: a {kind} node has no content")
    if kind in NOT_EMPTY and not content:
        out.append(f"{where}: a {kind} needs at least one child")
    if kind == "text":
        out += _check_text(node, where, code_block=False)
    if kind == "heading" and (node.get("attrs") or {}).get("level") not in range(1, 7):
        out.append(f"{where}: a heading needs attrs.level 1 to 6")
    if kind == "hardBreak" and (node.get("attrs") or {}).get("text", "\n") != "\n":
        out.append(f"{where}: hardBreak attrs.text may only be a newline")
    allowed = CHILDREN.get(str(kind), set())
    for n, child in enumerate(content or []):
        here = f"{where}/content/{n}"
        if not isinstance(child, dict) or not isinstance(child.get("type"), str):
            out.append(f"{here}: a node must be an object with a type")
        elif child["type"] not in allowed:
            out.append(f"{here}: a {child['type']} node may not sit in a {kind}")
        elif kind == "codeBlock":
            out += _check_text(child, here, code_block=True)
        else:
            out += _check(child, here, depth + 1)
    return out


def _check_text(node: dict[str, Any], where: str, code_block: bool) -> list[str]:
    out = []
    if not isinstance(node.get("text"), str) or not node["text"]:
        out.append(f"{where}: a text node needs non-empty text")
    marks = node.get("marks") or []
    if code_block and marks:
        out.append(f"{where}: text in a codeBlock takes no marks")
    kinds = [m.get("type") if isinstance(m, dict) else None for m in marks]
    out += [f"{where}: unknown mark {k!r}" for k in kinds if k not in MARKS]
    if "code" in kinds and set(kinds) - {"code", "link"}:
        out.append(f"{where}: the code mark combines with link only")
    if any(m.get("type") == "link" and not (m.get("attrs") or {}).get("href") for m in marks if isinstance(m, dict)):
        out.append(f"{where}: a link mark needs attrs.href")
    return out
