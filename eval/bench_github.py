"""Incremental sync cost of the GitHub connector against the local fake GitHub (tests/fakes/github.py):
a repository of issues, pull requests and discussions indexed once, synced again unchanged, then after
new comments and a deletion; the same unchanged re-run with --full (no saved ETags or watermarks, what a
connector without state would do) is the baseline, measured in the same run.

    python -m eval.bench_github [--issues 500] [--discussions 100]

Prints a Markdown table: wall time, REST requests (and how many GitHub would count against the rate
limit: 304s are free), GraphQL queries and chunks embedded. The model is warmed before the clock starts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fake lives with the tests
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from assistant.embeddings import SentenceTransformerEmbedder  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings, bundled_model_path  # noqa: E402
from ingest.github.sync import sync_github  # noqa: E402
from tests.fakes.github import FakeGitHub, Issue  # noqa: E402

TOPICS = ["export", "single sign-on", "webhooks", "backups", "rate limits", "search", "billing", "upgrades"]


def seed(fake: FakeGitHub, issues: int, discussions: int) -> list[Issue]:
    repo = fake.add_repo("acme/widgets")
    user, maint = fake.person("jane-doe", "Jane Doe"), fake.person("mkeller", "Marta Keller")
    made = []
    for n in range(issues):
        topic = TOPICS[n % len(TOPICS)]
        kind = n % 10  # 7 in 10 completed issues, then a PR, a not-planned issue and an open one
        issue = fake.add_issue(repo, f"{topic.title()} fails in case {n}",
                               f"Using {topic} on release 4.{n % 7} fails with error E{n:04d} after the upgrade.",
                               user, pull_request=kind == 7, state_reason="not_planned" if kind == 8 else
                               "completed" if kind != 9 else None, state="open" if kind == 9 else "closed")
        if kind < 7 and n % 2 == 0:
            fake.comment(issue, f"Fixed in 4.{n % 7 + 1}: set {topic.replace(' ', '_')}_retries to 3 and restart.",
                         maint, "MEMBER")
        made.append(issue)
    for n in range(discussions):
        d = fake.add_discussion(repo, f"How do I tune {TOPICS[n % len(TOPICS)]} ({n})?",
                                "Looking for the recommended settings.", user)
        if n % 3:
            answer = fake.comment(d, f"Start from the defaults and raise the pool to {n % 9 + 2}.", maint, "OWNER")
            fake.edit(d, answer_id=answer.id)
    return made


def measure(label: str, fake: FakeGitHub, svc: Services, full: bool = False) -> dict[str, Any]:
    fake.log.clear()
    started = time.perf_counter()
    stats = sync_github(svc, "bench", "acme/widgets", full=full)
    seconds = time.perf_counter() - started
    return {"run": label, "seconds": seconds, "requests": stats.requests, "counted": fake.counted(),
            "graphql": stats.graphql_queries, "embedded": stats.chunks_embedded, "indexed": stats.seen}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--discussions", type=int, default=100)
    args = parser.parse_args(argv)
    embedder = SentenceTransformerEmbedder(bundled_model_path())
    embedder.embed([f"warm-up text {n} about exports and webhooks" for n in range(256)], kind="document")
    fake = FakeGitHub().start()
    try:
        issues = seed(fake, args.issues, args.discussions)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), github_url=fake.url,  # type: ignore[call-arg]
                                github_token=SecretStr(fake.token), _env_file=None)
            svc = Services(settings, embedder=embedder)
            rows = [measure("first run", fake, svc), measure("unchanged re-run", fake, svc),
                    measure("unchanged re-run, --full (baseline: no saved state)", fake, svc, full=True)]
            commented = [i for i in issues if not i.pull_request and i.state_reason == "completed"][:6]
            for issue in commented:
                fake.comment(issue, "Also fixed for us by raising the timeout.", fake.person("bob"))
            rows.append(measure(f"after new comments on {len(commented)} issues", fake, svc))
            gone = commented[-1]
            gone.deleted = True  # deleting leaves no trace in any listing
            rows.append(measure("after one issue was deleted", fake, svc))
            svc.store.engine.dispose()
    finally:
        fake.stop()
    print(f"GitHub repository: {args.issues} issues and pull requests, {args.discussions} discussions "
          "(fake server on 127.0.0.1)\n")
    print("| run | time | REST requests | counted by GitHub | GraphQL queries | chunks embedded |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['seconds']:.2f} s | {r['requests']} | {r['counted']} | {r['graphql']} | "
              f"{r['embedded']} |")
    base, inc = rows[2], rows[1]
    print(f"\nUnchanged re-run vs the stateless baseline: {inc['counted']} vs {base['counted']} counted requests, "
          f"{inc['seconds'] / max(base['seconds'], 1e-9):.2f}x the time.")


if __name__ == "__main__":
    main()
