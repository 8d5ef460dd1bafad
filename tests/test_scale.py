"""answerdesk at scale, the way docs/scaling.md deploys it (issue 17's "done when"): a `chroma run`
server, PostgreSQL and Redis shared by two `answerdesk serve` replicas and two `answerdesk worker`
processes, nothing else shared. Thousands of documents are ingested by a separate process while
clients ask both replicas: no request fails, both replicas answer from a commit as soon as it is
made (no index lives in a replica), and escalations asked on either replica become exactly one
Jira ticket each although two workers compete for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, shared_contracts
from tests.test_jira_queue import tickets
from tests.test_replicas import embedding_url, start_replica  # noqa: F401 - the fixture
from tests.test_traffic import redis_available  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)]
SEED_DOCS, LIVE_DOCS, ESCALATIONS = 600, 1800, 8  # a few thousand documents in all


def write_docs(folder: Path, first: int, count: int) -> None:
    """Short product pages, each with a made-up product word only it contains (so a keyword query has
    exactly one right answer), in subfolders as docs sites have them."""
    for n in range(first, first + count):
        page = folder / f"area-{n // 100:02d}" / f"widget-{n:05d}.md"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"# Setting up the zq{n:05d}x widget\n\nThe zq{n:05d}x widget needs `WIDGET_{n}_MODE` set to "
                        f"`fast` before its first start. Restart the service after changing it; the widget then "
                        f"reports its colour, number {n % 7}, on the status page.\n")


def run_cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"answerdesk {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def stack(tmp_path: Path, pg_url: str, chroma_server: str, redis_available: str,  # noqa: F811
          embedding_url: str, jira: FakeAtlassian) -> Iterator[dict[str, Any]]:  # noqa: F811
    settings = {
        "ANSWERDESK_DATABASE_URL": pg_url, "ANSWERDESK_CHROMA_URL": chroma_server,
        "ANSWERDESK_CHROMA_COLLECTION": f"scale-{uuid.uuid4().hex[:10]}", "ANSWERDESK_REDIS_URL": redis_available,
        "ANSWERDESK_EMBEDDING_URL": embedding_url, "ANSWERDESK_KEYWORD_INDEX": "database",
        "ANSWERDESK_SENTENCE_VECTORS": "false", "ANSWERDESK_WORKER": "external",
        "ANSWERDESK_RATE_LIMITS": json.dumps({"community": 100_000}),
        "ANSWERDESK_ESCALATION": "jira", "ANSWERDESK_JIRA_URL": jira.url, "ANSWERDESK_JIRA_USER": jira.user,
        "ANSWERDESK_JIRA_TOKEN": jira.token, "ANSWERDESK_JIRA_CLOUD": str(jira.cloud).lower(),
        "ANSWERDESK_JIRA_PROJECT": "SUP", "ANSWERDESK_PUBLIC_URL": "https://help.example",
        "ANSWERDESK_DELIVERY_INTERVAL": "0.5"}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ANSWERDESK_")}
    env = {**inherited, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **settings}
    (tmp_path / "ops").mkdir()
    run_cli({**env, "ANSWERDESK_DATA_DIR": str(tmp_path / "ops")}, tmp_path / "ops", "db", "upgrade")  # = migrate
    started: list[subprocess.Popen[Any]] = []
    try:
        urls = []
        for name in ("replica-1", "replica-2"):
            proc, url = start_replica(tmp_path, name, settings)
            started.append(proc)
            urls.append(url)
        for name in ("worker-1", "worker-2"):
            (tmp_path / name).mkdir()
            started.append(subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=tmp_path / name,
                                            env={**env, "ANSWERDESK_DATA_DIR": str(tmp_path / name)},
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        yield {"urls": urls, "env": env, "root": tmp_path, "jira": jira, "workers": started[2:]}
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.wait(20)


def ask(url: str, question: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/chat", json={"question": question}, timeout=120)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:500]}"
    body: dict[str, Any] = r.json()
    body["session"] = r.headers.get("X-Answerdesk-Session")
    return body


def pages(body: dict[str, Any]) -> list[str]:
    return [c["url"] for c in body["citations"]]


@pytest.mark.parametrize("jira", [False], ids=["data-center"], indirect=True)
def test_replicas_and_workers_share_nothing_but_the_engines(stack: dict[str, Any]) -> None:
    one, two = stack["urls"]
    env, root, fake = stack["env"], stack["root"], stack["jira"]
    docs = root / "kb"
    write_docs(docs, 0, SEED_DOCS)
    ingest = {**env, "ANSWERDESK_DATA_DIR": str(root / "ops")}
    run_cli(ingest, root / "ops", "ingest", "docs", str(docs), "--source", "kb", "--base-url", "https://kb.example")
    seeded = ask(one, f"How do I set up the zq{SEED_DOCS - 1:05d}x widget?")
    assert f"widget-{SEED_DOCS - 1:05d}" in pages(seeded)[0], pages(seeded)

    # Clients ask both replicas, round and round, while a separate process ingests more documents.
    errors: list[str] = []
    asked = [0]
    stop = threading.Event()

    def client(k: int) -> None:
        while not stop.is_set():
            n = (k * 37 + asked[0]) % SEED_DOCS
            try:
                ask((one, two)[asked[0] % 2], f"What must the zq{n:05d}x widget have before it starts?")
                asked[0] += 1
            except (AssertionError, httpx.HTTPError) as exc:
                errors.append(str(exc)[:300])

    clients = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in clients:
        t.start()
    try:
        write_docs(docs, SEED_DOCS, LIVE_DOCS)
        run_cli(ingest, root / "ops", "ingest", "docs", str(docs), "--source", "kb", "--base-url",
                "https://kb.example")
        # The moment the ingest has committed, both replicas answer from it: same pages, same order.
        last = SEED_DOCS + LIVE_DOCS - 1
        answers = [ask(url, f"How do I set up the zq{last:05d}x widget?") for url in (one, two)]
        assert f"widget-{last:05d}" in pages(answers[0])[0], pages(answers[0])
        assert pages(answers[0]) == pages(answers[1])
    finally:
        stop.set()
        for t in clients:
            t.join(120)
    assert not errors, errors[:5]
    assert asked[0] >= 10, "the clients hardly asked during the ingest"

    # Escalations asked on either replica; two workers deliver them, each exactly once.
    escalated = []
    for i in range(ESCALATIONS):
        url = (one, two)[i % 2]
        chat = ask(url, f"How do I set up the zq{i:05d}x widget?")
        r = httpx.post(f"{url}/v1/escalations", json={"conversation_id": chat["conversation_id"]},
                       headers={"X-Answerdesk-Session": chat["session"] or ""}, timeout=30)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "pending"  # the replica only recorded it: its worker is external
        escalated.append((url, r.json()["id"], chat["session"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        views = [httpx.get(f"{url}/v1/escalations/{esc}", headers={"X-Answerdesk-Session": sess or ""},
                           timeout=30).json() for url, esc, sess in escalated]
        if all(v["status"] == "delivered" for v in views):
            break
        time.sleep(0.5)
    assert all(v["status"] == "delivered" for v in views), views
    for _, esc, _ in escalated:
        assert len(tickets(fake, esc)) == 1, f"escalation {esc}: {len(tickets(fake, esc))} tickets"
    for proc in stack["workers"]:
        assert proc.poll() is None, f"a worker died: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
