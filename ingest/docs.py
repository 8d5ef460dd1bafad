"""A folder of Markdown, reStructuredText and HTML files as a source."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import SourceError
from assistant.services import Services
from assistant.types import AUDIENCES
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import SUPPORTED_SUFFIXES, ParseError, parse_bytes
from ingest.pipeline import Ingestor, IngestStats
from ingest.progress import SILENT, Progress

if TYPE_CHECKING:
    from ingest.connectors import DocsSource

# Folders that hold tooling, not documentation.
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "_build", "venv"}
_SHOWN = 10  # skipped links named in the summary; the rest are counted


@dataclass
class FolderListing:
    files: list[Path]
    skipped: list[str] = field(default_factory=list)  # "link -> target" for symlinks leaving the folder

    def notes(self) -> list[str]:
        if not self.skipped:
            return []
        shown = ", ".join(self.skipped[:_SHOWN]) + (f" and {len(self.skipped) - _SHOWN} more"
                                                     if len(self.skipped) > _SHOWN else "")
        return [f"skipped {len(self.skipped)} symlink(s) pointing outside the folder: {shown}"]


def scan(root: Path) -> FolderListing:
    """Supported files under root (or root itself), in a stable order; errors say what to fix.

    A symlink (file or folder) whose target lies outside the folder is skipped and listed: a link such as
    docs/env.md -> /proc/self/environ must never put the machine's files into the index. Links that stay
    inside are read as files; linked folders are not walked (their target is walked on its own path)."""
    if not root.exists():
        raise SourceError(f"Path does not exist: {root}")
    if root.is_file():
        if root.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(f"Unsupported file type {root.suffix!r}: {root} (supported: {_supported()})")
        return FolderListing([root])
    base = root.resolve()
    listing = FolderListing([])
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: linked folders are not walked
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in dirnames:
            if (here / name).is_symlink() and not _inside(base, here / name):
                listing.skipped.append(_link(root, here / name, "/"))
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES or name.startswith("."):
                continue
            if _inside(base, here / name):
                listing.files.append(here / name)
            else:
                listing.skipped.append(_link(root, here / name))
    if not listing.files:
        raise SourceError(f"No supported files in {root} (looked for {_supported()})"
                          + "".join(f"; {note}" for note in listing.notes()))
    return listing


def list_files(root: Path) -> list[Path]:
    """The files `scan` keeps (symlinks leaving the folder are left out)."""
    return scan(root).files


def _inside(base: Path, path: Path) -> bool:
    """Whether path, with every symlink resolved, lies within base (itself resolved)."""
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a symlink loop resolves nowhere: not inside
        return False


def _link(root: Path, path: Path, slash: str = "") -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"{path.relative_to(root).as_posix()}{slash} -> {target}"


def read_inside(root: Path, path: Path) -> bytes:
    """The file's bytes, refused if it now resolves outside root, the folder or the one file given
    (swapped for a symlink after the scan)."""
    if not _inside(root.resolve(), path):
        raise ParseError(f"{path.name}: a symlink pointing outside the folder, not read")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


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
        try:
            data = read_inside(root, path)
        except ParseError as exc:
            yield DocumentRef(rel, "", partial(_fail, exc), rel)  # an empty hash never matches: reported
            continue
        # The link is part of what we store, so a new base URL refreshes the documents too.
        content_hash = hashlib.sha256(data + b"\x00" + (base_url or "").encode()).hexdigest()
        yield DocumentRef(
            doc_id=rel,
            content_hash=content_hash,
            load=partial(load_file, path, rel, base_url, data),
            label=rel,
        )


def _fail(exc: ParseError) -> SourceDocument:
    raise exc


def index_folder(services: Services, source: str, root: Path, base_url: str | None,
                 on_document: Callable[[str], None] | None = None,
                 on_total: Callable[[int], None] | None = None) -> IngestStats:
    """Sync a docs folder (or one file); symlinks skipped for leaving it are named in the summary."""
    listing = scan(root)
    if on_total:
        on_total(len(listing.files))
    return Ingestor(services, source, on_document=on_document).run(
        folder_refs(root, listing.files, base_url), kind="docs", location=str(root.resolve()),
        notes=listing.notes())


def load_file(path: Path, rel: str, base_url: str | None, data: bytes) -> SourceDocument:
    """data: the bytes that were hashed, so what is indexed is what was checked and hashed."""
    parsed = parse_bytes(data, path.suffix, str(path))
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


def sync(services: Services, config: DocsSource, progress: Progress = SILENT) -> IngestStats:
    """The connector seam (ingest/connectors.py)."""
    return index_folder(services, config.name, config.path, config.base_url, progress.advance, progress.start)
