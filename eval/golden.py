"""Golden eval sets from real support: resolved tickets (and resolved escalations) as BEIR-style cases.

question = the ticket's summary and description; reference answer = its last public reply; relevant
documents = the knowledge-base pages the ticket links to. Text is the redacted text the Jira
connector stored. The knowledge base itself (every non-ticket document) is exported as the corpus,
so `answerdesk eval run` can run on the result as it is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from assistant import db
from assistant.services import Services
from assistant.store import TICKET_KINDS

URL = re.compile(r"https?://[^\s)\]>\"']+")


def _doc_text(services: Services, source: str, doc_id: str) -> str:
    c = db.chunks.c
    with services.store.engine.connect() as conn:
        texts = conn.execute(sa.select(c.text).where(c.source == source, c.doc_id == doc_id).order_by(c.ordinal))
        return "\n\n".join(texts.scalars())


def export(services: Services, out: Path, include_candidates: bool = True) -> dict[str, int]:
    ticket_sources = set(services.store.sources_of_kind(*TICKET_KINDS))
    out.mkdir(parents=True, exist_ok=True)
    by_url: dict[str, str] = {}
    n_docs = 0
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc in services.store.documents():
            if doc.source in ticket_sources:
                continue
            cid = f"{doc.source}:{doc.doc_id}"
            by_url[doc.url.split("#")[0]] = cid
            fh.write(json.dumps({"id": cid, "title": doc.title, "text": _doc_text(services, doc.source, doc.doc_id)})
                     + "\n")
            n_docs += 1
    queries: list[dict[str, Any]] = []
    qrels: list[tuple[str, str]] = []
    for source in sorted(ticket_sources):
        for doc in services.store.documents(source):
            meta = doc.meta or {}
            if not (meta.get("resolution") and meta.get("question")):
                continue
            qid = str(meta.get("key") or doc.doc_id)
            queries.append({"id": qid, "question": meta["question"], "answer": meta.get("final_answer", "")})
            text = _doc_text(services, source, doc.doc_id)
            for url in sorted({u.rstrip(".,;") for u in URL.findall(text)}):
                if url.split("#")[0] in by_url:
                    qrels.append((qid, by_url[url.split("#")[0]]))
    if include_candidates:
        with services.store.engine.connect() as conn:
            for row in conn.execute(sa.select(db.eval_candidates).where(db.eval_candidates.c.status != "rejected")):
                queries.append({"id": f"esc-{row.id}",
                                "question": row.question, "answer": row.answer, "ticket": row.ticket_key})
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in queries:
            fh.write(json.dumps(q) + "\n")
    with (out / "qrels.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query_id\tdoc_id\trelevance\n")
        for qid, did in qrels:
            fh.write(f"{qid}\t{did}\t1\n")
    return {"documents": n_docs, "queries": len(queries), "qrels": len(qrels)}
