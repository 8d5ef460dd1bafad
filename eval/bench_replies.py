"""Answers back to the asker under a bad network: every Jira webhook delivery arrives three times (the
original, Jira's retry with the same identifier, and a re-send with a new identifier), while SMTP and
Slack refuse 30% of the attempts. Counts what each person received.

    python -m eval.bench_replies [--tickets 20] [--comments 2] [--failure 0.3] [--seed 7]

The app runs under uvicorn with its workers; Jira is the fake site (tests/fakes/atlassian) sending
signed webhooks over HTTP; Slack the fake Web API through slack_sdk; e-mail a local aiosmtpd server
through smtplib. Each ticket is asked in Slack with e-mail consent, then gets `--comments` public
comments, an internal one and its resolution: (comments + 1) replies x 3 channels per ticket.
Prints delivered / expected, duplicates, failed rows, and time from Jira's event to delivery."""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fakes live with the tests
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from assistant import db  # noqa: E402
from assistant.embeddings import SentenceTransformerEmbedder  # noqa: E402
from assistant.settings import bundled_model_path  # noqa: E402
from tests.fakes.atlassian import FakeAtlassian, Person  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.replies_setup import Rig, rig, smtp_server, wait_until  # noqa: E402

AGENT = Person("Dana Support", "dana@vendor.example", "5b10ac8d82e05b22cc7d4ef6")


class FlakySlack(FakeSlack):
    """The fake Slack, refusing chat.postMessage with `internal_error` (a 5xx-like answer: nothing posted)
    with probability `chance` once `flaky` is on."""

    def __init__(self, rng: random.Random, chance: float) -> None:
        super().__init__()
        self.rng, self.chance, self.flaky, self.refused = rng, chance, False, 0

    def _api(self, method: str, auth: str | None, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.flaky and method == "chat.postMessage" and self.rng.random() < self.chance:
            self.refused += 1
            return 200, {}, {"ok": False, "error": "internal_error"}
        return super()._api(method, auth, body)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(app: Rig, slack: FlakySlack, tickets: int, comments: int, failure: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    keys = []
    for i in range(tickets):
        thread = app.ask_in_slack(f"I want to talk to a human: question number {i} about the database URL")
        esc = app.escalation_of_thread(thread)
        app.want_email(esc, f"asker{i}@customer.example")
        keys.append(app.ticket(esc))
    app.inbox.rng, app.inbox.chance = rng.random, failure
    slack.flaky = True
    started = time.monotonic()
    for key in keys:
        for n in range(comments):
            app.jira.add_comment(key, f"Answer {n} for {key}: set ANSWERDESK_DATABASE_URL.", author=AGENT)
        app.jira.add_comment(key, f"INTERNAL {key}", author=AGENT, visibility={"type": "role", "value": "Developers"})
        app.jira.update_issue(key, resolution="Done")
    for delivery in list(app.hooks.sent):  # every delivery twice more: Jira's retry, and a re-send
        app.hooks.redeliver(delivery)
        app.hooks.send(delivery.event, json.loads(delivery.body) | {"timestamp": int(time.time() * 1000)})
    expected = tickets * (comments + 1) * 3

    def settled() -> bool:
        return sum(r["state"] in ("delivered", "failed") for r in app.replies()) >= expected

    wait_until(settled, timeout=240)
    elapsed = time.monotonic() - started
    rows = app.replies()
    mails = Counter((m["To"], m.get_content()) for m in app.inbox.messages)
    posts = Counter((c.body.get("thread_ts"), c.body["text"]) for c in slack.ok_calls("chat.postMessage")
                    if "support team" in c.body.get("text", "") and "replied" in c.body.get("text", "")
                    or "marked your request" in c.body.get("text", ""))
    with app.svc.store.engine.connect() as conn:
        widget = Counter(conn.execute(sa.select(db.messages.c.conversation_id, db.messages.c.content)
                                      .where(db.messages.c.role == "support")).all())
    seen: dict[str, Counter[Any]] = {"email": mails, "slack": posts, "widget": widget}
    lag = [(r["delivered_at"] - r["event_at"]).total_seconds() for r in rows
           if r["state"] == "delivered" and r["event_at"] is not None]
    leaked = sum("INTERNAL" in text for counter in (mails, posts) for (_, text) in counter) + sum(
        "INTERNAL" in text for (_, text) in widget)
    return {"expected": expected, "rows": len(rows), "elapsed": elapsed,
            "delivered": {ch: len(c) for ch, c in seen.items()},
            "duplicates": {ch: sum(n - 1 for n in c.values()) for ch, c in seen.items()},
            "failed": sum(r["state"] == "failed" for r in rows), "attempts": sum(r["attempts"] for r in rows),
            "refused": {"email": app.inbox.refused, "slack": slack.refused}, "internal_leaked": leaked,
            "webhook_posts": sum(len(d.statuses) for d in app.hooks.sent), "lag": lag}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=20)
    parser.add_argument("--comments", type=int, default=2)
    parser.add_argument("--failure", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # each retry is logged as a warning; the counts below say it all
    embedder = SentenceTransformerEmbedder(bundled_model_path())
    slack = FlakySlack(random.Random(args.seed + 1), args.failure)
    with tempfile.TemporaryDirectory() as tmp, smtp_server() as (inbox, port), slack:
        jira = FakeAtlassian(cloud=True).start()
        jira.add_issue("SUP", "Seed ticket", "so the project exists")
        try:
            with rig(Path(tmp), embedder, jira, slack, inbox, port) as app:
                out = run(app, slack, args.tickets, args.comments, args.failure, args.seed)
        finally:
            jira.stop()
    per = out["expected"] // 3
    print(f"tickets {args.tickets}, {args.comments} public comments + 1 internal + resolution each; every webhook "
          f"delivered 3 times ({out['webhook_posts']} POSTs); SMTP and Slack refusing {args.failure:.0%} "
          f"(refused: e-mail {out['refused']['email']}, Slack {out['refused']['slack']})")
    for ch in ("widget", "slack", "email"):
        print(f"  {ch:7s} delivered {out['delivered'][ch]}/{per}  duplicates {out['duplicates'][ch]}")
    lag = out["lag"]
    print(f"  reply rows {out['rows']} (expected {out['expected']}), failed {out['failed']}, "
          f"attempts {out['attempts']}, internal comments leaked {out['internal_leaked']}")
    if lag:
        print(f"  event -> delivered: p50 {statistics.median(lag):.2f} s, p95 {percentile(lag, 0.95):.2f} s, "
              f"max {max(lag):.2f} s; all settled in {out['elapsed']:.1f} s")


if __name__ == "__main__":
    main()
