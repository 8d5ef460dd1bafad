"""Ingestion and retrieval benchmark on BEIR SciFact (read in place from ../shared/eval-data).

    python -m eval.bench [--limit N] [--skip-langchain] [--json OUT]

Prints: ingestion chunks/s; ingestion time / bare `model.encode` of the same chunk texts (the
floor on this CPU); the textbook LangChain pipeline's time on the same corpus in the same run;
re-ingestion time of the unchanged corpus; search latency p50/p95; nDCG@10 of dense, keyword
and fused retrieval next to the published figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.embedders import load_embedder
from assistant.retrieval import Mode
from assistant.services import Services
from assistant.settings import Settings
from eval import bench_chat, bench_hotpath
from eval.beir import SHARED_DATA, corpus_refs, iter_corpus, load_qrels, load_queries
from eval.bench_util import percentile
from eval.metrics import ndcg_at_k, unique_docs
from ingest.pipeline import Ingestor


def _step(what: str) -> None:
    """A plain progress line on stderr (stdout carries the report)."""
    print(f"... {what}", file=sys.stderr, flush=True)


def _steps(items: list[Any], what: str) -> list[Any]:
    _step(f"{what} ({len(items)})")
    return items


PUBLISHED = {"BM25 (BEIR paper)": 0.665, "all-MiniLM-L6-v2 dense (MTEB)": 0.645}


def evaluate(services: Services, queries: list[Any], qrels: dict[str, dict[str, int]], mode: Mode) -> float:
    scores = []
    for q in _steps(queries, f"nDCG@10 {mode}"):
        hits = services.retriever.search(q.question, k=40, mode=mode)
        scores.append(ndcg_at_k(unique_docs([h.chunk.doc_id for h in hits]), qrels.get(q.id, {}), 10))
    return statistics.fmean(scores)


def langchain_pipeline(corpus: Path, model: str, limit: int | None, queries: list[Any],
                       qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """The textbook pipeline: RecursiveCharacterTextSplitter 1000/200 + HuggingFaceEmbeddings + Chroma."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    started = time.perf_counter()
    docs = [Document(page_content=f"{r.get('title', '')}\n\n{r.get('text', '')}", metadata={"doc_id": str(r["id"])})
            for i, r in enumerate(iter_corpus(corpus)) if limit is None or i < limit]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    embeddings = HuggingFaceEmbeddings(model_name=model)
    with tempfile.TemporaryDirectory() as tmp:
        store = Chroma.from_documents(splits, embeddings, persist_directory=tmp, collection_name="langchain")
        seconds = time.perf_counter() - started
        ndcg = []
        for q in _steps(queries, "nDCG@10 langchain"):
            found = store.similarity_search(q.question, k=40)
            ndcg.append(ndcg_at_k(unique_docs([d.metadata["doc_id"] for d in found]), qrels.get(q.id, {}), 10))
    return {"seconds": seconds, "chunks": len(splits), "ndcg@10": statistics.fmean(ndcg)}


def run(data: Path, limit: int | None, skip_langchain: bool, chat: bool = True) -> dict[str, Any]:
    corpus = data / "corpus.jsonl"
    queries = load_queries(data / "queries.jsonl")
    qrels = load_qrels(data / "qrels.tsv")
    if limit is not None:
        kept = {str(r["id"]) for i, r in enumerate(iter_corpus(corpus)) if i < limit}
        queries = [q for q in queries if set(qrels.get(q.id, {})) & kept]
    # Latency needs questions, not judgements: the hot path and the load test ask every claim, so a
    # --limit slice (few judged claims) still has enough distinct ones.
    asked = [q.question for q in load_queries(data / "queries.jsonl")]
    ndocs = sum(1 for i, _ in enumerate(iter_corpus(corpus)) if limit is None or i < limit)
    out: dict[str, Any] = {"dataset": data.name, "documents": ndocs, "queries": len(queries)}

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), retrieval_candidates=100, _env_file=None)  # type: ignore[call-arg]
        t = time.perf_counter()
        embedder = load_embedder(settings)
        embedder.embed(["warm-up: the first call compiles the CPU kernels"] * 8)  # not part of either timing
        out["model_load_s"] = time.perf_counter() - t
        out["model"], out["dtype"] = embedder.name, embedder.dtype
        services = Services(settings, embedder=embedder)

        _step("ingesting")
        stats = Ingestor(services, "scifact").run(corpus_refs(corpus, limit), "beir", str(corpus))
        out["ingest_s"], out["chunks"] = stats.seconds, stats.chunks_embedded
        out["ingest_stages_s"] = {k: round(v, 2) for k, v in stats.timings.items()}
        out["chunks_per_s"] = stats.chunks_embedded / stats.seconds

        texts = [row[1] for row in services.store.iter_keyword_rows()]
        t = time.perf_counter()
        _step("bare model.encode of the same chunk texts")
        embedder.embed(texts, kind="document")
        out["encode_s"] = time.perf_counter() - t
        out["ingest_over_encode"] = out["ingest_s"] / out["encode_s"]

        _step("re-ingesting the unchanged corpus")
        again = Ingestor(services, "scifact").run(corpus_refs(corpus, limit), "beir", str(corpus))
        out["reingest_s"], out["reingest_embedded"] = again.seconds, again.chunks_embedded

        latencies = []
        for q in _steps(queries, "search latency"):
            t = time.perf_counter()
            services.retriever.search(q.question, k=10)
            latencies.append((time.perf_counter() - t) * 1000)
        out["search_ms_p50"], out["search_ms_p95"] = percentile(latencies, 0.5), percentile(latencies, 0.95)
        _step("chat hot path, old way and new way")
        out["hot_path_old"] = bench_hotpath.profile(services, asked[:41], stored=False)
        out["hot_path"] = bench_hotpath.profile(services, asked[41:82], stored=True)
        distinct = [f"{q} ({i})" for i, q in enumerate(asked * 2)][:320]
        out["query_batching"] = bench_hotpath.batching(services, distinct)
        for mode in ("dense", "keyword", "hybrid"):
            out[f"ndcg@10_{mode}"] = evaluate(services, queries, qrels, mode)  # type: ignore[arg-type]
        if chat:
            _step("/v1/chat under load (1, 4, 16 clients)")
            out["chat"] = bench_chat.run(Path(tmp), asked)

    if not skip_langchain:
        lc = langchain_pipeline(corpus, settings.embedding_model, limit, queries, qrels)
        out.update({f"langchain_{k}": v for k, v in lc.items()})
        out["ours_with_model_load_s"] = out["ingest_s"] + out["model_load_s"]
        out["langchain_over_ours"] = lc["seconds"] / out["ours_with_model_load_s"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def report(r: dict[str, Any]) -> str:
    lines = [
        f"Dataset {r['dataset']}: {r['documents']} documents, {r['queries']} test queries; "
        f"model {r['model']} ({r['dtype']}), {os.cpu_count()} CPU cores.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| chunks embedded | {r['chunks']} |",
        f"| ingestion time | {r['ingest_s']:.1f} s ({r['chunks_per_s']:.1f} chunks/s) |",
        f"| ingestion stages (s) | {', '.join(f'{k} {v:.1f}' for k, v in r['ingest_stages_s'].items())} |",
        f"| bare model.encode of the same chunk texts | {r['encode_s']:.1f} s |",
        f"| **ingestion / encode ratio** | **{r['ingest_over_encode']:.2f}** (target <= 1.3) |",
        f"| model load | {r['model_load_s']:.1f} s |",
        f"| re-ingestion, unchanged corpus | {r['reingest_s']:.1f} s ({r['reingest_embedded']} chunks embedded) |",
        f"| search latency (hybrid, k=10) p50 / p95 | {r['search_ms_p50']:.1f} ms / {r['search_ms_p95']:.1f} ms |",
        f"| peak RSS of the benchmark process | {r['peak_rss_mb']:.0f} MB |",
    ]
    if "langchain_seconds" in r:
        lines += [
            f"| LangChain pipeline (splitter 1000/200 + HuggingFaceEmbeddings + langchain_chroma) | "
            f"{r['langchain_seconds']:.1f} s, {r['langchain_chunks']} chunks |",
            f"| **answerdesk ingest incl. model load vs LangChain** | **{r['ours_with_model_load_s']:.1f} s vs "
            f"{r['langchain_seconds']:.1f} s = {1 / r['langchain_over_ours']:.2f}x its time** (target <= 0.5) |",
        ]
    lines += ["", "| retrieval | nDCG@10 |", "|---|---|"]
    lines += [f"| answerdesk dense (Chroma) | {r['ndcg@10_dense']:.4f} |",
              f"| answerdesk keyword (bm25s) | {r['ndcg@10_keyword']:.4f} |",
              f"| **answerdesk fused (RRF)** | **{r['ndcg@10_hybrid']:.4f}** (target >= 0.67) |"]
    if "langchain_ndcg@10" in r:
        lines.append(f"| LangChain pipeline (dense) | {r['langchain_ndcg@10']:.4f} |")
    lines += [f"| published: {name} | {v} |" for name, v in PUBLISHED.items()]
    if "hot_path" in r:
        lines += ["", "| chat in process, per question (ms) | p50 | p95 | " + " | ".join(bench_hotpath.STAGES)
                  + " | other |", "|---" * (len(bench_hotpath.STAGES) + 4) + "|"]
        for label, key in (("sentences embedded per question (old)", "hot_path_old"),
                           ("sentence vectors from ingest (new)", "hot_path")):
            h = r[key]
            lines.append(f"| {label} | {h['p50_ms']:.1f} | {h['p95_ms']:.1f} | "
                         + " | ".join(f"{h['stages_ms'][s]:.1f}" for s in bench_hotpath.STAGES)
                         + f" | {h['other_ms']:.1f} |")
    if "query_batching" in r:
        lines += ["", "| query embedding, 16 concurrent askers | p50 | p95 | queries/s |", "|---|---|---|---|"]
        lines += [f"| {b['label']}"
                  f" | {b['p50_ms']:.1f} ms | {b['p95_ms']:.1f} ms | {b['per_s']:.0f} |" for b in r["query_batching"]]
    if "chat" in r:
        lines += ["", "| /v1/chat (extractive), concurrent clients | requests | p50 | p95 | throughput | errors "
                  "| server CPU per answer |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['clients']} | {c['requests']} | {c['p50_ms']:.0f} ms | {c['p95_ms']:.0f} ms | "
                  f"{c['throughput_rps']:.1f} req/s | {c['errors']} | "
                  + (f"{c['server_cpu_ms']:.0f} ms |" if c.get("server_cpu_ms") is not None else "n/a |")
                  for c in r["chat"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA / "beir-scifact")
    ap.add_argument("--limit", type=int, default=None, help="only the first N corpus documents (quick runs)")
    ap.add_argument("--skip-langchain", action="store_true", help="skip the LangChain baseline (~6 min here)")
    ap.add_argument("--skip-chat", action="store_true", help="skip the /v1/chat load test")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if not (args.data / "corpus.jsonl").exists():
        raise SystemExit(f"No corpus at {args.data}: the benchmark reads ../shared/eval-data/beir-scifact")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    result = run(args.data, args.limit, args.skip_langchain, chat=not args.skip_chat)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
