"""Priority under saturation: 32 community clients keep the server busy while a paid customer asks;
prints p95 latency of paid vs community requests and their ratio.

    python -m eval.bench_priority [--seconds 40] [--community 32] [--paid 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx

from assistant.services import Services
from assistant.settings import Settings
from eval.bench_chat import start_server
from eval.bench_util import percentile
from ingest.docs import folder_refs, list_files
from ingest.pipeline import Ingestor

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["How do I set the database URL?", "How do I install answerdesk?", "What does POST /v1/chat return?",
             "How do I index a folder of Markdown files?", "Why do answers say I'm not sure?",
             "Can I use a Chroma server?", "How do I change the embedding model?"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--community", type=int, default=32)
    ap.add_argument("--paid", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        services = Services(Settings(data_dir=data, _env_file=None))  # type: ignore[call-arg]
        docs = ROOT / "docs"
        Ingestor(services, "answerdesk-docs").run(folder_refs(docs, list_files(docs), None), "docs", str(docs))
        paid_key, _ = services.keys.create("customer", "bench", "acme", "paid")
        os.environ.update({"ANSWERDESK_RATE_LIMITS": "{}", "ANSWERDESK_STREAM_LIMITS": "{}",
                           "ANSWERDESK_MAX_CONCURRENT_ANSWERS": "2"})
        proc, url = start_server(data)
        latencies: dict[str, list[float]] = {"community": [], "paid": []}
        stop = time.monotonic() + args.seconds
        lock = threading.Lock()

        def client(kind: str, n: int) -> None:
            headers = {"Authorization": f"Bearer {paid_key}"} if kind == "paid" else {}
            with httpx.Client(base_url=url, timeout=300, headers=headers) as http:
                i = n
                while time.monotonic() < stop:
                    t = time.perf_counter()
                    r = http.post("/v1/chat", json={"question": QUESTIONS[i % len(QUESTIONS)] + f" ({n}-{i})"})
                    if r.status_code == 200:
                        with lock:
                            latencies[kind].append((time.perf_counter() - t) * 1000)
                    i += 1
                    if kind == "paid":
                        time.sleep(0.5)  # a person asking, not a load generator

        try:
            threads = [threading.Thread(target=client, args=("community", n)) for n in range(args.community)]
            threads += [threading.Thread(target=client, args=("paid", n)) for n in range(args.paid)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            proc.terminate()
            proc.wait(20)
    c, p = latencies["community"], latencies["paid"]
    print(f"{args.community} community clients + {args.paid} paid, {args.seconds:.0f} s, 2 answer slots")
    print("| class | requests | p50 | p95 |\n|---|---|---|---|")
    for name, vals in (("community", c), ("paid customer", p)):
        print(f"| {name} | {len(vals)} | {percentile(vals, 0.5):.0f} ms | {percentile(vals, 0.95):.0f} ms |")
    print(f"p95 ratio paid / community: {percentile(p, 0.95) / percentile(c, 0.95):.2f}")


if __name__ == "__main__":
    main()
