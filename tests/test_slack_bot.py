"""The Slack bot end to end: Slack's signed requests posted to the FastAPI app, the real slack-bolt
and slack_sdk talking to a local fake Slack Web API, the real model, Chroma and SQLite underneath."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from assistant import db
from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.errors import RetrievalError
from assistant.services import Services
from assistant.settings import Settings
from tests.conftest import index_docs
from tests.fakes.slack import (
    BOT_ID,
    BOT_USER_ID,
    Call,
    FakeSlack,
    block_actions,
    event_callback,
    mention,
    message,
    reaction,
    signed,
    slash_command,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PUBLIC, ACME, INTERNAL, UNLISTED = "C0PUBLIC", "C0ACME", "C0INTERNAL", "C0RANDOM"
DOCS = {
    "database.md": "---\ntitle: Configuring the database\naudience: public\n---\n# Configuring the database\n\n"
                   "## Database URL\n\nSet the database URL with the **ANSWERDESK_DATABASE_URL** environment variable. "
                   "It accepts any SQLAlchemy URL such as `postgresql://user@host/db`.\n\n"
                   "## Rotating the database password\n\nTo rotate the database password, change the password in "
                   "PostgreSQL first, then update ANSWERDESK_DATABASE_URL and restart the API.\n",
    "maintenance.md": "---\ntitle: Maintenance windows\naudience: public\n---\n# Maintenance windows\n\n"
                      "Maintenance windows start at 02:00 UTC every Tuesday <!channel> and last ninety minutes. "
                      "Follow <https://evil.example|the status page> for maintenance changes.\n",
    "refunds.md": "---\ntitle: Refund runbook\naudience: internal\n---\n# Refund runbook\n\n"
                  "Refunds above 500 euros need approval from the finance lead. Refund canary INTERNAL-OSPREY-7731 "
                  "marks this internal runbook.\n",
}
BASE = "https://answerdesk.example/docs"
CANARY = "INTERNAL-OSPREY-7731"


# -- fixtures: one fake Slack, one indexed knowledge base and one app for the module --------------
@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def svc(slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Services:
    root = tmp_path_factory.mktemp("slack")
    (root / "docs").mkdir()
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text)
    settings = Settings(
        data_dir=root / "data", _env_file=None, slack_bot_token=slack.token, slack_signing_secret=SECRET,  # type: ignore[call-arg]
        slack_api_url=slack.api_url,
        slack_channels={PUBLIC: {"audience": "public"}, INTERNAL: {"audience": "internal"},
                        ACME: {"audience": "customer", "org": "acme", "tier": "paid"}},
        handoff_options={
            "paid": [{"label": "Book a call with support", "url": "https://cal.example/acme-support",
                      "description": "30 minutes with an engineer"},
                     {"label": "Priority e-mail", "url": "mailto:priority@example.com"}],
            "default": [{"label": "Community forum", "url": "https://forum.example/support"}]},
    )
    services = Services(settings, embedder=embedder)
    index_docs(services, root / "docs", base_url=BASE)
    return services


@pytest.fixture(scope="module")
def client(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=svc)) as c:
        yield c


@pytest.fixture(autouse=True)
def clean(slack: FakeSlack) -> None:
    slack.reset()


def deliver(client: TestClient, body: str, form: bool = False, timestamp: int | None = None,
            secret: str = SECRET, headers: dict[str, str] | None = None) -> httpx.Response:
    ctype = "application/x-www-form-urlencoded" if form else "application/json"
    return client.post("/slack/events", content=body,
                       headers={"Content-Type": ctype, **signed(secret, body, timestamp), **(headers or {})})


def ask(client: TestClient, slack: FakeSlack, event: dict[str, Any], answer: bool = True) -> Call:
    """Deliver an event and wait for the bot's post in the event's thread and, for an answer, for the
    bot to have recorded it (it can only do so once Slack returned the post's ts, a moment after the
    fake saw it)."""
    assert deliver(client, event_callback(event, f"Ev{uuid.uuid4().hex[:10]}")).status_code == 200
    thread = event.get("thread_ts") or event["ts"]
    post = in_thread(slack, event["channel"], thread)[-1]
    if answer:
        svc: Services = client.app.state.services  # type: ignore[attr-defined]
        wait_until(lambda: rows(svc, db.slack_answers, db.slack_answers.c.ts == posted_ts(post)))
    return post


def in_thread(slack: FakeSlack, channel: str, thread_ts: str, count: int = 1) -> list[Call]:
    return slack.wait_for("chat.postMessage", lambda c: c.body["channel"] == channel and
                          c.body.get("thread_ts") == thread_ts, count)


def posted_ts(call: Call) -> str:
    assert isinstance(call.answer, dict)
    return str(call.answer["ts"])


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)
    return found


def rows(svc: Services, table: sa.Table, *where: Any) -> list[Any]:
    with svc.store.engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(*where)))


# -- the endpoint: configuration, signatures ----------------------------------------------------
def test_without_slack_settings_the_endpoint_says_which_variables_to_set(services: Services) -> None:
    with TestClient(create_app(services=services)) as c:
        response = c.post("/slack/events", content="{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert "ANSWERDESK_SLACK_BOT_TOKEN" in response.json()["detail"]
    assert "ANSWERDESK_SLACK_SIGNING_SECRET" in response.json()["detail"]


def test_url_verification_is_answered_with_the_challenge(client: TestClient) -> None:
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = deliver(client, body)
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_forged_or_stale_requests_are_rejected_and_never_answered(client: TestClient, slack: FakeSlack) -> None:
    ts = slack.next_ts()
    body = event_callback(mention(PUBLIC, "How do I set the database URL?", ts), "EvForged1")
    assert deliver(client, body, secret="not-the-signing-secret").status_code == 401
    assert deliver(client, body, timestamp=int(time.time()) - 6 * 60).status_code == 401  # replayed: > 5 min old
    tampered = signed(SECRET, body)
    response = client.post("/slack/events", content=body.replace("database", "d4tabase"),
                           headers={"Content-Type": "application/json", **tampered})
    assert response.status_code == 401
    # A genuine request afterwards is answered, and it is the only answer in that thread.
    ask(client, slack, mention(PUBLIC, "How do I set the database URL?", slack.next_ts()))
    assert not [c for c in slack.calls if c.method == "chat.postMessage" and c.body.get("thread_ts") == ts]


# -- answering --------------------------------------------------------------------------------------
def test_a_mention_is_answered_in_its_thread_with_links_to_the_cited_doc(client: TestClient, slack: FakeSlack,
                                                                      svc: Services) -> None:
    ts = slack.next_ts()
    post = ask(client, slack, mention(PUBLIC, "How do I set the database URL?", ts))
    assert post.body["channel"] == PUBLIC and post.body["thread_ts"] == ts
    assert post.authorization == f"Bearer {slack.token}"
    blocks = post.body["blocks"]
    answer = blocks[0]["text"]["text"]
    assert "*ANSWERDESK_DATABASE_URL*" in answer  # **bold** became mrkdwn bold
    assert f"<{BASE}/database" in answer and "|[1]>" in answer  # [1] links to the doc it quotes
    sources = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert "*Sources*" in sources and "|Configuring the database" in sources
    button = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert button["text"]["text"] == "Talk to a human"
    assert post.body["unfurl_links"] is False
    # The Slack thread and the bot's message are recorded against the stored conversation and answer.
    thread = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == ts)[0]
    posted = rows(svc, db.slack_answers, db.slack_answers.c.ts == posted_ts(post))[0]
    assert posted.conversation_id == thread.conversation_id
    assert [m.role for m in svc.conversations.messages(thread.conversation_id)] == ["user", "assistant"]
    assert svc.conversations.messages(thread.conversation_id)[0].content == "How do I set the database URL?"


def test_the_ack_does_not_wait_for_the_answer(client: TestClient, slack: FakeSlack, svc: Services,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    respond = svc.assistant.respond

    def slow_respond(*args: Any, **kwargs: Any) -> dict[str, Any]:
        gate.wait(10)  # the answer cannot finish before the test opens the gate
        return respond(*args, **kwargs)

    monkeypatch.setattr(svc.assistant, "respond", slow_respond)
    ts = slack.next_ts()
    started = time.monotonic()
    try:
        assert deliver(client, event_callback(mention(PUBLIC, "How do I set the database URL?", ts), "EvSlow1")
                       ).status_code == 200
        assert time.monotonic() - started < 3  # Slack's deadline; the answer is still blocked here
        assert not slack.ok_calls("chat.postMessage")
    finally:
        gate.set()
    assert "ANSWERDESK_DATABASE_URL" in in_thread(slack, PUBLIC, ts)[0].body["text"]


def test_a_follow_up_in_the_thread_continues_the_conversation(client: TestClient, slack: FakeSlack,
                                                              svc: Services) -> None:
    root = slack.next_ts()
    ask(client, slack, mention(PUBLIC, "How do I rotate the database password?", root))
    # A plain reply in the thread (message.channels), no mention needed.
    follow_up = message(PUBLIC, "and after that?", slack.next_ts(), thread_ts=root)
    assert deliver(client, event_callback(follow_up, "EvFollowUp1")).status_code == 200
    posts = in_thread(slack, PUBLIC, root, 2)
    assert len(posts) == 2
    threads = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == root)
    assert len(threads) == 1
    history = svc.conversations.messages(threads[0].conversation_id)
    assert [m.role for m in history] == ["user", "assistant"] * 2
    # The follow-up was searched together with the question before it.
    assert history[2].search_query == "How do I rotate the database password? and after that?"
    answered = {r.conversation_id for r in rows(svc, db.slack_answers, db.slack_answers.c.thread_ts == root)}
    assert answered == {threads[0].conversation_id}


def test_direct_messages_are_answered_and_bots_edits_and_strangers_threads_are_not(
        client: TestClient, slack: FakeSlack) -> None:
    ignored = [
        message("D0ALICE", "How do I set the database URL?", slack.next_ts(), channel_type="im",
                user=BOT_USER_ID, bot_id=BOT_ID),  # our own answer coming back
        message("D0ALICE", "How do I set the database URL?", slack.next_ts(), channel_type="im",
                user="U0OTHERBOT", bot_id="B0OTHER", subtype="bot_message"),
        message("D0ALICE", "", slack.next_ts(), channel_type="im", subtype="message_changed"),
        message(PUBLIC, "<@U0ALICE> has joined the channel", slack.next_ts(), subtype="channel_join"),
        message(PUBLIC, "How do I set the database URL?", slack.next_ts()),  # not in a thread we answered
        message(PUBLIC, "How do I set the database URL?", slack.next_ts(), thread_ts=slack.next_ts()),
    ]
    for i, event in enumerate(ignored):
        assert deliver(client, event_callback(event, f"EvIgnored{i}{uuid.uuid4().hex[:6]}")).status_code == 200
    ts = slack.next_ts()
    post = ask(client, slack, message("D0ALICE", "How do I set the database URL?", ts, channel_type="im"))
    assert post.body["channel"] == "D0ALICE" and post.body["thread_ts"] == ts
    assert len(slack.ok_calls("chat.postMessage")) == 1  # nothing but the one real question was answered


def test_a_retried_delivery_is_answered_once(client: TestClient, slack: FakeSlack) -> None:
    ts = slack.next_ts()
    body = event_callback(mention(PUBLIC, "How do I set the database URL?", ts), "EvRetried1")
    assert deliver(client, body).status_code == 200
    assert deliver(client, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
                   ).status_code == 200
    in_thread(slack, PUBLIC, ts)
    ask(client, slack, mention(PUBLIC, "How do I rotate the database password?", slack.next_ts()))  # a later one
    assert len([c for c in slack.ok_calls("chat.postMessage") if c.body["thread_ts"] == ts]) == 1


def test_a_community_channel_never_sees_internal_sources_an_internal_channel_may(
        client: TestClient, slack: FakeSlack) -> None:
    question = "Who approves refunds above 500 euros?"
    for event in (mention(PUBLIC, question, slack.next_ts()), mention(UNLISTED, question, slack.next_ts()),
                  message("D0BOB", question, slack.next_ts(), channel_type="im")):
        shown = ask(client, slack, event).text_everywhere()
        assert CANARY not in shown and "finance lead" not in shown and f"{BASE}/refunds" not in shown
    internal = ask(client, slack, mention(INTERNAL, question, slack.next_ts()))
    assert "finance lead" in internal.body["text"]
    assert f"{BASE}/refunds" in internal.text_everywhere()


def test_a_document_cannot_ping_the_channel_or_disguise_a_link(client: TestClient, slack: FakeSlack) -> None:
    post = ask(client, slack, mention(PUBLIC, "When do maintenance windows start?", slack.next_ts()))
    shown = post.text_everywhere()
    assert "Tuesday" in shown
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "|the status page>" not in shown  # the document's own <url|label> is not a link


# -- handoff, feedback ------------------------------------------------------------------------------
def test_talk_to_a_human_escalates_and_offers_the_channels_tier_options(client: TestClient, slack: FakeSlack,
                                                                        svc: Services) -> None:
    root = slack.next_ts()
    slack.users["U0ALICE"] = "alice@acme.example"  # the bot may read profile e-mails (users:read.email)
    answer = ask(client, slack, mention(ACME, "How do I set the database URL?", root))
    answer_ts = posted_ts(answer)
    click = block_actions(ACME, answer_ts, root, "answerdesk_human", slack.response_url())
    assert deliver(client, click, form=True).status_code == 200
    note = in_thread(slack, ACME, root, 2)[-1]
    cid = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == root)[0].conversation_id
    escalation = rows(svc, db.escalations, db.escalations.c.conversation_id == cid)
    assert len(escalation) == 1
    e = escalation[0]
    assert e.requested_by_user and e.tier == "paid" and e.org == "acme" and e.question.startswith("How do I set")
    assert any(r.startswith("Slack: https://answerdesk-test.slack.com/archives/C0ACME/") for r in e.reasons)
    # Who clicked, for the agent; whether to write to them is not asked in Slack.
    assert (e.contact_email, e.notify) == ("alice@acme.example", False)
    shown = note.text_everywhere()
    assert e.id in note.body["text"] and "<@U0ALICE>" in note.body["text"]
    buttons = [el for b in note.body["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert [b["url"] for b in buttons] == ["https://cal.example/acme-support"]  # mailto stays a text link
    assert "<mailto:priority@example.com|Priority e-mail>" in shown
    assert "forum.example" not in shown  # the community's option is not the paid plan's
    # A second click does not open a second ticket; the clicker is told where it stands.
    assert deliver(client, click, form=True).status_code == 200
    told = slack.wait_for("chat.postEphemeral")[0]
    assert told.body["user"] == "U0ALICE" and e.id in told.body["text"]
    assert len(rows(svc, db.escalations, db.escalations.c.conversation_id == cid)) == 1
    # Now people talk in the thread: plain replies are theirs, the bot answers only when mentioned.
    chat = [message(ACME, "Thanks, an agent will call me", slack.next_ts(), thread_ts=root),
            mention(ACME, "How do I rotate the database password?", slack.next_ts(), thread_ts=root)]
    for i, event in enumerate(chat):
        assert deliver(client, event_callback(event, f"EvAfterHandoff{i}{root}")).status_code == 200
    after = in_thread(slack, ACME, root, 3)
    assert len(after) == 3 and "rotate the database password" in after[-1].body["text"]


@pytest.mark.leak
def test_a_threads_reference_number_opens_nothing_over_the_api(client: TestClient, slack: FakeSlack,
                                                               svc: Services) -> None:
    """A Slack conversation belongs to its channel: the reference shown in the thread lets nobody read the
    escalation (question, draft, sources, permalink) or add turns to the thread's history over the API."""
    root = slack.next_ts()
    post = ask(client, slack, mention(INTERNAL, "I want to talk to a human about the refund runbook", root))
    cid = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == root)[0].conversation_id
    [escalation] = rows(svc, db.escalations, db.escalations.c.conversation_id == cid)
    assert escalation.id in post.body["text"]  # the reference everyone in the thread can see
    history = len(svc.conversations.messages(cid))
    customer, _ = svc.keys.create("customer", "someone", "acme", "paid")
    session = client.post("/v1/chat", json={"question": "hi"}).headers["X-Answerdesk-Session"]
    for headers in ({}, {"X-API-Key": customer}, {"X-Answerdesk-Session": session}):
        view = client.get(f"/v1/escalations/{escalation.id}", headers=headers)
        assert view.status_code == 404 and CANARY not in view.text and "slack.com" not in view.text
        more = client.post("/v1/chat", json={"question": "and the canary?", "conversation_id": cid}, headers=headers)
        assert more.status_code == 404
        assert client.post("/v1/escalations", json={"conversation_id": cid}, headers=headers).status_code == 404
    assert len(svc.conversations.messages(cid)) == history
    # The thread itself carries on, and staff still see the escalation.
    follow_up = mention(INTERNAL, "How do I rotate the database password?", slack.next_ts(), thread_ts=root)
    assert deliver(client, event_callback(follow_up, f"EvOwn{root}")).status_code == 200
    assert "rotate" in in_thread(slack, INTERNAL, root, 2)[-1].body["text"].lower()
    wait_until(lambda: len(svc.conversations.messages(cid)) == history + 2)
    agent, _ = svc.keys.create("agent", "an agent")
    assert client.get(f"/v1/escalations/{escalation.id}", headers={"X-API-Key": agent}).status_code == 200


def test_without_the_email_scope_the_escalation_has_no_contact(client: TestClient, slack: FakeSlack,
                                                               svc: Services) -> None:
    root = slack.next_ts()
    slack.users["U0BOB"] = None  # users.info answers, but without users:read.email there is no e-mail
    answer = ask(client, slack, mention(ACME, "How do I set the database URL?", root, user="U0BOB"))
    click = block_actions(ACME, posted_ts(answer), root, "answerdesk_human", slack.response_url(), user="U0BOB")
    assert deliver(client, click, form=True).status_code == 200
    in_thread(slack, ACME, root, 2)
    cid = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == root)[0].conversation_id
    [e] = rows(svc, db.escalations, db.escalations.c.conversation_id == cid)
    assert e.requested_by_user and (e.contact_email, e.notify) == (None, False)
    assert slack.ok_calls("users.info")


def test_an_escalated_answer_shows_the_community_options_without_a_button(client: TestClient,
                                                                          slack: FakeSlack, svc: Services) -> None:
    root = slack.next_ts()
    post = ask(client, slack, mention(UNLISTED, "I want to talk to a human please", root))
    assert "passed your request to the support team" in post.body["text"]
    cid = rows(svc, db.slack_threads, db.slack_threads.c.thread_ts == root)[0].conversation_id
    [escalation] = rows(svc, db.escalations, db.escalations.c.conversation_id == cid)
    # The agent can go to the thread: the escalation records its link.
    link = f"Slack: https://answerdesk-test.slack.com/archives/{UNLISTED}/p{root.replace('.', '')}"
    assert link in escalation.reasons
    buttons = [el for b in post.body["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert [b["url"] for b in buttons] == ["https://forum.example/support"]
    assert "answerdesk_human" not in json.dumps(post.body["blocks"])


def test_thumbs_reactions_on_an_answer_are_recorded_as_feedback(client: TestClient, slack: FakeSlack,
                                                                svc: Services) -> None:
    answer = ask(client, slack, mention(PUBLIC, "How do I set the database URL?", slack.next_ts()))
    answer_ts = posted_ts(answer)
    message_id = rows(svc, db.slack_answers, db.slack_answers.c.ts == answer_ts)[0].message_id
    for i, (name, user) in enumerate([("+1", "U0ALICE"), ("+1", "U0ALICE"), ("thumbsdown::skin-tone-3", "U0BOB"),
                                      ("tada", "U0BOB")]):
        assert deliver(client, event_callback(reaction(PUBLIC, answer_ts, name, user), f"EvReact{i}{answer_ts}")
                       ).status_code == 200
    assert deliver(client, event_callback(reaction(PUBLIC, "1600000000.000001", "+1"), f"EvReactX{answer_ts}")
                   ).status_code == 200  # not one of our answers
    feedback = wait_until(lambda: len(got := rows(svc, db.feedback, db.feedback.c.message_id == message_id)) >= 2
                          and got)
    assert sorted(f.rating for f in feedback) == ["down", "up"]  # one per person and rating; tada is no rating


# -- agent assist ---------------------------------------------------------------------------------
def test_suggest_is_refused_outside_internal_channels(client: TestClient, slack: FakeSlack) -> None:
    response = deliver(client, slash_command(PUBLIC, "suggest SUP-123", slack.response_url()), form=True)
    assert response.status_code == 200
    assert "only works in internal support channels" in response.text  # shown to the caller only
    usage = deliver(client, slash_command(INTERNAL, "hello", slack.response_url()), form=True)
    assert "/answerdesk suggest KEY" in usage.text
    assert not [c for c in slack.calls if c.method != "auth.test"]  # nothing was looked up or posted


def test_suggest_without_jira_tells_the_agent_what_to_configure(client: TestClient, slack: FakeSlack) -> None:
    response = deliver(client, slash_command(INTERNAL, "suggest sup-123", slack.response_url()), form=True)
    assert "Drafting a suggested reply for SUP-123" in response.text
    sent = slack.wait_for("response_url")[0]
    assert sent.body["response_type"] == "ephemeral"
    assert "Jira is not configured" in sent.body["text"] and "ANSWERDESK_JIRA_URL" in sent.body["text"]


# -- failures ---------------------------------------------------------------------------------------
def test_a_failing_index_gets_an_apology_in_the_thread(client: TestClient, slack: FakeSlack, svc: Services,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise RetrievalError("Chroma is unreachable at http://chroma.internal:8000: set ANSWERDESK_CHROMA_URL")

    monkeypatch.setattr(svc.retriever, "search", down)
    public = ask(client, slack, mention(PUBLIC, "How do I set the database URL?", slack.next_ts()), answer=False)
    assert public.body["text"].startswith("Sorry, I couldn't answer that just now")
    assert "chroma" not in public.body["text"].lower()  # no internals for the community
    internal = ask(client, slack, mention(INTERNAL, "How do I set the database URL?", slack.next_ts()), answer=False)
    assert "ANSWERDESK_CHROMA_URL" in internal.body["text"]  # staff see the cause, which names the fix


def test_rate_limits_are_waited_out_and_api_errors_do_not_stop_the_bot(client: TestClient,
                                                                        slack: FakeSlack) -> None:
    slack.rate_limited["chat.postMessage"] = 1
    ts = slack.next_ts()
    ask(client, slack, mention(PUBLIC, "How do I set the database URL?", ts))
    attempts = [c for c in slack.calls if c.method == "chat.postMessage" and c.body.get("thread_ts") == ts]
    assert [c.http_status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= slack.retry_after  # Retry-After was honoured
    slack.errors["chat.postMessage"] = ["not_in_channel"]
    lost = slack.next_ts()
    assert deliver(client, event_callback(mention(PUBLIC, "How do I set the database URL?", lost), "EvLost1")
                   ).status_code == 200
    failed = wait_until(lambda: [c.answer for c in slack.calls if c.body.get("thread_ts") == lost])
    assert failed == [{"ok": False, "error": "not_in_channel"}]  # logged, not retried, not raised
    assert ask(client, slack, mention(PUBLIC, "How do I rotate the database password?", slack.next_ts())).ok


def test_a_long_answer_is_split_within_slack_limits(slack: FakeSlack, svc: Services) -> None:
    from assistant.slack.messages import answer_message
    from tests.builders import chat_result, citation

    long_text = " ".join(f"Sentence {i} explains **a detail** of the setup [1]." for i in range(600))
    text, blocks = answer_message(chat_result(long_text, [citation(1, "Configuring the database", f"{BASE}/database")]))
    posted = httpx.post(f"{slack.api_url}chat.postMessage", headers={"Authorization": f"Bearer {slack.token}"},
                        json={"channel": PUBLIC, "text": text, "blocks": blocks}).json()
    assert posted["ok"], posted  # the fake applies Slack's Block Kit limits
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) > 1 and all(len(s) <= 3000 for s in sections) and len(blocks) <= 50
    assert "Sentence 0 " in sections[0] and "Sentence 599 " in sections[-1]


def test_slack_answers_wait_in_the_api_priority_queue_paid_channels_first(client: TestClient,
                                                                          slack: FakeSlack) -> None:
    """Slack shares the API's answer slots: with every slot busy, a paid customer's channel asking after
    the community still goes first, and neither runs until a slot frees up."""
    slots = client.app.state.traffic.slots  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    held = 0
    while slots.active < slots.limit:  # every answer slot busy, as under load
        portal.call(slots.acquire, 0, "holder")
        held += 1
    try:
        community, paid = slack.next_ts(), slack.next_ts()
        for channel, ts in ((PUBLIC, community), (ACME, paid)):
            event = mention(channel, "How do I rotate the database password?", ts)
            assert deliver(client, event_callback(event, f"EvQueue{ts}")).status_code == 200
            wait_until(lambda ts=ts: slots.waiting == (1 if ts == community else 2))
        assert not slack.ok_calls("chat.postMessage")  # nothing answered while the slots are taken
    finally:
        for _ in range(held):
            portal.call(slots.release)
    in_thread(slack, PUBLIC, community)
    in_thread(slack, ACME, paid)
    order = [label for label in slots.started if label.startswith("slack:")][-2:]
    assert order == ["slack:paid", "slack:community"]
