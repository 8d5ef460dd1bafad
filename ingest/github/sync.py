"""A GitHub repository as a source: closed issues that were completed (with their comments) and answered
discussions (question and accepted answer), one document each, titled "OWNER/REPO#N: title" and linked to
its page on GitHub. Pull requests, issues closed as not planned, open issues and unanswered discussions
are left out, and so are bots' comments and "+1"-style noise; personal data is redacted.

Incremental by updated_at, and nearly free when nothing changed (ingest/github/listing.py does the asking):
- Issues: GET /repos/{o}/{r}/issues?state=all&sort=updated&direction=desc[&since=...], paged by Link headers
  and read only down to the newest update the last run saw (the watermark). The first page goes out with the
  ETag the last run got for the same URL: an unchanged repository answers 304 Not Modified, which GitHub
  does not count against the rate limit. `since` is --since, moved up to the watermark's day only when the
  window grows past WINDOW_PAGES pages, so the URL (and its ETag) stays the same from run to run.
  state=all, so that a reopened issue or one re-closed as not planned is seen, and removed.
- Discussions: GraphQL, ordered by UPDATED_AT descending, cursor by cursor until older than the watermark.
  GraphQL has no conditional requests: one query (1 point of the separate GraphQL limit) per run.
- Deletions and transfers leave no trace in either listing, so known items are re-checked by number, up to
  100 per GraphQL query (aliases, 1 point) and RECHECK_PER_RUN per run, rotating through the index: gone,
  moved to another repository (a different repository id), reopened, not planned or no longer answered
  means removed. Rejected alternatives: re-listing every closed issue with ETags (one deleted or newly closed
  old issue shifts every later page, so every page downloads again) and a conditional GET per issue (one
  request per issue per run, and the first one per issue is counted).

ETags and watermarks live in the `state` table (one row per source), not in githubkit's in-memory cache, and
are written only after the pipeline stored the documents: a run that fails leaves the last good state, and a
document that failed keeps the watermark below its update, so it is listed again. A different audience,
--since or document format means a full listing, which also removes whatever is no longer there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from assistant import db
from assistant.errors import ConfigError, SourceError
from assistant.services import Services
from assistant.types import AUDIENCES
from ingest.chunking import digest
from ingest.confluence.pages import record_failure
from ingest.github.client import GitHubClient, GitHubError
from ingest.github.documents import FORMAT, Repo, discussion_document, issue_document
from ingest.github.listing import (
    Item,
    Listing,
    fetch_repo,
    list_discussions,
    list_issues,
    older,
    oldest_of,
    order,
    recheck,
)
from ingest.model import DocumentRef, SourceDocument
from ingest.pipeline import Ingestor, IngestStats
from ingest.progress import SILENT, Progress

if TYPE_CHECKING:
    from ingest.connectors import GitHubSource

COMMENT_PAGE = 100  # GitHub's maximum
_REPO = re.compile(r"^(?:https?://[^/]+/)?([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclass
class GitHubStats(IngestStats):
    """The pipeline's counts plus what the run cost at GitHub and what it left out."""

    requests: int = 0  # REST requests sent
    not_modified: int = 0  # of which 304s, free of rate limit
    graphql_queries: int = 0
    waited: float = 0.0  # seconds spent waiting out rate limits
    left_out: dict[str, int] | None = None  # reason -> listed items not indexed (pull request, open ...)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted((self.left_out or {}).items()))
        return (super().summary() + f"; GitHub requests {self.requests} ({self.not_modified} not modified), "
                f"GraphQL queries {self.graphql_queries}" + (f"; left out: {skipped}" if skipped else "")
                + (f"; waited {self.waited:.0f} s for rate limits" if self.waited else ""))


class GitHubState:
    """Watermarks, ETags and the re-check position of one source: one JSON row in `state`."""

    def __init__(self, engine: sa.Engine, source: str) -> None:
        self.engine, self.key = engine, f"github:{source}"

    def load(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(db.state.c.value).where(db.state.c.key == self.key)).scalar_one_or_none()
        return dict(json.loads(value)) if value else {}

    def save(self, value: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.state.delete().where(db.state.c.key == self.key))
            conn.execute(db.state.insert().values(key=self.key, value=json.dumps(value)))


def split_repo(spec: str) -> tuple[str, str]:
    m = _REPO.match(spec.strip())
    if not m:
        raise ConfigError(f"Name the repository as OWNER/REPO (e.g. octocat/hello-world), got {spec!r}.")
    return m.group(1), m.group(2)


def default_source(spec: str) -> str:
    owner, name = split_repo(spec)
    return f"github-{owner}-{name}".lower()


def _kinds(repo: Repo, issues: bool, discussions: bool) -> list[str]:
    """What to sync: a kind the repository has switched off is skipped when the other one was asked for
    too, and an error when it is all that was asked for."""
    if not (issues or discussions):
        raise ConfigError("Nothing to index: pass --issues, --discussions or both (the default).")
    off = {k for k, on in (("issues", repo.has_issues), ("discussions", repo.has_discussions)) if not on}
    wanted = [k for k, on in (("issues", issues), ("discussions", discussions)) if on]
    if all(k in off for k in wanted):
        raise SourceError(f"{repo.full_name} has {' and '.join(wanted)} switched off (repository settings > "
                          "Features), so there is nothing to index.")
    return [k for k in wanted if k not in off]


def _item_hash(item: Item, audience: str, repo: Repo) -> str:
    return digest(FORMAT, item.doc_id, item.updated, audience, repo.full_name)


def _load_issue(client: GitHubClient, repo: Repo, issue: dict[str, Any], audience: str) -> SourceDocument:
    comments: list[dict[str, Any]] = []
    if int(issue.get("comments") or 0):
        number = int(issue["number"])
        try:
            for page in client.pages(f"the comments of {repo.full_name}#{number}",
                                     f"/repos/{repo.full_name}/issues/{number}/comments", {"per_page": COMMENT_PAGE}):
                comments += page
        except GitHubError as exc:
            if exc.status in (404, 410):  # deleted since the listing: that issue's failure, not the run's
                raise ValueError(str(exc)) from exc
            raise  # a bad token or an exhausted rate limit stops the run: the next one resumes
    return issue_document(repo, issue, comments, audience)


def _never(doc_id: str) -> SourceDocument:
    raise ValueError(f"{doc_id} is unchanged and was not fetched")  # a stored hash always matches first


def _refs(client: GitHubClient, repo: Repo, items: dict[str, Item], unchanged: dict[str, str],
          audience: str) -> Iterator[DocumentRef]:
    for doc_id, item in sorted(items.items(), key=lambda kv: order(kv[0])):
        label = f"{repo.full_name}#{order(doc_id)[1]}"
        load = (partial(_load_issue, client, repo, item.data, audience) if doc_id.startswith("issues/")
                else partial(discussion_document, repo, item.data, audience))
        yield DocumentRef(doc_id, _item_hash(item, audience, repo), load, label)
    for doc_id, known_hash in sorted(unchanged.items(), key=lambda kv: order(kv[0])):
        yield DocumentRef(doc_id, known_hash, partial(_never, doc_id), f"{repo.full_name}#{order(doc_id)[1]}")


def sync_github(services: Services, source: str, spec: str, *, issues: bool = True, discussions: bool = True,
                since: date | None = None, audience: str | None = None, full: bool = False,
                max_wait: float = 3900.0, on_document: Callable[[str], None] | None = None,
                on_wait: Callable[[str], None] | None = None) -> GitHubStats:
    """Index a repository's resolved issues and answered discussions incrementally.

    audience: default public for a public repository, internal for a private or internal one.
    since: leave out what was last updated before this day. full: ignore the saved state (list everything).
    max_wait: the most seconds this run may spend waiting out rate limits before it stops (resumable)."""
    owner, name = split_repo(spec)
    if audience is not None and audience not in AUDIENCES:
        raise ConfigError(f"--audience must be one of {', '.join(AUDIENCES)}, got {audience!r}.")
    s = services.settings
    client = GitHubClient(s.github_url, s.github_token.get_secret_value() if s.github_token else None,
                          max_wait, on_wait)
    state = GitHubState(services.store.engine, source)
    saved = {} if full else state.load()
    floor = f"{since.isoformat()}T00:00:00Z" if since else None
    location = f"{client.url} {owner}/{name}"
    with client:
        try:
            repo, repo_state = fetch_repo(client, f"{owner}/{name}", saved.get("repo") or {})
            audience = audience or ("internal" if repo.private else "public")
            fingerprint = digest(FORMAT, repo.node_id, repo.full_name, audience, floor or "")
            if saved.get("fingerprint") != fingerprint:
                saved = {}  # first run, or what the documents look like changed: list everything again
            kinds = _kinds(repo, issues, discussions)
            known = {d: h for d, h in services.store.document_hashes(source).items() if order(d)[0] in kinds}
            listings: dict[str, Listing] = {}
            if "issues" in kinds:
                listings["issues"] = list_issues(client, repo, floor, saved.get("issues") or {})
            if "discussions" in kinds:
                listings["discussions"] = list_discussions(client, repo, floor, saved.get("discussions") or {})
            items: dict[str, Item] = {}
            removed: set[str] = set()
            for kind, listing in listings.items():
                for item in listing.items:  # newest first: the first sighting of an item is its latest
                    items.setdefault(item.doc_id, item)
                eligible = {d for d, i in items.items() if i.eligible}
                removed |= {d for d, i in items.items() if not i.eligible and d in known}
                if listing.complete:
                    removed |= {d for d in known if d.startswith(kind + "/") and d not in eligible}
            # Listed items are fresh; the rest of the index is re-checked for deletions and transfers.
            gone, checked = recheck(client, repo, [d for d in known if d not in items and d not in removed],
                                    str(saved.get("recheck_after") or ""))
            removed |= gone
        except SourceError as exc:
            record_failure(services, source, "github", location, exc)
            raise
        fresh = {d: i for d, i in items.items() if i.eligible}
        unchanged = {d: h for d, h in known.items() if d not in fresh and d not in removed}
        ingested = Ingestor(services, source, on_document=on_document).run(
            _refs(client, repo, fresh, unchanged, audience), kind="github", location=location, complete=False,
            removed=sorted(removed))
    failed = {label for label, _m in ingested.failures}
    state.save(_next_state(saved, fingerprint, repo_state, listings, failed, repo,
                           checked or saved.get("recheck_after")))
    stats = GitHubStats(**{f.name: getattr(ingested, f.name) for f in fields(IngestStats)})
    stats.requests, stats.not_modified, stats.graphql_queries = client.requests, client.not_modified, client.queries
    stats.waited = client.waits.waited
    stats.left_out = {}
    for item in items.values():
        if not item.eligible:
            stats.left_out[item.why_not] = stats.left_out.get(item.why_not, 0) + 1
    return stats


def _next_state(saved: dict[str, Any], fingerprint: str, repo_state: dict[str, Any], listings: dict[str, Listing],
                failed: set[str], repo: Repo, checked: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"fingerprint": fingerprint, "repo": repo_state, "recheck_after": checked or "",
                           # a kind not synced this time (--issues only) keeps its place for the next run
                           **{k: saved[k] for k in ("issues", "discussions") if k in saved and k not in listings}}
    for kind, listing in listings.items():
        st = dict(listing.state)
        lost = [i.updated for i in listing.items if f"{repo.full_name}#{order(i.doc_id)[1]}" in failed]
        if lost:  # list them again next run: the watermark goes back to the oldest failure (listings stop
            oldest = oldest_of(lost)  # only at strictly older items), without an ETag to make it a 304
            st.update(watermark=oldest, at_watermark=[], etag=None)
            if st.get("since") and older(oldest, st["since"]):
                st["since"] = oldest[:10] + "T00:00:00Z"
        out[kind] = st
    return out


def sync(services: Services, config: GitHubSource, progress: Progress = SILENT) -> IngestStats:
    """The connector seam (ingest/connectors.py)."""
    return sync_github(services, config.name, config.repo, issues=config.issues, discussions=config.discussions,
                       since=config.since, audience=config.audience, full=config.full,
                       max_wait=float(config.max_wait), on_document=progress.advance, on_wait=progress.note)
