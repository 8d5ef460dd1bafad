"""How quickly the Slack bot acknowledges and answers, against the same questions asked of POST /v1/chat
in the same run (the baseline: what answering itself costs). The app runs under uvicorn on the bundled
docs; Slack is the local fake Web API (tests/fakes/slack.py) reached through the real slack_sdk.

    python -m eval.bench_slack [--questions 40] [--concurrency 1 4]

Slack wants the HTTP acknowledgement within 3 s (else it retries); the answer is posted afterwards.
Prints, per concurrency: acknowledgement p50/p95, mention-to-answer-posted p50/p95 and the API's
p50/p95 for the same questions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fake lives with the tests
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from assistant.api import create_app  # noqa: E402
from assistant.embeddings import SentenceTransformerEmbedder  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings, bundled_model_path  # noqa: E402
from tests.conftest import free_port, index_docs  # noqa: E402
from tests.fakes.slack import FakeSlack, event_callback, mention, signed  # noqa: E402
from tests.servers import serve  # noqa: E402

SECRET = "bench-signing-secret"
QUESTIONS = ["How do I set the database URL?", "How do I run the tests?", "What does the widget need on my page?",
             "How do I create an API key for a customer?", "How are escalations sent to Jira?",
             "How do I index a Confluence space?", "What is the confidence threshold?",
             "How do I evaluate answer quality offline?"]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def ask_slack(url: str, slack: FakeSlack, n: int) -> tuple[float, float]:
    ts = slack.next_ts()
    body = event_callback(mention("C0BENCH", QUESTIONS[n % len(QUESTIONS)], ts), f"EvBench{n}{ts}")
    started = time.monotonic()
    r = httpx.post(f"{url}/slack/events", content=body, timeout=30,
                   headers={"Content-Type": "application/json", **signed(SECRET, body)})
    acked = time.monotonic()
    assert r.status_code == 200, r.text
    [post] = slack.wait_for("chat.postMessage", lambda c: c.body.get("thread_ts") == ts, timeout=120)
    return acked - started, post.at - started


def ask_api(url: str, n: int) -> float:
    started = time.monotonic()
    r = httpx.post(f"{url}/v1/chat", json={"question": QUESTIONS[n % len(QUESTIONS)]}, timeout=120)
    assert r.status_code == 200, r.text
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    embedder = SentenceTransformerEmbedder(bundled_model_path())
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        settings = Settings(data_dir=Path(tmp), _env_file=None, rate_limits={}, stream_limits={},  # type: ignore[call-arg]
                            slack_bot_token=SecretStr(slack.token), slack_signing_secret=SecretStr(SECRET),
                            slack_api_url=slack.api_url)
        services = Services(settings, embedder=embedder)
        index_docs(services, ROOT / "docs", base_url="https://docs.example")
        with serve(create_app(services=services), free_port()) as url:
            for n in range(len(QUESTIONS)):  # warm-up: model, caches, the bot's first auth.test
                ask_api(url, n)
                ask_slack(url, slack, n)
            print(f"{args.questions} questions about the bundled docs per row (extractive answerer, 2 cores)\n")
            print("| concurrent askers | Slack ack p50 / p95 | Slack answer posted p50 / p95 | "
                  "API /v1/chat p50 / p95 |")
            print("|---|---|---|---|")
            for c in args.concurrency:
                with ThreadPoolExecutor(c) as pool:
                    slack_times = list(pool.map(lambda n: ask_slack(url, slack, n), range(args.questions)))
                    api_times = list(pool.map(lambda n: ask_api(url, n), range(args.questions)))
                acks, posts = [a for a, _ in slack_times], [p for _, p in slack_times]
                print(f"| {c} | {pct(acks, 50) * 1000:.0f} / {pct(acks, 95) * 1000:.0f} ms | "
                      f"{pct(posts, 50) * 1000:.0f} / {pct(posts, 95) * 1000:.0f} ms | "
                      f"{pct(api_times, 50) * 1000:.0f} / {pct(api_times, 95) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
