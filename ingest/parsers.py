"""Parse one documentation file (Markdown, reStructuredText, HTML) into heading sections.

Each section later becomes chunks with a deep link ``URL#anchor``, so anchors must match
what the published site uses. All input is untrusted: parsing never prints, never reads
other files, and malformed input yields a ParseError or an empty document, not a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup, CData, NavigableString, Tag
from docutils import nodes
from docutils.core import publish_doctree
from markdown_it import MarkdownIt

from assistant.anchors import slugify
from assistant.anchors import unique_anchor as _unique
from assistant.markdown_pages import FrontMatterError, heading_anchors, page_title, split_front_matter

__all__ = ["SUPPORTED_SUFFIXES", "ParseError", "ParsedDocument", "Section", "parse_bytes", "parse_file", "parse_text",
           "slugify"]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".rst", ".html", ".htm"})


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
_Raw = tuple[int, str | None, str | None, str]


def parse_file(path: Path) -> ParsedDocument:
    path = Path(path)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ParseError(f"{path}: unsupported file type {path.suffix!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return parse_bytes(data, path.suffix, name=str(path))


def parse_bytes(data: bytes, suffix: str, name: str = "<bytes>") -> ParsedDocument:
    """A file's content already read (and checked) by the caller; UTF-8, a BOM allowed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{name}: not valid UTF-8 (byte {exc.start})") from exc
    return parse_text(text, suffix, name=name)


def parse_text(text: str, suffix: str, name: str = "<string>") -> ParsedDocument:
    suffix = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ParseError(f"{name}: unsupported file type {suffix!r}")
    # One line convention for all parsers; markdown-it also counts lines on "\n" only.
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    fallback = _humanise(name)
    if suffix in (".md", ".markdown"):
        return _parse_markdown(text, name, fallback)
    if suffix == ".rst":
        return _parse_rst(text, name, fallback)
    return _parse_html(text, fallback)


def _humanise(name: str) -> str:
    stem = "" if name.startswith("<") else Path(name).stem
    words = " ".join(re.split(r"[-_\s]+", stem)).strip()
    return words[:1].upper() + words[1:] if words else "Untitled"


def _nest(raw: list[_Raw]) -> list[Section]:
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


def _fence(code: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in code:  # a longer fence keeps embedded ``` from closing the block
        ticks += "`"
    lang = re.sub(r"[^\w+#.-]", "", lang)
    return f"{ticks}{lang}\n{code.strip(chr(10)).rstrip()}\n{ticks}"


# --- Markdown ---------------------------------------------------------------------------

def _parse_markdown(text: str, name: str, fallback: str) -> ParsedDocument:
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
            visible = _html_fragment_text(tok.content)
            if not visible and end < len(lines) and not (lines[end] or "").strip():
                end += 1  # also drop the blank line after a vanished block
            lines[start:end] = [visible or None] + [None] * (end - start - 1)
    headings = heading_anchors(tokens)  # the demo docs site gives its headings these same ids
    # (first line, line after the heading, level, plain heading text, anchor) per top-level heading
    heads = [(tokens[i].map[0], tokens[i].map[1], level, heading, anchor)
             for i, level, heading, anchor in headings if tokens[i].map]
    ends = [h[0] for h in heads[1:]] + [len(lines)] if heads else []

    def span(a: int, b: int) -> str:
        return "\n".join(line for line in lines[a:b] if line is not None)

    raw: list[_Raw] = [(0, None, None, span(0, heads[0][0] if heads else len(lines)))]
    for (_, after, level, heading, anchor), end in zip(heads, ends, strict=True):
        raw.append((level, heading, anchor, span(after, end)))
    return ParsedDocument(page_title(meta, headings, fallback), meta, _nest(raw))


# --- reStructuredText -------------------------------------------------------------------

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
        return _fence(node.astext(), classes[0] if classes else "")
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


def _rst_sections(node: nodes.Element, level: int, out: list[_Raw]) -> None:
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            heading = " ".join(title.astext().split()) if title else ""
            anchor = child["ids"][0] if child["ids"] else slugify(heading)
            out.append((level, heading, anchor, _rst_body(child.children)))
            _rst_sections(child, level + 1, out)


def _parse_rst(text: str, name: str, fallback: str) -> ParsedDocument:
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
    raw: list[_Raw] = []
    if title:  # the promoted document title acts like a Markdown H1 section
        anchor = doc["ids"][0] if doc.get("ids") else slugify(title)
        raw.append((1, title, anchor, _rst_body(doc.children)))
    else:
        raw.append((0, None, None, _rst_body(doc.children)))
    _rst_sections(doc, 2 if title else 1, raw)
    meta_title = meta.get("title") if isinstance(meta.get("title"), str) else None
    first_top = next((r[1] for r in raw if r[1] is not None), None)  # e.g. after a field list
    return ParsedDocument(title or meta_title or first_top or fallback, meta, _nest(raw))


# --- HTML -------------------------------------------------------------------------------

_DROP = ["script", "style", "noscript", "template", "nav", "footer", "aside", "form",
         "head", "title", "svg", "iframe", "object", "embed", "canvas", "button", "select"]
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_BLOCKS = {"address", "article", "blockquote", "body", "caption", "dd", "details", "dialog",
           "div", "dl", "dt", "fieldset", "figcaption", "figure", "header", "hr", "li", "main",
           "ol", "p", "section", "summary", "ul", "html"}


def _soup(html: str) -> BeautifulSoup:
    # html.parser turns constructs still open at EOF into visible text, while browsers
    # hide them: an unclosed "<!--" comments out the rest, a cut-off tag is dropped.
    html = re.sub(r"<!--.*?(?:-->|\Z)", "", html, flags=re.S)
    tail = html.rfind("<")
    if tail >= 0 and ">" not in html[tail:] and re.match(r"<[A-Za-z/!?]", html[tail:tail + 2]):
        html = html[:tail]
    return BeautifulSoup(html, "html.parser")


def _clean_soup(soup: BeautifulSoup) -> None:
    for node in soup.find_all(string=lambda s: type(s) not in (NavigableString, CData)):
        node.extract()  # comments, doctype, processing instructions, script/style strings
    for tag in soup.find_all(_DROP) + soup.find_all("a", class_="headerlink"):
        if not tag.decomposed:
            tag.decompose()
    for tag in soup.find_all("header"):  # site banners go; an article's own header stays
        if not tag.decomposed and not tag.find_parent(["main", "article"]):
            tag.decompose()


def _html_fragment_text(html: str) -> str:
    soup = _soup(html)
    _clean_soup(soup)
    return " ".join(soup.get_text(" ").split())


def _text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ").split())


class _HtmlSections:
    """Iterative walk (an explicit stack, so deeply nested HTML cannot hit the recursion
    limit) that collects blocks per heading."""

    def __init__(self) -> None:
        self.raw: list[tuple[int, str | None, str | None, list[tuple[str, bool]]]] = [
            (0, None, None, [])]
        self.inline: list[str] = []
        self.depth = 0  # list nesting
        self.bullet = False  # next block inside a list starts a new "- " item
        self.used: set[str] = set()

    def walk(self, root: Tag) -> list[_Raw]:
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                self.flush()
                self.depth -= node.name in ("ul", "ol")
            elif isinstance(node, NavigableString):
                self.inline.append(re.sub(r"\s+", " ", node))  # source newlines are spaces
            elif node.name in _HEADINGS:
                self.heading(node)
            elif node.name in ("pre", "table"):
                self.flush()
                self.add(_pre(node) if node.name == "pre" else _table(node), tight=False)
            elif node.name == "br":
                self.inline.append("\n")
            else:
                if node.name in _BLOCKS:
                    self.flush()
                    stack.append((node, True))
                self.depth += node.name in ("ul", "ol")
                self.bullet = self.bullet or node.name == "li"
                stack.extend((child, False) for child in reversed(node.contents))
        self.flush()
        return [(lvl, h, a, _join(blocks)) for lvl, h, a, blocks in self.raw]

    def flush(self) -> None:
        lines = [" ".join(line.split()) for line in "".join(self.inline).split("\n")]
        self.inline = []
        text = "\n".join(line for line in lines if line)
        if not text:
            return
        if self.depth > 0:  # list item: "- text" with continuation lines indented
            indent = "  " * min(self.depth - 1, 8)  # capped: hostile nesting stays linear
            first = indent + ("- " if self.bullet else "  ")
            self.bullet = False
            self.add(first + text.replace("\n", "\n" + indent + "  "), tight=True)
        else:
            self.add(text, tight=False)

    def add(self, text: str, tight: bool) -> None:
        if text:
            self.raw[-1][3].append((text, tight))

    def heading(self, tag: Tag) -> None:
        self.flush()
        heading = _text(tag).rstrip("¶§\u200b ")  # permalink glyphs some generators add
        anchor = tag.get("id")
        link = tag.find("a", id=True)
        parent = tag.parent
        if not anchor and link:
            anchor = link["id"]
        # Sphinx puts the id on <section id=...> wrapping the heading, not on the heading.
        if not anchor and parent and parent.name in ("section", "div", "article") \
                and parent.get("id") and parent.find(_HEADINGS) is tag:
            anchor = parent["id"]
        if anchor:
            self.used.add(str(anchor))
        else:
            anchor = _unique(slugify(heading), self.used)
        self.raw.append((int(tag.name[1]), heading, str(anchor), []))


def _join(blocks: list[tuple[str, bool]]) -> str:
    out = ""
    for i, (text, tight) in enumerate(blocks):
        if i:  # consecutive list items stay one list; everything else is a paragraph
            out += "\n" if tight and blocks[i - 1][1] else "\n\n"
        out += text
    return out


def _pre(tag: Tag) -> str:
    classes: list[str] = []
    for extra in [tag, tag.find("code"), *tag.find_parents(limit=2)]:  # Sphinx: div.highlight-py
        if isinstance(extra, Tag):
            classes += extra.get_attribute_list("class")
    lang = next((m.group(1) for c in classes
                 if (m := re.match(r"(?:language|lang|highlight)-(.+)", c))), "")
    return _fence(tag.get_text(), lang)


def _table(tag: Tag) -> str:
    rows = []
    own_rows = [tr for tr in tag.find_all("tr") if tr.find_parent("table") is tag]
    for i, tr in enumerate(own_rows):  # a nested table is read as its cell's text
        cells = tr.find_all(["th", "td"], recursive=False)
        rows.append("| " + " | ".join(_text(c).replace("|", "\\|") for c in cells) + " |")
        if i == 0 and cells and all(c.name == "th" for c in cells):
            rows.append("|" + " --- |" * len(cells))
    return "\n".join(rows)


def _parse_html(text: str, fallback: str) -> ParsedDocument:
    soup = _soup(text)
    meta = {str(m["name"]).lower(): str(m["content"])
            for m in soup.find_all("meta") if m.get("name") and m.get("content") is not None}
    title_tag = (soup.head or soup).find("title")
    head_title = _text(title_tag) if title_tag else ""
    _clean_soup(soup)
    h1s = [_text(h) for h in soup.find_all("h1")]
    title = head_title
    norm = [h.casefold() for h in h1s]
    for m in re.finditer(r"\s+[—–|·-]\s+", head_title):  # "Page — Site": keep "Page"
        if head_title[:m.start()].strip().casefold() in norm:
            title = head_title[:m.start()].strip()
            break
    root = soup.find("main") or soup.find("article") or soup.body or soup
    raw = _HtmlSections().walk(root)
    return ParsedDocument(title or (h1s[0] if h1s else "") or fallback, meta, _nest(raw))
