"""What the reply tests and eval/bench_replies.py share: a local SMTP server (aiosmtpd) that can refuse
the first deliveries, and an answerdesk app served over HTTP with escalations into a fake Jira that
sends signed webhooks, a fake Slack and the SMTP server wired in."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from assistant import db
from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.services import Services
from tests.conftest import free_port, fresh_services, index_docs
from tests.fakes.atlassian import FakeAtlassian
from tests.fakes.atlassian.webhooks import JiraWebhooks
from tests.fakes.slack import FakeSlack, event_callback, mention, signed
from tests.servers import AsgiServer

WEBHOOK_SECRET = "jira-webhook-secret-5f1e2d3c4b5a69788796a5b4"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SESSION_SECRET = "r3pl1es-test-session-secret-0123456789abcdef"
CHANNEL = "C0SUPPORT"
DOCS = {"database.md": "---\ntitle: Configuring the database\naudience: public\n---\n# Configuring the database\n\n"
                       "Set the database URL with the ANSWERDESK_DATABASE_URL environment variable.\n"}


class Inbox:
    """aiosmtpd handler: keeps every accepted message; `refuse` answers 451 (try later) that many times,
    `flaky(p)` refuses each delivery with probability p."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.refuse = 0
        self.chance = 0.0
        self.rng: Callable[[], float] | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        with self.lock:
            if self.refuse > 0 or (self.rng is not None and self.rng() < self.chance):
                self.refuse = max(0, self.refuse - 1)
                self.refused += 1
                return "451 4.3.0 Temporary failure, try again later"
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 2.0.0 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class Rig:
    svc: Services
    url: str
    jira: FakeAtlassian
    hooks: JiraWebhooks
    slack: FakeSlack
    inbox: Inbox

    def chat(self, question: str) -> tuple[dict[str, Any], str]:
        """Ask as a widget visitor: the answer and the visitor's session token."""
        res = httpx.post(f"{self.url}/v1/chat", json={"question": question}, timeout=60)
        assert res.status_code == 200, res.text
        return res.json(), res.headers["X-Answerdesk-Session"]

    def ask_in_slack(self, text: str) -> str:
        """A mention in the support channel; returns the thread's ts once the bot answered there."""
        ts = self.slack.next_ts()
        body = event_callback(mention(CHANNEL, text, ts), f"Ev{ts.replace('.', '')}")
        res = httpx.post(f"{self.url}/slack/events", content=body, timeout=30,
                         headers={"Content-Type": "application/json", **signed(SLACK_SECRET, body)})
        assert res.status_code == 200, res.text
        self.slack.wait_for("chat.postMessage", lambda c: c.body.get("thread_ts") == ts)
        return ts

    def escalation_of_thread(self, thread_ts: str) -> str:
        t, e = db.slack_threads.c, db.escalations.c
        def found() -> str | None:
            with self.svc.store.engine.connect() as conn:
                return conn.execute(sa.select(e.id).join_from(db.escalations, db.slack_threads,
                                                              e.conversation_id == t.conversation_id)
                                    .where(t.thread_ts == thread_ts)).scalar_one_or_none()
        return wait_until(found)

    def ticket(self, escalation_id: str) -> str:
        e = db.escalations.c
        def key() -> str | None:
            with self.svc.store.engine.connect() as conn:
                return conn.execute(sa.select(e.ticket_key).where(e.id == escalation_id,
                                                                  e.status == "delivered")).scalar_one_or_none()
        return wait_until(key)

    def want_email(self, escalation_id: str, address: str) -> None:
        """What the handoff form (another part of issue 18) stores: the contact and the consent."""
        with self.svc.store.engine.begin() as conn:
            conn.execute(db.escalations.update().where(db.escalations.c.id == escalation_id)
                         .values(contact_email=address, notify=True))

    def replies(self, **where: Any) -> list[dict[str, Any]]:
        r = db.replies.c
        with self.svc.store.engine.connect() as conn:
            q = sa.select(db.replies).where(*[getattr(r, k) == v for k, v in where.items()])
            return [dict(row._mapping) for row in conn.execute(q)]


def wait_until(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout} s: {fn}"
            return value
        time.sleep(0.05)


@contextmanager
def rig(root: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack, inbox: Inbox,
        smtp_port: int, webhooks: bool = True, **extra: Any) -> Iterator[Rig]:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text)
    port = free_port()
    settings: dict[str, Any] = {
        "escalation": "jira", "jira_url": jira.url, "jira_user": jira.user, "jira_token": SecretStr(jira.token),
        "jira_cloud": jira.cloud, "jira_project": "SUP", "public_url": f"http://127.0.0.1:{port}",
        "jira_webhook_secret": WEBHOOK_SECRET, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
        "smtp_starttls": False, "smtp_from": "Support <support@vendor.example>", "reply_retry_base": 0.05,
        "slack_bot_token": slack.token, "slack_signing_secret": SLACK_SECRET, "slack_api_url": slack.api_url,
        "slack_channels": {CHANNEL: {"audience": "public"}}, "session_secret": SESSION_SECRET,
        # Agent assist's internal comment arrives as a webhook of its own, at a time the tests do not
        # control; tests/test_assist_on_ticket.py covers it.
        "assist_on_new_tickets": False, **extra}
    svc = fresh_services(root, embedder, **settings)
    index_docs(svc, root / "docs")
    server = AsgiServer(create_app(services=svc), name="answerdesk")
    url = server.start(port)
    hooks = JiraWebhooks(jira)
    if webhooks:
        hooks.subscribe(f"{url}/v1/webhooks/jira", WEBHOOK_SECRET)
    try:
        yield Rig(svc, url, jira, hooks, slack, inbox)
    finally:
        jira.listeners.remove(hooks._on_change)
        server.stop()
