"""GitHub issues and discussions against a local fake GitHub (REST + GraphQL, github.com and Enterprise Server
layouts), driven through the real githubkit client, with the real model, Chroma and SQLite: what is indexed
and what is left out, personal data never stored, incremental and conditional, rate limits waited out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from typer.testing import CliRunner

import ingest.github.listing as listing
import ingest.github.sync as github
from assistant import db
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.errors import ConfigError, SourceError
from assistant.services import Services
from ingest.connectors import GitHubSource
from ingest.github.client import check_api_url
from ingest.github.documents import is_noise
from ingest.github.sync import GitHubStats, sync_github
from ingest.sync import load_sources
from tests.conftest import fresh_services
from tests.fakes.github import FakeGitHub, Issue, Repo

PII = ["jane.doe@acme.com", "Jane Doe", "jane-doe", "+1 (555) 123-4567", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
       "mkeller", "Marta Keller", "@tomasz"]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of two, so that a handful of issues and discussions needs Link headers and cursors."""
    monkeypatch.setattr(listing, "ISSUE_PAGE", 2)
    monkeypatch.setattr(listing, "DISCUSSION_PAGE", 2)
    monkeypatch.setattr(listing, "RECHECK_BATCH", 2)
    monkeypatch.setattr(github, "COMMENT_PAGE", 2)


class World:
    """The fake GitHub with one seeded repository, and handles on what the tests change."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.repo: Repo = fake.add_repo("acme/widgets")
        jane, self.maint = fake.person("jane-doe", "Jane Doe"), fake.person("mkeller", "Marta Keller")
        bot = fake.person("stale[bot]")
        self.export = fake.add_issue(  # 1
            self.repo, "CSV export times out for jane.doe@acme.com",
            "<!-- Please describe the bug -->\nExporting a 2 GB report times out after 30 s. Jane Doe here, call "
            "+1 (555) 123-4567; my token=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8. cc @tomasz", jane,
            labels=["bug", "export"], closed_by=self.maint)
        fake.comment(self.export, "+1", fake.person("someone"))
        fake.comment(self.export, "Same here! Any update? 👍", fake.person("other"))
        fake.comment(self.export, "This issue is stale and will be closed in 7 days.", bot)
        fake.comment(self.export, "Raise `export_timeout` to 600 in settings.toml; the default is fixed in 2.3, "
                                  "thanks @jane-doe.", self.maint, "MEMBER")
        self.sso = fake.add_issue(self.repo, "SSO login loops on Safari", "Safari keeps redirecting.", jane,
                                  labels=["auth"])  # 2
        fake.comment(self.sso, "Clearing the session cookie `ad_sso` fixed the loop.", self.maint, "OWNER")
        self.wontfix = fake.add_issue(self.repo, "Dark mode for the admin", "Please add dark mode.", jane,
                                      state_reason="not_planned")  # 3
        self.pr = fake.add_issue(self.repo, "Fix export timeout", "Raises the default.", self.maint,
                                 pull_request=True)  # 4
        self.open = fake.add_issue(self.repo, "Webhooks fire twice", "Seen twice.", jane, state="open",
                                   state_reason=None)  # 5
        self.pdf = fake.add_issue(self.repo, "PDF invoices show wrong VAT", "VAT rounding is off by a cent.",
                                  jane)  # 6
        self.proxy = fake.add_discussion(self.repo, "How do I run answerdesk behind a proxy?",
                                         "Our network needs HTTPS_PROXY for every call.", jane)  # 7
        answer = fake.comment(self.proxy, "Set ANSWERDESK_HTTP_PROXY; every outbound call honours it.",
                              self.maint, "OWNER")
        fake.comment(self.proxy, "thanks!", jane)
        fake.edit(self.proxy, answer_id=answer.id)
        self.unanswered = fake.add_discussion(self.repo, "Roadmap for plugins?", "Is there one?", jane)  # 8
        self.backup = fake.add_discussion(self.repo, "Where are backups stored?", "Looking for the folder.",
                                          jane)  # 9
        found = fake.comment(self.backup, "Under data_dir/backups, one file per night.", self.maint, "MEMBER")
        fake.edit(self.backup, answer_id=found.id)

    def issue(self, number: int) -> Issue:
        return self.repo.issues[number]


@pytest.fixture
def world() -> Iterator[World]:
    fake = FakeGitHub().start()
    try:
        yield World(fake)
    finally:
        fake.stop()
    assert not fake.violations, "responses unlike GitHub's OpenAPI description:\n" + "\n".join(fake.violations)


def make_services(url: str, root: Path, embedder: SentenceTransformerEmbedder, token: str) -> Services:
    return fresh_services(root, embedder, github_token=SecretStr(token), github_url=url)


@pytest.fixture
def svc(world: World, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Services:
    return make_services(world.fake.url, tmp_path, embedder, world.fake.token)


def sync(svc: Services, **kwargs: object) -> GitHubStats:
    return sync_github(svc, "gh", "acme/widgets", **kwargs)  # type: ignore[arg-type]


def text_of(svc: Services, doc_id: str) -> str:
    chunks = svc.store.get_chunks(svc.store.chunk_ids("gh", [doc_id]))
    return "\n".join(c.text for c in sorted(chunks.values(), key=lambda c: c.ordinal))


def docs(svc: Services) -> dict[str, object]:
    return {d.doc_id: d for d in svc.store.documents("gh")}


def test_completed_issues_and_answered_discussions_become_one_document_each(world: World, svc: Services) -> None:
    stats = sync(svc)
    indexed = {d.doc_id: d for d in svc.store.documents("gh")}
    assert sorted(indexed) == ["discussions/7", "discussions/9", "issues/1", "issues/2", "issues/6"]
    assert stats.left_out == {"not_planned": 1, "open": 1, "pull request": 1, "unanswered": 1}
    sso = indexed["issues/2"]
    assert sso.title == "acme/widgets#2: SSO login loops on Safari"
    assert sso.url == "https://github.com/acme/widgets/issues/2" and sso.audience == "public"
    assert sso.meta == {**sso.meta, "key": "acme/widgets#2", "resolution": "completed", "labels": ["auth"],  # type: ignore[dict-item]
                        "final_answer": "Clearing the session cookie `ad_sso` fixed the loop."}
    proxy = indexed["discussions/7"]
    assert proxy.url == "https://github.com/acme/widgets/discussions/7"
    assert proxy.meta["resolution"] == "answered"  # type: ignore[index]
    assert proxy.meta["final_answer"] == "Set ANSWERDESK_HTTP_PROXY; every outbound call honours it."  # type: ignore[index]
    assert "Accepted answer" in text_of(svc, "discussions/7") and "thanks!" not in text_of(svc, "discussions/7")
    # Six issues and pull requests at two a page: three pages by rel="next"; three discussions: two by cursor.
    assert world.fake.count(r"/repos/acme/widgets/issues$") == 3
    assert [q.query.get("page") for q in world.fake.log if q.path.endswith("/issues")] == [None, "2", "3"]
    cursors = [r.variables.get("after") for r in world.fake.log if "discussions(" in r.graphql]
    assert len(cursors) == 2 and cursors[0] is None and cursors[1]
    # Comments are fetched only for issues that are indexed, never for the pull request or the others;
    # issue 1's four comments come in two pages.
    assert [(r.path, r.query.get("page")) for r in world.fake.log if r.path.endswith("/comments")] == [
        ("/repos/acme/widgets/issues/1/comments", None), ("/repos/acme/widgets/issues/1/comments", "2"),
        ("/repos/acme/widgets/issues/2/comments", None)]


def test_bots_and_plus_one_noise_are_left_out(world: World, svc: Services) -> None:
    sync(svc)
    text = text_of(svc, "issues/1")
    assert "export_timeout" in text and "Maintainer" in text
    assert "stale" not in text and "+1" not in text and "Any update" not in text
    meta = docs(svc)["issues/1"].meta  # type: ignore[attr-defined]
    assert (meta["comments_indexed"], meta["comments_left_out"]) == (1, 3)
    assert "Please describe the bug" not in text  # the issue template's comment


def test_personal_data_never_reaches_the_database_or_chroma(world: World, svc: Services) -> None:
    sync(svc)
    with svc.store.engine.connect() as conn:
        stored = "\n".join(repr(conn.execute(sa.select(t)).all()) for t in db.metadata.sorted_tables
                           if t.name != "state")
    vectors = svc.vectors._col.get(include=["metadatas", "documents"])
    in_chroma = repr(vectors["metadatas"]) + repr(vectors["documents"])
    for value in PII:
        assert value not in stored, f"{value!r} reached the database"
        assert value not in in_chroma, f"{value!r} reached Chroma"
    text = text_of(svc, "issues/1")
    assert "[NAME] here" in text and "[PHONE]" in text and "[SECRET]" in text and "cc [NAME]" in text
    assert docs(svc)["issues/1"].title == "acme/widgets#1: CSV export times out for [EMAIL]"  # type: ignore[attr-defined]


def test_an_unchanged_repository_costs_only_free_304s(world: World, svc: Services) -> None:
    sync(svc)
    world.fake.log.clear()
    stats = sync(svc)
    assert (stats.unchanged, stats.added, stats.updated, stats.deleted, stats.chunks_embedded) == (5, 0, 0, 0, 0)
    assert stats.left_out == {}  # what the last run handled is not listed as news again
    rest = [r for r in world.fake.log if not r.graphql]
    assert rest and all(r.conditional and r.status == 304 for r in rest)  # the repository and the issue list
    assert world.fake.counted() == 0 and stats.not_modified == len(rest)
    # GraphQL: the newest discussions (1 point) and the re-check of the 5 indexed items, two a query here.
    assert (world.fake.queries("discussions("), world.fake.queries()) == (1, 1 + 3)
    assert "comments" not in " ".join(r.path for r in world.fake.log)


def test_an_edited_issue_is_updated_alone(world: World, svc: Services) -> None:
    sync(svc)
    world.fake.comment(world.pdf, "Fixed in 2.4: VAT is now rounded per line, not per invoice.", world.maint,
                       "MEMBER")
    world.fake.log.clear()
    stats = sync(svc)
    assert (stats.updated, stats.unchanged, stats.added) == (1, 4, 0)
    assert "rounded per line" in text_of(svc, "issues/6")
    assert [r.path for r in world.fake.log if r.path.endswith("/comments")] == ["/repos/acme/widgets/issues/6/comments"]
    assert world.fake.count(r"/issues$") == 1  # the first page held the change: no paging further back


def test_deleted_transferred_reopened_and_unanswered_items_are_removed(world: World, svc: Services) -> None:
    sync(svc)
    other = world.fake.add_repo("acme/billing")
    world.fake.edit(world.issue(1), deleted=True)  # deleting leaves no trace in the issue list
    world.fake.edit(world.issue(6), moved_to=other.full_name)  # nor does a transfer
    world.fake.edit(world.issue(2), state="open", state_reason=None)  # reopened: listed as open
    world.fake.edit(world.backup, answer_id=None)  # the answer was unmarked
    stats = sync(svc)
    assert stats.deleted == 4 and sorted(docs(svc)) == ["discussions/7"]
    assert svc.store.chunk_ids("gh", ["issues/1", "issues/2", "issues/6", "discussions/9"]) == []
    assert world.fake.queries("issue(number: 1)") == 1  # found gone by the GraphQL re-check, not by fetching


def test_an_issue_closed_again_as_not_planned_is_removed(world: World, svc: Services) -> None:
    sync(svc)
    world.fake.edit(world.issue(6), state_reason="not_planned")
    assert sync(svc).deleted == 1 and "issues/6" not in docs(svc)


def test_rate_limits_are_waited_out_and_nothing_is_lost(world: World, svc: Services) -> None:
    world.fake.limit_once("primary", path="/issues", reset_in=2)  # 403, x-ratelimit-remaining: 0
    world.fake.limit_once("secondary", path="/comments", status=429, retry_after=1)
    world.fake.limit_once("graphql", path="/graphql", reset_in=1)  # RATE_LIMITED in a 200 answer
    waits: list[str] = []
    started = time.monotonic()
    stats = sync(svc, on_wait=waits.append)
    assert time.monotonic() - started >= 2.0 and stats.waited >= 3.0
    assert len(waits) == 3 and all("rate limit reached: waiting" in w for w in waits)
    assert sorted(docs(svc)) == ["discussions/7", "discussions/9", "issues/1", "issues/2", "issues/6"]
    assert (stats.failed, world.fake.count(r"/issues$", 403), world.fake.count(r"/comments$", 429)) == (0, 1, 1)


def test_a_limit_beyond_the_allowed_wait_stops_cleanly_and_the_next_run_resumes(world: World, svc: Services) -> None:
    world.fake.limit_once("primary", path="/comments", reset_in=600)
    with pytest.raises(SourceError, match=r"primary rate limit is reached .* run again after that time"):
        sync(svc, max_wait=30)
    assert {r["source"]: r for r in svc.store.status()}["gh"]["last_run"]["status"] == "failed"
    stats = sync(svc)  # the limit has passed: everything is indexed, nothing was skipped by the failed run
    assert sorted(docs(svc)) == ["discussions/7", "discussions/9", "issues/1", "issues/2", "issues/6"]
    assert stats.failed == 0


def test_an_issue_that_failed_is_listed_again_by_the_next_run(world: World, svc: Services) -> None:
    world.fake.fail(404, "/issues/2/comments")  # e.g. GitHub hiccuped on that issue only
    stats = sync(svc)
    assert stats.failed == 1 and "issues/2" not in docs(svc) and "issues/1" in docs(svc)
    world.fake.log.clear()
    stats = sync(svc)  # nothing changed at GitHub, but the failed issue is not skipped as "seen"
    assert (stats.added, stats.failed) == (1, 0) and "Clearing the session cookie" in text_of(svc, "issues/2")
    assert not any(r.conditional for r in world.fake.log if r.path.endswith("/issues"))


def test_a_question_finds_the_issue_with_its_github_link(world: World, svc: Services) -> None:
    sync(svc)
    hits = svc.retriever.search("CSV export of a large report times out", k=3)
    assert hits[0].chunk.doc_id == "issues/1"
    assert hits[0].chunk.url == "https://github.com/acme/widgets/issues/1"


def test_a_private_repository_is_internal_unless_told_otherwise(world: World, svc: Services) -> None:
    world.repo.private = True
    sync(svc, issues=True, discussions=False)
    assert {d.audience for d in svc.store.documents("gh")} == {"internal"}
    assert all(k.startswith("issues/") for k in docs(svc))
    stats = sync(svc, issues=True, discussions=False, audience="customer")  # a new audience: everything again
    assert stats.updated == 3 and {d.audience for d in svc.store.documents("gh")} == {"customer"}


def test_a_bad_token_is_a_clear_error_and_a_failed_run(world: World, tmp_path: Path,
                                                       embedder: SentenceTransformerEmbedder) -> None:
    bad = make_services(world.fake.url, tmp_path, embedder, "github_pat_revoked")
    with pytest.raises(SourceError, match=r"rejected the token \(401: Bad credentials\).*create a new one"):
        sync(bad)
    run = {r["source"]: r for r in bad.store.status()}["gh"]["last_run"]
    assert run["status"] == "failed" and "401" in run["error"]


def test_unknown_repository_and_wrong_enterprise_url_name_the_cause(world: World, svc: Services, tmp_path: Path,
                                                                     embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(SourceError, match=r"found no repository acme/nope \(404\): check OWNER/REPO"):
        sync_github(svc, "gh", "acme/nope")
    ghes = FakeGitHub(enterprise=True).start()
    try:
        wrong = make_services(ghes.url.removesuffix("/api/v3"), tmp_path / "w", embedder, ghes.token)
        with pytest.raises(SourceError, match=r"did not answer like the GitHub API.*https://HOST/api/v3"):
            sync_github(wrong, "gh", "acme/widgets")
    finally:
        ghes.stop()
    with pytest.raises(ConfigError, match="not the website"):
        check_api_url("https://github.com")
    with pytest.raises(ConfigError, match="must not contain credentials"):
        check_api_url("https://bot:secret@github.example.com/api/v3")
    with pytest.raises(ConfigError, match="OWNER/REPO"):
        sync_github(svc, "gh", "just-a-name")


def test_cli_against_enterprise_server_and_a_bad_token(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    from cli.main import app

    ghes = FakeGitHub(enterprise=True).start()
    try:
        World(ghes)
        svc = make_services(ghes.url, tmp_path, embedder, ghes.token)
        result = CliRunner().invoke(app, ["ingest", "github", "acme/widgets", "--issues"], obj=lambda: svc,
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "documents seen 3 / added 3" in result.output and "left out: 1 not_planned" in result.output
        assert {d.url for d in svc.store.documents("github-acme-widgets")} == {
            f"https://ghe.example/acme/widgets/issues/{n}" for n in (1, 2, 6)}
        assert not any("discussions(" in r.graphql for r in ghes.log)  # --issues only
        bad = make_services(ghes.url, tmp_path / "bad", embedder, "expired")
        result = CliRunner().invoke(app, ["ingest", "github", "acme/widgets"], obj=lambda: bad, env={"COLUMNS": "200"})
        assert result.exit_code == 1 and "401" in result.output and "Traceback" not in result.output
    finally:
        ghes.stop()


def test_sources_file_github_entry(world: World, svc: Services, tmp_path: Path) -> None:
    path = tmp_path / "answerdesk.toml"
    path.write_text('[[source]]\nname = "widgets"\ntype = "github"\nrepo = "acme/widgets"\ndiscussions = false\n'
                    'since = 2024-01-01\n')
    (source,) = load_sources(path)
    assert isinstance(source, GitHubSource) and source.audience is None and not source.discussions
    from cli.main import app

    result = CliRunner().invoke(app, ["sync", "--config", str(path)], obj=lambda: svc, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert sorted(d.doc_id for d in svc.store.documents("widgets")) == ["issues/1", "issues/2", "issues/6"]
    path.write_text('[[source]]\nname = "w"\ntype = "github"\nrepo = "acme/widgets"\ntoken = "ghp_x"\n')
    with pytest.raises(ConfigError, match="set ANSWERDESK_GITHUB_TOKEN in the environment"):
        load_sources(path)


@pytest.mark.parametrize(("body", "noise"), [
    ("+1", True), ("👍👍", True), ("Same here!", True), ("any update?", True), ("@maintainer any news on this?", True),
    ("I am also having the same issue", True), ("Same issue on Windows 11 with 2.3.1", False),
    ("Thanks, upgrading to 2.3 fixed it", False), ("`pip install -U widgets`", False), ("", True),
])
def test_noise_is_recognised_without_losing_short_answers(body: str, noise: bool) -> None:
    assert is_noise(body) is noise


def test_similar_tickets_keep_two_repositories_issues_apart(world: World, svc: Services) -> None:
    """Both repositories have an issue #1 (doc_id issues/1): agent assist lists each, not one of them."""
    from assistant.escalation.agent import similar_tickets

    other = world.fake.add_repo("acme/gadgets")
    world.fake.add_issue(other, "CSV export times out for big reports", "Exports of large reports time out.",
                         world.fake.person("bob"))
    sync(svc)
    sync_github(svc, "gh-gadgets", "acme/gadgets")
    keys = [t.key for t in similar_tickets(svc.store, svc.retriever, "CSV export times out", exclude="", limit=3)]
    assert "acme/widgets#1" in keys and "acme/gadgets#1" in keys
