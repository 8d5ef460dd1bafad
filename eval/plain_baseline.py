"""The plain hybrid baseline issue 15 measured answerdesk against, on the sets we have:
`python -m eval.plain_baseline SET [--ours PER_QUERY_JSONL]`, SET one of docs, stackfaq, semeval,
scifact.

Documents are cut into 1,000-character chunks (LangChain's recursive splitter, no overlap), each
chunk embedded with the same model and indexed by bm25s; the dense list and the keyword list are
each reduced to documents (a document ranks where its best chunk does), then fused by reciprocal
rank (k=60) over documents. This is the "chunk dense + bm25s ... RRF over documents" baseline
that beat answerdesk on the held-out technical-documentation set when the issue was filed
(nDCG@10 0.794 against 0.756). With --ours, the same questions are scored from an `answerdesk eval
run` / `eval golden` per_query.jsonl, so both rankings are judged on the same qrels.

nDCG@10 and MAP are over the questions that have a relevant document (the golden set's
unanswerable questions are left out: neither ranking can be right for them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from eval.beir import iter_corpus, load_qrels, load_queries
from eval.metrics import average_precision, ndcg_at_k
from eval.runner import load_bodies, load_candidates, question_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "eval-data"
CHUNK_CHARS = 1000
RRF_K = 60
DEPTH = 100  # documents kept from each list before fusion

Corpus = dict[str, str]
Questions = dict[str, str]
Qrels = dict[str, dict[str, int]]


def plain_rankings(docs: Corpus, questions: Questions,
                   candidates: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Question id -> documents ranked by the plain baseline (within its candidates, when given)."""
    import bm25s
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.embedders import load_embedder
    from assistant.settings import load_settings

    embedder = load_embedder(load_settings())  # the model answerdesk itself would use
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=0)
    chunks, owner = [], []
    for doc_id, text in docs.items():
        for chunk in splitter.split_text(text):
            chunks.append(chunk)
            owner.append(doc_id)
    vectors = embedder.embed(chunks, kind="document")
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(chunks, stopwords="en", show_progress=False), show_progress=False)
    ids = list(questions)
    qvecs = embedder.embed([questions[q] for q in ids], kind="query")
    out = {}
    for qid, qvec in zip(ids, qvecs, strict=True):
        allowed = set(candidates[qid]) if candidates else None
        dense = np.argsort(-(vectors @ qvec)).tolist()
        found, _ = bm25.retrieve(bm25s.tokenize([questions[qid]], stopwords="en", show_progress=False),
                                 k=len(chunks), show_progress=False)
        fused: dict[str, float] = {}
        for order in (dense, found[0].tolist()):
            for rank, doc_id in enumerate(best_chunk_order(order, owner, allowed), 1):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (RRF_K + rank)
        out[qid] = sorted(fused, key=lambda d: -fused[d])
    return out


def best_chunk_order(order: list[int], owner: list[str], allowed: set[str] | None) -> list[str]:
    """A ranked chunk list reduced to documents, each where its best chunk ranks."""
    seen: list[str] = []
    for i in order:
        doc_id = owner[i]
        if doc_id not in seen and (allowed is None or doc_id in allowed):
            seen.append(doc_id)
            if len(seen) >= DEPTH:
                break
    return seen


def load_set(name: str) -> tuple[Corpus, Questions, Qrels, dict[str, list[str]] | None]:
    if name == "docs":
        from eval.golden_docs import load

        golden = load()
        docs = {p.relative_to(golden.docs_dir).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(golden.docs_dir.rglob("*.md"))}
        return docs, {q.id: q.question for q in golden.queries}, golden.qrels, None
    folder = {"stackfaq": DATA / "stackfaq", "semeval": DATA / "semeval2016-cqa-subtaskB" / "dev",
              "scifact": DATA / "beir-scifact"}[name]
    docs = {str(row["id"]): f"{row.get('title') or ''}\n\n{row['text']}".strip()
            for row in iter_corpus(folder / "corpus.jsonl")}
    bodies = load_bodies(folder / "queries.jsonl")
    questions = {q.id: question_text(q, bodies.get(q.id)) for q in load_queries(folder / "queries.jsonl")}
    candidates = load_candidates(folder / "candidates.tsv") if (folder / "candidates.tsv").exists() else None
    return docs, questions, load_qrels(folder / "qrels.tsv"), candidates


def scores(rankings: dict[str, list[str]], qrels: Qrels, ids: list[str]) -> dict[str, float]:
    return {"ndcg@10": float(np.mean([ndcg_at_k(rankings[q], qrels[q]) for q in ids])),
            "map": float(np.mean([average_precision(rankings[q], qrels[q]) for q in ids]))}


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("--")]
    ours_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--ours=")), None)
    if len(names) != 1 or names[0] not in ("docs", "stackfaq", "semeval", "scifact"):
        print(__doc__)
        return 2
    if names[0] != "docs" and not DATA.is_dir():
        print(f"no shared eval data at {DATA}")
        return 1
    docs, questions, qrels, candidates = load_set(names[0])
    ours = {}
    if ours_path:
        lines = Path(ours_path).read_text(encoding="utf-8").splitlines()
        ours = {r["id"]: r["retrieved"] for r in map(json.loads, filter(None, lines))}
    ids = [q for q in questions if any(g > 0 for g in qrels.get(q, {}).values()) and (not ours or q in ours)]
    plain = plain_rankings(docs, {q: questions[q] for q in ids}, candidates)
    print(f"{names[0]}: {len(ids)} questions with a relevant document, {len(docs)} documents")
    print("plain baseline  " + "  ".join(f"{k} {v:.4f}" for k, v in scores(plain, qrels, ids).items()))
    if ours:
        print("answerdesk      " + "  ".join(f"{k} {v:.4f}" for k, v in scores(ours, qrels, ids).items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
