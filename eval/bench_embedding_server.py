"""Embedding throughput and API-process memory: the model in-process against an embedding server.

    python -m eval.bench_embedding_server [--limit 400] [--port 8089]

The texts are what ingesting answerdesk's own docs/ embeds: every chunk's search text and its
sentence texts (heading + quotable units), in that order. The server is tests/fakes/embedding_server.py
(TEI's OpenAI-compatible route, serving the bundled all-MiniLM-L6-v2) in its own process on this
machine, so the comparison shows the HTTP and JSON overhead on the same CPU, not a GPU's speed-up.
It also prints the peak memory of a process that builds each embedder and embeds one question: what
an API replica costs with and without the model in it. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from assistant.answering import sentences
from assistant.embeddings import Embedder, SentenceTransformerEmbedder
from assistant.embeddings_http import ServerEmbedder
from assistant.settings import bundled_model_path
from eval.bench_util import percentile
from ingest.chunking import chunk_document
from ingest.docs import folder_refs, list_files

ROOT = Path(__file__).resolve().parent.parent

# A child process builds the configured embedder (settings from its environment) and embeds one question.
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report this process's peak.
RSS_PROBE = """
from pathlib import Path
from assistant.embedders import load_embedder
from assistant.settings import load_settings
load_embedder(load_settings()).embed(["How do I set the database URL?"], kind="query")
hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
print(int(hwm.split()[1]) // 1024)
"""


def docs_texts(limit: int) -> list[str]:
    texts: list[str] = []
    docs = ROOT / "docs"
    for ref in folder_refs(docs, list_files(docs), None):
        for chunk in chunk_document(ref.load(), "bench", 1200, 150):
            texts.append(chunk.search_text)
            texts.extend(sentences.sentence_texts(chunk))
    return texts[:limit]


def start_server(port: int, max_batch: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.embedding_server", "--port", str(port),
                             "--max-batch", str(max_batch)], cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": ["warm"]}, timeout=5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the embedding server did not start")


def interleaved(local: Embedder, remote: Embedder, texts: list[str], rounds: int = 8,
                queries: int = 30) -> list[tuple[str, float, float, float]]:
    """Both embedders in alternation, part by part and question by question, so a machine whose load
    changes during the run (this one is shared) weighs on both alike."""
    seconds = {"local": 0.0, "remote": 0.0}
    latency: dict[str, list[float]] = {"local": [], "remote": []}
    embedders = {"local": local, "remote": remote}
    size = max(1, len(texts) // rounds)
    for start in range(0, len(texts), size):
        for name, embedder in embedders.items():
            began = time.perf_counter()
            embedder.embed(texts[start : start + size])
            seconds[name] += time.perf_counter() - began
    for i in range(queries):
        for name, embedder in embedders.items():
            began = time.perf_counter()
            embedder.embed([f"how do I rotate an API key, try {i} {name}"], kind="query")
            latency[name].append((time.perf_counter() - began) * 1000)
    labels = {"local": "in-process (float32)", "remote": "embedding server over HTTP (float32)"}
    return [(labels[n], len(texts) / seconds[n], percentile(latency[n], 0.5), percentile(latency[n], 0.95))
            for n in embedders]


def peak_rss_mb(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", RSS_PROBE], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def row(name: str, rate: float, p50: float, p95: float) -> None:
    print(f"| {name} | {rate:.0f} | {p50:.1f} | {p95:.1f} |", flush=True)  # each as it is measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=400, help="texts embedded per run")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--max-batch", type=int, default=32, help="the server's batch limit (TEI's default: 32)")
    args = parser.parse_args()
    texts = docs_texts(args.limit)
    print(f"{len(texts)} texts from docs/ (chunks and their sentences); server batch {args.max_batch}\n")
    print("| embedder | texts/s | one query p50 ms | p95 ms |")
    print("|---|---|---|---|", flush=True)
    # float32 on both sides, so the comparison is of the path, not of the precision.
    local = SentenceTransformerEmbedder(bundled_model_path(), dtype="float32")
    local.embed(texts[:64])  # warm
    server = start_server(args.port, args.max_batch)
    try:
        url = f"http://127.0.0.1:{args.port}/v1"
        # A long timeout and no retries: on a loaded CPU a batch can queue behind others; a retry would only
        # add load and blur the figure.
        remote = ServerEmbedder(url, batch_size=args.max_batch, timeout=600, max_retries=0)
        remote.embed(texts[:64])
        for measured in interleaved(local, remote, texts):
            row(*measured)
        del local
        rss_remote = peak_rss_mb({"ANSWERDESK_EMBEDDING_URL": url})
        rss_local = peak_rss_mb({"ANSWERDESK_EMBEDDING_URL": "", "ANSWERDESK_EMBEDDING_DTYPE": "float32"})
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:  # still finishing a request it was given
            server.kill()
    print(f"\nPeak memory (VmHWM) of a process that builds the embedder and embeds one question: "
          f"model in-process {rss_local} MB, through the server {rss_remote} MB")


if __name__ == "__main__":
    main()
