"""Where a chat answer's time goes, in process: embed / Chroma / keyword / database / answer / verify / store.

Runs `Assistant.respond` over an existing index with every dependency wrapped in a stopwatch, once
the way chat works now (sentence vectors stored at ingest, one query embedding per question) and
once the old way (the answerer embeds its sources' sentences per question, the question is embedded
again) in the same run, so the ratio holds on a loaded machine. Called by `eval.bench`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import assistant.chat
from assistant.answering.citations import verify
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.embeddings import QueryBatcher
from assistant.services import Services
from eval.bench_util import percentile, run_clients

STAGES = ("embed", "chroma", "keyword", "database", "answer", "verify", "store")


class Clock:
    """Exclusive time per stage: time a stage spends inside another (the answerer reading the
    database, verify embedding) counts for the inner stage only."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(STAGES, 0.0)
        self._stack: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - started
            self.totals[name] += elapsed
            if self._stack:
                self.totals[self._stack[-1]] -= elapsed


class Stopwatch:
    """Wraps an object: time spent in its methods counts for `stage`."""

    def __init__(self, inner: Any, stage: str, clock: Clock) -> None:
        self._inner, self._stage, self._clock = inner, stage, clock

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._clock.stage(self._stage):
                return value(*args, **kwargs)
        return timed


class TimedAnswerer:
    """The answerer's stream, timed while it produces text (not while the caller consumes it)."""

    def __init__(self, inner: ExtractiveAnswerer, clock: Clock) -> None:
        self.inner, self.name, self.clock = inner, inner.name, clock

    def stream(self, question: str, sources: Any, history: Any) -> Iterator[str]:
        it = self.inner.stream(question, sources, history)
        while True:
            with self.clock.stage("answer"):
                piece = next(it, None)
            if piece is None:
                return
            yield piece

    def known_vectors(self, sources: Any) -> Any:
        return self.inner.known_vectors(sources)


class OldStore:
    """The store as chat read it before issue 16: no title/heading vectors stored with the chunks,
    so retrieval embeds the candidates' titles (cached per process)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def candidates(self, ids: list[str]) -> Any:
        return self._inner.candidates(ids)[0], {}


def profile(base: Services, questions: list[str], stored: bool = True) -> dict[str, Any]:
    """Mean ms per question per stage, and latency p50/p95, over distinct `questions`."""
    clock = Clock()
    raw = getattr(base.embedder, "inner", base.embedder)
    # A fresh batcher (new path) or the bare model (old path): no query vector cached from elsewhere.
    embedder = Stopwatch(QueryBatcher(raw) if stored else raw, "embed", clock)
    svc = Services(base.settings, embedder=embedder)  # type: ignore[arg-type]
    svc.__dict__["store"] = Stopwatch(base.store if stored else OldStore(base.store), "database", clock)
    svc.__dict__["vectors"] = Stopwatch(base.vectors, "chroma", clock)
    svc.__dict__["keywords"] = Stopwatch(base.keywords, "keyword", clock)
    svc.__dict__["conversations"] = Stopwatch(svc.conversations, "store", clock)
    extractive = ExtractiveAnswerer(embedder, stored=svc.store.sentence_vectors if stored else None)
    svc.__dict__["extractive"] = TimedAnswerer(extractive, clock)

    def timed_verify(*args: Any, **kwargs: Any) -> Any:
        with clock.stage("verify"):
            return verify(*args, **kwargs)

    assistant.chat.verify = timed_verify  # type: ignore[assignment]
    latencies = []
    try:
        svc.assistant.respond(questions[0])  # warm-up
        clock.totals.update(dict.fromkeys(STAGES, 0.0))
        for q in questions[1:]:
            started = time.perf_counter()
            svc.assistant.respond(q)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        assistant.chat.verify = verify
    n = max(1, len(latencies))
    stages = {k: v * 1000 / n for k, v in clock.totals.items()}
    return {"questions": len(latencies), "p50_ms": percentile(latencies, 0.5),
            "p95_ms": percentile(latencies, 0.95), "mean_ms": sum(latencies) / n,
            "stages_ms": stages, "other_ms": sum(latencies) / n - sum(stages.values())}



def concurrent_embeds(embed: Callable[..., Any], questions: list[str], clients: int) -> dict[str, float]:
    """`clients` threads embedding one question at a time until `questions` run out."""
    work = list(questions)
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        while True:
            with lock:
                if not work:
                    return
                q = work.pop()
            started = time.perf_counter()
            embed([q], kind="query")
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    wall = run_clients(clients, client)
    return {"p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "per_s": len(latencies) / wall}


def batching(base: Services, questions: list[str], clients: int = 16,
             windows: tuple[float, ...] = (0.0, 0.002, 0.005)) -> list[dict[str, Any]]:
    """Query embedding alone under `clients` concurrent askers: one model call each (the old way)
    against the batcher at several windows. Distinct questions, none cached."""
    raw = getattr(base.embedder, "inner", base.embedder)
    rows: list[dict[str, Any]] = [{"label": "one model call each", **concurrent_embeds(raw.embed, questions, clients)}]
    for window in windows:
        batched = QueryBatcher(raw, window=window)
        rows.append({"label": f"batched, window {window * 1000:.0f} ms",
                     **concurrent_embeds(batched.embed, questions, clients)})
    return rows


def main(argv: list[str] | None = None) -> None:
    """A quick run on the first `--limit` SciFact documents: ingestion/encode ratio, search latency,
    the chat hot path old vs new, and the query batching windows, printed as JSON."""
    import argparse
    import json
    import os
    import tempfile
    from pathlib import Path

    from assistant.embedders import load_embedder
    from assistant.settings import Settings
    from eval.beir import SHARED_DATA, corpus_refs, load_queries
    from ingest.pipeline import Ingestor

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--questions", type=int, default=12)
    args = ap.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    corpus = SHARED_DATA / "beir-scifact" / "corpus.jsonl"
    queries = [q.question for q in load_queries(corpus.with_name("queries.jsonl"))]
    n = args.questions
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), retrieval_candidates=100, _env_file=None)  # type: ignore[call-arg]
        embedder = load_embedder(settings)
        embedder.embed(["warm-up: the first call compiles the CPU kernels"] * 8)
        svc = Services(settings, embedder=embedder)
        stats = Ingestor(svc, "scifact").run(corpus_refs(corpus, args.limit), "beir", str(corpus))
        texts = [row[1] for row in svc.store.iter_keyword_rows()]
        started = time.perf_counter()
        embedder.embed(texts, kind="document")
        out.update(ingest_s=stats.seconds, chunks=stats.chunks_embedded, stages_s=stats.timings,
                   encode_s=time.perf_counter() - started)
        out["ingest_over_encode"] = out["ingest_s"] / out["encode_s"]
        latencies = []
        for q in queries[200:200 + 2 * n]:
            started = time.perf_counter()
            svc.retriever.search(q, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
        out["search_p50_ms"] = percentile(latencies, 0.5)
        out["chat_old"] = profile(svc, queries[: n + 1], stored=False)
        out["chat_new"] = profile(svc, queries[n + 1 : 2 * n + 2], stored=True)
        out["query_batching"] = batching(svc, [f"{q} ({i})" for i, q in enumerate(queries[:64])])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
