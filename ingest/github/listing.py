"""What changed in a GitHub repository since the last run: the issue listing (REST, conditional), the
discussion listing (GraphQL, newest update first) and the re-check of known items by number (GraphQL).
ingest/github/sync.py explains the choices; this module only talks to the API and sorts what comes back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.github.client import GitHubClient, GitHubError
from ingest.github.documents import Repo, time_of

ISSUE_PAGE = 100  # GitHub's maximum
WINDOW_PAGES = 10  # `since` moves up only when the listing window grows past this many pages
DISCUSSION_PAGE = 25
REPLIES_PER_DISCUSSION = 30  # top-level replies fetched per discussion, besides the accepted answer
RECHECK_BATCH = 100  # known items asked for in one GraphQL query (1 point)
RECHECK_PER_RUN = 1000

_ACTOR = "author { __typename login ... on User { name } }"
DISCUSSIONS_QUERY = """
query($owner: String!, $name: String!, $first: Int!, $after: String, $replies: Int!) {
  repository(owner: $owner, name: $name) {
    discussions(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title body url createdAt updatedAt
        ACTOR
        category { name }
        labels(first: 20) { nodes { name } }
        answer { id body createdAt ACTOR }
        comments(first: $replies) { nodes { id body createdAt isAnswer ACTOR } }
      }
    }
  }
}""".replace("ACTOR", _ACTOR)


@dataclass
class Item:
    doc_id: str  # "issues/12" or "discussions/34" (stable across renames, unlike OWNER/REPO#N)
    updated: str  # updated_at as GitHub wrote it
    eligible: bool  # a closed-as-completed issue, or an answered discussion
    why_not: str = ""  # "pull request", "open", "not_planned", "unanswered" ...
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Listing:
    items: list[Item]
    complete: bool  # everything since --since was listed (no watermark): what is not listed is gone
    state: dict[str, Any]  # what the next run needs (watermark, the first page's URL and ETag)


def older(stamp: str | None, than: str | None) -> bool:
    a, b = time_of(stamp), time_of(than)
    return a is not None and b is not None and a < b


def newest(stamps: list[str | None]) -> str | None:
    dated = [(t, s) for s in stamps if s and (t := time_of(s)) is not None]
    return max(dated)[1] if dated else None


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and time_of(a) is not None and time_of(a) == time_of(b)


def _handled(doc_id: str, updated: str, saved: dict[str, Any]) -> bool:
    """Listings include the watermark's own second (another item may have been updated in it after the last
    run looked), but an item the last run already handled at that very time is not news."""
    return same(updated, saved.get("watermark")) and doc_id in (saved.get("at_watermark") or [])


def _advance(saved: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    """The new watermark (the newest update seen) and the items handled at exactly that time."""
    old = saved.get("watermark")
    mark = newest([old] + [i.updated for i in items])
    at = [i.doc_id for i in items if same(i.updated, mark)]
    return {"watermark": mark, "at_watermark": sorted(set(at + (saved.get("at_watermark") or [])
                                                           if same(mark, old) else at))}


def oldest_of(stamps: list[str]) -> str:
    return min(stamps, key=lambda s: (time_of(s) is None, time_of(s) or datetime.min.replace(tzinfo=UTC)))


def fetch_repo(client: GitHubClient, spec: str, saved: dict[str, Any]) -> tuple[Repo, dict[str, Any]]:
    """The repository (renames followed), conditionally: an unchanged one costs a free 304."""
    etag = saved.get("etag") if saved.get("spec") == spec and saved.get("data") else None
    page = client.get(f"repository {spec}", f"/repos/{spec}", etag=etag)
    data = saved["data"] if page.status == 304 else page.data
    if not isinstance(data, dict) or not data.get("full_name") or not data.get("node_id"):
        raise GitHubError(f"GitHub's answer for repository {spec} lacks full_name/node_id: is "
                          f"{client.url} the GitHub API?")
    keep = {k: data.get(k) for k in ("full_name", "node_id", "private", "has_issues", "has_discussions")}
    owner, name = str(data["full_name"]).split("/", 1)
    repo = Repo(owner, name, str(data["full_name"]), str(data["node_id"]), bool(keep["private"]),
                keep["has_issues"] is not False,  # older Enterprise Servers leave fields out: assume yes
                keep["has_discussions"] is not False)
    return repo, {"spec": spec, "etag": page.etag, "data": keep}


def _issue_item(issue: dict[str, Any]) -> Item:
    doc_id, updated = f"issues/{int(issue['number'])}", str(issue.get("updated_at") or "")
    if "pull_request" in issue:  # the issues API lists pull requests too
        return Item(doc_id, updated, False, "pull request")
    if issue.get("state") != "closed":
        return Item(doc_id, updated, False, "open")
    if issue.get("state_reason") not in ("completed", None):  # None: closed before GitHub recorded reasons
        return Item(doc_id, updated, False, str(issue.get("state_reason")))
    return Item(doc_id, updated, True, data=issue)


def list_issues(client: GitHubClient, repo: Repo, floor: str | None, saved: dict[str, Any]) -> Listing:
    """Issues (and pull requests) updated since the last run, newest first, from the conditional listing."""
    watermark = saved.get("watermark")
    since = saved.get("since") if saved.get("floor") == floor and saved.get("since") else floor
    path = f"/repos/{repo.full_name}/issues"
    params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "desc", "per_page": ISSUE_PAGE}
    if since:
        params["since"] = since
    signature = json.dumps([path, params], sort_keys=True)
    what = f"the issue list of {repo.full_name}"
    page = client.get(what, path, params, etag=saved.get("etag") if saved.get("signature") == signature else None)
    state = {**saved, "floor": floor, "since": since, "signature": signature, "etag": page.etag}
    if page.status == 304:
        return Listing([], False, state)
    last = page.last_page
    items: list[Item] = []
    while True:
        if not isinstance(page.data, list):
            raise GitHubError(f"GitHub's issue list of {repo.full_name} is not a list: is {client.url} the GitHub API?")
        for issue in page.data:
            if older(issue.get("updated_at"), watermark):
                return _issue_listing(items, watermark, state, last)
            item = _issue_item(issue)
            if not _handled(item.doc_id, item.updated, saved):
                items.append(item)
        if not page.next_url:
            return _issue_listing(items, watermark, state, last)
        page = client.get(what, page.next_url)


def _issue_listing(items: list[Item], watermark: str | None, state: dict[str, Any], last: Any) -> Listing:
    state.update(_advance(state, items))
    if isinstance(last, int) and last > WINDOW_PAGES and state["watermark"]:
        # A long window: move `since` up to the watermark's day. The next run's first request then has a new
        # URL (no ETag yet, so it is counted once); from then on it is conditional again.
        state["since"] = str(state["watermark"])[:10] + "T00:00:00Z"
    return Listing(items, watermark is None, state)


def list_discussions(client: GitHubClient, repo: Repo, floor: str | None, saved: dict[str, Any]) -> Listing:
    """Discussions updated since the last run: UPDATED_AT descending, cursor by cursor, until older."""
    saved = saved if saved.get("floor") == floor else {}
    watermark = saved.get("watermark")
    items: list[Item] = []
    after: str | None = None
    while True:
        data = client.graphql(f"the discussions of {repo.full_name}", DISCUSSIONS_QUERY, {
            "owner": repo.owner, "name": repo.name, "first": DISCUSSION_PAGE, "after": after,
            "replies": REPLIES_PER_DISCUSSION})
        connection = (data.get("repository") or {}).get("discussions") or {}
        for node in connection.get("nodes") or []:
            updated = str(node.get("updatedAt") or "")
            if older(updated, watermark) or older(updated, floor):
                return _discussion_listing(items, saved, floor)
            doc_id = f"discussions/{int(node['number'])}"
            answered = bool(node.get("answer"))
            if not _handled(doc_id, updated, saved):
                items.append(Item(doc_id, updated, answered, "" if answered else "unanswered", node))
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return _discussion_listing(items, saved, floor)
        after = str(info["endCursor"])


def _discussion_listing(items: list[Item], saved: dict[str, Any], floor: str | None) -> Listing:
    return Listing(items, saved.get("watermark") is None, {"floor": floor, **_advance(saved, items)})


def order(doc_id: str) -> tuple[str, int]:
    kind, _, number = doc_id.partition("/")
    return kind, int(number) if number.isdigit() else 0


def _alias(doc_id: str) -> str:
    kind, number = order(doc_id)
    return f"{kind[0]}{number}"


def recheck(client: GitHubClient, repo: Repo, known: list[str], after: str) -> tuple[set[str], str]:
    """Known items that are gone: deleted, transferred, reopened, closed as not planned, no longer answered.
    Up to RECHECK_PER_RUN per run, continuing after the last one the previous run checked."""
    ids = sorted((d for d in known if order(d)[0] in ("issues", "discussions")), key=order)
    todo = ([d for d in ids if order(d) > order(after)] + [d for d in ids if order(d) <= order(after)]
            if after else ids)[:RECHECK_PER_RUN]
    gone: set[str] = set()
    for i in range(0, len(todo), RECHECK_BATCH):
        batch = todo[i:i + RECHECK_BATCH]
        fields = [f"{_alias(d)}: issue(number: {order(d)[1]}) {{ state stateReason repository {{ id }} }}"
                  if d.startswith("issues/") else
                  f"{_alias(d)}: discussion(number: {order(d)[1]}) {{ answer {{ id }} repository {{ id }} }}"
                  for d in batch]
        query = ("query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { "
                 + " ".join(fields) + " } }")
        data = client.graphql(f"the indexed items of {repo.full_name}", query,
                              {"owner": repo.owner, "name": repo.name}, allow_missing=True)
        found = data.get("repository")
        if not isinstance(found, dict):  # never read "the repository is missing" as "every item is gone"
            raise GitHubError(f"GitHub's GraphQL API did not return repository {repo.full_name}; nothing removed.")
        gone |= {d for d in batch if not _still_there(repo, d, found.get(_alias(d)))}
    return gone, todo[-1] if todo else ""


def _still_there(repo: Repo, doc_id: str, node: Any) -> bool:
    if not isinstance(node, dict) or (node.get("repository") or {}).get("id") != repo.node_id:
        return False  # deleted, or transferred to another repository
    if doc_id.startswith("issues/"):
        return node.get("state") == "CLOSED" and node.get("stateReason") in (None, "COMPLETED")
    return node.get("answer") is not None
