"""A local fake GitHub for tests: REST (repository, issue list, issue comments) and GraphQL (discussions and
the numbered look-ups), at github.com's layout (/repos/..., /graphql) or GitHub Enterprise Server's
(/api/v3/repos/..., /api/graphql).

It answers the way GitHub documents it where the connector could trip:
- the issue list has GitHub's parameters (state, since, sort, direction, per_page capped at 100, page),
  lists pull requests too (with a `pull_request` key), and pages with Link headers (rel="next", "last",
  "first", "prev") holding absolute URLs;
- every JSON answer carries a weak ETag; a matching If-None-Match gets 304 with no body, and 304s are not
  counted against the rate limit (`counted` tells them apart); x-ratelimit-* headers on every answer;
- switches for a primary limit (403, x-ratelimit-remaining: 0, x-ratelimit-reset a moment ahead), a
  secondary limit (429 or 403 with retry-after) and GraphQL's RATE_LIMITED (200 with an error);
- 401 "Bad credentials" for a wrong token, 404 for an unknown repository, 410 for a deleted issue;
- GraphQL is executed for real by graphql-core against SCHEMA, a subset of GitHub's public schema with the
  real type and field names (schema.docs.graphql): a field GitHub lacks is a validation error, connections
  want `first` (at most 100), cursors are opaque, and a missing item is null plus a NOT_FOUND error.

Every REST body is checked against githubkit's models of GitHub's OpenAPI description (`violations`), so
the fake cannot drift from the shapes the real API returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from graphql import GraphQLError, build_schema, graphql_sync

from tests.fakes import reply
from tests.servers import serve_handler, shut

SCHEMA = build_schema("""
scalar DateTime
scalar URI
enum OrderDirection { ASC DESC }
enum DiscussionOrderField { CREATED_AT UPDATED_AT }
input DiscussionOrder { field: DiscussionOrderField! direction: OrderDirection! }
enum IssueState { CLOSED OPEN }
enum IssueStateReason { COMPLETED DUPLICATE NOT_PLANNED REOPENED }
enum CommentAuthorAssociation {
  COLLABORATOR CONTRIBUTOR FIRST_TIMER FIRST_TIME_CONTRIBUTOR MANNEQUIN MEMBER NONE OWNER
}
interface Actor { avatarUrl(size: Int): URI! login: String! resourcePath: URI! url: URI! }
type User implements Actor { avatarUrl(size: Int): URI! login: String! name: String resourcePath: URI! url: URI! }
type Bot implements Actor { avatarUrl(size: Int): URI! login: String! resourcePath: URI! url: URI! }
type PageInfo { endCursor: String hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String }
type Label { color: String! name: String! }
type LabelConnection { nodes: [Label] pageInfo: PageInfo! totalCount: Int! }
type DiscussionCategory { isAnswerable: Boolean! name: String! slug: String! }
type DiscussionComment {
  author: Actor authorAssociation: CommentAuthorAssociation! body: String! bodyText: String! createdAt: DateTime!
  id: ID! isAnswer: Boolean! updatedAt: DateTime! url: URI!
}
type DiscussionCommentConnection { nodes: [DiscussionComment] pageInfo: PageInfo! totalCount: Int! }
type Discussion {
  answer: DiscussionComment answerChosenAt: DateTime author: Actor body: String! bodyText: String!
  category: DiscussionCategory! closed: Boolean!
  comments(after: String, before: String, first: Int, last: Int): DiscussionCommentConnection!
  createdAt: DateTime! id: ID! isAnswered: Boolean
  labels(after: String, before: String, first: Int, last: Int): LabelConnection
  number: Int! repository: Repository! title: String! updatedAt: DateTime! url: URI!
}
type DiscussionConnection { nodes: [Discussion] pageInfo: PageInfo! totalCount: Int! }
type Issue {
  id: ID! number: Int! repository: Repository! state: IssueState! stateReason: IssueStateReason title: String!
  updatedAt: DateTime! url: URI!
}
type Repository {
  discussion(number: Int!): Discussion
  discussions(after: String, answered: Boolean = null, before: String, categoryId: ID = null, first: Int,
              last: Int, orderBy: DiscussionOrder = {field: UPDATED_AT, direction: DESC}): DiscussionConnection!
  hasDiscussionsEnabled: Boolean! hasIssuesEnabled: Boolean! id: ID! isPrivate: Boolean!
  issue(number: Int!): Issue
  name: String! nameWithOwner: String! url: URI!
}
type RateLimit { cost: Int! limit: Int! nodeCount: Int! remaining: Int! resetAt: DateTime! used: Int! }
type Query {
  rateLimit(dryRun: Boolean = false): RateLimit
  repository(followRenames: Boolean = true, name: String!, owner: String!): Repository
}
""")

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
_REPO_URLS = ("archive assignees blobs branches collaborators comments commits compare contents contributors "
              "deployments downloads events forks git_commits git_refs git_tags issue_comment issue_events issues "
              "keys labels languages merges milestones notifications pulls releases stargazers statuses subscribers "
              "subscription tags teams trees hooks")


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Person:
    login: str
    id: int
    name: str | None = None
    bot: bool = False


@dataclass
class Comment:
    id: int
    body: str
    user: Person
    association: str = "NONE"  # OWNER | MEMBER | COLLABORATOR | CONTRIBUTOR | NONE ...
    created: datetime = START


@dataclass
class Issue:
    number: int
    title: str
    body: str
    user: Person
    state: str = "closed"
    state_reason: str | None = "completed"
    labels: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    pull_request: bool = False
    created: datetime = START
    updated: datetime = START
    closed_by: Person | None = None
    deleted: bool = False
    moved_to: str | None = None  # full name of the repository it was transferred to


@dataclass
class Discussion:
    number: int
    title: str
    body: str
    author: Person
    comments: list[Comment] = field(default_factory=list)
    answer_id: int | None = None
    category: str = "Q&A"
    labels: list[str] = field(default_factory=list)
    created: datetime = START
    updated: datetime = START
    deleted: bool = False


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    private: bool = False
    has_issues: bool = True
    has_discussions: bool = True
    issues: dict[int, Issue] = field(default_factory=dict)
    discussions: dict[int, Discussion] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def node_id(self) -> str:
        return base64.b64encode(f"010:Repository{self.id}".encode()).decode()


@dataclass
class Logged:
    method: str
    path: str  # without the Enterprise prefix
    query: dict[str, str]
    status: int
    counted: bool  # against the rate limit (GitHub does not count 304s)
    conditional: bool  # sent If-None-Match
    graphql: str = ""  # the query text, for POST /graphql
    variables: dict[str, Any] = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, token: str = "github_pat_fake_0123456789abcdefghij", enterprise: bool = False) -> None:
        self.token, self.enterprise = token, enterprise
        self.repos: dict[str, Repo] = {}
        self.now = START
        self._ids = 5000
        self.log: list[Logged] = []
        self.violations: list[str] = []
        self.faults: list[dict[str, Any]] = []  # queued one-shot answers (rate limits, failures)
        self.lock = threading.RLock()
        self.reset_at = int(time.time()) + 3600
        self.used = 0
        self._server: ThreadingHTTPServer | None = None

    # -- test-facing state ----------------------------------------------------------------------------
    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def person(self, login: str, name: str | None = None) -> Person:
        return Person(login, self.next_id(), name, bot=login.endswith("[bot]"))

    def add_repo(self, full_name: str, **kwargs: Any) -> Repo:
        owner, name = full_name.split("/")
        repo = Repo(owner, name, self.next_id(), **kwargs)
        self.repos[full_name.lower()] = repo
        return repo

    def _number(self, repo: Repo) -> int:  # issues, pull requests and discussions share one sequence
        return 1 + max([*repo.issues, *repo.discussions, 0])

    def add_issue(self, repo: Repo, title: str, body: str, user: Person, **kwargs: Any) -> Issue:
        with self.lock:
            at = self.tick()
            issue = Issue(self._number(repo), title, body, user, created=at, updated=at, **kwargs)
            repo.issues[issue.number] = issue
            return issue

    def comment(self, issue: Issue | Discussion, body: str, user: Person, association: str = "NONE") -> Comment:
        with self.lock:
            c = Comment(self.next_id(), body, user, association, self.tick())
            issue.comments.append(c)
            issue.updated = self.now
            return c

    def edit(self, item: Issue | Discussion, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(item, name, value)
            item.updated = self.tick()

    def add_discussion(self, repo: Repo, title: str, body: str, author: Person, **kwargs: Any) -> Discussion:
        with self.lock:
            at = self.tick()
            d = Discussion(self._number(repo), title, body, author, created=at, updated=at, **kwargs)
            repo.discussions[d.number] = d
            return d

    def limit_once(self, kind: str = "primary", path: str = "", status: int = 403, retry_after: int = 1,
                   reset_in: int = 2) -> None:
        """The next request whose path contains `path` meets a rate limit: primary (403 with remaining 0 and
        a reset `reset_in` seconds ahead), secondary (`status` with retry-after) or graphql (RATE_LIMITED)."""
        self.faults.append({"kind": kind, "path": path, "status": status, "retry_after": retry_after,
                            "reset_in": reset_in})

    def fail(self, status: int, path: str = "", times: int = 1) -> None:
        for _ in range(times):
            self.faults.append({"kind": "fail", "path": path, "status": status})

    # -- observations ---------------------------------------------------------------------------------
    def counted(self) -> int:
        """REST requests GitHub would count against the primary rate limit."""
        return sum(1 for r in self.log if r.counted and not r.graphql)

    def queries(self, text: str = "") -> int:
        return sum(1 for r in self.log if r.graphql and text in r.graphql)

    def count(self, path_regex: str, status: int | None = None) -> int:
        return sum(1 for r in self.log if re.search(path_regex, r.path) and status in (None, r.status))

    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server else 0
        return f"http://127.0.0.1:{port}" + ("/api/v3" if self.enterprise else "")

    # -- serving --------------------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self)

            def do_POST(self) -> None:
                fake._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve_handler(Handler)
        return self

    def stop(self) -> None:
        shut(self._server)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        prefix = "/api/v3" if self.enterprise else ""
        graphql_path = "/api/graphql" if self.enterprise else "/graphql"
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self.lock:
            if path == graphql_path and h.command == "POST":
                status, headers, payload, counted = self._graphql(h.headers, body)
                sent = json.loads(body or b"{}")
                text, variables = str(sent.get("query") or ""), dict(sent.get("variables") or {})
                logged_path = "/graphql"
            elif path.startswith(prefix + "/") and h.command == "GET":
                logged_path = path[len(prefix):]
                status, headers, payload, counted = self._rest(logged_path, query, h.headers)
                text, variables = "", {}
            else:  # outside the API: GitHub's web server answers with an HTML page
                status, headers, payload, counted, text = 404, {"content-type": "text/html"}, b"<h1>404</h1>", \
                    False, ""
                logged_path, variables = path, {}
            self.log.append(Logged(h.command, logged_path, query, status, counted,
                                   "if-none-match" in {k.lower() for k in h.headers}, text, variables))
        reply(h, status, headers, payload)

    def _rate_headers(self, resource: str, remaining: int | None = None, reset: int | None = None) -> dict[str, str]:
        left = 5000 - self.used if remaining is None else remaining
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(left), "x-ratelimit-used": str(self.used),
                "x-ratelimit-reset": str(reset or self.reset_at), "x-ratelimit-resource": resource}

    def _fault(self, path: str) -> dict[str, Any] | None:
        for f in self.faults:
            if f["path"] in path:
                self.faults.remove(f)
                return f
        return None

    def _json(self, status: int, data: Any, resource: str,
              extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes, bool]:
        payload = json.dumps(data).encode()
        self.used += 1
        headers = {"content-type": "application/json; charset=utf-8", **self._rate_headers(resource), **(extra or {})}
        return status, headers, payload, True

    def _error(self, status: int, message: str, doc: str = "https://docs.github.com/rest",
               extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes, bool]:
        return self._json(status, {"message": message, "documentation_url": doc, "status": str(status)}, "core",
                          extra)

    def _authorised(self, headers: Any) -> bool:
        return str(headers.get("authorization", "")) in (f"token {self.token}", f"Bearer {self.token}")

    def _limited(self, fault: dict[str, Any], resource: str) -> tuple[int, dict[str, str], bytes, bool]:
        if fault["kind"] == "primary":
            reset = int(time.time()) + int(fault["reset_in"])
            status, headers, payload, counted = self._error(
                403, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please "
                "include the request ID.", "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
            headers.update(self._rate_headers(resource, 0, reset))
            return status, headers, payload, counted
        return self._error(int(fault["status"]), "You have exceeded a secondary rate limit. Please wait a few "
                           "minutes before you try again.",
                           "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
                           "#about-secondary-rate-limits", {"retry-after": str(fault["retry_after"])})

    # -- REST -----------------------------------------------------------------------------------------
    def _rest(self, path: str, query: dict[str, str], headers: Any) -> tuple[int, dict[str, str], bytes, bool]:
        fault = self._fault(path)
        if fault and fault["kind"] in ("primary", "secondary"):
            return self._limited(fault, "core")
        if fault:
            return self._error(int(fault["status"]), "Server Error")
        if not self._authorised(headers):
            return self._error(401, "Bad credentials")
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/issues(?:/(\d+)/comments)?)?", path)
        repo = self.repos.get(f"{m.group(1)}/{m.group(2)}".lower()) if m else None
        if m is None or repo is None:
            return self._error(404, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository")
        if m.group(4):
            issue = repo.issues.get(int(m.group(4)))
            if issue is None or issue.moved_to:
                return self._error(404, "Not Found")
            if issue.deleted:
                return self._error(410, "This issue was deleted")
            data: Any = [self._comment_json(repo, issue, c) for c in issue.comments]
            return self._list(path, query, headers, data, "list[IssueComment]")
        if m.group(3):
            if not repo.has_issues:
                return self._error(410, "Issues are disabled for this repo", "https://docs.github.com/v3/issues/")
            return self._list(path, query, headers, self._issue_list(repo, query), "list[Issue]")
        return self._conditional(headers, *self._json(200, self._repo_json(repo), "core"), self._repo_json(repo),
                                 "FullRepository")

    def _issue_list(self, repo: Repo, q: dict[str, str]) -> list[dict[str, Any]]:
        state = q.get("state", "open")
        items = [i for i in repo.issues.values() if not i.deleted and not i.moved_to
                 and (state == "all" or i.state == state)]
        if q.get("since"):
            since = datetime.fromisoformat(q["since"])
            items = [i for i in items if i.updated >= since]
        key = {"created": lambda i: i.created, "updated": lambda i: i.updated,
               "comments": lambda i: len(i.comments)}[q.get("sort", "created")]
        items.sort(key=lambda i: (key(i), i.number), reverse=q.get("direction", "desc") == "desc")
        return [self._issue_json(repo, i) for i in items]

    def _list(self, path: str, q: dict[str, str], headers: Any, data: list[Any],
              model: str) -> tuple[int, dict[str, str], bytes, bool]:
        per_page = max(1, min(100, int(q.get("per_page", "30"))))
        page = max(1, int(q.get("page", "1")))
        last = max(1, -(-len(data) // per_page))
        chunk = data[(page - 1) * per_page:page * per_page]
        base = self.url + path  # absolute, as GitHub writes them

        def link(n: int) -> str:
            return f"<{base}?{urlencode({**q, 'page': n})}>"

        rels = ([f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"'] if page < last else []) + (
            [f'{link(1)}; rel="first"', f'{link(page - 1)}; rel="prev"'] if page > 1 else [])
        extra = {"link": ", ".join(rels)} if rels else {}
        return self._conditional(headers, *self._json(200, chunk, "core", extra), chunk, model)

    def _conditional(self, req_headers: Any, status: int, headers: dict[str, str], payload: bytes, counted: bool,
                     data: Any, model: str) -> tuple[int, dict[str, str], bytes, bool]:
        self._check(model, data)
        etag = 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'
        headers["etag"] = etag
        if req_headers.get("if-none-match") == etag:
            self.used -= 1  # a 304 is free
            headers = {k: v for k, v in headers.items() if k != "content-type"}
            headers.update(self._rate_headers("core"))
            return 304, headers, b"", False
        return status, headers, payload, counted

    def _check(self, model: str, data: Any) -> None:
        from githubkit_schemas.latest import models
        from pydantic import TypeAdapter, ValidationError

        inner = model.removeprefix("list[").removesuffix("]")
        kind: Any = getattr(models, inner)
        try:
            TypeAdapter(list[kind] if model.startswith("list[") else kind).validate_python(data)
        except ValidationError as exc:
            self.violations.append(f"{model}: {exc}")

    def _user_json(self, p: Person) -> dict[str, Any]:
        api, web = "https://api.github.com/users/" + p.login, "https://github.com/" + p.login
        urls = {f"{k}_url": f"{api}/{k}" for k in ("followers", "subscriptions", "organizations", "repos",
                                                     "received_events")}
        urls.update({"following_url": api + "/following{/other_user}", "gists_url": api + "/gists{/gist_id}",
                     "starred_url": api + "/starred{/owner}{/repo}", "events_url": api + "/events{/privacy}"})
        return {"login": p.login, "id": p.id, "node_id": f"U_{p.id}", "avatar_url": f"https://avatars.example/{p.id}",
                "gravatar_id": "", "url": api, "html_url": web, "type": "Bot" if p.bot else "User",
                "site_admin": False, "user_view_type": "public", **urls}

    def _web(self, repo: Repo) -> str:
        return f"https://{'ghe.example' if self.enterprise else 'github.com'}/{repo.full_name}"

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        names = _REPO_URLS.split()
        owner = self._user_json(Person(repo.owner, repo.id + 1))
        return {"id": repo.id, "node_id": repo.node_id, "name": repo.name, "full_name": repo.full_name,
                "owner": owner, "private": repo.private, "visibility": "private" if repo.private else "public",
                "html_url": self._web(repo), "description": None, "fork": False, "url": api,
                **{f"{n}_url": f"{api}/{n}" for n in names}, "git_url": f"git://github.com/{repo.full_name}.git",
                "ssh_url": f"git@github.com:{repo.full_name}.git", "clone_url": self._web(repo) + ".git",
                "svn_url": self._web(repo), "mirror_url": None, "homepage": None, "language": "Python",
                "forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "size": 1, "default_branch": "main",
                "open_issues_count": sum(i.state == "open" for i in repo.issues.values()),
                "has_issues": repo.has_issues, "has_projects": False, "has_wiki": False, "has_pages": False,
                "has_discussions": repo.has_discussions, "archived": False, "disabled": False,
                "pushed_at": stamp(START), "created_at": stamp(START), "updated_at": stamp(START),
                "subscribers_count": 1, "network_count": 0, "license": None, "forks": 0, "open_issues": 0,
                "watchers": 0}

    def _issue_json(self, repo: Repo, i: Issue) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/{i.number}"
        out: dict[str, Any] = {
            "id": 100000 + i.number, "node_id": f"I_{repo.id}_{i.number}", "url": api,
            "repository_url": f"{self.url}/repos/{repo.full_name}", "labels_url": api + "/labels{/name}",
            "comments_url": api + "/comments", "events_url": api + "/events",
            "html_url": f"{self._web(repo)}/{'pull' if i.pull_request else 'issues'}/{i.number}",
            "number": i.number, "state": i.state, "state_reason": i.state_reason if i.state == "closed" else None,
            "title": i.title, "body": i.body, "user": self._user_json(i.user),
            "labels": [{"id": abs(hash(n)) % 10**6, "node_id": f"LA_{n}", "url": f"{api}/labels/{n}", "name": n,
                        "description": None, "color": "ededed", "default": False} for n in i.labels],
            "assignee": None, "assignees": [], "milestone": None, "locked": False, "active_lock_reason": None,
            "comments": len(i.comments), "closed_at": stamp(i.updated) if i.state == "closed" else None,
            "created_at": stamp(i.created), "updated_at": stamp(i.updated), "author_association": "NONE",
            "closed_by": self._user_json(i.closed_by) if i.closed_by else None}
        if i.pull_request:
            web = f"{self._web(repo)}/pull/{i.number}"
            out["pull_request"] = {"url": f"{self.url}/repos/{repo.full_name}/pulls/{i.number}", "html_url": web,
                                   "diff_url": web + ".diff", "patch_url": web + ".patch", "merged_at": None}
            out["draft"] = False
        return out

    def _comment_json(self, repo: Repo, issue: Issue, c: Comment) -> dict[str, Any]:
        return {"id": c.id, "node_id": f"IC_{c.id}", "url": f"{self.url}/repos/{repo.full_name}/issues/comments/{c.id}",
                "html_url": f"{self._web(repo)}/issues/{issue.number}#issuecomment-{c.id}", "body": c.body,
                "user": self._user_json(c.user), "created_at": stamp(c.created), "updated_at": stamp(c.created),
                "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{issue.number}",
                "author_association": c.association}

    # -- GraphQL --------------------------------------------------------------------------------------
    def _graphql(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes, bool]:
        fault = self._fault("/graphql")
        if fault and fault["kind"] == "graphql":
            reset = int(time.time()) + int(fault["reset_in"])
            data = {"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                                "message": "API rate limit already exceeded for user ID 1."}]}
            status, h, payload, _c = self._json(200, data, "graphql")
            h.update(self._rate_headers("graphql", 0, reset))
            return status, h, payload, True
        if fault:
            return self._limited(fault, "graphql")
        if not self._authorised(headers):
            return self._error(401, "Bad credentials", "https://docs.github.com/graphql")
        request = json.loads(body or b"{}")
        result = graphql_sync(SCHEMA, request.get("query") or "", root_value=_Root(self),
                              variable_values=request.get("variables"))
        out: dict[str, Any] = {}
        if result.data is not None:
            out["data"] = result.data
        if result.errors:
            out["errors"] = [_github_error(e) for e in result.errors]
        return self._json(200, out, "graphql")


def _github_error(e: GraphQLError) -> dict[str, Any]:
    """GitHub puts the error's type at the top level ({"type": "NOT_FOUND", ...}), not in extensions."""
    out: dict[str, Any] = {"message": e.message}
    if e.path:
        out["path"] = list(e.path)
    if e.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in e.locations]
    if e.extensions and "type" in e.extensions:
        out["type"] = e.extensions["type"]
    return out


def _not_found(what: str) -> GraphQLError:
    return GraphQLError(what, extensions={"type": "NOT_FOUND"})


def _cursor(n: int) -> str:
    return base64.b64encode(f"cursor:v2:{n}".encode()).decode()


def _connection(items: list[Any], name: str, first: int | None, after: str | None,
                last: int | None = None) -> dict[str, Any]:
    if first is None and last is None:
        raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
                           extensions={"type": "MISSING_PAGINATION_BOUNDARIES"})
    if (first or 0) > 100 or (last or 0) > 100:
        raise GraphQLError(f"Requesting {first or last} records on the `{name}` connection exceeds the "
                           f"`{'first' if first else 'last'}` limit of 100 records.",
                           extensions={"type": "EXCESSIVE_PAGINATION"})
    start = int(base64.b64decode(after).decode().rsplit(":", 1)[1]) + 1 if after else 0
    page = items[start:start + first] if first is not None else items[-(last or 0):]
    end = start + len(page) - 1
    return {"nodes": page, "totalCount": len(items),
            "pageInfo": {"hasNextPage": end + 1 < len(items), "hasPreviousPage": start > 0,
                         "startCursor": _cursor(start) if page else None, "endCursor": _cursor(end) if page else None}}


class _Root:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def repository(self, _info: Any, owner: str, name: str, followRenames: bool = True) -> dict[str, Any]:  # noqa: N803
        repo = self.fake.repos.get(f"{owner}/{name}".lower())
        if repo is None:
            raise _not_found(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return self.fake_repo(repo)

    def rateLimit(self, _info: Any, dryRun: bool = False) -> dict[str, Any]:  # noqa: N802,N803
        return {"cost": 1, "limit": 5000, "nodeCount": 0, "remaining": 4999, "resetAt": stamp(START), "used": 1}

    def fake_repo(self, repo: Repo) -> dict[str, Any]:
        fake = self.fake

        def discussions(_info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
                        before: str | None = None, answered: bool | None = None, categoryId: str | None = None,  # noqa: N803
                        orderBy: dict[str, str] | None = None) -> dict[str, Any]:  # noqa: N803
            order = orderBy or {"field": "UPDATED_AT", "direction": "DESC"}
            items = [d for d in repo.discussions.values() if not d.deleted
                     and (answered is None or (d.answer_id is not None) == answered)]
            items.sort(key=lambda d: (d.updated if order["field"] == "UPDATED_AT" else d.created, d.number),
                       reverse=order["direction"] == "DESC")
            return _connection([self.discussion_node(repo, d) for d in items], "discussions", first, after, last)

        def discussion(_info: Any, number: int) -> dict[str, Any]:
            d = repo.discussions.get(number)
            if d is None or d.deleted:
                raise _not_found(f"Could not resolve to a Discussion with the number of {number}.")
            return self.discussion_node(repo, d)

        def issue(_info: Any, number: int) -> dict[str, Any]:
            i = repo.issues.get(number)
            if i is None or i.deleted or i.pull_request:
                raise _not_found(f"Could not resolve to an Issue with the number of {number}.")
            home = fake.repos[i.moved_to.lower()] if i.moved_to else repo  # GitHub follows the transfer
            return {"id": f"I_{home.id}_{number}", "number": number, "title": i.title, "state": i.state.upper(),
                    "stateReason": (i.state_reason or "").upper() or None if i.state == "closed" else None,
                    "updatedAt": stamp(i.updated), "url": f"{fake._web(home)}/issues/{number}",
                    "repository": lambda _info: self.fake_repo(home)}

        return {"id": repo.node_id, "name": repo.name, "nameWithOwner": repo.full_name, "url": fake._web(repo),
                "isPrivate": repo.private, "hasDiscussionsEnabled": repo.has_discussions,
                "hasIssuesEnabled": repo.has_issues, "discussions": discussions, "discussion": discussion,
                "issue": issue}

    def actor(self, p: Person) -> dict[str, Any]:
        return {"__typename": "Bot" if p.bot else "User", "login": p.login, "name": p.name,
                "url": f"https://github.com/{p.login}", "resourcePath": f"/{p.login}",
                "avatarUrl": lambda _info, size=None: f"https://avatars.example/{p.id}"}

    def comment_node(self, repo: Repo, d: Discussion, c: Comment) -> dict[str, Any]:
        return {"id": f"DC_{c.id}", "body": c.body, "bodyText": c.body, "createdAt": stamp(c.created),
                "updatedAt": stamp(c.created), "url": f"{self.fake._web(repo)}/discussions/{d.number}"
                f"#discussioncomment-{c.id}", "isAnswer": c.id == d.answer_id, "author": self.actor(c.user),
                "authorAssociation": c.association}

    def discussion_node(self, repo: Repo, d: Discussion) -> dict[str, Any]:
        answer = next((c for c in d.comments if c.id == d.answer_id), None)
        comments = [self.comment_node(repo, d, c) for c in d.comments]
        labels = [{"name": n, "color": "ededed"} for n in d.labels]
        return {"id": f"D_{d.number}", "number": d.number, "title": d.title, "body": d.body, "bodyText": d.body,
                "url": f"{self.fake._web(repo)}/discussions/{d.number}", "createdAt": stamp(d.created),
                "updatedAt": stamp(d.updated), "isAnswered": answer is not None, "closed": False,
                "answer": self.comment_node(repo, d, answer) if answer else None,
                "answerChosenAt": stamp(d.updated) if answer else None, "author": self.actor(d.author),
                "category": {"name": d.category, "slug": d.category.lower(), "isAnswerable": True},
                "labels": lambda _info, first=None, after=None, last=None, before=None: _connection(
                    labels, "labels", first, after, last),
                "comments": lambda _info, first=None, after=None, last=None, before=None: _connection(
                    comments, "comments", first, after, last),
                "repository": lambda _info: self.fake_repo(repo)}
