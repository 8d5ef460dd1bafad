"""Escalations into Jira through the real atlassian-python-api client, against the contract-checked
fake Atlassian server: the whole context in the ticket, JSM requests with internal comments, outages
that lose nothing and duplicate nothing, and agent assist."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.api import create_app
from assistant.atlassian.adf import adf_to_text
from assistant.escalation.jira_queue import JiraQueue, idempotency_label
from assistant.escalation.queue import EscalationRecord, get_escalation
from assistant.services import Services
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, shared_contracts
from tests.test_access import session

pytestmark = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
OFF_TOPIC = "What is the best recipe for banana bread?"


def jira_services(base: Services, fake: FakeAtlassian, **extra: Any) -> Services:
    settings = base.settings.model_copy(update={
        "escalation": "jira", "jira_url": fake.url, "jira_user": fake.user, "jira_token": SecretStr(fake.token),
        "jira_cloud": fake.cloud, "jira_project": "SUP", "public_url": "https://help.example", **extra})
    return Services(settings, embedder=base.embedder)


def tickets(fake: FakeAtlassian, escalation_id: str) -> list[Any]:
    return [i for i in fake.issues.values() if idempotency_label(escalation_id) in i.labels]


def wait_for(svc: Services, escalation_id: str, ready: Callable[[EscalationRecord], bool],
             seconds: float = 30) -> EscalationRecord:
    """The escalation's row once the background worker got it to `ready`."""
    deadline = time.monotonic() + seconds
    while True:
        row = get_escalation(svc.store.engine, escalation_id)
        if row is not None and ready(row):
            return row
        assert time.monotonic() < deadline, f"escalation {escalation_id} not ready after {seconds} s: {row}"
        time.sleep(0.05)


def test_escalation_becomes_a_ticket_with_the_whole_context(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    key, _ = svc.keys.create("customer", "acme", "acme", "paid")
    with TestClient(create_app(services=svc)) as c:
        first = c.post("/v1/chat", json={"question": "How do I install answerdesk?"},
                       headers={"X-API-Key": key}).json()
        body = c.post("/v1/chat", json={"question": OFF_TOPIC, "conversation_id": first["conversation_id"]},
                      headers={"X-API-Key": key}).json()
        assert body["escalated"]
        wait_for(svc, body["escalation_id"], lambda row: row.status == "delivered")  # the worker delivers
        view = c.get(f"/v1/escalations/{body['escalation_id']}", headers={"X-API-Key": key}).json()
    assert view["status"] == "delivered" and view["ticket_key"].startswith("SUP-")
    assert view["ticket_url"] == f"{jira.url}/browse/{view['ticket_key']}" and view["jira_status"]
    [issue] = tickets(jira, body["escalation_id"])
    text = adf_to_text(issue.description) if isinstance(issue.description, dict) else str(issue.description)
    assert issue.summary == OFF_TOPIC
    for expected in ("How do I install answerdesk?", "Draft answer:", "Confidence:", "Why:", "tier: paid",
                     "org: acme", f"https://help.example/staff/conversations/{first['conversation_id']}"):
        assert expected in text, expected
    assert "answerdesk" in issue.labels and "sla-paid" in issue.labels


def test_jira_down_loses_nothing_and_delivers_exactly_once(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    port = jira.port
    jira.stop()  # Jira is down
    with TestClient(create_app(services=svc)) as c:
        asked = c.post("/v1/chat", json={"question": OFF_TOPIC})
        body = asked.json()
        assert body["escalated"] and body["escalation_id"]  # the user still gets a reference
        wait_for(svc, body["escalation_id"], lambda row: row.attempts > 0 and row.claimed_until is None)
        view = c.get(f"/v1/escalations/{body['escalation_id']}", headers=session(asked)).json()
        assert view["status"] == "pending" and view["ticket_key"] is None
        assert view["last_error"] is None  # the delivery error is for staff: it is recorded, not shown
        assert get_escalation(svc.store.engine, body["escalation_id"]).last_error
    jira.start(port)  # back
    queue = svc.queue
    assert isinstance(queue, JiraQueue)
    assert queue.deliver_pending(force=True)["delivered"] >= 1
    assert queue.deliver_pending(force=True)["delivered"] == 0
    assert len(tickets(jira, body["escalation_id"])) == 1


def test_server_errors_then_recovery(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    jira.fail(500, "/rest/api/")
    ref_id = svc.assistant.respond(OFF_TOPIC).escalation_id
    queue = svc.queue
    assert isinstance(queue, JiraQueue)
    assert queue.deliver_pending(force=True)["delivered"] == 0  # still failing: stays pending
    jira.heal()
    queue.deliver_pending(force=True)
    assert len(tickets(jira, ref_id)) == 1


def test_racing_deliveries_and_lost_responses_make_one_ticket(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    queue = JiraQueue(svc.store.engine, svc.jira_client, "SUP", deliver_now=False)
    svc.__dict__["queue"] = queue
    esc = svc.assistant.respond(OFF_TOPIC).escalation_id
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(queue.deliver(esc))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(tickets(jira, esc)) == 1
    # A ticket created whose response never came back: the retry adopts it instead of opening another.
    lost = svc.assistant.respond(OFF_TOPIC + " Really.").escalation_id
    made = jira.add_issue("SUP", OFF_TOPIC, "created, response lost", labels=[idempotency_label(lost)],
                          resolution=None)
    assert queue.deliver(lost)
    assert [i.key for i in tickets(jira, lost)] == [made]


def test_second_escalation_of_a_conversation_comments_on_its_ticket(docs_services: Services,
                                                                    jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    first = svc.assistant.respond(OFF_TOPIC)
    again = svc.assistant.respond("I want to talk to a human please", first.conversation_id)
    assert again.escalated
    [issue] = tickets(jira, first.escalation_id)
    assert not tickets(jira, again.escalation_id)
    assert any("escalated again" in (adf_to_text(c.body) if isinstance(c.body, dict) else c.body)
               for c in issue.comments)


def test_jsm_request_with_context_as_internal_comment(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, jsm_service_desk_id="1", jsm_request_type_id="10")
    esc = svc.assistant.respond(OFF_TOPIC).escalation_id
    row = get_escalation(svc.store.engine, esc)
    issue = jira.issues[row.ticket_key]
    assert issue.jsm and issue.summary == OFF_TOPIC
    [context] = [c for c in issue.comments if "Draft answer:" in str(c.body)]
    assert context.public is False  # the context is an internal note, never shown to the customer


def test_agent_suggest_cites_docs_lists_similar_ticket_and_posts_internally(
        docs_services: Services, jira: FakeAtlassian) -> None:
    from ingest.jira import sync_jira

    svc = jira_services(docs_services, jira)
    old = jira.add_issue("SUP", "Cannot connect to PostgreSQL database",
                         "The database URL was wrong; ANSWERDESK_DATABASE_URL fixed it.", resolution="Fixed")
    sync_jira(svc, "tickets", jira.url, 'project = SUP AND resolution is not EMPTY', jira.cloud, None)
    new = jira.add_issue("SUP", "How do I point answerdesk at a PostgreSQL database?",
                         "We want to use our PostgreSQL server instead of SQLite.", resolution=None)
    agent, _ = svc.keys.create("agent", "sam")
    with TestClient(create_app(services=svc)) as c:
        assert c.post("/v1/agent/suggest", json={"ticket_key": new}).status_code == 403  # community
        r = c.post("/v1/agent/suggest", json={"ticket_key": new, "post": True}, headers={"X-API-Key": agent})
    assert r.status_code == 200, r.text
    out = r.json()
    assert any("configuration.md#" in x["url"] for x in out["citations"])
    assert old in [t["key"] for t in out["similar_tickets"]]
    assert out["posted"]
    [comment] = jira.issues[new].comments
    assert comment.visibility or comment.public is False  # internal only
    assert "Suggested reply" in (adf_to_text(comment.body) if isinstance(comment.body, dict) else comment.body)


def test_resolved_escalation_flows_back_as_knowledge_and_eval_case(docs_services: Services, jira: FakeAtlassian,
                                                                    tmp_path: Any) -> None:
    import json

    from eval.golden import export
    from ingest.jira import sync_jira

    svc = jira_services(docs_services, jira)
    question = "Our PostgreSQL connection string is refused, what format does answerdesk expect?"
    esc = svc.assistant.respond(question + " I want to talk to a human.").escalation_id
    key = get_escalation(svc.store.engine, esc).ticket_key
    reply = ("Use postgresql://user:password@host:5432/db in ANSWERDESK_DATABASE_URL, see "
             "https://answerdesk.example/docs/configuration.md#setting-the-database-url")
    jira.add_comment(key, reply)
    jira.update_issue(key, resolution="Fixed")
    sync_jira(svc, "tickets", jira.url, "project = SUP AND resolution is not EMPTY", jira.cloud, None)

    hits = svc.retriever.search(key, k=3)  # the resolved ticket is now knowledge, findable by its key
    assert hits and hits[0].chunk.doc_id == key
    counts = export(svc, tmp_path / "golden")
    queries = [json.loads(x) for x in (tmp_path / "golden" / "queries.jsonl").read_text().splitlines()]
    candidate = next(q for q in queries if q["id"] == f"esc-{esc}")
    assert candidate["question"].startswith(question) and "ANSWERDESK_DATABASE_URL" in candidate["answer"]
    assert "user:password" not in candidate["answer"]  # redacted by the connector before storage
    ticket_case = next(q for q in queries if q["id"] == key)
    qrels = (tmp_path / "golden" / "qrels.tsv").read_text()
    assert f"{key}\tanswerdesk-docs:configuration.md" in qrels and ticket_case["answer"]
    assert counts["documents"] >= 6 and "tickets:" not in (tmp_path / "golden" / "corpus.jsonl").read_text()[:2000]


def test_jira_timeout_keeps_it_pending_and_the_late_ticket_is_adopted(docs_services: Services,
                                                                      jira: FakeAtlassian) -> None:
    """Jira does the work but answers after our timeout: the escalation stays pending, and the retry
    finds the ticket Jira made instead of opening a second one."""
    svc = jira_services(docs_services, jira, jira_timeout=1)
    jira.slow_down(2.5, "/issue")
    esc = svc.assistant.respond(OFF_TOPIC).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row.status == "pending" and row.ticket_key is None
    assert "ReadTimeout" in row.last_error  # the outbox says why it is still waiting
    jira.slow_down(0)
    svc.queue.deliver_pending(force=True)
    assert len(tickets(jira, esc)) == 1
    assert get_escalation(svc.store.engine, esc).status == "delivered"
