"""BEIR-style data sets (corpus.jsonl, queries.jsonl, qrels.tsv), read in place from ../shared."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import Section

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval-data"


@dataclass
class Query:
    id: str
    question: str
    answer: str | None = None
    kind: str | None = None  # golden sets: answerable | unanswerable | offtopic


def iter_corpus(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def corpus_refs(path: Path, limit: int | None = None) -> Iterator[DocumentRef]:
    """Corpus rows as pipeline documents: one untitled section each, streamed (never all in RAM)."""
    for i, row in enumerate(iter_corpus(path)):
        if limit is not None and i >= limit:
            return
        doc_id, title, text = str(row["id"]), row.get("title") or "", row.get("text") or ""
        digest = hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()

        def load(doc_id: str = doc_id, title: str = title, text: str = text) -> SourceDocument:
            return SourceDocument(doc_id=doc_id, title=title or doc_id, url=f"doc:{doc_id}",
                                  sections=[Section(heading_path=[], anchor=None, text=text)])

        yield DocumentRef(doc_id=doc_id, content_hash=digest, load=load, label=doc_id)


def load_queries(path: Path) -> list[Query]:
    out = []
    for row in iter_corpus(path):
        out.append(Query(str(row["id"]), row.get("question") or row.get("text") or "", row.get("answer"),
                         row.get("kind")))
    return out


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2])
    return qrels
