"""HTML (site pages, Sphinx output, Confluence pages): the main content's blocks per heading,
navigation and scripts dropped, lists, tables and code kept in Markdown-ish form."""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup, CData, NavigableString, Tag

from assistant.anchors import slugify
from assistant.anchors import unique_anchor as _unique
from ingest.parsers.base import ParsedDocument, Raw, fence, nest

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


def html_fragment_text(html: str) -> str:
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

    def walk(self, root: Tag) -> list[Raw]:
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
    return fence(tag.get_text(), lang)


def _table(tag: Tag) -> str:
    rows = []
    own_rows = [tr for tr in tag.find_all("tr") if tr.find_parent("table") is tag]
    for i, tr in enumerate(own_rows):  # a nested table is read as its cell's text
        cells = tr.find_all(["th", "td"], recursive=False)
        rows.append("| " + " | ".join(_text(c).replace("|", "\\|") for c in cells) + " |")
        if i == 0 and cells and all(c.name == "th" for c in cells):
            rows.append("|" + " --- |" * len(cells))
    return "\n".join(rows)


def parse_html(text: str, fallback: str) -> ParsedDocument:
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
    return ParsedDocument(title or (h1s[0] if h1s else "") or fallback, meta, nest(raw))
