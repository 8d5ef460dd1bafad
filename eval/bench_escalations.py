"""Escalation delivery through a flaky Jira: every escalation delivered, none twice.

    python -m eval.bench_escalations [--escalations 100] [--failure-rate 0.3]

The fake Atlassian server (tests/fakes) fails the given share of Jira calls: half before doing
anything (500), half after doing the work but losing the answer (the nasty case for duplicates).
The outbox worker retries until nothing is pending; the figures count tickets per escalation."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives with the tests

from assistant.escalation.jira_queue import JiraQueue, idempotency_label  # noqa: E402
from assistant.escalation.queue import EscalationRequest, list_escalations  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from tests.fakes.atlassian import FakeAtlassian  # noqa: E402

ERROR = {"errorMessages": ["Injected failure"], "errors": {}}


class FlakyJira(FakeAtlassian):
    def __init__(self, rate: float, seed: int = 7) -> None:
        super().__init__(cloud=False)
        self.rng, self.rate = random.Random(seed), rate
        self.failed_before = self.failed_after = 0

    def _answer(self, method: str, path: str, query: dict[str, str], headers: Any,
                body: bytes) -> tuple[int, Any, dict[str, str], bool]:
        if path.startswith("/rest/api/") and self.rng.random() < self.rate:
            if self.rng.random() < 0.5:
                self.failed_before += 1
                return 500, ERROR, {}, True
            super()._answer(method, path, query, headers, body)  # Jira did the work...
            self.failed_after += 1
            return 500, ERROR, {}, True  # ...but the answer never arrived
        return super()._answer(method, path, query, headers, body)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--escalations", type=int, default=100)
    ap.add_argument("--failure-rate", type=float, default=0.3)
    args = ap.parse_args(argv)
    jira = FlakyJira(args.failure_rate)
    jira.start()
    jira.add_issue("SUP", "Seed", "the project exists")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), escalation="jira", jira_url=jira.url, jira_token=SecretStr(jira.token),
                            jira_project="SUP", _env_file=None)  # type: ignore[call-arg]
        svc = Services(settings)
        queue = svc.queue
        assert isinstance(queue, JiraQueue)
        started = time.perf_counter()
        ids = []
        for i in range(args.escalations):
            cid = svc.conversations.ensure(None)
            ref = queue.open(EscalationRequest(conversation_id=cid, question=f"Question number {i} nobody answered",
                                               transcript=[], draft_answer="", sources=[], confidence=0.1,
                                               reasons=["weak_match"]))
            ids.append(ref.id)
        delivered_first = sum(r.status == "delivered" for r in list_escalations(svc.store.engine, limit=10_000))
        passes = 0
        while any(r.status == "pending" for r in list_escalations(svc.store.engine, limit=10_000)) and passes < 100:
            queue.deliver_pending(limit=1000, force=True)
            passes += 1
        seconds = time.perf_counter() - started
        rows = list_escalations(svc.store.engine, limit=10_000)
        jira.stop()
    per_escalation = [len([i for i in jira.issues.values() if idempotency_label(e) in i.labels]) for e in ids]
    delivered = sum(r.status == "delivered" for r in rows)
    print(f"{args.escalations} escalations, Jira failing {args.failure_rate:.0%} of calls "
          f"({jira.failed_before} before doing the work, {jira.failed_after} after it, answer lost)")
    print("| measure | value |\n|---|---|")
    print(f"| delivered on the user's request | {delivered_first} |")
    print(f"| delivered in the end | {delivered} of {len(rows)} ({delivered / len(rows):.0%}) |")
    print(f"| worker passes needed | {passes} |")
    print(f"| escalations with exactly one ticket | {sum(n == 1 for n in per_escalation)} |")
    print(f"| duplicate tickets | {sum(max(0, n - 1) for n in per_escalation)} |")
    print(f"| escalations with no ticket | {sum(n == 0 for n in per_escalation)} |")
    print(f"| time | {seconds:.1f} s |")


if __name__ == "__main__":
    main()
