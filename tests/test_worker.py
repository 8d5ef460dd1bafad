"""`answerdesk worker` processes (real subprocesses) on the job queue in real PostgreSQL: with
ANSWERDESK_WORKER=external the API only records escalations and a worker delivers them; two workers deliver
N escalations to the fake Jira exactly once; two workers never run two scheduled syncs of one source at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant import db
from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.escalation.jira_queue import JiraQueue
from assistant.escalation.queue import EscalationRequest, get_escalation, list_escalations
from assistant.jobs.schedule import cron_every
from assistant.replies.outbox import replies_of
from assistant.settings import Settings
from tests.conftest import fresh_services
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, running, shared_contracts
from tests.fakes.static_site import StaticSite
from tests.test_access import session
from tests.test_jira_queue import tickets

ANSWERDESK = Path(sys.executable).parent / "answerdesk"


@pytest.fixture
def jira() -> Iterator[FakeAtlassian]:
    """One fake Jira (Data Center): the worker's flow is the same on Cloud, which test_jira_queue covers."""
    if shared_contracts() is None:
        pytest.skip(SKIP_REASON)
    with running(cloud=False) as fake:
        fake.add_issue("SUP", "Seed ticket", "so the project exists")
        yield fake


def jira_settings(fake: FakeAtlassian) -> dict[str, Any]:
    return {"escalation": "jira", "jira_url": fake.url, "jira_user": fake.user, "jira_token": SecretStr(fake.token),
            "jira_cloud": fake.cloud, "jira_project": "SUP", "assist_on_new_tickets": False}


def env_of(settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a worker process: ours without any ANSWERDESK_* of the developer's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSWERDESK_")}
    for name, value in settings.items():
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"ANSWERDESK_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class Workers:
    """`answerdesk worker` subprocesses, stopped (SIGTERM, as a deployment does) on leaving."""

    def __init__(self, root: Path, settings: dict[str, Any], count: int) -> None:
        self.root, self.env, self.count = root, env_of({"worker": "external", **settings}), count
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Workers:
        for i in range(self.count):
            with open(self.log_path(i), "wb") as log:
                self.procs.append(subprocess.Popen([str(ANSWERDESK), "worker", "--name", f"w{i}"], cwd=self.root,
                                                   env=self.env, stdout=log, stderr=subprocess.STDOUT))
        return self

    def log_path(self, i: int) -> Path:
        return self.root / f"worker{i}.log"

    def logs(self) -> str:
        return "\n".join(self.log_path(i).read_text(errors="replace") for i in range(self.count))

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            assert proc.poll() is None, f"worker {i} exited {proc.returncode}:\n{self.logs()[-3000:]}"

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def until(what: str, ready: Any, workers: Workers, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := ready()):
        workers.check_alive()
        assert time.monotonic() < deadline, f"{what}: not after {seconds} s\n{workers.logs()[-3000:]}"
        time.sleep(0.2)
    return value


def test_external_worker_delivers_what_the_api_only_recorded(tmp_path: Path, pg_url: str, jira: FakeAtlassian,
                                                             embedder: SentenceTransformerEmbedder) -> None:
    settings = {"database_url": pg_url, "delivery_interval": 0.2, **jira_settings(jira)}
    svc = fresh_services(tmp_path, embedder, worker="external", **settings)
    with TestClient(create_app(services=svc)) as c:
        asked = c.post("/v1/chat", json={"question": "How do I install answerdesk?"})
        c.headers.update(session(asked))
        posted = c.post("/v1/escalations", json={"conversation_id": asked.json()["conversation_id"]})
        assert posted.status_code == 201 and posted.json()["status"] == "pending"
        esc = posted.json()["id"]
        time.sleep(2)  # ten delivery intervals: an embedded worker thread would have delivered by now
        assert c.get(f"/v1/escalations/{esc}").json()["status"] == "pending" and tickets(jira, esc) == []
        with Workers(tmp_path, {**settings, "delivery_interval": 1, "jira_poll_interval": 1}, 1) as workers:
            until("the escalation delivered by the worker",
                  lambda: (r := get_escalation(svc.store.engine, esc)) is not None and r.status == "delivered", workers)
            view = c.get(f"/v1/escalations/{esc}").json()
            # An agent answers in Jira: the worker's poll finds it and its reply pass sends it to the widget.
            jira.add_comment(view["ticket_key"], "Run pip install answerdesk, then answerdesk serve.")
            [reply] = until("the agent's answer delivered to the conversation", lambda: [
                r for r in replies_of(svc.store.engine, esc) if r["state"] == "delivered"], workers)
    assert view["status"] == "delivered" and view["ticket_key"].startswith("SUP-")
    assert len(tickets(jira, esc)) == 1
    assert reply["channel"] == "widget" and reply["body"] == "Run pip install answerdesk, then answerdesk serve."


def test_two_workers_deliver_every_escalation_exactly_once(tmp_path: Path, pg_url: str, jira: FakeAtlassian,
                                                           embedder: SentenceTransformerEmbedder) -> None:
    settings = {"database_url": pg_url, "delivery_interval": 1, **jira_settings(jira)}
    svc = fresh_services(tmp_path, embedder, **settings)
    queue = svc.queue
    assert isinstance(queue, JiraQueue)
    queue.in_background()  # record only, as the API does with ANSWERDESK_WORKER=external
    n = 24
    ids = [queue.open(EscalationRequest(svc.conversations.ensure(None), f"Question number {i}?", [], "", [], None,
                                        ["user"])).id for i in range(n)]
    jira.slow_down(0.3, "/rest/api/2/issue")  # deliveries take a while, so both workers are at it together
    with Workers(tmp_path, settings, 2) as workers:
        until(f"{n} escalations delivered",
              lambda: len(list_escalations(svc.store.engine, status="delivered")) == n, workers, seconds=60)
        time.sleep(2)  # passes still under way would show a duplicate now
        logs = workers.logs()
    assert all(len(tickets(jira, i)) == 1 for i in ids)
    assert jira.count(r"/rest/api/2/issue$", "POST") == n  # not one create more
    assert logs.count(" delivered as SUP-") == n, logs[-3000:]


def test_cron_from_interval() -> None:
    assert cron_every(0) is None
    assert cron_every(1) == "* * * * * */1" and cron_every(15) == "* * * * * */15"
    assert cron_every(300) == "*/5 * * * *" and cron_every(7200) == "0 */2 * * *"


def test_worker_refuses_sqlite_naming_the_setting(tmp_path: Path) -> None:
    done = subprocess.run([str(ANSWERDESK), "worker"], cwd=tmp_path, env=env_of({"data_dir": tmp_path / "data"}),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ANSWERDESK_DATABASE_URL" in done.stderr and "PostgreSQL" in done.stderr
    with pytest.raises(ValueError, match="ANSWERDESK_WORKER=external needs PostgreSQL"):
        Settings(data_dir=tmp_path, worker="external", _env_file=None)  # type: ignore[call-arg]


SLOW_PAGE = "/docs/slow.html"


@pytest.fixture
def slow_site() -> Iterator[StaticSite]:
    pages = {SLOW_PAGE: "<html><body><main><h1>Slow</h1><p>The Widgetron dial turns slowly.</p></main></body></html>"}
    with StaticSite(pages, layout="flat") as site:
        site.delay[SLOW_PAGE] = 1.5  # every sync takes longer than the interval between syncs
        yield site


def test_scheduled_syncs_of_one_source_never_overlap(tmp_path: Path, pg_url: str, chroma_server: str,
                                                     slow_site: StaticSite, embedder: SentenceTransformerEmbedder,
                                                     ) -> None:
    from tests.fakes.embedding_server import EmbeddingServer, load_bundled_model
    from tests.servers import AsgiServer

    sources = tmp_path / "answerdesk.toml"
    sources.write_text(f'[[source]]\nname = "slow-site"\ntype = "site"\nurl = "{slow_site.url("/")}"\n')
    http = AsgiServer(EmbeddingServer(load_bundled_model()).app, name="embedding server")  # workers load no model
    http.start()
    try:
        settings = {"database_url": pg_url, "sync_interval": 1, "sources_file": sources, "embedding_url": http.url,
                    "chroma_url": chroma_server, "chroma_collection": f"sync-{tmp_path.name[-20:]}".replace("_", "-")}
        svc = fresh_services(tmp_path, embedder, **settings)
        svc.store  # noqa: B018 - the schema, as `answerdesk db upgrade` makes it
        runs = db.ingest_runs.c

        def finished() -> list[Any]:
            with svc.store.engine.connect() as conn:
                return list(conn.execute(sa.select(runs.started_at, runs.finished_at).where(
                    runs.source == "slow-site", runs.finished_at.is_not(None)).order_by(runs.started_at)))

        with Workers(tmp_path, settings, 2) as workers:
            done = until("four scheduled syncs", lambda: r if len(r := finished()) >= 4 else None, workers,
                         seconds=40)
    finally:
        http.stop()
    for before, after in zip(done, done[1:], strict=False):
        assert after.started_at >= before.finished_at, f"overlapping syncs: {before} and {after}"


def test_reply_leases_outlast_the_slowest_send(tmp_path: Path) -> None:
    """A claim must outlive a send (else a second worker takes the row over and sends it again): an SMTP
    conversation is ~10 blocking steps of ANSWERDESK_SMTP_TIMEOUT each."""
    from datetime import timedelta

    from assistant.replies.factory import build_outbox

    for smtp_timeout in (20, 120):
        settings = Settings(data_dir=tmp_path, smtp_host="mail.example", smtp_timeout=smtp_timeout,  # type: ignore[call-arg]
                            _env_file=None)
        outbox = build_outbox(settings, db.create_engine(f"sqlite:///{tmp_path / 'r.db'}"))
        assert outbox.lease > timedelta(seconds=10 * smtp_timeout)
