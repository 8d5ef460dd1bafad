"""`answerdesk eval run`: index a BEIR-style set into its own data dir, ask every question through
the same assistant the API uses, and score retrieval, answers, citations, escalation and latency."""

from __future__ import annotations

import csv
import itertools
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.results import ChatResult
from assistant.services import Services
from assistant.settings import Settings
from assistant.types import Where
from eval.beir import Query, corpus_refs, load_qrels, load_queries
from eval.bench_util import percentile
from eval.golden_docs import first_cited, load
from eval.metrics import (
    average_precision,
    coverage_precision,
    expected_calibration_error,
    mrr_at_k,
    ndcg_at_k,
    precision_at_coverage,
    recall_at_k,
    reliability,
    roc_curve,
    rouge_l,
    threshold_for_precision,
    token_f1,
    unique_docs,
)
from ingest.pipeline import Ingestor

MARKER_RE = r"\[(\d{1,3})\]"


@dataclass
class EvalConfig:
    corpus: Path  # corpus.jsonl, or a docs folder when `qrels` is None (a golden set, see eval/golden_docs.py)
    queries: Path
    qrels: Path | None
    out: Path
    candidates: Path | None = None
    limit: int | None = None
    target_precision: float = 0.9
    index_dir: Path | None = None  # default: OUT/index (reused incrementally between runs)
    # A scratch database for the run's store (e.g. PostgreSQL, to measure its keyword search); default:
    # SQLite inside the index folder. Never the live database: the run writes its corpus there.
    database_url: str = ""
    judge: bool = False  # optional LLM judge; needs OPENAI_API_KEY (and OPENAI_BASE_URL)


def load_candidates(path: Path) -> dict[str, list[str]]:
    cands: dict[str, list[tuple[int, str]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        for row in reader:
            rank = int(row.get("ir_rank") or 0)
            cands.setdefault(row["query_id"].strip(), []).append((rank, row["doc_id"].strip()))
    return {q: [d for _, d in sorted(v)] for q, v in cands.items()}


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def question_text(q: Query, body: str | None) -> str:
    return f"{q.question} {body}".strip() if body else q.question


def load_bodies(path: Path) -> dict[str, str]:
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if row.get("body"):
                    out[str(row["id"])] = str(row["body"])
    return out


def eval_settings(base: Settings, cfg: EvalConfig) -> Settings:
    """The assistant as configured, but on its own data dir and collection: never the live index."""
    data_dir = cfg.index_dir or cfg.out / "index"
    return base.model_copy(update={"data_dir": data_dir, "database_url": cfg.database_url, "chroma_url": "",
                                   "chroma_collection": "eval"})


def score_query(q: Query, text: str, relevant: dict[str, int], ranked: list[str], response: ChatResult,
                latency_ms: float) -> dict[str, Any]:
    import re

    cited_docs = [c.doc_id for c in response.citations]
    # Correct = cites a relevant document; a question with none is answered wrongly whatever it
    # cites, so it counts as "should escalate".
    correct = any(relevant.get(d, 0) > 0 for d in cited_docs)
    checks = response.checks
    valid_markers = len(re.findall(MARKER_RE, response.answer))
    row: dict[str, Any] = {
        "id": q.id, "question": text, "relevant": sorted(d for d, g in relevant.items() if g > 0),
        "retrieved": ranked[:10], "ndcg@10": ndcg_at_k(ranked, relevant, 10),
        "recall@1": recall_at_k(ranked, relevant, 1), "recall@5": recall_at_k(ranked, relevant, 5),
        "recall@10": recall_at_k(ranked, relevant, 10), "mrr@10": mrr_at_k(ranked, relevant, 10),
        "ap": average_precision(ranked, relevant),
        "answer": response.answer, "cited_docs": cited_docs, "first_cited": first_cited(response),
        "cites_relevant": correct,
        "confidence": response.confidence, "escalated": response.escalated, "flags": response.flags,
        "markers": valid_markers, "removed_markers": checks.removed_citations,
        "sentences": checks.sentences, "supported_sentences": checks.supported_sentences,
        "latency_ms": latency_ms, "features": checks.signals,
        "kind": q.kind or ("answerable" if any(g > 0 for g in relevant.values()) else "unanswerable"),
    }
    if q.answer:
        row["reference"] = q.answer
        row["token_f1"] = token_f1(response.answer, q.answer)
        row["rouge_l"] = rouge_l(response.answer, q.answer)
    return row


def summarise(rows: list[dict[str, Any]], target_precision: float) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if key in r]
        return statistics.fmean(vals) if vals else None

    markers = sum(r["markers"] for r in rows)
    removed = sum(r["removed_markers"] for r in rows)
    sentences = sum(r["sentences"] for r in rows)
    scores = [r["confidence"] for r in rows]
    labels = [bool(r["cites_relevant"]) for r in rows]
    fpr, tpr, auc = roc_curve(scores, labels)
    curve = coverage_precision(scores, labels)
    answerable = [r for r in rows if r["kind"] == "answerable"]
    unanswerable = [r for r in rows if r["kind"] != "answerable"]
    chosen = threshold_for_precision(curve, target_precision)
    latencies = [r["latency_ms"] for r in rows]
    metrics = {
        "ndcg@10": mean("ndcg@10"), "recall@1": mean("recall@1"), "recall@5": mean("recall@5"),
        "recall@10": mean("recall@10"), "mrr@10": mean("mrr@10"), "map": mean("ap"),
        "answer_token_f1": mean("token_f1"), "answer_rouge_l": mean("rouge_l"),
        "answer_cites_relevant": mean("cites_relevant"),
        "citation_marker_validity": markers / (markers + removed) if markers + removed else None,
        "citation_support": sum(r["supported_sentences"] for r in rows) / sentences if sentences else None,
        "escalation_auc": auc, "escalated_share": mean("escalated"),
        "precision_at_70_coverage": precision_at_coverage(scores, labels, 0.7),
    }
    if unanswerable:  # golden sets with questions the docs do not answer
        metrics.update({
            # Cited, not retrieved: the page the answer sends the reader to (as tests/test_golden_docs.py).
            "right_page_first": statistics.fmean(r["first_cited"] in r["relevant"]
                                                 for r in answerable) if answerable else None,
            "answerable_answered": statistics.fmean(not r["escalated"] for r in answerable) if answerable else None,
            "unanswerable_escalated": statistics.fmean(r["escalated"] for r in unanswerable),
        })
    return {
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)},
        "escalation": {"roc": {"fpr": fpr, "tpr": tpr, "auc": auc}, "coverage_precision": curve,
                       "reliability": reliability(scores, labels),
                       "ece": expected_calibration_error(scores, labels),
                       "target_precision": target_precision, "threshold": chosen},
    }


def run_eval(cfg: EvalConfig, base: Settings, services: Services | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    progress = progress or (lambda _stage, _done, _total: None)
    settings = eval_settings(base, cfg)
    if not settings.data_dir.exists():
        settings.data_dir.mkdir(parents=True)
    svc = services or Services(settings)
    bodies = load_bodies(cfg.queries)
    candidates = load_candidates(cfg.candidates) if cfg.candidates else None
    if cfg.qrels is None:
        golden = load(cfg.queries, cfg.corpus)
        queries, qrels, refs, kind = golden.queries, golden.qrels, golden.refs(), "docs"
    else:
        queries, qrels = load_queries(cfg.queries), load_qrels(cfg.qrels)
        queries = [q for q in queries if q.id in qrels or (candidates and q.id in candidates)]
        refs, kind = corpus_refs(cfg.corpus), "beir"
    if cfg.limit:
        queries = queries[: cfg.limit]

    indexed = itertools.count(1)  # the pipeline calls back once per document
    stats = Ingestor(svc, "eval", on_document=lambda _label: progress("index", next(indexed), 0)).run(
        refs, kind, str(cfg.corpus))
    rows = []
    ragas: list[dict[str, Any]] = []  # the column layout RAGAS reads
    for i, q in enumerate(queries):
        text = question_text(q, bodies.get(q.id))
        where: Where | None = {"doc_id": candidates.get(q.id, [])} if candidates is not None else None
        if where is not None and not where["doc_id"]:
            continue
        hits = svc.retriever.search(text, k=100, where=where)
        ranked = unique_docs([h.chunk.doc_id for h in hits])
        started = time.perf_counter()
        response = svc.assistant.respond(text, where=where)
        latency = (time.perf_counter() - started) * 1000
        rows.append(score_query(q, text, qrels.get(q.id, {}), ranked, response, latency))
        # The column layout RAGAS reads, so teams that use it can score our outputs.
        ragas.append({"user_input": text, "retrieved_contexts": [h.chunk.text for h in hits[: settings.retrieval_k]],
                      "response": response.answer, "reference": q.answer or ""})
        progress("ask", i + 1, len(queries))

    summary = summarise(rows, cfg.target_precision)
    summary.update({
        "dataset": cfg.corpus.parent.name if cfg.qrels else cfg.queries.stem, "corpus": str(cfg.corpus),
        "queries": len(rows),
        "documents": stats.seen, "candidates": str(cfg.candidates) if cfg.candidates else None,
        "model": svc.embedder.name,
        "settings": {k: str(v) for k, v in settings.model_dump(
            include={"answerer", "llm_model", "chunk_size", "chunk_overlap", "retrieval_k", "retrieval_candidates",
                     "fusion_dense_weight", "confidence_threshold", "confidence_model", "embedding_dtype"}).items()},
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    if cfg.judge:
        from eval.judge import judge

        summary["judge"] = judge(rows, [r["retrieved_contexts"] for r in ragas], settings)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_jsonl(cfg.out / "per_query.jsonl", rows)
    write_jsonl(cfg.out / "ragas.jsonl", ragas)
    return summary


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
