"""The issue's "done when", end to end: a maintainer points answerdesk at a GitHub repository and a Slack
workspace (both local fakes driven through githubkit and slack_sdk), and a community question asked in
Slack gets a cited answer drawn from the docs and a resolved GitHub issue, with escalation from the
thread carrying those sources to the support queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant import db
from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.services import Services
from assistant.settings import Settings
from ingest.github.sync import sync_github
from tests.conftest import index_docs
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import FakeSlack, block_actions, mention
from tests.test_slack_bot import SECRET, ask, deliver, in_thread, posted_ts

COMMUNITY = "C0COMMUNITY"  # not listed in slack_channels: public sources only
DOC = ("---\ntitle: Exports\naudience: public\n---\n# Exports\n\n## CSV exports\n\nReports can be exported as CSV "
       "from the Reports page. Exports run in the background and arrive by e-mail.\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
          ) -> Iterator[tuple[TestClient, FakeSlack, Services]]:
    root = tmp_path_factory.mktemp("slack-github")
    (root / "docs").mkdir()
    (root / "docs" / "exports.md").write_text(DOC)
    github = FakeGitHub().start()
    try:
        repo = github.add_repo("acme/widgets")
        user, maintainer = github.person("jane-doe", "Jane Doe"), github.person("mkeller", "Marta Keller")
        issue = github.add_issue(repo, "CSV export times out on large reports",
                                 "Exporting a 2 GB report as CSV times out after 30 seconds.", user)
        github.comment(issue, "Raise export_timeout to 600 in settings.toml; large CSV exports then finish.",
                       maintainer, "MEMBER")
        github.add_issue(repo, "Dark mode for the admin", "Please add dark mode.", user, state_reason="not_planned")
        with FakeSlack() as slack:
            settings = Settings(data_dir=root / "data", _env_file=None,  # type: ignore[call-arg]
                                github_url=github.url, github_token=SecretStr(github.token),
                                slack_bot_token=slack.token, slack_signing_secret=SECRET, slack_api_url=slack.api_url,
                                handoff_options={"default": [{"label": "Community forum",
                                                              "url": "https://forum.example/support"}]})
            services = Services(settings, embedder=embedder)
            index_docs(services, root / "docs", base_url="https://docs.example/exports")
            stats = sync_github(services, "github-acme-widgets", "acme/widgets")
            assert stats.added == 1  # the completed issue; the not-planned one is left out
            with TestClient(create_app(services=services)) as client:
                yield client, slack, services
    finally:
        github.stop()


def test_a_community_question_in_slack_is_answered_from_a_resolved_github_issue(
        world: tuple[TestClient, FakeSlack, Services]) -> None:
    client, slack, svc = world
    ts = slack.next_ts()
    event = mention(COMMUNITY, "My CSV export of a large report times out, how do I fix it?", ts)
    answer = ask(client, slack, event)
    shown = answer.text_everywhere()
    assert "export_timeout" in shown  # the maintainer's fix, quoted
    assert "/acme/widgets/issues/1|" in shown  # cited with a link to the issue on GitHub
    assert "acme/widgets#1: CSV export times out on large reports" in shown  # the Sources line names it

    click = block_actions(COMMUNITY, posted_ts(answer), ts, "answerdesk_human", slack.response_url())
    assert deliver(client, click, form=True).status_code == 200
    note = in_thread(slack, COMMUNITY, ts, 2)[-1]
    with svc.store.engine.connect() as conn:
        [escalation] = conn.execute(sa.select(db.escalations).where(
            db.escalations.c.question.like("My CSV export%"))).all()
    assert escalation.id in note.body["text"] and "Community forum" in note.text_everywhere()
    assert escalation.requested_by_user and escalation.role == "community"
    assert any("/acme/widgets/issues/1" in str(s.get("url")) for s in escalation.sources)  # the agent sees it too


def test_the_issue_is_found_by_its_name_and_offered_as_a_similar_ticket(
        world: tuple[TestClient, FakeSlack, Services]) -> None:
    from assistant.escalation.agent import similar_tickets

    _, _, svc = world
    assert svc.retriever.search("acme/widgets#1", k=1)[0].chunk.title.startswith("acme/widgets#1:")
    similar = similar_tickets(svc.store, svc.retriever, "CSV export timeout on a big report", exclude="")
    assert similar and similar[0].key == "acme/widgets#1" and similar[0].resolution == "completed"
