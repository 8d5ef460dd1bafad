"""Resolved Jira tickets against the fake site (Cloud enhanced search and Data Center), with the real
client, model, Chroma and SQLite: one document per ticket, internal comments never indexed, personal
data never stored, incremental by `updated`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import ingest.jira as jira
from assistant import db
from assistant.atlassian.adf import adf_to_text
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.errors import ConfigError, SourceError
from assistant.services import Services
from ingest.jira import sync_jira, wiki_to_markdown
from ingest.pipeline import IngestStats
from tests.conftest import fresh_services
from tests.fakes.atlassian import FakeAtlassian, Person, running

JANE = Person("Jane Doe", "jane.doe@acme.com", "acc-jane")
AGENT = Person("Sam Agent", "sam.agent@vendor.example", "acc-sam")
SEEDED_PII = ["jane.doe@acme.com", "jane@acme.com", "Jane", "Doe", "7946 0958", "555) 123", "203.0.113.45",
              "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "AKIAIOSFODNN7EXAMPLE", "sam.agent@vendor.example"]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jira, "PAGE", 2)


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[FakeAtlassian]:
    with running(request.param == "cloud") as fake:
        key = fake.add_issue(
            "ABC", "Login fails for jane.doe@acme.com",
            "Jane Doe reports SSO login loops. Call +1 (555) 123-4567 or mail jane@acme.com.\n\n"
            "Requests come from 203.0.113.45 with token=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 and "
            "AWS key AKIAIOSFODNN7EXAMPLE.",
            reporter=JANE, assignee=AGENT, jsm=True, organizations=["Acme Corp"], number=101)
        fake.add_comment(key, "INTERNAL-NOTE: customer is on the legacy plan, do not offer refunds.", public=False,
                         author=AGENT)
        fake.add_comment(key, "RESTRICTED-NOTE: root cause is our cache bug.", author=AGENT,
                         visibility={"type": "role", "value": "Developers"})
        fake.add_comment(key, "Thanks Jane! Clearing the SSO session cache fixed the login loop. "
                              "Reach me at +44 20 7946 0958 if it returns.", author=AGENT)
        for n in range(4):  # ABC-102 .. ABC-105
            fake.add_issue("ABC", f"Export to CSV times out (case {n})", f"Exports over {n + 1} GB time out.\n\n"
                           "Raised the worker timeout to 600 s.")
        fake.add_issue("ABC", "Still open: dark mode", "Not done yet.", resolution=None)  # ABC-106
        fake.add_issue("XYZ", "Billing page shows wrong VAT", "VAT rounding fixed in the invoice service.", number=7)
        yield fake


def make_services(site: FakeAtlassian, root: Path, embedder: SentenceTransformerEmbedder,
                  token: str | None = None, project: str | None = "ABC,XYZ") -> Services:
    return fresh_services(root, embedder, jira_user=site.user, jira_token=token or site.token, jira_project=project)


@pytest.fixture
def svc(site: FakeAtlassian, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Services:
    return make_services(site, tmp_path, embedder)


def sync(svc: Services, site: FakeAtlassian, jql: str | None = None, audiences: dict[str, str] | None = None,
         cloud: bool | None = None) -> IngestStats:
    return sync_jira(svc, "tickets", site.url, jql, site.cloud if cloud is None else cloud, audiences)


def chunk_texts(svc: Services, key: str) -> str:
    chunks = svc.store.get_chunks(svc.store.chunk_ids("tickets", [key]))
    return "\n".join(c.text for c in sorted(chunks.values(), key=lambda c: c.ordinal))


def test_resolved_tickets_become_one_document_each_titled_by_key(site: FakeAtlassian, svc: Services) -> None:
    stats = sync(svc, site)  # default JQL: resolved tickets of ANSWERDESK_JIRA_PROJECT
    assert (stats.added, stats.failed) == (6, 0)
    docs = {d.doc_id: d for d in svc.store.documents("tickets")}
    assert "ABC-106" not in docs  # still open
    assert docs["ABC-103"].title == "ABC-103: Export to CSV times out (case 1)"
    assert docs["ABC-103"].url == f"{site.url}/browse/ABC-103"
    assert {d.audience for d in docs.values()} == {"internal"}  # tickets are internal unless mapped
    assert docs["ABC-101"].meta["org"] == "Acme Corp"  # type: ignore[index]
    assert docs["ABC-101"].meta["comments_indexed"] == 1 and docs["ABC-101"].meta["comments_withheld"] == 2  # type: ignore[index]
    searches = site.count(r"/rest/api/3/search/jql$" if site.cloud else r"/rest/api/2/search$")
    assert searches >= 6  # listing and bulk fetch, two tickets a page
    assert site.count(r"/issue/[A-Z]+-\d+$") == 0  # bodies came with the search, not one GET per ticket
    hits = svc.retriever.search("ABC-103", k=3)  # the key alone finds its ticket
    assert hits[0].chunk.doc_id == "ABC-103"
    assert "Raised the worker timeout" in chunk_texts(svc, "ABC-103")


def test_internal_and_restricted_comments_are_never_indexed(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    text = chunk_texts(svc, "ABC-101")
    assert "Clearing the SSO session cache fixed the login loop" in text
    assert "INTERNAL-NOTE" not in text and "RESTRICTED-NOTE" not in text
    with svc.store.engine.connect() as conn:
        everything = repr(conn.execute(sa.select(db.chunks)).all())
    assert "legacy plan" not in everything and "cache bug" not in everything
    # Data Center's platform API does not mark JSM internal notes: the servicedesk API is asked instead.
    assert (site.count(r"/rest/servicedeskapi/request/ABC-101/comment$") > 0) != site.cloud


def test_personal_data_never_reaches_chroma_or_the_database(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    with svc.store.engine.connect() as conn:
        stored = "\n".join(repr(conn.execute(sa.select(t)).all()) for t in db.metadata.sorted_tables)
    vectors = svc.vectors._col.get(include=["metadatas", "documents"])
    in_chroma = repr(vectors["metadatas"]) + repr(vectors["documents"])
    assert "ABC-101: Login fails for [EMAIL]" in stored and "[PHONE]" in stored and "[SECRET]" in stored
    for value in SEEDED_PII:
        assert value not in stored, f"{value!r} reached the database"
        assert value not in in_chroma, f"{value!r} reached Chroma"
    text = chunk_texts(svc, "ABC-101")
    assert "[NAME] reports SSO login loops" in text and "Thanks [NAME]!" in text and "[IP]" in text


def test_project_audience_is_configurable(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site, audiences={"XYZ": "customer"})
    audiences = {d.doc_id: d.audience for d in svc.store.documents("tickets")}
    assert audiences["XYZ-7"] == "customer" and audiences["ABC-102"] == "internal"


def test_a_second_unchanged_run_fetches_no_ticket_and_embeds_nothing(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    site.reset_log()
    stats = sync(svc, site)
    assert (stats.unchanged, stats.added, stats.updated, stats.chunks_embedded) == (6, 0, 0, 0)
    assert {q.get("fields") for _m, _p, q, _s in site.log} == {"updated,project"}  # the cheap listing only
    assert site.count(r"/issue/|/servicedeskapi/") == 0


def test_a_new_public_comment_updates_only_that_ticket(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    site.add_comment("ABC-102", "Also needed a bigger disk for the export folder.", author=AGENT)
    site.reset_log()
    stats = sync(svc, site)
    assert (stats.updated, stats.unchanged, stats.chunks_embedded) == (1, 5, 1)
    full = [q["jql"] for _m, _p, q, _s in site.log if q.get("fields", "").startswith("summary")]
    assert full == ["key in (ABC-102)"]  # exactly the changed ticket
    assert "bigger disk" in chunk_texts(svc, "ABC-102")


def test_a_changed_ticket_is_fetched_alone_when_its_batch_search_fails(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    site.add_comment("ABC-101", "Follow-up: the proxy timeout had to be raised as well.", author=AGENT)
    site.fail(500, "/search", query="key in")
    stats = sync(svc, site)
    assert (stats.updated, stats.failed) == (1, 0) and site.count(r"/issue/ABC-101$") == 1
    text = chunk_texts(svc, "ABC-101")
    assert "proxy timeout had to be raised" in text and "INTERNAL-NOTE" not in text
    assert {d.doc_id: d for d in svc.store.documents("tickets")}["ABC-101"].meta["org"] == "Acme Corp"  # type: ignore[index]


def test_a_reopened_ticket_is_removed(site: FakeAtlassian, svc: Services) -> None:
    sync(svc, site)
    site.update_issue("ABC-103", resolution=None)
    stats = sync(svc, site)
    assert stats.deleted == 1 and "ABC-103" not in {d.doc_id for d in svc.store.documents("tickets")}
    assert svc.store.chunk_ids("tickets", ["ABC-103"]) == []


def test_the_removed_cloud_search_is_a_clear_error(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    with running(cloud=True) as cloud_site:
        cloud_site.add_issue("ABC", "Anything")
        svc = make_services(cloud_site, tmp_path, embedder)
        with pytest.raises(SourceError, match=r"410 Gone.*run with --cloud"):
            sync(svc, cloud_site, cloud=False)  # forgot --cloud: the Data Center search is gone on Cloud


def test_cloud_mode_against_data_center_hints_at_the_mode(tmp_path: Path,
                                                         embedder: SentenceTransformerEmbedder) -> None:
    with running(cloud=False) as dc_site:
        dc_site.add_issue("ABC", "Anything")
        svc = make_services(dc_site, tmp_path, embedder)
        with pytest.raises(SourceError, match="If this is Jira Data Center, drop --cloud"):
            sync(svc, dc_site, cloud=True)


def test_expired_credentials_are_a_clear_401_error(site: FakeAtlassian, tmp_path: Path,
                                                   embedder: SentenceTransformerEmbedder) -> None:
    svc = make_services(site, tmp_path, embedder, token="expired")
    with pytest.raises(SourceError, match=r"rejected the credentials \(401 Unauthorized\)"):
        sync(svc, site)
    assert {r["source"]: r for r in svc.store.status()}["tickets"]["last_run"]["status"] == "failed"


def test_forbidden_and_server_errors_name_the_cause(site: FakeAtlassian, svc: Services) -> None:
    site.fail(403, "/search")
    with pytest.raises(SourceError, match=r"403 Forbidden\): the account needs 'Browse projects'"):
        sync(svc, site)
    site.fail(502, "/search")
    with pytest.raises(SourceError, match="failed with 502 on the ticket search; try again later"):
        sync(svc, site)


def test_empty_results_and_bad_jql_are_errors_not_zero_documents(site: FakeAtlassian, svc: Services) -> None:
    with pytest.raises(SourceError, match="matched no tickets"):
        sync(svc, site, jql="project = ABC AND resolution is EMPTY AND key = ABC-101")
    with pytest.raises(SourceError, match="does not exist for the field 'project'"):
        sync(svc, site, jql="project = NOPE")


def test_no_jql_and_no_project_is_a_config_error(site: FakeAtlassian, tmp_path: Path,
                                                 embedder: SentenceTransformerEmbedder) -> None:
    svc = make_services(site, tmp_path, embedder, project=None)
    with pytest.raises(ConfigError, match="ANSWERDESK_JIRA_PROJECT"):
        sync(svc, site)


def run_cli(site: FakeAtlassian, svc: Services, *args: str) -> tuple[int, str]:
    from cli.main import app

    cloud = ["--cloud"] if site.cloud else []
    result = CliRunner().invoke(app, ["ingest", "jira", "--url", site.url, *args, *cloud], obj=lambda: svc,
                                env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_cli_indexes_tickets_and_fails_loudly(site: FakeAtlassian, tmp_path: Path, svc: Services,
                                              embedder: SentenceTransformerEmbedder) -> None:
    code, out = run_cli(site, svc, "--jql", "project = ABC AND resolution is not EMPTY",
                        "--customer-project", "ABC")
    assert code == 0, out
    assert "documents seen 5 / added 5" in out
    assert {d.audience for d in svc.store.documents("jira")} == {"customer"}
    bad = make_services(site, tmp_path / "other", embedder, token="expired")
    code, out = run_cli(site, bad)
    assert code == 1 and "401 Unauthorized" in out and "Traceback" not in out


# --- text conversion --------------------------------------------------------------------------------

def test_adf_bodies_become_text_and_mentions_are_dropped() -> None:
    adf = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Fix"}]},
        {"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "acc-jane", "text": "@Jane Doe"}},
            {"type": "text", "text": " run "}, {"type": "text", "text": "reindex", "marks": [{"type": "code"}]}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "b"}]}]}]},
        {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [{"type": "text", "text": "VACUUM;"}]},
    ]}
    assert adf_to_text(adf) == "## Fix\n\n[NAME] run `reindex`\n\n- a\n- b\n\n```sql\nVACUUM;\n```"
    assert adf_to_text("plain v2 text") == "plain v2 text" and adf_to_text(None) == ""


def test_wiki_markup_code_and_links() -> None:
    text = "h2. Steps\n{code:java}\nint x = 1;\n{code}\nSee [the docs|https://docs.example.com/x]."
    assert wiki_to_markdown(text) == "## Steps\n```java\nint x = 1;\n```\nSee [the docs](https://docs.example.com/x)."
