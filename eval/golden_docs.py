"""The bundled-docs golden set (eval/sets/answerdesk-docs.jsonl): questions about answerdesk asked
as users ask them, over the docs/ folder that `make run` indexes.

Unlike a BEIR set, it holds questions with no relevant document: "unanswerable" ones (about
answerdesk, but the docs do not answer them) and "offtopic" ones. Both count as "should escalate".

The corpus is the docs folder itself, indexed through the docs connector exactly as `make run`
indexes it (one chunk per section, doc ids are paths relative to docs/), so the figures are the
ones a user of the demo sees. Use:

    golden = load()                              # the set and the docs folder of this checkout
    Ingestor(services, "answerdesk-docs").run(golden.refs(), "docs", str(golden.docs_dir))
    for q in golden.questions:
        response = services.assistant.respond(q.question)
        outcomes.append(outcome(q, response))
    figures(outcomes)                            # the three figures issue 15 sets thresholds on

`golden.queries` and `golden.qrels` are the same questions in the shapes eval.beir reads
(unanswerable and off-topic questions have an empty qrels entry).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.results import ChatResult
from eval.beir import Query
from ingest.docs import folder_refs, list_files
from ingest.model import DocumentRef

ROOT = Path(__file__).resolve().parent.parent
SET_PATH = ROOT / "eval" / "sets" / "answerdesk-docs.jsonl"
DOCS_DIR = ROOT / "docs"
KINDS = ("answerable", "unanswerable", "offtopic")


@dataclass(frozen=True)
class GoldenQuestion:
    id: str
    kind: str  # answerable | unanswerable | offtopic
    question: str
    relevant: tuple[str, ...]  # doc paths relative to docs/, best first
    section: str  # the heading that answers it ("" when nothing does)
    answer: str  # short reference answer ("" when nothing does)

    @property
    def should_escalate(self) -> bool:
        return self.kind != "answerable"


@dataclass(frozen=True)
class GoldenDocs:
    questions: list[GoldenQuestion]
    docs_dir: Path

    def refs(self, base_url: str | None = None) -> Iterator[DocumentRef]:
        """The docs folder as pipeline documents, as `answerdesk ingest docs` reads it."""
        return folder_refs(self.docs_dir, list_files(self.docs_dir), base_url)

    @property
    def queries(self) -> list[Query]:
        return [Query(q.id, q.question, q.answer or None, q.kind) for q in self.questions]

    @property
    def qrels(self) -> dict[str, dict[str, int]]:
        return {q.id: dict.fromkeys(q.relevant, 1) for q in self.questions}


class GoldenSetError(ValueError):
    """A line of the set is malformed; the message names the file, line and field."""


def load(path: Path = SET_PATH, docs_dir: Path = DOCS_DIR) -> GoldenDocs:
    pages = {p.relative_to(docs_dir).as_posix() for p in list_files(docs_dir)}
    questions: list[GoldenQuestion] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                q = _parse(json.loads(line), f"{path}:{lineno}", pages)
                if q.id in seen:
                    raise GoldenSetError(f"{path}:{lineno}: duplicate id {q.id!r}")
                seen.add(q.id)
                questions.append(q)
    return GoldenDocs(questions, docs_dir)


def _parse(row: dict[str, Any], where: str, pages: set[str]) -> GoldenQuestion:
    kind = row.get("kind")
    if kind not in KINDS:
        raise GoldenSetError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not str(row.get("id") or "").strip() or not str(row.get("question") or "").strip():
        raise GoldenSetError(f"{where}: id and question are required")
    relevant = tuple(str(d) for d in row.get("relevant") or [])
    if (kind == "answerable") != bool(relevant):
        raise GoldenSetError(f"{where}: an answerable question names its relevant pages, no other kind does")
    unknown = [d for d in relevant if d not in pages]
    if unknown:
        raise GoldenSetError(f"{where}: relevant pages not in the docs folder: {', '.join(unknown)}")
    return GoldenQuestion(str(row["id"]), kind, str(row["question"]), relevant, str(row.get("section") or ""),
                          str(row.get("answer") or ""))


@dataclass(frozen=True)
class Outcome:
    question: GoldenQuestion
    first_cited: str | None  # doc id of the first citation of the answer
    escalated: bool
    confidence: float
    answer: str

    @property
    def right_page_first(self) -> bool:
        return self.first_cited in self.question.relevant


def first_cited(response: ChatResult) -> str | None:
    """The document a reader follows first: the answer's first [n], whatever its number (the first
    citation when the answer has no marker)."""
    citations = response.citations
    m = re.search(r"\[(\d{1,3})\]", response.answer)
    by_n = {c.n: c for c in citations}
    cited = by_n.get(int(m.group(1))) if m else None
    if cited is None and citations:
        cited = citations[0]
    return cited.doc_id if cited else None


def outcome(q: GoldenQuestion, response: ChatResult) -> Outcome:
    """One chat response scored against its question: the assistant's own result, or the JSON of
    `POST /v1/chat` read back with `ChatResult.from_dict`."""
    return Outcome(q, first_cited(response), response.escalated, response.confidence, response.answer)


def figures(outcomes: list[Outcome]) -> dict[str, float]:
    """The issue's three figures: right page cited first and answered (not escalated), both over
    answerable questions, and escalated over the questions the docs do not answer."""
    answerable = [o for o in outcomes if not o.question.should_escalate]
    other = [o for o in outcomes if o.question.should_escalate]

    def share(items: list[Outcome], ok: Any) -> float:
        return sum(1 for o in items if ok(o)) / len(items) if items else 0.0

    return {
        "right_page_first": share(answerable, lambda o: o.right_page_first),
        "answerable_answered": share(answerable, lambda o: not o.escalated),
        "unanswerable_escalated": share(other, lambda o: o.escalated),
        "answerable": float(len(answerable)),
        "should_escalate": float(len(other)),
    }
