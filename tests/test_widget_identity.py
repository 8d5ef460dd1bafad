"""Signed-in users in the widget (issue 18, item 1) and contact and consent at handoff (item 2).

The host site signs its user as an HS256 JWT; answerdesk turns a good one into the same identity an API
key gives (documents, priority, ownership across visits) and treats every bad one as the community,
never as an error. At handoff the user may leave an e-mail address and agree to be told of the answer;
both are stored with the escalation. Real app, real model, real index over the leak suite's corpus."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from assistant import db
from assistant.api import create_app
from assistant.escalation.queue import get_escalation
from assistant.services import Services
from assistant.settings import Settings
from assistant.widget_identity import BadToken, WidgetIdentity
from tests.test_access import CANARIES, acl_services, session

SECRET = "host-site-secret-0123456789abcdefghijklmnop"
NEW_SECRET = "rotated-secret-zyxwvutsrqponmlkjihgfedcba9876"
SITE = "docs.acme.example"
PRIORITIES = {"paid": "Highest", "default": "Low"}
# Asked so that every canary document is a candidate: the answer cites whatever the caller may see.
QUESTION = "Widgetron crashes on startup, CSV export times out, what is the SLA escalation code?"


def token(secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "u-42", "email": "ada@acme.example", "org": "acme", "tier": "paid", "aud": SITE,
            "iat": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


def user(tok: str) -> dict[str, str]:
    return {"X-Answerdesk-User": tok}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Services:
    settings = Settings(data_dir=tmp_path_factory.mktemp("identity"), _env_file=None,  # type: ignore[call-arg]
                        rate_limits={}, stream_limits={}, escalation_priorities=PRIORITIES,
                        widget_identity_secret=f"{NEW_SECRET},{SECRET}", widget_identity_audience=SITE)
    return acl_services(settings, embedder)


@pytest.fixture(scope="module")
def client(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=svc), raise_server_exceptions=False) as c:
        yield c


def canaries_in(body: dict[str, Any]) -> set[str]:
    text = body["answer"] + " ".join(c["snippet"] + c["title"] for c in body["citations"])
    return {c for c in CANARIES if c in text}


def cited(body: dict[str, Any]) -> set[str]:
    return {c["doc_id"] for c in body["citations"]}


now = int(time.time())
BAD = {
    "forged": token(secret="not-the-host-sites-secret-but-just-as-long-000"),
    "expired": token(iat=now - 7200, exp=now - 3600),
    "wrong audience": token(aud="docs.globex.example"),
    "not yet valid": token(iat=now + 3600, exp=now + 4000),
    "lives too long": token(exp=now + 3 * 86400),
    "no expiry": token(exp=None),
    "no subject": token(sub=None),
    "subject too long": token(sub="u" * 129),
    "unsigned (alg none)": jwt.encode({"sub": "u-42", "org": "acme", "tier": "paid", "aud": SITE, "iat": now,
                                       "exp": now + 600}, None, algorithm="none"),
    "garbage": "not.a.token",
    "staff claim ignored, tier malformed": token(tier="PAID!!", role="admin"),
}


@pytest.mark.parametrize("why", list(BAD) + ["missing"])
def test_a_bad_or_missing_token_is_the_community_and_never_an_error(
        client: TestClient, svc: Services, why: str, caplog: pytest.LogCaptureFixture) -> None:
    tok = BAD.get(why)
    with caplog.at_level(logging.WARNING, "answerdesk.widget_identity"):
        r = client.post("/v1/chat", json={"question": QUESTION}, headers=user(tok) if tok else {})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not canaries_in(body), f"{why}: a community visitor saw {canaries_in(body)}"
    assert cited(body) <= {"install", "billing"}
    assert "X-Answerdesk-Session" in r.headers  # an anonymous session, as for any visitor without a token
    if tok:
        [warning] = [rec.getMessage() for rec in caplog.records]
        assert "community" in warning and tok not in warning and "ada@" not in warning
    # Talking to a human goes in as the community, at the community's priority.
    esc = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"]},
                      headers={**session(r), **(user(tok) if tok else {})})
    assert esc.status_code == 201 and esc.json()["role"] == "community" and esc.json()["priority"] == "Low"


def test_a_token_replayed_after_it_expired_is_refused() -> None:
    verifier = WidgetIdentity([SECRET], SITE, 3600, leeway=0)  # the app allows 30 s of clock skew
    tok = token(exp=int(time.time()) + 2)
    assert verifier.verify(tok).sub == "u-42"
    time.sleep(3)
    with pytest.raises(BadToken, match="expired"):
        verifier.verify(tok)


def test_a_paid_customer_gets_their_documents_priority_and_conversations(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"question": QUESTION}, headers=user(token()))
    assert r.status_code == 200
    body = r.json()
    assert "X-Answerdesk-Session" not in r.headers  # the verified user owns it, no anonymous session
    seen = cited(body)
    assert seen & {"sla", "ACME-20"}, f"a paid acme customer should see customer documents, cited {seen}"
    # Never internal pages, never another organisation's tickets (their own organisation's are theirs).
    assert not seen & {"runbook", "GLOBEX-7", "GLOBEX-30"}
    assert canaries_in(body) <= {"SLA-KESTREL-42", "ACME-WREN-2020", "ACME-HERON-1188"}

    # The next visit brings a fresh token (signed with the rotated secret): the conversation is still theirs.
    later = token(secret=NEW_SECRET, iat=int(time.time()) + 1, exp=int(time.time()) + 900)
    esc = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"]}, headers=user(later))
    assert esc.status_code == 201, esc.text
    assert (esc.json()["role"], esc.json()["org"], esc.json()["tier"], esc.json()["priority"]) == \
        ("customer", "acme", "paid", "Highest")
    assert esc.json()["contact_email"] == "ada@acme.example" and esc.json()["notify"] is False
    # Another signed-in user, or an anonymous visitor, cannot touch it.
    other = token(sub="u-43", email="bob@acme.example")
    for headers in (user(other), {}):
        assert client.get(f"/v1/escalations/{esc.json()['id']}", headers=headers).status_code == 404
    assert client.get(f"/v1/escalations/{esc.json()['id']}", headers=user(later)).status_code == 200


def test_a_forged_or_expired_token_of_a_real_user_opens_nothing_of_theirs_and_changes_nothing(
        client: TestClient, svc: Services) -> None:
    """What a captured token is worth once it expired, or a token made without the host site's secret
    naming the same user: neither reads nor adds to that user's conversation and escalations."""
    body = client.post("/v1/chat", json={"question": QUESTION}, headers=user(token(sub="u-77"))).json()
    esc = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"]},
                      headers=user(token(sub="u-77")))
    assert esc.status_code == 201, esc.text
    stale = int(time.time()) - 7200
    replayed = token(sub="u-77", iat=stale, exp=stale + 600)  # captured two hours ago, used now
    forged = token(sub="u-77", secret="an-attackers-own-secret-that-is-long-enough-0")
    def escalations() -> int:
        with svc.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(db.escalations)).scalar_one())

    before = escalations()
    for bad in (replayed, forged):
        assert client.get(f"/v1/escalations/{esc.json()['id']}", headers=user(bad)).status_code == 404
        again = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"]}, headers=user(bad))
        assert again.status_code == 404, again.text
    assert escalations() == before
    assert client.get(f"/v1/escalations/{esc.json()['id']}", headers=user(token(sub="u-77"))).status_code == 200


def test_without_an_org_a_signed_in_user_is_community_but_owns_their_conversation(client: TestClient) -> None:
    tok = token(org=None, tier=None, sub="reader-7", email="reader@mail.example")
    body = client.post("/v1/chat", json={"question": QUESTION}, headers=user(tok)).json()
    assert not canaries_in(body)
    esc = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"], "notify": True},
                      headers=user(tok))
    assert esc.status_code == 201 and esc.json()["role"] == "community"
    assert (esc.json()["contact_email"], esc.json()["notify"]) == ("reader@mail.example", True)


# -- contact and consent at handoff ---------------------------------------------------------------
def ask(client: TestClient, question: str = "How do I install Widgetron?") -> tuple[str, dict[str, str]]:
    r = client.post("/v1/chat", json={"question": question})
    return r.json()["conversation_id"], session(r)


def test_a_community_users_contact_and_consent_are_stored_with_the_escalation(client: TestClient,
                                                                              svc: Services) -> None:
    cid, auth = ask(client)
    r = client.post("/v1/escalations", json={"conversation_id": cid, "contact_email": " sam@example.org ",
                                             "notify": True}, headers=auth)
    assert r.status_code == 201, r.text
    row = get_escalation(svc.store.engine, r.json()["id"])
    assert row is not None and (row.contact_email, row.notify) == ("sam@example.org", True)
    # No address, no consent: nothing stored.
    cid, auth = ask(client)
    row = get_escalation(svc.store.engine, client.post("/v1/escalations", json={"conversation_id": cid},
                                                       headers=auth).json()["id"])
    assert row is not None and (row.contact_email, row.notify) == (None, False)


@pytest.mark.parametrize("payload", [
    {"contact_email": "not-an-address", "notify": True},
    {"contact_email": "two@@example.org"},
    {"contact_email": "sam@example.org<script>"},
    {"notify": True},  # told of the answer, but where?
])
def test_a_malformed_or_missing_contact_is_a_422_naming_the_field(client: TestClient, payload: dict[str, Any]) -> None:
    cid, auth = ask(client)
    r = client.post("/v1/escalations", json={"conversation_id": cid, **payload}, headers=auth)
    assert r.status_code == 422
    assert any(e["loc"][-1] == "contact_email" for e in r.json()["detail"]), r.json()


def test_a_signed_in_user_cannot_send_the_answer_to_someone_else(client: TestClient) -> None:
    body = client.post("/v1/chat", json={"question": "How do I install Widgetron?"}, headers=user(token())).json()
    r = client.post("/v1/escalations", json={"conversation_id": body["conversation_id"], "notify": True,
                                             "contact_email": "mallory@evil.example"}, headers=user(token()))
    assert r.status_code == 422 and "contact_email" in str(r.json()["detail"])


def test_contact_after_the_assistant_escalated_on_its_own(client: TestClient, svc: Services) -> None:
    r = client.post("/v1/chat", json={"question": "What is the best recipe for banana bread?"})
    body, auth = r.json(), session(r)
    assert body["escalated"] and body["escalation_id"]
    url = f"/v1/escalations/{body['escalation_id']}/contact"
    assert client.post(url, json={"contact_email": "x@example.org", "notify": True}).status_code == 404  # not theirs
    assert client.post(url, json={"contact_email": "bad", "notify": True}, headers=auth).status_code == 422
    done = client.post(url, json={"contact_email": "kim@example.org", "notify": True}, headers=auth)
    assert done.status_code == 200 and done.json()["notify"] is True
    row = get_escalation(svc.store.engine, body["escalation_id"])
    assert row is not None and (row.contact_email, row.notify) == ("kim@example.org", True)


def test_contact_emails_stay_out_of_analytics(client: TestClient, svc: Services) -> None:
    from assistant import analytics

    report = analytics.summary(svc.store.engine, analytics.Period.last(1), None)
    assert "@example.org" not in str(report) and "ada@acme.example" not in str(report)


def test_contact_columns_on_both_stores(database_url: str) -> None:
    """The two new escalation columns (revision 0002), on SQLite and PostgreSQL: stored and changed."""
    from assistant import db
    from assistant.escalation.queue import EscalationRequest, LocalQueue, set_contact
    from assistant.store import utcnow

    url = Settings(database_url=database_url, _env_file=None).sqlalchemy_url  # type: ignore[call-arg]
    engine = db.create_engine(url)
    db.init_db(engine)
    with engine.begin() as conn:
        conn.execute(db.conversations.insert(), {"id": "c" * 36, "created_at": utcnow(), "updated_at": utcnow()})
    queue = LocalQueue(engine)
    plain = queue.open(EscalationRequest("c" * 36, "q", [], "", [], None, []))
    told = queue.open(EscalationRequest("c" * 36, "q", [], "", [], None, [], contact_email="a@b.example",
                                        notify=True))
    first, second = get_escalation(engine, plain.id), get_escalation(engine, told.id)
    assert first is not None and (first.contact_email, first.notify) == (None, False)
    assert second is not None and (second.contact_email, second.notify) == ("a@b.example", True)
    set_contact(engine, plain.id, "c@d.example", True)
    again = get_escalation(engine, plain.id)
    assert again is not None and (again.contact_email, again.notify) == ("c@d.example", True)
    engine.dispose()


def test_secrets_come_from_the_environment_and_a_short_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import ConfigError
    from assistant.settings import load_settings

    monkeypatch.setenv("ANSWERDESK_WIDGET_IDENTITY_SECRET", f"{NEW_SECRET}, {SECRET}")
    verifier = WidgetIdentity.from_settings(load_settings(_env_file=None, widget_identity_audience=SITE))
    assert verifier.verify(token(secret=SECRET)).org == "acme"  # the old secret still verifies: rotation
    monkeypatch.setenv("ANSWERDESK_WIDGET_IDENTITY_SECRET", "too-short")
    with pytest.raises(ConfigError, match="ANSWERDESK_WIDGET_IDENTITY_SECRET: .*at least 32 characters"):
        load_settings(_env_file=None)
