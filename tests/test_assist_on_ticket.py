"""Agent assist when a ticket arrives (issue 18, item 5): the suggested reply (draft with sources and
similar resolved tickets) goes on every new escalation ticket as an INTERNAL comment, exactly once,
whatever retries, lost answers and restarts do; `Services.post_assist` does the same for a ticket made
in Jira directly (what the `issue_created` webhook calls). Real model, real atlassian-python-api, the
contract-checked fake Jira."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from assistant import db
from assistant.escalation.jira_queue import JiraQueue
from assistant.escalation.queue import get_escalation
from assistant.keys import Identity
from assistant.services import Services
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, running, shared_contracts
from tests.test_jira_delivery import text_of
from tests.test_jira_queue import OFF_TOPIC, jira_services

pytestmark = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
PAID = Identity("customer", "k-acme", "acme", "paid")
QUESTION = "I want to talk to a human: how do I point answerdesk at a PostgreSQL database?"


SITES = itertools.count(1)


@pytest.fixture(params=[False, True], ids=["data-center", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[FakeAtlassian]:
    """A fresh fake site per test, numbering its tickets apart from the other tests' (they share one
    database, where assist posts are recorded by ticket key, as they are for one real Jira)."""
    with running(cloud=request.param) as fake:
        fake.add_issue("SUP", "Seed ticket", "so the project exists", number=100_000 * next(SITES))
        yield fake


def assists(fake: FakeAtlassian, key: str) -> list[Any]:
    return [c for c in fake.issues[key].comments if "Suggested reply (answerdesk" in text_of(c.body)]


def internal(comment: Any) -> bool:
    return bool(comment.visibility) or comment.public is False


def queue_of(svc: Services) -> JiraQueue:
    assert isinstance(svc.queue, JiraQueue)
    return svc.queue


@pytest.mark.parametrize("jsm", [False, True], ids=["issue", "jsm"])
def test_new_ticket_gets_one_internal_suggestion(docs_services: Services, jira: FakeAtlassian, jsm: bool) -> None:
    extra = {"jsm_service_desk_id": "1", "jsm_request_type_id": "10"} if jsm else {}
    svc = jira_services(docs_services, jira, **extra)
    esc = svc.assistant.respond(QUESTION, identity=PAID).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "delivered" and row.ticket_key
    with svc.store.engine.connect() as conn:
        recorded = conn.execute(sa.select(db.assist_posts).where(db.assist_posts.c.ticket_key == row.ticket_key)).one()
    assert recorded.posted_at is not None, recorded.last_error
    [comment] = assists(jira, row.ticket_key)
    assert internal(comment)  # for the agent, never the customer
    text = text_of(comment.body)
    assert "configuration.md" in text and "Sources:" in text  # a cited draft, not an empty shell
    assert f"answerdesk assist: {row.ticket_key}" in text
    # Whatever runs again later, it is not posted twice.
    assert svc.post_assist(row.ticket_key) is False
    queue_of(svc).deliver_pending(force=True)
    assert len(assists(jira, row.ticket_key)) == 1


def test_failed_post_is_retried_by_the_worker_and_lands_once(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    jira.fail(503, "/comment", times=1)  # Jira turns the comment away once
    esc = svc.assistant.respond(OFF_TOPIC, identity=PAID).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "delivered"  # assist failing never fails the delivery
    assert assists(jira, row.ticket_key) == []
    with svc.store.engine.connect() as conn:
        recorded = conn.execute(sa.select(db.assist_posts).where(db.assist_posts.c.ticket_key == row.ticket_key)).one()
    assert recorded.posted_at is None and "503" in recorded.last_error
    queue_of(svc).deliver_pending()  # the worker's next pass
    queue_of(svc).deliver_pending()
    assert len(assists(jira, row.ticket_key)) == 1


def test_comment_made_but_answer_lost_is_not_posted_again(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, jira_timeout=1)
    jira.slow_down(2.5, "/comment")  # Jira adds the comment, the answer comes after our timeout
    esc = svc.assistant.respond(OFF_TOPIC, identity=PAID).escalation_id
    key = get_escalation(svc.store.engine, esc).ticket_key  # type: ignore[union-attr]
    assert key and len(assists(jira, key)) == 1  # it is there, though we never heard so
    jira.slow_down(0)
    queue_of(svc).deliver_pending()  # the retry reads the ticket first and finds its marker
    assert len(assists(jira, key)) == 1
    with svc.store.engine.connect() as conn:
        assert conn.execute(sa.select(db.assist_posts.c.posted_at).where(
            db.assist_posts.c.ticket_key == key)).scalar_one() is not None


def test_restart_between_delivery_and_assist_still_posts_once(docs_services: Services, jira: FakeAtlassian) -> None:
    before = jira_services(docs_services, jira, assist_on_new_tickets=False)  # as if the process died here
    esc = before.assistant.respond(OFF_TOPIC, identity=PAID).escalation_id
    key = get_escalation(before.store.engine, esc).ticket_key  # type: ignore[union-attr]
    assert key and assists(jira, key) == []
    after = jira_services(docs_services, jira)  # restarted: the worker catches up
    queue_of(after).deliver_pending()
    queue_of(after).deliver_pending()
    assert len(assists(jira, key)) == 1


def test_ticket_made_in_jira_gets_assist_through_post_assist(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira)
    key = jira.add_issue("SUP", "How do I point answerdesk at a PostgreSQL database?",
                         "We want our PostgreSQL server instead of SQLite.", resolution=None)
    assert svc.post_assist(key) is True
    assert svc.post_assist(key) is False
    [comment] = assists(jira, key)
    assert internal(comment) and "configuration.md" in text_of(comment.body)
