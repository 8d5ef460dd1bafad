"""Handoff channels per tier: besides the ticket, each plan is offered its configured ways to reach a
human (a call-booking link for paid customers, a forum for the community), in the chat response when
the assistant hands off and in the escalation a user asks for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.errors import ConfigError
from assistant.services import Services
from assistant.settings import Settings, load_settings
from tests.test_access import acl_services, session

OPTIONS = {
    "paid": [{"label": "Book a call with an engineer", "url": "https://cal.example/acme-support",
              "description": "30 minutes, within one working day"},
             {"label": "Priority e-mail", "url": "mailto:priority@example.com"}],
    "default": [{"label": "Community forum", "url": "https://forum.example/c/help"}],
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("handoff"), _env_file=None,  # type: ignore[call-arg]
                        rate_limits={}, stream_limits={}, handoff_options=OPTIONS)
    svc: Services = acl_services(settings, embedder)
    keys = {"paid": svc.keys.create("customer", "acme", "acme", "paid")[0],
            "free": svc.keys.create("customer", "globex", "globex", "free")[0]}
    with TestClient(create_app(services=svc), raise_server_exceptions=False) as c:
        yield c, {name: f"Bearer {key}" for name, key in keys.items()}


def labels(options: list[dict[str, Any]]) -> list[str]:
    return [o["label"] for o in options]


def test_paid_customer_asking_for_a_human_is_offered_a_call(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    body = c.post("/v1/chat", json={"question": "I want to talk to a human please"},
                  headers={"Authorization": keys["paid"]}).json()
    assert body["escalated"] and body["escalation_id"]
    assert labels(body["handoff"]) == ["Book a call with an engineer", "Priority e-mail"]
    assert body["handoff"][0]["url"] == "https://cal.example/acme-support"


def test_each_plan_gets_its_own_options_on_the_escalation(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    for who, expected in (("paid", ["Book a call with an engineer", "Priority e-mail"]),
                          ("free", ["Community forum"]), ("community", ["Community forum"])):
        auth = {"Authorization": keys[who]} if who in keys else {}
        asked = c.post("/v1/chat", json={"question": "How do I install Widgetron?"}, headers=auth)
        auth |= session(asked)  # an anonymous conversation is its session's
        chat = asked.json()
        assert chat["handoff"] == []  # a confident answer hands nothing off
        esc = c.post("/v1/escalations", json={"conversation_id": chat["conversation_id"]}, headers=auth)
        assert esc.status_code == 201 and labels(esc.json()["handoff"]) == expected, who
        again = c.get(f"/v1/escalations/{esc.json()['id']}", headers=auth).json()
        assert labels(again["handoff"]) == expected


def test_no_options_configured_means_the_ticket_alone(tmp_path: Any, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None, rate_limits={}, stream_limits={})  # type: ignore[call-arg]
    with TestClient(create_app(services=acl_services(settings, embedder))) as c:
        body = c.post("/v1/chat", json={"question": "Let me speak to a person"}).json()
    assert body["escalated"] and body["handoff"] == []


@pytest.mark.parametrize("bad, needle", [
    ({"paid": [{"label": "Call", "url": "javascript:alert(1)"}]}, "ANSWERDESK_HANDOFF_OPTIONS"),
    ({"paid": [{"url": "https://cal.example"}]}, "ANSWERDESK_HANDOFF_OPTIONS"),
])
def test_bad_handoff_configuration_is_named(monkeypatch: pytest.MonkeyPatch, bad: Any, needle: str) -> None:
    monkeypatch.setenv("ANSWERDESK_HANDOFF_OPTIONS", json.dumps(bad))
    with pytest.raises(ConfigError, match=needle):
        load_settings(_env_file=None)

