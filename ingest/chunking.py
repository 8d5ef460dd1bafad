"""Heading-aware chunking: one chunk per section, long sections split on paragraph boundaries.

Each chunk keeps its heading path and deep link; its id is derived from where it sits
(source, document, section, position), not from its text, so an edited section keeps its id
and replaces its old vector instead of leaving an orphan.
"""

from __future__ import annotations

import hashlib

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.types import AUDIENCES, Chunk
from ingest.model import SourceDocument


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def link(url: str, anchor: str | None) -> str:
    return f"{url}#{anchor}" if anchor and url else url


def chunk_document(doc: SourceDocument, source: str, chunk_size: int, overlap: int) -> list[Chunk]:
    if doc.audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}, got {doc.audience!r}")
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=overlap, separators=["\n\n", "\n", ". ", " ", ""]
    )
    updated = doc.updated_at.isoformat() if doc.updated_at else ""
    page_heading = _page_heading(doc)
    out: list[Chunk] = []
    for section in doc.sections:
        text = section.text.strip()
        if not text:
            continue
        pieces = [text] if len(text) <= chunk_size else splitter.split_text(text)
        path = list(section.heading_path)
        if path and path[0] in (doc.title, page_heading):
            path = path[1:]  # the page's title already leads the search text
        heading = " > ".join(path)
        for n, piece in enumerate(pieces):
            search_text = "\n".join(p for p in (doc.title, heading) if p) + "\n\n" + piece
            position = f"{section.anchor or ''}\x00{' > '.join(section.heading_path)}\x00{n}"
            out.append(
                Chunk(
                    id=digest(source, doc.doc_id, position)[:32],
                    source=source,
                    doc_id=doc.doc_id,
                    ordinal=len(out),
                    text=piece,
                    search_text=search_text,
                    content_hash=digest(search_text, doc.audience)[:32],
                    audience=doc.audience,
                    org=str(doc.meta.get("org") or ""),
                    meta={
                        "title": doc.title,
                        "heading": heading,
                        "url": link(doc.url, section.anchor),
                        "updated_at": updated,
                    },
                )
            )
    return out


def _page_heading(doc: SourceDocument) -> str | None:
    """The page's own top heading (an H1 above every section) repeats the title in other words."""
    firsts = {s.heading_path[0] for s in doc.sections if s.heading_path}
    if len(firsts) == 1 and any(len(s.heading_path) > 1 for s in doc.sections):
        return firsts.pop()
    return None
