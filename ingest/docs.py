"""A folder of Markdown, reStructuredText and HTML files as a source."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from assistant.errors import SourceError
from assistant.types import AUDIENCES
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import SUPPORTED_SUFFIXES, ParseError, parse_file

# Folders that hold tooling, not documentation.
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "_build", "venv"}


def list_files(root: Path) -> list[Path]:
    """Supported files under root (or root itself), in a stable order; errors say what to fix."""
    if not root.exists():
        raise SourceError(f"Path does not exist: {root}")
    if root.is_file():
        if root.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(f"Unsupported file type {root.suffix!r}: {root} (supported: {_supported()})")
        return [root]
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if Path(name).suffix.lower() in SUPPORTED_SUFFIXES and not name.startswith("."):
                files.append(Path(dirpath) / name)
    if not files:
        raise SourceError(f"No supported files in {root} (looked for {_supported()})")
    return files


def _supported() -> str:
    return ", ".join(sorted(SUPPORTED_SUFFIXES))


def document_url(base_url: str | None, rel: str, path: Path) -> str:
    if base_url:
        return base_url.rstrip("/") + "/" + rel
    return str(path.resolve())


def folder_refs(root: Path, files: list[Path], base_url: str | None) -> Iterator[DocumentRef]:
    base = root if root.is_dir() else root.parent
    for path in files:
        rel = path.relative_to(base).as_posix()
        data = path.read_bytes()
        # The link is part of what we store, so a new base URL refreshes the documents too.
        content_hash = hashlib.sha256(data + b"\x00" + (base_url or "").encode()).hexdigest()
        yield DocumentRef(
            doc_id=rel,
            content_hash=content_hash,
            load=partial(load_file, path, rel, base_url),
            label=rel,
        )


def load_file(path: Path, rel: str, base_url: str | None) -> SourceDocument:
    parsed = parse_file(path)
    audience = str(parsed.meta.get("audience", "public")).strip().lower()
    if audience not in AUDIENCES:
        raise ParseError(f"{rel}: audience must be one of {', '.join(AUDIENCES)}, got {audience!r}")
    mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return SourceDocument(
        doc_id=rel,
        title=parsed.title,
        url=document_url(base_url, rel, path),
        sections=parsed.sections,
        audience=audience,
        updated_at=mtime,
        meta={k: v for k, v in parsed.meta.items() if isinstance(v, str | int | float | bool)},
    )
