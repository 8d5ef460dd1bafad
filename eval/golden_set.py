"""The bundled-docs golden set (eval/sets/*.jsonl): questions over a docs folder, some of which
the docs do not answer.

One JSON object a line: {id, kind: answerable | unanswerable | offtopic, question, relevant: [doc
paths relative to the docs folder], section?, answer?}. Unanswerable and off-topic questions have
no relevant page, so the eval counts them right only when they are escalated.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.beir import Query

KINDS = ("answerable", "unanswerable", "offtopic")


def load_golden(path: Path) -> tuple[list[Query], dict[str, dict[str, int]]]:
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        kind = row.get("kind", "answerable")
        if kind not in KINDS or not row.get("question"):
            raise ValueError(f"{path}:{n}: needs a question and kind one of {', '.join(KINDS)}")
        qid = str(row.get("id") or n)
        queries.append(Query(qid, row["question"], row.get("answer"), kind))
        qrels[qid] = {str(doc): 1 for doc in row.get("relevant") or []} if kind == "answerable" else {}
    return queries, qrels
