"""The staff conversation page (issue 18, item 6): the ticket's link opens the whole conversation, its
sources, confidence signals and escalation state for an agent or admin, and nothing for anyone else:
no key, a customer key, a forged, expired or revoked session. The JSON route is in OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.services import Services
from tests.test_access import session

SECRET_QUESTION = "How do I install answerdesk? <script>alert('x')</script> my order 4711"


@pytest.fixture
def client(docs_services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=docs_services)) as c:
        yield c


@pytest.fixture
def keys(docs_services: Services) -> dict[str, str]:
    return {role: docs_services.keys.create(role, f"{role}-x", *(("acme", "paid") if role == "customer" else ()))[0]
            for role in ("agent", "admin", "customer")}


@pytest.fixture
def conversation(client: TestClient) -> str:
    """A widget visitor asks, then asks for a human: a conversation with an answer and an escalation."""
    r = client.post("/v1/chat", json={"question": SECRET_QUESTION})
    assert r.status_code == 200, r.text
    cid = r.json()["conversation_id"]
    assert client.post("/v1/escalations", json={"conversation_id": cid}, headers=session(r)).status_code == 201
    return str(cid)


def test_json_route_for_agents_and_admins(client: TestClient, keys: dict[str, str], conversation: str) -> None:
    for role in ("agent", "admin"):
        r = client.get(f"/v1/staff/conversations/{conversation}", headers={"X-API-Key": keys[role]})
        assert r.status_code == 200, r.text
        data = r.json()
        [question, answer] = data["messages"]
        assert question["content"].startswith("How do I install answerdesk?")
        assert answer["citations"] and answer["confidence"] is not None and answer["signals"]
        # the one the visitor asked for (a low-confidence answer may have escalated on its own too)
        [esc] = [e for e in data["escalations"] if e["requested_by_user"]]
        assert esc["status"] == "open"
    assert "/v1/staff/conversations/{conversation_id}" in client.get("/openapi.json").json()["paths"]


def test_json_route_refuses_everyone_else(client: TestClient, keys: dict[str, str], conversation: str) -> None:
    url = f"/v1/staff/conversations/{conversation}"
    for headers, status in (({}, 403), ({"X-API-Key": keys["customer"]}, 403), ({"X-API-Key": "adk_forged"}, 401)):
        r = client.get(url, headers=headers)
        assert r.status_code == status and "4711" not in r.text
    assert client.get("/v1/staff/conversations/nope", headers={"X-API-Key": keys["agent"]}).status_code == 404


def test_page_signs_in_an_agent_and_shows_the_conversation(client: TestClient, keys: dict[str, str],
                                                           conversation: str) -> None:
    page = f"/staff/conversations/{conversation}"
    first = client.get(page)
    assert first.status_code == 401 and "Sign in" in first.text and "4711" not in first.text
    signed = client.post("/staff/login", data={"key": keys["agent"], "next": page}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == page
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and keys["agent"] not in cookie
    r = client.get(page)
    assert r.status_code == 200 and "4711" in r.text
    assert "&lt;script&gt;" in r.text and "<script>" not in r.text  # the user's text is shown, never run
    assert "Confidence" in r.text and "user_requested" in r.text and "open" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"] and r.headers["cache-control"] == "no-store"


def test_page_refuses_customers_forged_expired_and_revoked_sessions(
        client: TestClient, docs_services: Services, keys: dict[str, str], conversation: str) -> None:
    page = f"/staff/conversations/{conversation}"
    refused = client.post("/staff/login", data={"key": keys["customer"], "next": page}, follow_redirects=False)
    assert refused.status_code == 403 and "set-cookie" not in refused.headers and "4711" not in refused.text
    assert client.post("/staff/login", data={"key": "adk_nope", "next": page}).status_code == 401

    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    agent_id = docs_services.keys.resolve(keys["agent"]).key_id  # type: ignore[union-attr]
    customer_id = docs_services.keys.resolve(keys["customer"]).key_id  # type: ignore[union-attr]
    good = sessions.staff_token(agent_id)
    key_id, expires, signature = good.split(".")
    widget_sid, widget_token = sessions.new()
    for cookie in (f"{customer_id}.{expires}.{signature}",  # another key id under the agent's signature
                   f"{key_id}.{int(expires) + 10**6}.{signature}",  # a longer life it was not given
                   sessions.staff_token(agent_id, ttl=-1),  # expired
                   sessions.staff_token(customer_id),  # validly signed, but a customer's key
                   widget_token, "garbage"):
        client.cookies.set("answerdesk_staff", cookie, path="/staff")
        r = client.get(page)
        assert r.status_code == 401 and "4711" not in r.text, cookie
    client.cookies.set("answerdesk_staff", good, path="/staff")
    assert client.get(page).status_code == 200
    docs_services.keys.revoke(agent_id)  # revoking the key ends its page session at once
    assert client.get(page).status_code == 401


def test_login_never_redirects_off_site(client: TestClient, keys: dict[str, str]) -> None:
    for target in ("https://evil.example/", "//evil.example/staff/", "/staff/..//evil"):
        r = client.post("/staff/login", data={"key": keys["agent"], "next": target}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/conversations/"
