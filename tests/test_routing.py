"""Routing rules (issue 18, item 4): tier, org and topic choose the Jira assignee, components, priority
and JSM request type; the first matching rule wins and no match leaves the project's default assignee.
Rules are checked whole at start. Real atlassian-python-api against the contract-checked fake Jira,
which names users by accountId on Cloud and by username on Data Center, as Jira does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from assistant import db
from assistant.errors import ConfigError
from assistant.escalation.handoff import request_human
from assistant.escalation.queue import get_escalation
from assistant.escalation.routing import Router, load_rules, parse_rules
from assistant.keys import Identity
from assistant.services import Services
from assistant.settings import Settings
from assistant.store import utcnow
from ingest.sync import load_sources
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, shared_contracts
from tests.test_jira_queue import OFF_TOPIC, jira_services, tickets

needs_contracts = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
PAID_ACME = Identity("customer", "k-acme", "acme", "paid")
FREE_GLOBEX = Identity("customer", "k-globex", "globex", "free")
DANA = {"cloud": "712020:5c1a0e2b-billing", "dc": "dana.billing"}  # the fake's people (state.PEOPLE)
IVO = {"cloud": "712020:93d4f7aa-install", "dc": "ivo.install"}


def rules_for(fake: FakeAtlassian) -> str:
    who = "cloud" if fake.cloud else "dc"
    return json.dumps([
        {"name": "paid acme", "tier": "paid", "org": ["acme", "initech"], "assignee": DANA[who],
         "components": ["Billing"], "priority": "Highest"},
        {"name": "install questions", "topic": "answerdesk-docs", "assignee": IVO[who], "components": "Install"},
        {"name": "never reached", "tier": "paid", "assignee": IVO[who]},  # rule 1 already took paid acme
    ])


def escalate_after_answer(svc: Services, question: str, identity: Identity) -> str:
    """A user asks, gets an answer citing the docs, then presses "Talk to a human" (POST /v1/escalations)."""
    result = svc.assistant.respond(question, identity=identity)
    assert result.citations, "the question should be answered from the docs"
    return request_human(svc.conversations, svc.queue, svc.routing, result.conversation_id, identity).id


# -- applied at delivery, Cloud (accountId) and Data Center (username) ---------------------------------
@needs_contracts
def test_first_matching_rule_sets_assignee_components_and_priority(docs_services: Services,
                                                                   jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, routing_rules=rules_for(jira))
    esc = svc.assistant.respond(OFF_TOPIC, identity=PAID_ACME).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "delivered", row and row.last_error
    [issue] = tickets(jira, esc)
    assert issue.assignee is not None and issue.assignee.display_name == "Dana Billing"
    assert issue.components == ["Billing"] and issue.priority == "Highest"  # the rule's, not the tier's "High"
    assert row.routing and row.routing["rule"] == "paid acme"
    assert row.routing["assignee_name"] == "Dana Billing"  # Jira's name for the accountId, for the staff page


@needs_contracts
def test_topic_is_the_cited_source(docs_services: Services, jira: FakeAtlassian) -> None:
    svc = jira_services(docs_services, jira, routing_rules=rules_for(jira))
    esc = escalate_after_answer(svc, "How do I install answerdesk?", FREE_GLOBEX)
    [issue] = tickets(jira, esc)
    assert issue.assignee is not None and issue.assignee.display_name == "Ivo Install"
    assert issue.components == ["Install"]
    assert issue.priority == "Medium"  # no priority in the rule: the tier's (escalation_priorities)


@needs_contracts
def test_no_matching_rule_sends_no_assignee(docs_services: Services, jira: FakeAtlassian) -> None:
    only_paid = json.dumps(json.loads(rules_for(jira))[:1])
    svc = jira_services(docs_services, jira, routing_rules=only_paid)
    esc = svc.assistant.respond(OFF_TOPIC, identity=FREE_GLOBEX).escalation_id  # free, globex: no rule matches
    [issue] = tickets(jira, esc)
    assert issue.assignee is None and issue.components == []  # Jira's default assignee takes it
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.routing == {"rule": None, "assignee": None, "assignee_name": None, "components": [],
                                               "priority": None, "request_type": None}


@needs_contracts
def test_a_username_on_cloud_is_refused_as_jira_refuses_it(docs_services: Services, jira: FakeAtlassian) -> None:
    """The fake holds Cloud and Data Center to their own user fields, so the tests above prove the shape."""
    wrong = json.dumps([{"tier": "paid", "assignee": DANA["dc"] if jira.cloud else "nobody.here"}])
    svc = jira_services(docs_services, jira, routing_rules=wrong)
    esc = svc.assistant.respond(OFF_TOPIC, identity=PAID_ACME).escalation_id
    row = get_escalation(svc.store.engine, esc)
    assert row is not None and row.status == "failed"  # a 4xx retrying cannot fix: for an admin to see
    assert ("does not exist" in (row.last_error or "")), row.last_error


@needs_contracts
def test_jsm_request_type_and_assignee(docs_services: Services, jira: FakeAtlassian) -> None:
    who = "cloud" if jira.cloud else "dc"
    rules = json.dumps([{"tier": "paid", "request_type": "12", "assignee": DANA[who], "components": ["Billing"]}])
    svc = jira_services(docs_services, jira, jsm_service_desk_id="1", jsm_request_type_id="10", routing_rules=rules)
    paid = svc.assistant.respond(OFF_TOPIC, identity=PAID_ACME).escalation_id
    free = svc.assistant.respond(OFF_TOPIC + " (free)", identity=FREE_GLOBEX).escalation_id
    [routed], [default] = tickets(jira, paid), tickets(jira, free)
    assert routed.jsm and routed.request_type == "12"
    assert routed.assignee is not None and routed.assignee.display_name == "Dana Billing"
    assert routed.components == ["Billing"]
    assert default.request_type == "10" and default.assignee is None  # the configured request type
    assert jira.count(r"/rest/api/[23]/issue/[^/]+$", "PUT") == 1  # only the routed request was edited


# -- checked at start ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("rules", "expected"), [
    ([{"tier": "paid", "asignee": "x"}], "rule #1: asignee: unknown key"),
    ([{"tier": "paid"}], "rule #1: a rule must set at least one of"),
    ([{"assignee": "x"}, {"topic": "billing", "request_type": "abc"}], "rule #2: request_type: String should match"),
    ({"tier": "paid"}, "Input should be a valid list"),
])
def test_bad_rules_are_named_at_start(rules: Any, expected: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ANSWERDESK_ROUTING_RULES") as caught:
        load_rules(json.dumps(rules), None)
    assert expected in str(caught.value)


def test_bad_rules_stop_the_jira_queue_from_starting(settings: Settings) -> None:
    bad = settings.model_copy(update={
        "escalation": "jira", "jira_url": "http://127.0.0.1:9", "jira_user": "u", "jira_token": SecretStr("t"),
        "jira_project": "SUP", "routing_rules": '[{"tier": "paid", "assign": "dana"}]'})
    with pytest.raises(ConfigError, match="assign: unknown key"):
        Services(bad).queue  # noqa: B018 - what the API's start builds


SOURCES_TOML = """
[[source]]
type = "docs"
name = "handbook"
path = "docs"

[[routing]]
name = "billing"
topic = ["billing", "invoices"]
assignee = "dana.billing"
components = ["Billing"]
"""


def test_routing_section_of_the_sources_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    toml = tmp_path / "answerdesk.toml"
    toml.write_text(SOURCES_TOML)
    [rule] = load_rules("", toml)
    assert rule.name == "billing" and rule.topic == ["billing", "invoices"] and rule.components == ["Billing"]
    assert [s.name for s in load_sources(toml)] == ["handbook"]  # sync accepts the section

    yaml_file = tmp_path / "answerdesk.yaml"
    yaml_file.write_text("sources:\n  - {type: docs, name: handbook, path: docs}\n"
                         "routing:\n  - {tier: paid, priority: Highest, team: x}\n")
    with pytest.raises(ConfigError, match=r"rule #1: team: unknown key"):
        load_sources(yaml_file)  # `answerdesk sync` reports a bad section too
    with pytest.raises(ConfigError, match="keep one"):
        load_rules('[{"tier": "paid", "priority": "High"}]', toml)


def test_topic_matches_the_labels_of_cited_documents(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    db.init_db(engine)
    with engine.begin() as conn:
        conn.execute(db.documents.insert(), [
            {"source": "wiki", "doc_id": "42", "title": "Invoices", "url": "u", "content_hash": "h",
             "audience": "public", "chunk_count": 1, "indexed_at": utcnow(), "meta": {"labels": "billing,faq"}},
            {"source": "kb", "doc_id": "a.md", "title": "A", "url": "u", "content_hash": "h", "audience": "public",
             "chunk_count": 1, "indexed_at": utcnow(), "meta": {"labels": ["sso"]}}])
    router = Router(load_rules(json.dumps([{"topic": "sso", "assignee": "ivo"},
                                           {"topic": "billing", "assignee": "dana"}]), None), engine)
    cited_wiki = [{"n": 1, "source": "wiki", "doc_id": "42"}]
    assert router.route("customer", "free", "acme", cited_wiki).assignee == "dana"
    assert router.route("customer", "free", "acme", [{"source": "kb", "doc_id": "a.md"}]).assignee == "ivo"
    assert router.route("community", None, None, [{"n": 1, "title": "old row without source"}]).assignee is None


def test_a_rule_may_name_its_assignee_for_people() -> None:
    [rule] = parse_rules([{"tier": "paid", "assignee": "712020:5c1a0e2b-billing", "assignee_name": "Dana"}], "test")
    route = Router([rule]).route("customer", "paid", None, [])
    assert (route.assignee, route.assignee_name) == ("712020:5c1a0e2b-billing", "Dana")
