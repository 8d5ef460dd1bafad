"""Parse one documentation file (Markdown, reStructuredText, HTML) into heading sections.

Each section later becomes chunks with a deep link ``URL#anchor``, so anchors must match
what the published site uses. All input is untrusted: parsing never prints, never reads
other files, and malformed input yields a ParseError or an empty document, not a crash.
"""

from __future__ import annotations

import re
from pathlib import Path

from assistant.anchors import slugify
from ingest.parsers.base import ParsedDocument, ParseError, Section
from ingest.parsers.html import parse_html
from ingest.parsers.markdown import parse_markdown
from ingest.parsers.rst import parse_rst

__all__ = ["SUPPORTED_SUFFIXES", "ParseError", "ParsedDocument", "Section", "parse_bytes", "parse_file", "parse_text",
           "slugify"]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".rst", ".html", ".htm"})


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
        return parse_markdown(text, name, fallback)
    if suffix == ".rst":
        return parse_rst(text, name, fallback)
    return parse_html(text, fallback)


def _humanise(name: str) -> str:
    stem = "" if name.startswith("<") else Path(name).stem
    words = " ".join(re.split(r"[-_\s]+", stem)).strip()
    return words[:1].upper() + words[1:] if words else "Untitled"
