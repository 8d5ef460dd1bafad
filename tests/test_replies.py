"""The human's answer comes back to the person who asked (issue 18, item 3, and the rating of item 7).

Real parts throughout: the answerdesk app served over HTTP with its workers, the real
atlassian-python-api against the contract-checked fake Jira, which sends Jira's signed webhooks over
HTTP; slack_sdk against the fake Slack; smtplib against a local aiosmtpd server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from assistant import db
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.replies.poll import poll_jira
from tests.fakes.atlassian import SKIP_REASON, Comment, FakeAtlassian, Person, shared_contracts
from tests.fakes.atlassian.webhooks import sign
from tests.fakes.slack import FakeSlack
from tests.replies_setup import WEBHOOK_SECRET, Inbox, Rig, rig, smtp_server, wait_until

pytestmark = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
AGENT = Person("Dana Support", "dana@vendor.example", "5b10ac8d82e05b22cc7d4ef6")
ANSWER = "Set ANSWERDESK_DATABASE_URL to your PostgreSQL URL and restart the API."


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack,
        smtp: tuple[Inbox, int]) -> Iterator[Rig]:
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1]) as r:
        yield r


def slack_escalation(app: Rig, email: str | None = "alex@customer.example") -> tuple[str, str, str]:
    """A question asked in Slack that went to a human: (thread ts, escalation id, ticket key)."""
    thread = app.ask_in_slack("I want to talk to a human: the database URL setting does not work")
    esc = app.escalation_of_thread(thread)
    if email:
        app.want_email(esc, email)
    return thread, esc, app.ticket(esc)


def support_posts(app: Rig, thread: str) -> list[str]:
    return [c.body["text"] for c in app.slack.ok_calls("chat.postMessage")
            if c.body.get("thread_ts") == thread and "from the support team" in c.body.get("text", "")
            or c.body.get("thread_ts") == thread and "marked your request" in c.body.get("text", "")]


def all_delivered(app: Rig, count: int) -> bool:
    rows = app.replies()
    return len(rows) == count and all(r["state"] == "delivered" for r in rows)


def test_public_comment_reaches_the_conversation_the_slack_thread_and_one_email(app: Rig) -> None:
    thread, esc, key = slack_escalation(app)
    app.jira.add_comment(key, ANSWER, author=AGENT)  # Jira sends comment_created to the webhook
    wait_until(lambda: all_delivered(app, 3))

    [post] = support_posts(app, thread)
    assert "Dana Support from the support team replied" in post and "restart the API" in post
    [mail] = app.inbox.messages
    assert mail["To"] == "alex@customer.example" and key in mail["Subject"]
    assert ANSWER in mail.get_payload(decode=True).decode()
    conversation = app.svc.store.engine.connect().execute(
        sa.select(db.messages.c.content).where(db.messages.c.role == "support")).scalars().all()
    assert conversation == [ANSWER]
    # Later questions in the thread are not answered from the agent's words as if they were the bot's.
    assert {r["channel"] for r in app.replies()} == {"widget", "slack", "email"}


@pytest.mark.parametrize("jsm", [False, True], ids=["issue", "jsm"])
def test_internal_comments_reach_nobody(tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian,
                                        slack: FakeSlack, smtp: tuple[Inbox, int], jsm: bool) -> None:
    extra = {"jsm_service_desk_id": "1", "jsm_request_type_id": "10"} if jsm else {}
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], **extra) as app:
        thread, esc, key = slack_escalation(app)
        # On JSM answerdesk's own context comment (internal) already went out as a webhook; now the agents talk.
        if jsm:
            app.jira.add_comment(key, "INTERNAL: customer is on the legacy plan", public=False, author=AGENT)
        else:
            app.jira.add_comment(key, "INTERNAL: customer is on the legacy plan", author=AGENT,
                                 visibility={"type": "role", "value": "Developers"})
        assert len(app.hooks.sent) == (2 if jsm else 1) and all(d.statuses == [200] for d in app.hooks.sent)
        app.jira.add_comment(key, ANSWER, author=AGENT)  # then a public one: only it comes through
        wait_until(lambda: all_delivered(app, 3))
        time.sleep(0.3)
    text = json.dumps([r["body"] for r in app.replies()]) + "".join(support_posts(app, thread))
    text += "".join(m.get_payload(decode=True).decode() for m in app.inbox.messages)
    assert "INTERNAL" not in text and "answerdesk escalation:" not in text
    assert len(app.inbox.messages) == 1 and len(support_posts(app, thread)) == 1


def test_forged_or_stale_webhooks_are_refused_and_change_nothing(app: Rig) -> None:
    _thread, _esc, key = slack_escalation(app, email=None)
    # A well-formed public comment_created for our ticket, as an attacker would forge it.
    payload = app.hooks.comment_payload(app.jira.issues[key],
                                        Comment("99999", "Click http://evil.example to reset your password", AGENT))
    body = json.dumps(payload).encode()
    url = f"{app.url}/v1/webhooks/jira"
    forged = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    before = _counts(app)
    for headers in ({"X-Hub-Signature": forged}, {}, {"X-Hub-Signature": "sha256="},
                    {"X-Hub-Signature": "sha1=" + forged[7:]}):
        res = httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        assert res.status_code == 401 and "X-Hub-Signature" in res.json()["detail"]
    stale = dict(payload, timestamp=int((time.time() - 2 * 86400) * 1000))
    stale_body = json.dumps(stale).encode()
    res = httpx.post(url, content=stale_body, headers={
        "X-Hub-Signature": "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), stale_body, hashlib.sha256).hexdigest()})
    assert res.status_code == 400 and res.json()["detail"].startswith("timestamp:")
    time.sleep(0.3)
    assert _counts(app) == before and app.inbox.messages == []


def _counts(app: Rig) -> tuple[int, int, int]:
    with app.svc.store.engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (db.replies, db.jira_deliveries, db.messages))


def test_replayed_deliveries_send_nothing_twice(app: Rig) -> None:
    thread, _esc, key = slack_escalation(app)
    app.jira.add_comment(key, ANSWER, author=AGENT)
    app.jira.update_issue(key, resolution="Done")
    wait_until(lambda: all_delivered(app, 6))
    for delivery in list(app.hooks.sent):
        app.hooks.redeliver(delivery)  # Jira's retry: the same identifier
        app.hooks.send(delivery.event, json.loads(delivery.body) | {"timestamp": int(time.time() * 1000)})
    assert all(d.statuses[1] == 200 for d in app.hooks.sent if len(d.statuses) > 1)
    time.sleep(0.5)
    assert all_delivered(app, 6)
    assert len(app.inbox.messages) == 2 and len(support_posts(app, thread)) == 2


def test_smtp_failing_first_attempts_still_delivers_exactly_once(app: Rig) -> None:
    thread, esc, key = slack_escalation(app)
    app.inbox.refuse = 2
    app.slack.errors["chat.postMessage"] = ["channel_not_found"]  # the bot was removed: this one fails for good
    app.jira.add_comment(key, ANSWER, author=AGENT)
    email_row = wait_until(lambda: [r for r in app.replies(channel="email") if r["state"] == "delivered"])[0]
    assert email_row["attempts"] == 3 and app.inbox.refused == 2
    [slack_row] = wait_until(lambda: [r for r in app.replies(channel="slack") if r["state"] == "failed"])
    assert "channel_not_found" in slack_row["last_error"]
    [widget_row] = app.replies(channel="widget")
    assert widget_row["state"] == "delivered"  # the failing channel held up neither of the others
    time.sleep(0.5)
    assert len(app.inbox.messages) == 1 and support_posts(app, thread) == []


def test_resolution_asks_the_widget_visitor_and_the_email_whether_it_solved_it(app: Rig) -> None:
    answer, session = app.chat("I want to talk to a human about the database URL")
    esc = answer["escalation_id"]
    app.want_email(esc, "sam@customer.example")
    key = app.ticket(esc)
    app.jira.add_comment(key, ANSWER, author=AGENT)
    app.jira.update_issue(key, resolution="Done")
    wait_until(lambda: all_delivered(app, 4))

    replies_url = f"{app.url}/v1/conversations/{answer['conversation_id']}/replies"
    assert httpx.get(replies_url).status_code == 404  # not the visitor's session: as if it did not exist
    shown = httpx.get(replies_url, headers={"X-Answerdesk-Session": session}).json()
    assert [(r["kind"], r["author"]) for r in shown] == [("comment", "Dana Support"), ("resolved", None)]
    assert shown[0]["text"] == ANSWER and shown[1]["solved"] is None
    token = shown[1]["rating_token"]
    res = httpx.post(f"{app.url}/v1/ratings/{token}", json={"solved": True})
    assert res.status_code == 200 and res.json() == {"escalation_id": esc, "solved": True, "channel": "widget"}

    # The e-mail carries a signed link; opening it changes nothing, its buttons do.
    mail = app.inbox.messages[-1].get_payload(decode=True).decode()
    link = next(w for w in mail.split() if "/v1/ratings/" in w)
    assert httpx.get(link).status_code == 200 and _solved(app, esc) is True
    res = httpx.post(link, data={"solved": "no"})
    assert res.status_code == 200 and "recorded" in res.text and _solved(app, esc) is False
    assert httpx.post(link, data={"solved": "maybe"}).status_code == 400
    assert httpx.post(f"{app.url}/v1/ratings/{esc}.forged", json={"solved": True}).status_code == 404
    assert httpx.post(f"{app.url}/v1/ratings/{token}", json={"solved": "perhaps"}).status_code == 400
    again = httpx.get(replies_url, headers={"X-Answerdesk-Session": session}).json()
    assert again[1]["solved"] is False
    admin, _ = app.svc.keys.create("admin", "ops")
    stats = httpx.get(f"{app.url}/v1/ratings", headers={"X-API-Key": admin}).json()
    assert stats["summary"]["overall"] == {"answers": 1, "solved": 0, "rate": 0.0}
    assert stats["summary"]["by_channel"]["email"]["answers"] == 1


def _solved(app: Rig, escalation_id: str) -> bool | None:
    from assistant.replies.ratings import rating_of

    return rating_of(app.svc.store.engine, escalation_id)


def test_poll_finds_comments_and_resolution_without_webhooks(tmp_path: Path, embedder: SentenceTransformerEmbedder,
                                                             jira: FakeAtlassian, slack: FakeSlack,
                                                             smtp: tuple[Inbox, int]) -> None:
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], webhooks=False) as app:
        thread, esc, key = slack_escalation(app)
        app.jira.add_comment(key, "INTERNAL note", author=AGENT, visibility={"type": "role", "value": "Developers"})
        app.jira.add_comment(key, ANSWER, author=AGENT)
        client = app.svc.jira_client()
        assert poll_jira(app.svc.replies, client) == 3  # the public comment, to 3 channels
        app.jira.update_issue(key, resolution="Done")
        assert poll_jira(app.svc.replies, client) == 3  # the resolution
        assert poll_jira(app.svc.replies, client) == 0  # nothing new (resolved tickets are polled for a reopen)
        wait_until(lambda: all_delivered(app, 6))
    assert [r["body"] for r in app.replies(kind="comment")] == [ANSWER] * 3
    assert len(app.inbox.messages) == 2 and len(support_posts(app, thread)) == 2


# -- the loop's known gaps (issue 18 follow-up): reopened tickets, who counts as the answer, Jira's times --

def settle(app: Rig, webhooks: bool, count: int) -> None:
    """Wait until `count` replies are delivered; without webhooks, poll Jira first as the worker would."""
    if not webhooks:
        poll_jira(app.svc.replies, app.svc.jira_client())
    wait_until(lambda: all_delivered(app, count))


def escalation_row(app: Rig, escalation_id: str) -> Any:
    with app.svc.store.engine.connect() as conn:
        return conn.execute(sa.select(db.escalations).where(db.escalations.c.id == escalation_id)).one()


def same_ms(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and abs(a - b) < timedelta(milliseconds=1)


@pytest.mark.parametrize("webhooks", [True, False], ids=["webhook", "poll"])
def test_a_reopened_ticket_brings_its_new_answer_and_asks_again_when_resolved_again(
        tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack,
        smtp: tuple[Inbox, int], webhooks: bool) -> None:
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], webhooks=webhooks) as app:
        thread, esc, key = slack_escalation(app)
        app.jira.add_comment(key, ANSWER, author=AGENT)
        settle(app, webhooks, 3)
        app.jira.update_issue(key, resolution="Done")
        settle(app, webhooks, 6)
        app.jira.update_issue(key, resolution=None)  # "still broken": the agent reopens it
        if not webhooks:
            poll_jira(app.svc.replies, app.svc.jira_client())
        assert escalation_row(app, esc).resolved_at is None  # analytics no longer count it resolved
        app.jira.add_comment(key, "Also run `answerdesk db upgrade` after changing it.", author=AGENT)
        settle(app, webhooks, 9)
        app.jira.update_issue(key, resolution="Done")
        settle(app, webhooks, 12)
        # Everything seen again (Jira's retries, the poll) adds nothing.
        if webhooks:
            for delivery in list(app.hooks.sent):
                app.hooks.redeliver(delivery)
            # A captured first resolution, replayed without Jira's identifier header: a known resolution.
            first = next(d for d in app.hooks.sent if d.event == "jira:issue_updated")
            res = httpx.post(f"{app.url}/v1/webhooks/jira", content=first.body, headers={
                "Content-Type": "application/json", "X-Hub-Signature": sign(WEBHOOK_SECRET, first.body)})
            assert res.status_code == 200 and res.json()["replies"] == 0
        else:
            assert poll_jira(app.svc.replies, app.svc.jira_client()) == 0
        time.sleep(0.5)
        assert all_delivered(app, 12)
        second_resolution = app.jira.issues[key].resolved
    posts = support_posts(app, thread)
    assert len(posts) == 4 and "db upgrade" in posts[2] and all("marked your request" in p for p in posts[1::2])
    mails = [m.get_payload(decode=True).decode() for m in app.inbox.messages]
    assert len(mails) == 4 and "db upgrade" in mails[2]
    assert sum("/v1/ratings/" in m for m in mails) == 2  # one rating request per resolution
    assert same_ms(escalation_row(app, esc).resolved_at, second_resolution)  # time to resolution: the last one


@pytest.mark.parametrize("webhooks", [True, False], ids=["webhook", "poll"])
def test_the_askers_and_answerdesks_own_comments_are_not_the_support_teams_answer(
        tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack,
        smtp: tuple[Inbox, int], webhooks: bool) -> None:
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], webhooks=webhooks) as app:
        thread, esc, key = slack_escalation(app)  # contact: alex@customer.example
        customer = Person("Alex Customer", "alex@customer.example", "qm:77:alex", username="alex@customer.example")
        app.jira.issues[key].reporter = customer  # as JSM records a request raised on the customer's behalf
        app.jira.add_comment(key, "Any news? It still fails for me.", author=customer)  # in the portal
        # The same person through another account (e.g. Jira's mail handler), known by the address they gave.
        by_mail = Person("alex", "Alex@Customer.example", "5c00ffee00mail")
        app.jira.add_comment(key, "Sent from my phone: still broken", author=by_mail)
        app.jira.add_comment(key, "Ticket received, an agent will answer shortly.", author=app.jira.bot)
        time.sleep(0.3)
        if not webhooks:
            assert poll_jira(app.svc.replies, app.svc.jira_client()) == 0
        assert app.replies() == [] and escalation_row(app, esc).first_response_at is None
        app.jira.add_comment(key, ANSWER, author=AGENT)
        settle(app, webhooks, 3)
        answered = app.jira.issues[key].comments[-1].created
    assert [r["body"] for r in app.replies()] == [ANSWER] * 3
    assert len(app.inbox.messages) == 1 and len(support_posts(app, thread)) == 1
    assert same_ms(escalation_row(app, esc).first_response_at, answered)


def test_the_poll_dates_the_answer_and_the_resolution_as_jira_does(
        tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack,
        smtp: tuple[Inbox, int]) -> None:
    """A site polled every few minutes: time to first answer and to resolution are Jira's, not the poll's."""
    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], webhooks=False) as app:
        _thread, esc, key = slack_escalation(app)
        app.jira.add_comment(key, ANSWER, author=AGENT)
        now = datetime.now(UTC)
        app.jira.issues[key].comments[-1].created = answered = now - timedelta(minutes=3)
        app.jira.update_issue(key, resolution="Done")
        app.jira.issues[key].resolved = resolved = now - timedelta(minutes=2)
        assert poll_jira(app.svc.replies, app.svc.jira_client()) == 6
        wait_until(lambda: all_delivered(app, 6))
    row = escalation_row(app, esc)
    assert same_ms(row.first_response_at, answered) and same_ms(row.resolved_at, resolved)
    assert all(same_ms(r["event_at"], answered) for r in app.replies(kind="comment"))


def test_an_expired_rating_link_says_so_and_records_nothing(app: Rig) -> None:
    answer, _session = app.chat("I want to talk to a human about the database URL")
    esc = answer["escalation_id"]
    app.jira.update_issue(app.ticket(esc), resolution="Done")
    wait_until(lambda: all_delivered(app, 1))  # the widget's "resolved" (no Slack thread, no e-mail asked)
    tokens = app.svc.replies.tokens
    old = tokens.token(esc, made=time.time() - 31 * 86400)  # the e-mail of a month ago (30 days by default)
    page = httpx.get(f"{app.url}/v1/ratings/{old}?via=email")
    assert page.status_code == 410 and "expired" in page.text and "<button" not in page.text
    assert httpx.post(f"{app.url}/v1/ratings/{old}?via=email", data={"solved": "yes"}).status_code == 410
    res = httpx.post(f"{app.url}/v1/ratings/{old}", json={"solved": True})
    assert res.status_code == 410 and "expired" in res.json()["detail"]
    # Its date moved forward by hand: the signature no longer matches, so it is not valid at all.
    eid, _made, signature = old.split(".")
    forged = f"{eid}.{int(time.time())}.{signature}"
    assert httpx.get(f"{app.url}/v1/ratings/{forged}").status_code == 404
    assert httpx.post(f"{app.url}/v1/ratings/{forged}", json={"solved": True}).status_code == 404
    assert _solved(app, esc) is None and _counts(app)[0] == 1
    recent = tokens.token(esc, made=time.time() - 29 * 86400)
    assert httpx.post(f"{app.url}/v1/ratings/{recent}", json={"solved": True}).status_code == 200
    assert _solved(app, esc) is True


def assist_notes(app: Rig, key: str) -> list[Comment]:
    return [c for c in app.jira.issues[key].comments if "Suggested reply (answerdesk" in c.body]


def test_a_ticket_made_in_jira_gets_agent_assist_once_and_an_escalations_ticket_not_twice(
        tmp_path: Path, embedder: SentenceTransformerEmbedder, jira: FakeAtlassian, slack: FakeSlack,
        smtp: tuple[Inbox, int]) -> None:
    from atlassian import Jira

    with rig(tmp_path, embedder, jira, slack, smtp[0], smtp[1], webhooks=False, assist_on_new_tickets=True) as app:
        app.hooks.subscribe(f"{app.url}/v1/webhooks/jira", WEBHOOK_SECRET,
                            events=("comment_created", "jira:issue_updated", "jira:issue_created"))
        # An agent opens a ticket in Jira itself (the real client, as any Jira user would).
        auth = {"username": jira.user, "password": jira.token} if jira.cloud else {"token": jira.token}
        client = Jira(jira.url, cloud=jira.cloud, api_version=3 if jira.cloud else 2, **auth)
        key = client.create_issue(fields={"project": {"key": "SUP"}, "summary": "How do I set the database URL?",
                                          "issuetype": {"name": "Task"}})["key"]
        wait_until(lambda: assist_notes(app, key), timeout=60)
        [created] = [d for d in app.hooks.sent if d.event == "jira:issue_created"]
        app.hooks.redeliver(created)  # Jira's retry
        app.hooks.send(created.event, json.loads(created.body) | {"timestamp": int(time.time() * 1000)})
        # And an escalation's ticket: Jira announces it too, but it gets its note from the delivery only.
        _thread, esc, esc_key = slack_escalation(app, email=None)
        wait_until(lambda: assist_notes(app, esc_key), timeout=60)
        time.sleep(1.0)
        [note] = assist_notes(app, key)
        assert note.visibility or note.public is False  # internal: for the agent, never the customer
        assert len(assist_notes(app, esc_key)) == 1
        assert len([d for d in app.hooks.sent if d.event == "jira:issue_created"]) == 3  # ours was announced
        assert app.replies() == []  # an internal note is nobody's answer
