"""The Atlassian adapter with the real atlassian-python-api: credentials checked before any call, every
failure one AtlassianError that says whether the request can have reached Atlassian, and ADF both ways.
No embedding model here: these run in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.atlassian.adf import adf_to_text, text_to_adf
from assistant.atlassian.clients import Credentials, jira_clients
from assistant.atlassian.errors import AtlassianError, call
from assistant.db import create_engine
from assistant.errors import ConfigError, EscalationError
from assistant.escalation.jira_client import JiraCallFailed
from assistant.escalation.queue import LocalQueue
from tests.conftest import free_port
from tests.fakes.atlassian import SKIP_REASON, FakeAtlassian, running, shared_contracts


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[FakeAtlassian]:
    if shared_contracts() is None:
        pytest.skip(SKIP_REASON)
    with running(request.param == "cloud") as fake:
        fake.add_issue("SUP", "Seed", "the project exists")
        yield fake


def creds(fake: FakeAtlassian, **change: object) -> Credentials:
    values = {"url": fake.url, "user": fake.user, "token": fake.token, "cloud": fake.cloud, **change}
    return Credentials("Jira", "JIRA", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "names"), [
    ({"token": None}, "ANSWERDESK_JIRA_TOKEN"),
    ({"url": ""}, "ANSWERDESK_JIRA_URL"),
    ({"user": None, "cloud": True}, "ANSWERDESK_JIRA_USER"),
])
def test_missing_credentials_name_the_setting_before_any_call(change: dict[str, object], names: str) -> None:
    bad = Credentials("Jira", "JIRA", **{"url": "https://x.example", "user": "a@b.c", "token": "t", "cloud": False,
                                        **change}, hint="Or keep escalations local.")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=names) as caught:
        jira_clients(bad, timeout=5)
    assert "Or keep escalations local." in str(caught.value)


def test_an_http_refusal_keeps_its_status_and_reaches_the_caller_as_its_own_error(site: FakeAtlassian) -> None:
    jira, _desk = jira_clients(creds(site), timeout=5)
    site.fail(400, "/issue")
    with pytest.raises(AtlassianError) as caught:
        call("Jira", site.url, "issue creation", jira.create_issue,
             fields={"project": {"key": "SUP"}, "summary": "x", "issuetype": {"name": "Task"}})
    assert caught.value.status == 400 and not caught.value.never_sent
    assert "Jira issue creation failed (HTTP 400)" in str(caught.value)
    refused = JiraCallFailed.of(caught.value)  # escalation's view: Jira refused it, retrying cannot help
    assert isinstance(refused, EscalationError) and refused.permanent and not refused.maybe_sent


def test_a_gateway_error_may_have_been_acted_on(site: FakeAtlassian) -> None:
    jira, _desk = jira_clients(creds(site), timeout=5)
    site.fail(502, "/issue")
    with pytest.raises(AtlassianError) as caught:
        call("Jira", site.url, "issue creation", jira.create_issue,
             fields={"project": {"key": "SUP"}, "summary": "x", "issuetype": {"name": "Task"}})
    failed = JiraCallFailed.of(caught.value)
    assert caught.value.status == 502 and failed.maybe_sent and not failed.permanent


def test_nobody_listening_is_never_sent_and_says_what_to_check() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    jira, _desk = jira_clients(Credentials("Jira", "JIRA", url, None, "pat", cloud=False), timeout=5)
    with pytest.raises(AtlassianError) as caught:
        call("Jira", url, "the ticket search", jira.jql, "project = SUP")
    assert caught.value.status is None and caught.value.never_sent
    assert f"Cannot reach Jira at {url}" in str(caught.value) and "check the URL" in str(caught.value)
    assert not JiraCallFailed.of(caught.value).maybe_sent  # safe to create again at once


def test_text_we_post_comes_back_as_typed() -> None:
    text = "Line one with [~jdoe] and !x.png!\nline two\n\nnext paragraph"
    doc = text_to_adf(text)
    assert doc["type"] == "doc" and len(doc["content"]) == 2
    assert adf_to_text(doc) == text
    assert adf_to_text("wiki *text* on v2") == "wiki *text* on v2" and adf_to_text(None) == ""


def test_the_local_queue_answers_the_whole_protocol(tmp_path: Path) -> None:
    queue = LocalQueue(create_engine(f"sqlite:///{tmp_path}/q.db"))
    assert not queue.delivers and queue.in_background() is None
    assert queue.deliver_pending(force=True) == {"due": 0, "delivered": 0} and queue.refresh_statuses() == 0
    with pytest.raises(EscalationError, match="ANSWERDESK_ESCALATION=local"):
        queue.retry("abc")
