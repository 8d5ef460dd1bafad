"""What a source hands to the pipeline: documents as heading sections, with a cheap hash first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.parsers import Section


@dataclass
class SourceDocument:
    doc_id: str  # stable within its source (a relative path, a page id, a ticket key)
    title: str
    url: str  # link to the document; a section's anchor is appended per chunk
    sections: list[Section]
    audience: str = "public"
    updated_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DocumentRef:
    """A document as listed by a source: its id and a hash of its raw content are cheap to get,
    the parse is deferred so unchanged documents are never parsed or embedded."""

    doc_id: str
    content_hash: str
    load: Callable[[], SourceDocument]
    label: str = ""  # shown in progress and error messages (e.g. the file path)
