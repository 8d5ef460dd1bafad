"""reStructuredText through docutils, with everything that could read files, print or exit switched off."""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree

from assistant.anchors import slugify
from ingest.parsers.base import ParsedDocument, ParseError, Raw, fence, nest

_RST_SETTINGS = {
    "report_level": 5, "halt_level": 5,  # never print, never abort on bad markup
    "file_insertion_enabled": False, "raw_enabled": False,  # no include/raw/csv :file:
    "_disable_config": True,  # ignore docutils.conf files around the process
    "traceback": True,  # raise instead of printing and calling sys.exit()
    "warning_stream": False,
    "line_length_limit": 100_000,  # default 10k silently drops the whole document
}
# Not content: parse errors (they quote the offending source), raw, comments, targets...
_RST_SKIP = (nodes.Invisible, nodes.raw, nodes.system_message, nodes.section, nodes.docinfo,
             nodes.decoration, nodes.title, nodes.subtitle)


def _rst_block(node: nodes.Node) -> str:
    if isinstance(node, _RST_SKIP) or (
            isinstance(node, nodes.topic) and "contents" in node["classes"]):
        return ""  # a table of contents is navigation, not content
    if isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
        return "\n".join(_bullet(_rst_body(item.children)) for item in node.children)
    if isinstance(node, (nodes.literal_block, nodes.doctest_block)):
        classes = [c for c in node.get("classes", []) if c not in ("code", "doctest")]
        return fence(node.astext(), classes[0] if classes else "")
    if isinstance(node, nodes.table):
        return "\n".join("| " + " | ".join(" ".join(e.astext().split()).replace("|", "\\|")
                                           for e in row.children) + " |"
                         for row in node.findall(nodes.row))
    if isinstance(node, (nodes.definition_list_item, nodes.field)):
        term, *rest = node.children
        return _bullet(f"{term.astext()}: " + _rst_body(rest))
    if isinstance(node, nodes.TextElement):
        return " ".join(node.astext().split())
    if isinstance(node, nodes.Element):
        body = _rst_body(node.children)
        if isinstance(node, nodes.Admonition) and node.tagname != "admonition" and body:
            return f"{node.tagname.capitalize()}: {body}"
        return body
    return node.astext().strip()


def _rst_body(children: Any) -> str:
    return "\n\n".join(b for b in (_rst_block(c) for c in children) if b)


def _bullet(text: str) -> str:
    return "- " + re.sub(r"\n(?=.)", "\n  ", text)  # indent continuation, not blank lines


def _rst_sections(node: nodes.Element, level: int, out: list[Raw]) -> None:
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            heading = " ".join(title.astext().split()) if title else ""
            anchor = child["ids"][0] if child["ids"] else slugify(heading)
            out.append((level, heading, anchor, _rst_body(child.children)))
            _rst_sections(child, level + 1, out)


def parse_rst(text: str, name: str, fallback: str) -> ParsedDocument:
    try:
        doc = publish_doctree(text, source_path=name, settings_overrides=_RST_SETTINGS)
    except Exception as exc:  # docutils internals (incl. RecursionError) on hostile input
        raise ParseError(f"{name}: cannot parse reStructuredText ({exc})") from exc
    meta: dict[str, Any] = {}
    for info in doc.findall(nodes.docinfo):
        for item in info.children:
            if isinstance(item, nodes.field):
                meta[item[0].astext().strip().lower()] = item[1].astext().strip()
            elif isinstance(item, nodes.authors):
                meta["authors"] = [a.astext() for a in item.children]
            else:  # registered bibliographic fields: author, version, date, status...
                meta[item.tagname.lower()] = item.astext().strip()
    title = doc[0].astext() if doc.children and isinstance(doc[0], nodes.title) else None
    raw: list[Raw] = []
    if title:  # the promoted document title acts like a Markdown H1 section
        anchor = doc["ids"][0] if doc.get("ids") else slugify(title)
        raw.append((1, title, anchor, _rst_body(doc.children)))
    else:
        raw.append((0, None, None, _rst_body(doc.children)))
    _rst_sections(doc, 2 if title else 1, raw)
    meta_title = meta.get("title") if isinstance(meta.get("title"), str) else None
    first_top = next((r[1] for r in raw if r[1] is not None), None)  # e.g. after a field list
    return ParsedDocument(title or meta_title or first_top or fallback, meta, nest(raw))
