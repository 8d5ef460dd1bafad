"""Retrieval ablation: dense, keyword and fused on one BEIR-style set (what made the difference).

    python -m eval.modes --data ../shared/eval-data/stackfaq [--candidates] [--index DIR]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from assistant.services import Services
from assistant.settings import load_settings
from assistant.types import Where
from eval.beir import corpus_refs, load_qrels, load_queries
from eval.metrics import average_precision, ndcg_at_k, unique_docs
from eval.runner import EvalConfig, eval_settings, load_bodies, load_candidates, question_text
from ingest.pipeline import Ingestor


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--candidates", action="store_true", help="restrict to the set's candidates.tsv")
    ap.add_argument("--index", type=Path, default=None, help="index dir (reused incrementally)")
    args = ap.parse_args(argv)
    d = args.data
    out = args.index or Path(".answerdesk-eval") / d.name
    cfg = EvalConfig(corpus=d / "corpus.jsonl", queries=d / "queries.jsonl", qrels=d / "qrels.tsv", out=out,
                     index_dir=out)
    settings = eval_settings(load_settings(), cfg)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    svc = Services(settings)
    Ingestor(svc, "eval").run(corpus_refs(cfg.corpus), "beir", str(cfg.corpus))
    qrels, bodies = load_qrels(d / "qrels.tsv"), load_bodies(cfg.queries)
    cands = load_candidates(d / "candidates.tsv") if args.candidates else None
    queries = [q for q in load_queries(cfg.queries) if q.id in qrels]
    print(f"{d.name}: {len(queries)} queries")
    for mode in ("dense", "keyword", "hybrid"):
        ndcg, ap_ = [], []
        for q in queries:
            where: Where | None = {"doc_id": cands.get(q.id, [])} if cands is not None else None
            hits = svc.retriever.search(question_text(q, bodies.get(q.id)), k=100, where=where, mode=mode)
            ranked = unique_docs([h.chunk.doc_id for h in hits])
            ndcg.append(ndcg_at_k(ranked, qrels[q.id], 10))
            ap_.append(average_precision(ranked, qrels[q.id]))
        print(f"| {mode} | nDCG@10 {statistics.fmean(ndcg):.4f} | MAP {statistics.fmean(ap_):.4f} |")


if __name__ == "__main__":
    main()
