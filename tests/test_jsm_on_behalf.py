"""JSM requests raised on behalf of the customer who asked (issue 18, item 2): when the user agreed to be
told of the answer and is a customer of the service desk, the request is theirs (raiseOnBehalfOf: the
accountId on Cloud, the username on Data Center), so JSM's own notifications reach them; otherwise the
bot raises it and the contact is in the description. Real atlassian-python-api against the
contract-checked fake, which looks customers up as JSM does (prefix matches on name and address)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.escalation.handoff import request_human
from assistant.escalation.queue import get_escalation
from assistant.keys import Identity
from assistant.services import Services
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, running, shared_contracts
from tests.test_jira_queue import jira_services

pytestmark = pytest.mark.skipif(shared_contracts() is None, reason=SKIP_REASON)
ADA = Identity(role="customer", org="acme", tier="paid", email="ada@acme.example")


@pytest.fixture(params=[False, True], ids=["data-center", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[FakeAtlassian]:
    with running(cloud=request.param) as fake:
        # A near miss first: JSM's query matches by prefix, only the exact address is Ada.
        fake.add_customer("ada@acme.example.org", "Ada Impostor")
        fake.add_customer("ada@acme.example", "Ada Lovelace")
        yield fake


def escalate(services: Services, fake: FakeAtlassian, contact: str | None, notify: bool) -> tuple[str, str]:
    """Ada's conversation goes to a human with this contact: (escalation id, ticket key)."""
    svc = jira_services(services, fake, jsm_service_desk_id="1", jsm_request_type_id="10")
    cid = svc.conversations.ensure(None, owner=ADA.owner, staff=False)
    ref = request_human(svc.conversations, svc.queue, svc.routing, cid, ADA, None, contact, notify)
    row = get_escalation(svc.store.engine, ref.id)
    assert row is not None and row.status == "delivered", row and row.last_error
    assert row.ticket_key is not None
    return ref.id, row.ticket_key


def test_a_known_customer_who_agreed_is_the_requests_reporter(services: Services, jira: FakeAtlassian) -> None:
    _, key = escalate(services, jira, "ADA@acme.example", notify=True)
    issue = jira.issues[key]
    assert issue.jsm and issue.reporter.email == "ada@acme.example" and issue.reporter.display_name == "Ada Lovelace"
    assert jira.count(r"/rest/servicedeskapi/servicedesk/1/customer$", "GET") == 1
    assert "Contact:" not in issue.description  # JSM knows the customer: nothing to spell out


def test_an_unknown_contact_is_raised_by_the_bot_with_the_contact_in_the_description(
        services: Services, jira: FakeAtlassian) -> None:
    _, key = escalate(services, jira, "kim@elsewhere.example", notify=True)
    issue = jira.issues[key]
    assert issue.reporter == jira.bot  # raised by answerdesk's own account
    assert "Contact: kim@elsewhere.example (asked to be told of the answer" in issue.description


def test_a_typed_address_of_a_customer_is_never_raised_on_their_behalf(services: Services,
                                                                      jira: FakeAtlassian) -> None:
    """An anonymous visitor typing Ada's address must not make Ada the reporter: JSM would mail her,
    and agents would answer the visitor as if they were Ada."""
    svc = jira_services(services, jira, jsm_service_desk_id="1", jsm_request_type_id="10")
    visitor = Identity(role="community")
    cid = svc.conversations.ensure(None, owner="visitor-1", staff=False)
    ref = request_human(svc.conversations, svc.queue, svc.routing, cid, visitor, None, "ada@acme.example", True)
    row = get_escalation(svc.store.engine, ref.id)
    assert row is not None and row.ticket_key is not None and not row.contact_verified
    assert jira.issues[row.ticket_key].reporter == jira.bot
    assert jira.count(r"/customer$", "GET") == 0
    assert "Contact: ada@acme.example" in jira.issues[row.ticket_key].description


def test_without_consent_nobody_is_looked_up_or_notified(services: Services, jira: FakeAtlassian) -> None:
    esc, key = escalate(services, jira, "ada@acme.example", notify=False)
    assert jira.issues[key].reporter == jira.bot
    assert jira.count(r"/customer$", "GET") == 0
    # The agent still sees who asked, in the internal context note.
    [context] = [c for c in jira.issues[key].comments if f"answerdesk escalation: {esc}" in c.body]
    assert not context.public and "Contact: ada@acme.example (has not asked to be e-mailed)" in context.body


def test_the_fake_refuses_a_stranger_as_jsm_does(jira: FakeAtlassian) -> None:
    from atlassian import ServiceDesk

    desk = ServiceDesk(jira.url, cloud=jira.cloud,
                       **({"username": jira.user, "password": jira.token} if jira.cloud else {"token": jira.token}))
    with pytest.raises(Exception, match="not a customer"):
        desk.create_customer_request("1", "10", {"summary": "hi"}, raise_on_behalf_of="nobody-at-all")
