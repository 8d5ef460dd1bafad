"""Escalation delivery when Jira says no, says nothing, or says it late (issue 13): a question Jira
cannot take as a summary still becomes a ticket; a refusal retrying cannot fix is a visible failed
state an admin fixes and retries, never an endless retry; the JSM context comment is its own recorded
step; a slow delivery keeps its lease; a create without an answer is not repeated before Jira's
search has caught up. Real atlassian-python-api against the contract-checked fake Jira."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from assistant import db
from assistant.api import create_app
from assistant.atlassian.adf import adf_to_text, text_to_adf
from assistant.escalation import jira_queue
from assistant.escalation.handoff import request_human
from assistant.escalation.jira_queue import JiraQueue, lease_for
from assistant.escalation.queue import get_escalation
from assistant.services import Services
from cli.main import app as cli_app
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, shared_contracts
from tests.test_access import session
from tests.test_jira_queue import jira_services, tickets, wait_for

pytestmark = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
MULTILINE = ("I want to talk to a human.\nMy install fails at step 2:\r\n  pip install answerdesk\n"
             "error: no matching distribution\n\n" + "Details follow. " * 30)


def text_of(body: Any) -> str:
    return adf_to_text(body) if isinstance(body, dict) else str(body)


def queue_of(svc: Services) -> JiraQueue:
    queue = svc.queue
    assert isinstance(queue, JiraQueue)
    return queue


def context_comments(fake: FakeAtlassian, key: str, escalation_id: str) -> list[Any]:
    return [c for c in fake.issues[key].comments if f"answerdesk escalation: {escalation_id}" in text_of(c.body)]


# -- item 2: summaries Jira accepts, and refusals that stop ------------------------------------------
@pytest.mark.parametrize("jsm", [False, True], ids=["issue", "jsm"])
def test_question_with_line_breaks_and_no_end_becomes_a_ticket(docs_services: Services, jira: FakeAtlassian,
                                                               jsm: bool) -> None:
    extra = {"jsm_service_desk_id": "1", "jsm_request_type_id": "10"} if jsm else {}
    svc = jira_services(docs_services, jira, **extra)
    esc = svc.assistant.respond(MULTILINE).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "delivered", row and row.last_error
    [issue] = tickets(jira, esc)
    assert "\n" not in issue.summary and "\r" not in issue.summary and len(issue.summary) <= 255
    assert issue.summary.startswith("I want to talk to a human. My install fails at step 2: pip install answerdesk")
    # Nothing of the question is lost: the whole of it, line breaks and all, is in the context.
    context = issue.description if not jsm else text_of(context_comments(jira, issue.key, esc)[0].body)
    assert "pip install answerdesk\nerror: no matching distribution" in text_of(context)


def test_fake_jira_refuses_summaries_as_jira_does(jira: FakeAtlassian) -> None:
    from atlassian import Jira

    client = Jira(jira.url, cloud=jira.cloud, api_version=3 if jira.cloud else 2,
                  **({"username": jira.user, "password": jira.token} if jira.cloud else {"token": jira.token}))
    for summary, error in (("two\nlines", "contains newline characters"), ("x" * 256, "less than 255 characters"),
                           ("", "You must specify a summary")):
        with pytest.raises(Exception, match=error) as caught:
            client.create_issue(fields={"project": {"key": "SUP"}, "summary": summary, "issuetype": {"name": "Task"}})
        assert caught.value.response.status_code == 400  # type: ignore[attr-defined]
    assert not jira.unexpected_violations()


def test_refusal_is_a_visible_failed_state_an_admin_fixes_and_retries(
        docs_services: Services, jira: FakeAtlassian) -> None:
    broken = jira_services(docs_services, jira, jira_project="NOPE")  # a project Jira does not have
    esc = broken.assistant.respond("I want to talk to a human please").escalation_id
    row = get_escalation(broken.store.engine, esc)
    assert row is not None and row.status == "failed" and "Specify a valid project" in row.last_error
    creates = jira.count(r"/issue$", "POST")
    assert queue_of(broken).deliver_pending(force=True) == {"due": 0, "delivered": 0}  # no endless retry
    assert jira.count(r"/issue$", "POST") == creates

    runner = CliRunner()
    listed = runner.invoke(cli_app, ["escalations", "list", "--status", "failed"], obj=lambda: broken,
                           env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and esc[:8] in listed.output
    assert "Specify a valid project" in " ".join(listed.output.split())
    retried = runner.invoke(cli_app, ["escalations", "retry"], obj=lambda: broken, env={"COLUMNS": "300"})
    assert "1 failed" in retried.output and tickets(jira, esc) == []

    fixed = jira_services(docs_services, jira)  # the admin fixed ANSWERDESK_JIRA_PROJECT
    again = runner.invoke(cli_app, ["escalations", "retry", esc[:8], "--summary", "Install fails\non step 2"],
                          obj=lambda: fixed)
    assert again.exit_code == 0, again.output
    [issue] = tickets(jira, esc)
    assert issue.summary == "Install fails on step 2"
    assert get_escalation(fixed.store.engine, esc).status == "delivered"
    assert runner.invoke(cli_app, ["escalations", "retry", "zzzz"], obj=lambda: fixed).exit_code == 1


@pytest.mark.parametrize("status", [429, 503])
def test_transient_failures_keep_retrying(docs_services: Services, jira: FakeAtlassian, status: int) -> None:
    svc = jira_services(docs_services, jira)
    jira.fail(status, "/issue")
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "pending" and row.next_attempt_at is not None
    jira.heal()
    assert queue_of(svc).deliver_pending(force=True)["delivered"] == 1
    assert len(tickets(jira, esc)) == 1


def test_asking_for_a_human_joins_the_escalation_jira_has_not_got_yet(docs_services: Services,
                                                                    jira: FakeAtlassian) -> None:
    """The assistant escalated on its own while Jira was down; the user then asks for a human. The
    waiting escalation becomes theirs: one ticket when Jira is back, with the user's reason in it.
    Once that ticket exists, asking again is a new escalation delivered as a comment on the same
    ticket ("The user escalated again"), with what the user said."""
    svc = jira_services(docs_services, jira)
    jira.fail(503, "/issue")
    auto = svc.assistant.respond("Which fertiliser do tomatoes need in spring?")
    assert auto.escalation_id and "low_confidence" in auto.flags
    joined = request_human(svc.conversations, svc.queue, svc.routing, auto.conversation_id, None, "need this today")
    assert joined.id == auto.escalation_id
    jira.heal()
    queue_of(svc).deliver_pending(force=True)
    [ticket] = tickets(jira, auto.escalation_id)
    assert "need this today" in text_of(ticket.description)
    row = get_escalation(svc.store.engine, auto.escalation_id)
    assert row is not None and row.status == "delivered" and row.requested_by_user
    again = request_human(svc.conversations, svc.queue, svc.routing, auto.conversation_id, None, "still waiting")
    assert again.id != auto.escalation_id and again.ticket_key == row.ticket_key
    [comment] = context_comments(jira, row.ticket_key, again.id)
    assert "The user escalated again" in text_of(comment.body) and "still waiting" in text_of(comment.body)
    assert len(tickets(jira, auto.escalation_id)) == 1


# -- item 11: recorded steps, the lease, and Jira's lagging search ------------------------------------
def test_jsm_context_comment_is_its_own_step(docs_services: Services, jira: FakeAtlassian) -> None:
    """The request is made but its internal comment fails: the retry posts the comment (once) instead
    of adopting the request and calling it delivered."""
    svc = jira_services(docs_services, jira, jsm_service_desk_id="1", jsm_request_type_id="10", jira_timeout=1)
    jira.fail(500, "/comment", times=1)
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "pending" and row.ticket_key  # the key is kept already
    assert queue_of(svc).deliver_pending(force=True)["delivered"] == 1
    [issue] = tickets(jira, esc)
    [context] = context_comments(jira, issue.key, esc)
    assert context.public is False and "Draft answer:" in context.body



def test_a_lost_comment_answer_does_not_post_it_twice(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, jsm_service_desk_id="1", jsm_request_type_id="10", jira_timeout=1)
    jira.slow_down(2.5, "/comment")  # Jira posts the comment, the answer comes after our timeout
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "pending" and "ReadTimeout" in row.last_error
    jira.slow_down(0)
    assert queue_of(svc).deliver_pending(force=True)["delivered"] == 1
    [issue] = tickets(jira, esc)
    assert len(context_comments(jira, issue.key, esc)) == 1


def test_lease_outlasts_a_worst_case_delivery(docs_services: Services, jira: FakeAtlassian,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery still waiting on Jira 61 s after it started (several calls at the 20 s timeout) keeps
    its row: a second worker does not deliver the same escalation."""
    assert lease_for(20) >= timedelta(seconds=6 * 20)
    svc = jira_services(docs_services, jira)
    queue = JiraQueue(svc.store.engine, svc.jira_client, "SUP", deliver_now=False, timeout=20)
    svc.__dict__["queue"] = queue
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    jira.search_lag = 30  # the first worker's ticket is not searchable yet
    jira.slow_down(2, "/issue")
    real = jira_queue.utcnow
    late: set[int] = set()
    monkeypatch.setattr(jira_queue, "utcnow",
                        lambda: real() + (timedelta(seconds=61) if threading.get_ident() in late else timedelta()))
    first: list[bool] = []
    worker = threading.Thread(target=lambda: first.append(queue.deliver(esc)))
    worker.start()
    while jira.count(r"/issue$", "POST") == 0:  # the first worker is inside its create call
        threading.Event().wait(0.05)
    late.add(threading.get_ident())  # this thread is the second worker, 61 s later
    second = queue.deliver(esc)
    worker.join()
    assert first == [True] and second is False
    assert len([i for i in jira.issues.values() if i.summary == "I want to talk to a human please"]) == 1


def test_no_second_create_before_search_can_show_the_first(docs_services: Services, jira: FakeAtlassian) -> None:
    """The create reached Jira but its answer timed out, and Jira's search does not show the ticket yet:
    the retry waits instead of creating a duplicate, then adopts the ticket."""
    svc = jira_services(docs_services, jira, jira_timeout=1, jira_search_settle=6)
    jira.search_lag = 3
    jira.slow_down(2, "/issue")
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    jira.slow_down(0)
    queue = queue_of(svc)
    assert queue.deliver_pending(force=True)["delivered"] == 0  # the search cannot see it yet: no create
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "pending" and "waiting" in row.last_error
    assert len([i for i in jira.issues.values() if i.summary == "I want to talk to a human please"]) == 1
    threading.Event().wait(3.2)  # Jira's index catches up
    assert queue.deliver_pending(force=True)["delivered"] == 1
    assert len(tickets(jira, esc)) == 1


# -- item 8: throttled, delivered in the background, read from the database ----------------------------
def test_escalation_endpoint_returns_at_once_and_never_calls_jira_itself(docs_services: Services,
                                                                         jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, jira_status_refresh=0.01, delivery_interval=0.2)
    with TestClient(create_app(services=svc)) as c:
        asked = c.post("/v1/chat", json={"question": "How do I install answerdesk?"})
        c.headers.update(session(asked))  # the anonymous caller's session owns the conversation
        chat = asked.json()
        jira.slow_down(2, "/rest/")  # Jira is slow, not down
        started = time.monotonic()
        posted = c.post("/v1/escalations", json={"conversation_id": chat["conversation_id"]})
        assert posted.status_code == 201 and time.monotonic() - started < 1.5  # the reference at once
        assert posted.json()["status"] == "pending"
        esc = posted.json()["id"]
        # Jira recovers: with every call 2 s late the worker's pass (it also refreshes the status of
        # earlier tests' tickets in this shared database) could outlast the wait on a loaded machine.
        jira.slow_down(0)
        row = wait_for(svc, esc, lambda r: r.status == "delivered")  # delivered by the worker
        jira.update_issue(row.ticket_key, resolution="Done")  # an agent closes it in Jira
        wait_for(svc, esc, lambda r: r.jira_status == "Done")  # the worker noticed
        queue_of(svc).status_refresh = timedelta(hours=1)  # the worker is done refreshing for now
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1:  # (a pass already under way finishes)
            if jira.log:
                jira.reset_log()
                quiet_since = time.monotonic()
            time.sleep(0.1)
        for _ in range(5):
            view = c.get(f"/v1/escalations/{esc}").json()
            assert view["jira_status"] == "Done" and view["ticket_key"] == row.ticket_key
        assert jira.log == []  # reading an escalation called Jira not once
    assert len(tickets(jira, esc)) == 1


def test_escalation_endpoint_is_rate_limited_like_chat(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, rate_limits={"community": 3})
    with TestClient(create_app(services=svc)) as c:
        asked = c.post("/v1/chat", json={"question": "How do I install answerdesk?"})
        c.headers.update(session(asked))
        cid = asked.json()["conversation_id"]
        codes = [c.post("/v1/escalations", json={"conversation_id": cid}).status_code for _ in range(3)]
    assert codes[:2] == [201, 201] and codes[2] == 429


# -- low: user text is never markup in the ticket ------------------------------------------------------
MARKUP = "I want to talk to a human. See !https://evil.example/p.png! and ask [~jdoe] {color:red}now{color}"


@pytest.mark.parametrize("jsm", [False, True], ids=["issue", "jsm"])
def test_user_text_cannot_embed_images_or_mention_people(docs_services: Services, jira: FakeAtlassian,
                                                        jsm: bool) -> None:
    extra = {"jsm_service_desk_id": "1", "jsm_request_type_id": "10"} if jsm else {}
    svc = jira_services(docs_services, jira, redact_pii=False, **extra)  # escaping holds without redaction too
    esc = svc.assistant.respond(MARKUP).escalation_id
    [issue] = tickets(jira, esc)
    body = text_of(context_comments(jira, issue.key, esc)[0].body if jsm else issue.description)
    if jira.cloud and not jsm:
        # ADF: the text arrives as text nodes, shown as typed, never parsed as markup.
        assert "!https://evil.example/p.png! and ask [~jdoe]" in body
        return
    # Wiki markup (Data Center, JSM comments): the markup characters are escaped.
    assert r"\!https://evil.example/p.png\! and ask \[~jdoe\] \{color:red\}now\{color\}" in body
    assert not re.search(r"(?<!\\)!https://evil", body) and not re.search(r"(?<!\\)\[~jdoe", body)


def test_cloud_bodies_are_plain_text_nodes() -> None:
    doc = text_to_adf(MARKUP + "\nsecond line\n\nnext paragraph")

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node] + [n for child in node.get("content", []) for n in nodes(child)]

    assert {n["type"] for n in nodes(doc)} == {"doc", "paragraph", "text", "hardBreak"}
    assert not any("marks" in n for n in nodes(doc))
    assert adf_to_text(doc).startswith(MARKUP)


def test_a_ticket_jira_no_longer_has_is_not_asked_for_every_pass(docs_services: Services,
                                                                 jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, jira_status_refresh=3600)
    esc = svc.assistant.respond("I want to talk to a human please").escalation_id
    key = get_escalation(svc.store.engine, esc).ticket_key
    del jira.issues[key]  # deleted in Jira
    with svc.store.engine.begin() as conn:
        conn.execute(db.escalations.update().where(db.escalations.c.id == esc).values(status_checked_at=None))
    queue_of(svc).refresh_statuses()  # asks once, gets 404
    jira.reset_log()
    queue_of(svc).refresh_statuses()
    assert jira.count(f"/issue/{key}") == 0  # not again before its turn: it cannot crowd out the others
    assert get_escalation(svc.store.engine, esc).jira_status  # the last known one
