"""A local fake Atlassian site for tests: Confluence v1 (Cloud under /wiki, Data Center without it) and
v2 pages, Jira v2/v3 (Data Center search with startAt/total, Cloud enhanced search with nextPageToken and
410 Gone on the removed /search), and Jira Service Management requests and comments.

It answers the way Atlassian does where our code could trip: Confluence `_links.next` is RELATIVE to
`_links.base` (which ends in /wiki on Cloud), page sizes are capped below what the client asks for,
unknown space keys give Atlassian's 404, Cloud wants Basic e-mail:token and Data Center a Bearer PAT.

Every request and response is checked against Atlassian's OpenAPI documents (../shared/contracts/
atlassian) by `Contracts`; violations are recorded, and `running()` fails the test on any that is not
in ALLOWED. Nothing is left unchecked: Data Center and Jira v2 paths are checked against the Cloud
operation of the same shape (`Contracts.locate`: Confluence /rest/api/... -> /wiki/rest/api/...,
Jira /rest/api/2/... -> /rest/api/3/..., where the bodies checked here are not ADF-typed), and an API
path the documents lack is itself a violation; only requests outside the APIs (a wrong base URL, which
the fake answers with Atlassian's HTML 404) are not checked. State lives in memory; tests change it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "contracts" / "atlassian"
SPEC_HOST = "https://spec.test"
SPEC_FILES = {
    "confluence-v1": "confluence-cloud-v1.openapi.json",
    "confluence-v2": "confluence-cloud-v2.openapi.json",
    "jira-v3": "jira-cloud-platform-v3.openapi.json",
    "jsm": "jira-service-management-cloud.openapi.json",
}


@dataclass(frozen=True)
class Allowed:
    """A known deviation: the library (or Atlassian itself) does not match the published document."""

    operation: str  # regex on "METHOD /path"
    message: str  # regex on the violation text
    reason: str


ALLOWED = [
    Allowed(r"^POST /rest/api/[23]/issue/[^/]+/transitions$", r"transition/id: \d+ is not of type 'string'",
            "atlassian-python-api sends the transition id as a number; the document says string (NOTES.md)"),
    Allowed(r"^POST /rest/api/[23]/issue/[^/]+/transitions$", r"^status 204: MissingData",
            "the document gives 204 No Content a JSON body; Jira (and this fake) answer 204 with no body"),
    Allowed(r"^GET /rest/servicedeskapi/request/[^/]+/comment$", r"^query parameter (public|internal)='(True|False)'",
            "atlassian-python-api sends capitalised booleans public=True&internal=True (NOTES.md)"),
    Allowed(r"^GET /rest/api/[23]/search$", r"^undocumented status 410$",
            "Jira Cloud removed /rest/api/{2,3}/search and answers 410; the document still lists 200 only"),
    Allowed(r".", r"^status 4\d\d: .*mimetype not found: application/json\. Valid mimetypes: \[\]$",
            "the documents list most 4xx answers without a body; Atlassian sends a JSON error body with them"),
    Allowed(r"^GET /rest/api/space/[^/]+/permissions/anonymous$", r"PathNotFound",
            "Data Center only (REST API 'Space Permissions', Confluence 9.x); the Cloud v1 document lacks it and "
            "no DC document is public. Shape per developer.atlassian.com/server/confluence/rest/v1000: a list "
            "of {operation: {operationKey, targetType}, subject, spaceKey}"),
    Allowed(r"^(GET|POST) /rest/api/[23]/issue/[^/]+/comment$", r"'\d{4}-\d\d-\d\dT[\d:.]+\+0000' is not a 'date-time'",
            "Jira writes times as 2024-01-31T10:00:00.000+0000 (no colon in the offset), not RFC 3339 as declared"),
]

@dataclass
class Violation:
    operation: str
    direction: str  # "request" or "response"
    message: str

    def __str__(self) -> str:
        return f"{self.operation} ({self.direction}): {self.message}"


def _strip_security(node: Any) -> None:
    """Auth is checked by the fake itself: Data Center uses Bearer PATs the Cloud documents do not know."""
    if isinstance(node, dict):
        node.pop("security", None)
        for value in node.values():
            _strip_security(value)
    elif isinstance(node, list):
        for value in node:
            _strip_security(value)


def _fix_defaults(node: Any) -> None:
    """Repair two defects of Atlassian's documents that would fail every request omitting the parameter:
    an array whose string enum sits on the array itself (moved to its items), and defaults outside their
    own enum, such as '' (dropped)."""
    if isinstance(node, dict):
        items = node.get("items")
        if node.get("type") == "array" and "enum" in node and isinstance(items, dict) and "enum" not in items:
            items["enum"] = node.pop("enum")
        enum = node.get("enum") or (items.get("enum") if isinstance(items, dict) else None)
        if "default" in node and enum:
            values = node["default"] if isinstance(node["default"], list) else [node["default"]]
            if any(v not in enum for v in values):
                del node["default"]
        if isinstance(items, dict) and items.get("default") == "":
            del items["default"]
        for value in node.values():
            _fix_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _fix_defaults(value)


class Contracts:
    """Validates requests and responses against the OpenAPI documents, via openapi-core."""

    def __init__(self, folder: Path = SPEC_DIR) -> None:
        self.folder = folder
        self._apis: dict[str, Any] = {}
        self._specs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def available(self) -> bool:
        return all((self.folder / f).is_file() for f in SPEC_FILES.values())

    def _api(self, name: str) -> Any:
        with self._lock:
            if name not in self._apis:
                from openapi_core import Config, OpenAPI

                spec = json.loads((self.folder / SPEC_FILES[name]).read_text())
                spec["servers"] = [{"url": SPEC_HOST + ("/wiki/api/v2" if name == "confluence-v2" else "")}]
                _strip_security(spec)
                _fix_defaults(spec)
                self._apis[name] = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
                self._specs[name] = spec
            return self._apis[name]

    @staticmethod
    def locate(path: str, cloud: bool) -> tuple[str, str] | None:
        """(document, path in that document) for a path the fake serves; None: not an Atlassian API path."""
        if path.startswith("/rest/servicedeskapi/"):
            return "jsm", path
        m = re.match(r"^/rest/api/([23])(/.*)$", path)
        if m:  # Jira v2 has v3's operations with plain strings where v3 has ADF (SOURCE.md)
            return "jira-v3", "/rest/api/3" + m.group(2)
        if path.startswith("/wiki/api/v2/"):
            return "confluence-v2", path
        conf = path[len("/wiki"):] if cloud and path.startswith("/wiki/") else (None if cloud else path)
        if conf and conf.startswith("/rest/api/"):  # Data Center: checked against Cloud v1 (same shapes)
            return "confluence-v1", "/wiki" + conf
        return None

    def _operation(self, name: str, path: str, method: str) -> dict[str, Any]:
        self._api(name)
        for template, item in self._specs[name]["paths"].items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                return dict(item.get(method.lower()) or {})
        return {}

    def _strict_booleans(self, name: str, path: str, method: str, query: dict[str, str]) -> list[str]:
        """openapi-core casts 'True' to true; Atlassian documents say true/false, so check the raw text."""
        out = []
        for param in self._operation(name, path, method).get("parameters", []):
            if "$ref" in param or param.get("in") != "query" or param.get("name") not in query:
                continue
            if (param.get("schema") or {}).get("type") == "boolean" and query[param["name"]] not in ("true", "false"):
                out.append(f"query parameter {param['name']}={query[param['name']]!r} is not true/false")
        return out

    def check(self, operation: str, cloud: bool, request: dict[str, Any], status: int, body: bytes,
              content_type: str) -> list[Violation]:
        from openapi_core.testing import MockRequest, MockResponse

        method, path = operation.split(" ", 1)
        where = self.locate(path, cloud)
        if where is None:
            return []
        api = self._api(where[0])
        req = MockRequest(SPEC_HOST, method, where[1], args=request["query"], headers=request["headers"],
                          data=request["body"] or None, content_type=request["content_type"] or "application/json")
        out = [Violation(operation, "request", m) for m in self._strict_booleans(*where, method, request["query"])]
        try:
            api.validate_request(req)
        except Exception as exc:
            out += [Violation(operation, "request", m) for m in _describe(exc)]
        try:
            api.validate_response(req, MockResponse(body, status_code=status, content_type=content_type))
        except Exception as exc:
            if "ResponseNotFound" in type(exc).__name__:
                out.append(Violation(operation, "response", f"undocumented status {status}"))
            else:
                out += [Violation(operation, "response", f"status {status}: {m}") for m in _describe(exc)]
        return out


def _describe(exc: Exception) -> list[str]:
    """One message per schema error, so an allowed deviation never hides another error beside it."""
    found: list[str] = []
    cause: BaseException | None = exc
    while cause is not None:
        for e in getattr(cause, "schema_errors", None) or ():
            found.append(f"{type(exc).__name__}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:500])
        cause = cause.__cause__
    return found or [f"{type(exc).__name__}: {exc}"[:500]]


_SHARED: list[Contracts] = []


def shared_contracts() -> Contracts | None:
    """One checker per test session (the documents load once); None when ../shared is not there."""
    if not _SHARED:
        _SHARED.append(Contracts())
    return _SHARED[0] if _SHARED[0].available() else None


SKIP_REASON = (f"Atlassian OpenAPI documents not found in {SPEC_DIR} (../shared/contracts/atlassian beside the "
               "repository): contract checks cannot run")


@contextmanager
def running(cloud: bool, **kwargs: Any) -> Iterator[FakeAtlassian]:
    """A started fake; on a clean exit it fails the test if any contract violation is not allow-listed."""
    fake = FakeAtlassian(cloud, contracts=shared_contracts(), **kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
    bad = fake.unexpected_violations()
    assert not bad, "Atlassian contract violations:\n" + "\n".join(map(str, bad))


# --- state ------------------------------------------------------------------------------------------

def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def jira_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


@dataclass
class Page:
    id: str
    space: str
    title: str
    body: str
    parent: str | None = None
    labels: list[str] = field(default_factory=list)
    restricted_users: list[str] = field(default_factory=list)
    restricted_groups: list[str] = field(default_factory=list)
    version: int = 1
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Space:
    key: str
    name: str
    id: int
    anonymous_view: bool = False  # the "View" space permission granted to anonymous users
    permissions_visible: bool = True  # False: the account may not read the space's permissions

@dataclass
class Person:
    display_name: str
    email: str
    account_id: str


@dataclass
class Comment:
    id: str
    body: str
    author: Person
    public: bool = True  # JSM: False is an internal note
    visibility: dict[str, str] | None = None  # {"type": "role", "value": "Developers"}
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    description: str
    reporter: Person
    assignee: Person | None = None
    resolution: str | None = "Fixed"
    jsm: bool = False  # a Jira Service Management request (has the servicedeskapi view)
    organizations: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))


DEFAULT_PERSON = Person("Sam Agent", "sam.agent@vendor.example", "5b10ac8d82e05b22cc7d4ef5")
ORG_FIELD = "customfield_10002"  # JSM "Organizations"


class FakeAtlassian:
    """One fake site. `cloud=True`: Confluence at /wiki, Basic auth, v3 enhanced search, 410 on /search."""

    def __init__(self, cloud: bool, user: str = "bot@example.com", token: str = "tok-123",
                 contracts: Contracts | None = None) -> None:
        self.cloud = cloud
        self.user, self.token = user, token
        self.contracts = contracts
        self.spaces: dict[str, Space] = {}
        self.pages: dict[str, Page] = {}
        self.issues: dict[str, Issue] = {}
        self.service_desks: dict[str, str] = {"1": "SUP"}  # serviceDeskId -> project key
        self.unindexed: set[str] = set()  # page ids the (asynchronous) search index has not caught up with
        self.search_lag = 0.0  # seconds before JQL search sees a new issue (Jira indexes asynchronously)
        self.log: list[tuple[str, str, dict[str, str], int]] = []  # method, path, query, status
        self.violations: list[Violation] = []
        self.checked: set[str] = set()
        self.slow: tuple[float, str] | None = None  # seconds, path part: answer late (after doing the work)
        self.failure: tuple[int, str, int | None, str] | None = None  # status, path part, times left, query part
        self.lock = threading.RLock()
        self._ids = 1000
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread()
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])])
        self.api = Handlers(self)

    # -- test-facing state changes -------------------------------------------------------------------
    def next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def add_space(self, key: str, name: str | None = None, anonymous_view: bool = False) -> Space:
        with self.lock:
            space = Space(key, name or f"{key} space", int(self.next_id()), anonymous_view)
            self.spaces[key] = space
            return space

    def add_page(self, space: str, title: str, body: str, parent: str | None = None,
                 labels: list[str] | None = None, restricted_to: list[str] | None = None) -> str:
        with self.lock:
            page = Page(self.next_id(), space, title, body, parent, list(labels or []), list(restricted_to or []))
            self.pages[page.id] = page
            return page.id

    def update_page(self, page_id: str, body: str | None = None, title: str | None = None) -> None:
        with self.lock:
            page = self.pages[page_id]
            page.body = body if body is not None else page.body
            page.title = title if title is not None else page.title
            page.version += 1
            page.updated = datetime.now(UTC)

    def restrict_page(self, page_id: str, users: list[str] | None = None, groups: list[str] | None = None) -> None:
        """Like Confluence, changing restrictions does not make a new version or touch last-modified."""
        with self.lock:
            self.pages[page_id].restricted_users = list(users or [])
            self.pages[page_id].restricted_groups = list(groups or [])

    def move_page(self, page_id: str, space: str, parent: str | None = None) -> None:
        with self.lock:
            page = self.pages[page_id]
            page.space, page.parent = space, parent
            page.updated = datetime.now(UTC)

    def delete_page(self, page_id: str) -> None:
        with self.lock:
            del self.pages[page_id]
            for page in self.pages.values():  # Confluence moves children up to the grandparent
                if page.parent == page_id:
                    page.parent = None

    def add_issue(self, project: str, summary: str, description: str = "", *, reporter: Person | None = None,
                  assignee: Person | None = None, resolution: str | None = "Fixed", jsm: bool = False,
                  organizations: list[str] | None = None, labels: list[str] | None = None,
                  number: int | None = None) -> str:
        with self.lock:
            n = number or 1 + max((int(i.key.split("-")[1]) for i in self.issues.values() if i.project == project),
                                  default=0)
            issue = Issue(self.next_id(), f"{project}-{n}", project, summary, description,
                          reporter or DEFAULT_PERSON, assignee, resolution, jsm, list(organizations or []),
                          list(labels or []))
            self.issues[issue.key] = issue
            return issue.key

    def add_comment(self, key: str, body: str, *, public: bool = True, visibility: dict[str, str] | None = None,
                    author: Person | None = None) -> str:
        with self.lock:
            comment = Comment(self.next_id(), body, author or DEFAULT_PERSON, public, visibility)
            issue = self.issues[key]
            issue.comments.append(comment)
            issue.updated = datetime.now(UTC)
            return comment.id

    def update_issue(self, key: str, **changes: Any) -> None:
        with self.lock:
            issue = self.issues[key]
            for name, value in changes.items():
                setattr(issue, name, value)
            issue.updated = datetime.now(UTC)

    def fail(self, status: int, path: str = "", times: int | None = None, query: str = "") -> None:
        """Answer `status` to requests whose path contains `path` (all of them: "") and one of whose query
        values contains `query`, `times` times or forever."""
        self.failure = (status, path, times, query)

    def slow_down(self, seconds: float, path: str = "") -> None:
        """Do the work, then answer `seconds` late: a client with a shorter timeout never hears back."""
        self.slow = (seconds, path) if seconds > 0 else None

    def heal(self) -> None:
        self.failure = None

    # -- observations ----------------------------------------------------------------------------------
    def count(self, path_regex: str = "", method: str | None = None) -> int:
        return sum(1 for m, p, _q, _s in self.log if re.search(path_regex, p) and (method is None or m == method))

    def reset_log(self) -> None:
        self.log.clear()

    def unexpected_violations(self) -> list[Violation]:
        return [v for v in self.violations if not any(
            re.search(a.operation, v.operation) and re.search(a.message, v.message, re.S) for a in ALLOWED)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def confluence_url(self) -> str:
        return self.url + ("/wiki" if self.cloud else "")

    # -- HTTP --------------------------------------------------------------------------------------------
    def _authorised(self, header: str) -> bool:
        if self.cloud:
            expected = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {self.token}"

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        with self.lock:
            status, payload, headers, fault = self._answer(request.method, path, query, request.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            ctype = headers.pop("content-type", "application/json;charset=UTF-8")
            self.log.append((request.method, path, query, status))
        if self.slow is not None and self.slow[1] in path:
            await asyncio.sleep(self.slow[0])
        operation = f"{request.method} {path}"
        if self.contracts is not None and not fault:
            req = {"query": query, "headers": dict(request.headers), "body": body,
                   "content_type": request.headers.get("content-type", "")}
            try:
                found = self.contracts.check(operation, self.cloud, req, status, data, ctype.split(";")[0])
            except Exception as exc:  # a checker bug must fail the test, not the request
                found = [Violation(operation, "checker", f"{type(exc).__name__}: {exc}")]
            self.checked.add(operation)
            with self.lock:
                self.violations.extend(found)
        return Response(data, status_code=status, headers=headers, media_type=ctype)

    def _answer(self, method: str, path: str, query: dict[str, str], headers: Any,
                body: bytes) -> tuple[int, Any, dict[str, str], bool]:
        if self.failure is not None and self.failure[1] in path and (
                not self.failure[3] or any(self.failure[3] in v for v in query.values())):
            status, frag, times, part = self.failure
            if times is not None:
                self.failure = (status, frag, times - 1, part) if times > 1 else None
            error = {"statusCode": status, "message": "Injected failure", "errorMessages": ["Injected failure"]}
            return status, error, {}, True
        if self.cloud and re.fullmatch(r"/rest/api/[23]/search", path):
            # Removed at Atlassian's edge: answered whatever the credentials (a Data Center client sends Bearer).
            status, result, extra = self.api.search(v=path[10], query=query)
            return status, result, extra, False
        if not self._authorised(headers.get("authorization", "")):
            seraph = {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
            if path.startswith("/rest/servicedeskapi/"):
                return 401, {"errorMessage": "You are not authenticated.",
                             "i18nErrorMessage": {"i18nKey": "sd.auth.required", "parameters": []}}, seraph, False
            if path.startswith(("/wiki/", "/rest/api/content", "/rest/api/space", "/rest/api/search")):
                return 401, {"statusCode": 401, "message": "This request requires authentication",
                             "data": {"authorized": False, "valid": True, "errors": [], "successful": False}}, \
                    seraph, False
            return 401, {"errorMessages": ["You are not authenticated. Authentication required to perform this "
                                           "operation."], "errors": {}}, seraph, False
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, {"errorMessages": ["Unexpected character in JSON body"], "errors": {}}, {}, False
        status, result, extra = self.api.route(method, path, query, payload, headers)
        return status, result, extra, False

    def start(self, port: int = 0) -> FakeAtlassian:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server.started and self._server.servers):
            if time.monotonic() > deadline:
                raise RuntimeError("fake Atlassian did not start")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Also the 'down' mode: connections are refused until start(self.port) again."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None


# --- the REST API ---------------------------------------------------------------------------------------

Answer = tuple[int, Any, dict[str, str]]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(token: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _when(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)  # the fake's users all live in UTC
        except ValueError:
            pass
    return None


def _values(text: str) -> list[str]:
    return [a or b for a, b in re.findall(r'"([^"]*)"|([\w.~-]+)', text)]


_COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
}


def _changed(item: Page | Issue, op: Callable[[datetime, datetime], bool], when: datetime) -> bool:
    return op(item.updated.replace(second=0, microsecond=0), when)  # CQL and JQL compare whole minutes


def _clauses(query: str) -> list[str]:
    text = re.split(r"\border\s+by\b", query, flags=re.I)[0]
    return [c.strip().strip("()").strip() for c in re.split(r"\s+and\s+", text.strip(), flags=re.I) if c.strip()]


def _summary_error(summary: Any) -> str | None:
    """Jira's own rules for a summary (Cloud and Data Center), with its own words."""
    if not isinstance(summary, str) or not summary.strip():
        return "You must specify a summary of the issue."
    if "\n" in summary or "\r" in summary:
        return "The summary is invalid because it contains newline characters."
    if len(summary) > 255:
        return "Summary must be less than 255 characters."
    return None


def _not_found_html() -> Answer:
    return 404, b"<html><body><h1>Oops, you've found a dead link.</h1></body></html>", {"content-type": "text/html"}


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text (blank-line paragraphs, ``` fences) as an Atlassian Document Format document."""
    content: list[dict[str, Any]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if not block.strip():
            continue
        if block.startswith("```"):
            code = block.strip("`").split("\n", 1)[-1]
            content.append({"type": "codeBlock", "content": [{"type": "text", "text": code}]})
        else:
            lines = block.split("\n")
            inline: list[dict[str, Any]] = []
            for n, line in enumerate(lines):
                if n:
                    inline.append({"type": "hardBreak"})
                inline.append({"type": "text", "text": line})
            content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def adf_to_text(node: Any) -> str:
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(adf_to_text(c) for c in node.get("content", []))
    return inner + ("\n\n" if node.get("type") in ("paragraph", "codeBlock") else "")


class Handlers:
    """Routes and answers; called with the fake's lock held."""

    def __init__(self, fake: FakeAtlassian) -> None:
        self.f = fake

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> Answer:
        f = self.f
        ctx = "/wiki" if f.cloud else ""
        routes: list[tuple[str, str, Callable[..., Answer]]] = [
            ("GET", ctx + r"/rest/api/space", self.spaces),
            ("GET", ctx + r"/rest/api/space/(?P<key>[^/]+)", self.space),
            *([] if f.cloud else [("GET", r"/rest/api/space/(?P<key>[^/]+)/permissions/anonymous",
                                   self.anonymous_permissions)]),
            ("GET", ctx + r"/rest/api/content", self.content_list),
            ("GET", ctx + r"/rest/api/content/(?P<page_id>\d+)", self.content),
            ("GET", ctx + r"/rest/api/content/(?P<page_id>\d+)/restriction/byOperation", self.restrictions),
            ("GET", ctx + r"/rest/api/search", self.cql_search),
            ("GET", r"/rest/api/(?P<v>[23])/search", self.search),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)", self.issue),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/comment", self.comments),
            ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/comment", self.add_comment),
            ("POST", r"/rest/api/(?P<v>[23])/issue", self.create_issue),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/transitions", self.transitions),
            ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/transitions", self.transition),
            ("GET", r"/rest/api/(?P<v>[23])/myself", self.myself),
            ("GET", r"/rest/api/(?P<v>[23])/field", self.fields),
            ("POST", r"/rest/servicedeskapi/request", self.jsm_create),
            ("GET", r"/rest/servicedeskapi/request", self.jsm_list),
            ("GET", r"/rest/servicedeskapi/request/(?P<key>[^/]+)", self.jsm_request),
            ("GET", r"/rest/servicedeskapi/request/(?P<key>[^/]+)/comment", self.jsm_comments),
            ("POST", r"/rest/servicedeskapi/request/(?P<key>[^/]+)/comment", self.jsm_add_comment),
        ]
        if f.cloud:
            routes += [
                ("GET", r"/wiki/api/v2/pages", self.v2_pages),
                ("GET", r"/wiki/api/v2/spaces", self.v2_spaces),
                ("GET", r"/rest/api/3/search/jql", self.enhanced_search),
            ]
        allowed = []
        for verb, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m:
                if verb == method:
                    return handler(query=query, body=body, **m.groupdict())
                allowed.append(verb)
        if allowed:
            return 405, {"errorMessages": [f"Method {method} not allowed"], "errors": {}}, {}
        return _not_found_html()

    # -- Confluence v1 -------------------------------------------------------------------------------------
    def _links(self) -> dict[str, str]:
        return {"base": self.f.confluence_url, "context": "/wiki" if self.f.cloud else ""}

    def _user(self, person: Person) -> dict[str, Any]:
        if self.f.cloud:
            return {"type": "known", "accountId": person.account_id, "accountType": "atlassian",
                    "email": person.email, "publicName": person.display_name, "displayName": person.display_name}
        return {"type": "known", "username": person.email.split("@")[0], "userKey": person.account_id,
                "displayName": person.display_name}

    def _space_json(self, space: Space) -> dict[str, Any]:
        return {"id": space.id, "key": space.key, "name": space.name, "type": "global", "status": "current",
                "_expandable": {"homepage": "", "description": "", "permissions": ""},
                "_links": {"webui": f"/spaces/{space.key}" if self.f.cloud else f"/display/{space.key}",
                           "self": f"{self.f.confluence_url}/rest/api/space/{space.key}"}}

    def _webui(self, page: Page) -> str:
        if self.f.cloud:
            return f"/spaces/{page.space}/pages/{page.id}/{re.sub(r'[^A-Za-z0-9]+', '+', page.title).strip('+')}"
        return f"/pages/viewpage.action?pageId={page.id}"

    def _ancestors(self, page: Page) -> list[Page]:
        chain, parent = [], page.parent
        while parent and parent in self.f.pages:
            chain.append(self.f.pages[parent])
            parent = self.f.pages[parent].parent
        return list(reversed(chain))

    def _page_json(self, page: Page, expand: set[str]) -> dict[str, Any]:
        def wants(name: str) -> bool:
            return any(e == name or e.startswith(name + ".") for e in expand)

        out: dict[str, Any] = {
            "id": page.id, "type": "page", "status": "current", "title": page.title,
            "_links": {"webui": self._webui(page), "tinyui": f"/x/{page.id}",
                       "self": f"{self.f.confluence_url}/rest/api/content/{page.id}"},
            "_expandable": {k: "" for k in ("version", "ancestors", "space", "body", "metadata", "restrictions")
                            if not wants(k)},
        }
        if wants("version"):
            out["version"] = {"number": page.version, "when": iso(page.updated), "minorEdit": False,
                              "by": self._user(DEFAULT_PERSON), "_links": {}, "_expandable": {}}
        if wants("ancestors"):
            out["ancestors"] = [self._page_json(a, set()) for a in self._ancestors(page)]
        if wants("space"):
            out["space"] = self._space_json(self.f.spaces[page.space])
        if "body.storage" in expand:
            out["body"] = {"storage": {"value": page.body, "representation": "storage", "_expandable": {}},
                           "_expandable": {"view": ""}}
        if wants("metadata"):
            labels = [{"prefix": "global", "name": n, "id": str(1000 + i), "label": n}
                      for i, n in enumerate(page.labels)]
            out["metadata"] = {"labels": {"results": labels, "start": 0, "limit": 200, "size": len(labels),
                                          "_links": {}}, "_expandable": {}}
        if wants("restrictions"):
            out["restrictions"] = {"read": self._restriction(page, "read"), "_expandable": {"update": ""},
                                   "_links": {}}
        return out

    def _restriction(self, page: Page, operation: str) -> dict[str, Any]:
        users = [self._user(Person(u, f"{u}@example.com", f"acc-{u}")) for u in page.restricted_users]
        groups = [{"type": "group", "name": g} for g in page.restricted_groups]
        return {"operation": operation, "_expandable": {"content": ""}, "_links": {},
                "restrictions": {"user": {"results": users, "start": 0, "limit": 200, "size": len(users)},
                                 "group": {"results": groups, "start": 0, "limit": 200, "size": len(groups)}}}

    @staticmethod
    def _page_window(query: dict[str, str], default: int, cap: int) -> tuple[int, int]:
        try:
            start, limit = int(query.get("start", 0)), int(query.get("limit", default))
        except ValueError:
            start, limit = 0, default
        return max(start, 0), max(1, min(limit, cap))  # Atlassian silently caps the page size

    def spaces(self, query: dict[str, str], **_: Any) -> Answer:
        start, limit = self._page_window(query, 25, 100)
        items = sorted(self.f.spaces.values(), key=lambda s: s.key)[start:start + limit]
        return 200, {"results": [self._space_json(s) for s in items], "start": start, "limit": limit,
                     "size": len(items), "_links": self._links()}, {}

    @staticmethod
    def _no_space(key: str) -> Answer:
        return 404, {"statusCode": 404, "data": {"authorized": False, "valid": True, "errors": [],
                                                 "successful": False},
                     "message": f"No space with key : {key}", "reason": "Not Found"}, {}

    def space(self, key: str, query: dict[str, str], **_: Any) -> Answer:
        if key not in self.f.spaces:
            return self._no_space(key)
        space = self.f.spaces[key]
        out = self._space_json(space)
        if "permissions" in query.get("expand", "").split(","):
            if space.permissions_visible:  # Cloud v1: SpacePermission, anonymous access is a flag on it
                out["permissions"] = self._space_permissions(space)
            out["_expandable"] = {k: v for k, v in out["_expandable"].items() if k != "permissions"}
        return 200, out, {}

    @staticmethod
    def _space_permissions(space: Space) -> list[dict[str, Any]]:
        def grant(n: int, operation: str, anonymous: bool) -> dict[str, Any]:
            subjects = {"_expandable": {"user": ""}} if anonymous else {
                "group": {"results": [{"type": "group", "name": "confluence-users"}], "size": 1},
                "_expandable": {"user": ""}}
            return {"id": space.id * 10 + n, "subjects": subjects,
                    "operation": {"operation": operation, "targetType": "space"},
                    "anonymousAccess": anonymous, "unlicensedAccess": False}

        grants = [grant(0, "read", False), grant(1, "export", False)]
        return grants + ([grant(2, "read", True)] if space.anonymous_view else [])

    def anonymous_permissions(self, key: str, **_: Any) -> Answer:
        """Data Center's GET /rest/api/space/{key}/permissions/anonymous; it needs space admin rights."""
        if key not in self.f.spaces:
            return self._no_space(key)
        space = self.f.spaces[key]
        if not space.permissions_visible:
            return 403, {"statusCode": 403, "message": "Could not find permission for current user",
                         "reason": "Forbidden"}, {}
        subject = {"type": "anonymous", "displayName": "Anonymous"}
        return 200, [{"operation": {"targetType": "space", "operationKey": op}, "subject": subject, "spaceKey": key}
                     for op in (("read", "export") if space.anonymous_view else ())], {}

    def content_list(self, query: dict[str, str], **_: Any) -> Answer:
        expand = {e for e in query.get("expand", "").split(",") if e}
        # With bodies Confluence serves far fewer results per page than asked for.
        start, limit = self._page_window(query, 25, 25 if any(e.startswith("body") for e in expand) else 100)
        pages = sorted((p for p in self.f.pages.values()
                        if p.space == query.get("spaceKey", p.space) and query.get("type", "page") == "page"),
                       key=lambda p: int(p.id))
        window = pages[start:start + limit]
        links = {**self._links(), "self": f"{self.f.confluence_url}/rest/api/content"}
        if start + limit < len(pages):  # relative to _links.base, exactly as Atlassian returns it
            links["next"] = "/rest/api/content?" + urlencode({**query, "start": start + limit, "limit": limit})
        return 200, {"results": [self._page_json(p, expand) for p in window], "start": start, "limit": limit,
                     "size": len(window), "_links": links}, {}

    def content(self, page_id: str, query: dict[str, str], **_: Any) -> Answer:
        page = self.f.pages.get(page_id)
        if page is None:
            return 404, {"statusCode": 404, "data": {"authorized": False, "valid": True, "errors": [],
                                                     "successful": False},
                         "message": f"No content found with id : ContentId{{id={page_id}}}", "reason": "Not Found"}, {}
        expand = {e for e in query.get("expand", "history,space,version").split(",") if e}
        return 200, self._page_json(page, expand), {}

    def restrictions(self, page_id: str, **_: Any) -> Answer:
        page = self.f.pages.get(page_id)
        if page is None:
            return 404, {"statusCode": 404, "message": f"No content found with id : {page_id}"}, {}
        update = self._restriction(page, "update")
        update["restrictions"] = {"user": {"results": [], "start": 0, "limit": 200, "size": 0},
                                  "group": {"results": [], "start": 0, "limit": 200, "size": 0}}
        return 200, {"read": self._restriction(page, "read"), "update": update}, {}

    def _cql_filter(self, cql: str) -> Callable[[Page], bool] | str:
        tests: list[Callable[[Page], bool]] = []
        for clause in _clauses(cql):
            m = re.fullmatch(r"(space|space\.key)\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                keys = set(_values(m.group(3)))
                tests.append(lambda p, keys=keys: p.space in keys)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"type\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                types = set(_values(m.group(2)))
                tests.append(lambda p, types=types: "page" in types)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"id\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                ids = set(_values(m.group(2)))
                tests.append(lambda p, ids=ids: p.id in ids)  # type: ignore[misc]
                continue
            m = re.fullmatch(r'lastmodified\s*(>=|>|<=|<)\s*"([^"]+)"', clause, re.I)
            when = _when(m.group(2)) if m else None
            if m and when is not None:
                tests.append(partial(_changed, op=_COMPARE[m.group(1)], when=when))
                continue
            return f"Could not parse cql : {cql}"
        return lambda p: all(t(p) for t in tests)

    def cql_search(self, query: dict[str, str], **_: Any) -> Answer:
        cql = query.get("cql", "")
        match = self._cql_filter(cql)
        if isinstance(match, str):
            return 400, {"statusCode": 400, "data": {"authorized": True, "valid": False, "errors": [],
                                                     "successful": False}, "message": match}, {}
        expand = {e[len("content."):] for e in query.get("expand", "").split(",") if e.startswith("content.")}
        cursor = _unb64(query["cursor"]) if query.get("cursor") else None
        start = int(cursor["start"]) if cursor else int(query.get("start", 0))
        _start, limit = self._page_window(query, 25, 25 if any(e.startswith("body") for e in expand) else 100)
        found = sorted((p for p in self.f.pages.values() if match(p) and p.id not in self.f.unindexed),
                       key=lambda p: int(p.id))
        window = found[start:start + limit]
        results = [{
            "content": self._page_json(p, expand), "title": p.title, "excerpt": "", "url": self._webui(p),
            "resultGlobalContainer": {"title": self.f.spaces[p.space].name, "displayUrl": f"/spaces/{p.space}"},
            "breadcrumbs": [], "entityType": "content", "iconCssClass": "aui-icon content-type-page",
            "lastModified": iso(p.updated), "friendlyLastModified": "just now", "score": 1.0,
        } for p in window]
        links = {**self._links(), "self": f"{self.f.confluence_url}/rest/api/search"}
        if start + limit < len(found):
            rest = {k: v for k, v in query.items() if k not in ("cursor", "start", "next")}
            if self.f.cloud:  # Cloud pages search results with an opaque cursor
                links["next"] = "/rest/api/search?" + urlencode(
                    {"next": "true", "cursor": _b64({"start": start + limit}), **rest, "limit": limit})
            else:
                links["next"] = "/rest/api/search?" + urlencode({**rest, "start": start + limit, "limit": limit})
        return 200, {"results": results, "start": start, "limit": limit, "size": len(window),
                     "totalSize": len(found), "cqlQuery": cql, "searchDuration": 3, "_links": links}, {}

    # -- Confluence v2 (Cloud only) ------------------------------------------------------------------------
    def v2_spaces(self, query: dict[str, str], **_: Any) -> Answer:
        keys = set(query.get("keys", "").split(",")) - {""}
        found = [s for s in self.f.spaces.values() if not keys or s.key in keys]
        return 200, {"results": [{"id": str(s.id), "key": s.key, "name": s.name, "type": "global",
                                  "status": "current", "authorId": DEFAULT_PERSON.account_id,
                                  "createdAt": iso(datetime(2024, 1, 1, tzinfo=UTC)), "homepageId": "1",
                                  "_links": {"webui": f"/spaces/{s.key}"}} for s in found],
                     "_links": {"base": self.f.confluence_url}}, {}

    def v2_pages(self, query: dict[str, str], **_: Any) -> Answer:
        space_ids = {int(x) for x in query.get("space-id", "").split(",") if x.isdigit()}
        keys = {s.key for s in self.f.spaces.values() if s.id in space_ids}
        pages = sorted((p for p in self.f.pages.values() if not space_ids or p.space in keys), key=lambda p: int(p.id))
        cursor = _unb64(query["cursor"]) if query.get("cursor") else None
        start = int(cursor["start"]) if cursor else 0
        limit = max(1, min(int(query.get("limit", 25)), 250))
        window = pages[start:start + limit]
        fmt = query.get("body-format", "")
        results = []
        for p in window:
            item: dict[str, Any] = {
                "id": p.id, "status": "current", "title": p.title, "spaceId": str(self.f.spaces[p.space].id),
                "parentId": p.parent or "", "parentType": "page", "authorId": DEFAULT_PERSON.account_id,
                "createdAt": iso(p.updated),
                "version": {"number": p.version, "createdAt": iso(p.updated), "minorEdit": False, "message": "",
                            "authorId": DEFAULT_PERSON.account_id},
                "body": {"storage": {"representation": "storage", "value": p.body}} if fmt == "storage" else {},
                "_links": {"webui": self._webui(p), "tinyui": f"/x/{p.id}"},
            }
            results.append(item)
        links: dict[str, str] = {"base": self.f.confluence_url}
        headers: dict[str, str] = {}
        if start + limit < len(pages):  # the next link repeats every filter, starting with /wiki
            nxt = "/wiki/api/v2/pages?" + urlencode({**{k: v for k, v in query.items() if k != "cursor"},
                                                     "cursor": _b64({"start": start + limit})})
            links["next"] = nxt
            headers["Link"] = f'<{nxt}>; rel="next", <{self.f.confluence_url}>; rel="base"'
        return 200, {"results": results, "_links": links}, headers

    # -- Jira platform --------------------------------------------------------------------------------------
    def _jira_user(self, person: Person | None) -> dict[str, Any] | None:
        if person is None:
            return None
        out: dict[str, Any] = {"displayName": person.display_name, "emailAddress": person.email, "active": True,
                               "self": f"{self.f.url}/rest/api/2/user?accountId={person.account_id}"}
        if self.f.cloud:
            out.update(accountId=person.account_id, accountType="atlassian", timeZone="UTC")
        else:
            out.update(name=person.email.split("@")[0], key=person.account_id)
        return out

    def _comment_json(self, issue: Issue, c: Comment, v3: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id, "self": f"{self.f.url}/rest/api/{3 if v3 else 2}/issue/{issue.id}/comment/{c.id}",
            "author": self._jira_user(c.author), "updateAuthor": self._jira_user(c.author),
            "body": text_to_adf(c.body) if v3 else c.body, "created": jira_time(c.created),
            "updated": jira_time(c.created),
        }
        if self.f.cloud:  # Cloud marks every comment; Data Center keeps this in a JSM-only property
            out["jsdPublic"] = c.public
        if c.visibility:
            out["visibility"] = dict(c.visibility)
        return out

    def _issue_json(self, issue: Issue, fields: str, v3: bool, expand: str = "") -> dict[str, Any]:
        wanted = {f.strip() for f in fields.split(",") if f.strip()} or {"*all"}
        done = issue.resolution is not None
        comments = [self._comment_json(issue, c, v3) for c in issue.comments]
        every: dict[str, Any] = {
            "summary": issue.summary,
            "description": (text_to_adf(issue.description) if v3 else issue.description) or None,
            "status": {"name": "Done" if done else "Open",
                       "statusCategory": {"key": "done" if done else "new", "name": "Done" if done else "To Do"}},
            "resolution": {"name": issue.resolution} if done else None,
            "resolutiondate": jira_time(issue.updated) if done else None,
            "created": jira_time(issue.created), "updated": jira_time(issue.updated),
            "project": {"key": issue.project, "name": f"{issue.project} project", "id": "10000"},
            "issuetype": {"name": "Service Request" if issue.jsm else "Bug"},
            "reporter": self._jira_user(issue.reporter), "assignee": self._jira_user(issue.assignee),
            "labels": list(issue.labels),
            "comment": {"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0},
            ORG_FIELD: [{"id": str(i + 1), "name": n} for i, n in enumerate(issue.organizations)] or None,
        }
        if "*all" in wanted or "*navigable" in wanted:
            chosen = every
        else:
            chosen = {k: v for k, v in every.items() if k in wanted}
        out: dict[str, Any] = {"expand": "renderedFields,names,schema", "id": issue.id, "key": issue.key,
                               "self": f"{self.f.url}/rest/api/{3 if v3 else 2}/issue/{issue.id}", "fields": chosen}
        if "names" in expand:
            out["names"] = self._names()
        return out

    @staticmethod
    def _names() -> dict[str, str]:
        return {"summary": "Summary", "description": "Description", "comment": "Comment", "updated": "Updated",
                "resolution": "Resolution", "reporter": "Reporter", "assignee": "Assignee", "labels": "Labels",
                "project": "Project", ORG_FIELD: "Organizations"}

    def _projects(self) -> set[str]:
        return {i.project for i in self.f.issues.values()} | set(self.f.service_desks.values())

    def _jql_filter(self, jql: str) -> Callable[[Issue], bool] | str:
        tests: list[Callable[[Issue], bool]] = []
        for clause in _clauses(jql):
            m = re.fullmatch(r"project\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                keys = set(_values(m.group(2)))
                unknown = sorted(keys - self._projects())
                if unknown:
                    return f"The value '{unknown[0]}' does not exist for the field 'project'."
                tests.append(lambda i, keys=keys: i.project in keys)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"(resolution|resolved)\s*(is not|!=|is|=)\s*empty", clause, re.I)
            if m:
                want_set = m.group(2).lower() in ("is not", "!=")
                tests.append(lambda i, w=want_set: (i.resolution is not None) == w)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"statusCategory\s*(=|!=)\s*\"?done\"?", clause, re.I)
            if m:
                eq = m.group(1) == "="
                tests.append(lambda i, eq=eq: (i.resolution is not None) == eq)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"(key|issuekey)\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                keys = set(_values(m.group(3)))
                tests.append(lambda i, keys=keys: i.key in keys)  # type: ignore[misc]
                continue
            m = re.fullmatch(r"labels\s*(=|in)\s*(.+)", clause, re.I)
            if m:
                wanted = set(_values(m.group(2)))
                tests.append(lambda i, wanted=wanted: bool(wanted & set(i.labels)))  # type: ignore[misc]
                continue
            m = re.fullmatch(r'updated\s*(>=|>|<=|<)\s*"([^"]+)"', clause, re.I)
            when = _when(m.group(2)) if m else None
            if m and when is not None:
                tests.append(partial(_changed, op=_COMPARE[m.group(1)], when=when))
                continue
            return f"Error in the JQL Query: unsupported clause '{clause}'"
        return lambda i: all(t(i) for t in tests)

    def _jql(self, jql: str) -> list[Issue] | Answer:
        match = self._jql_filter(jql)
        if isinstance(match, str):
            return 400, {"errorMessages": [match], "errors": {}}, {}
        indexed = datetime.now(UTC) - timedelta(seconds=self.f.search_lag)
        return [i for i in self.f.issues.values() if match(i) and i.created <= indexed]

    def search(self, v: str, query: dict[str, str], **_: Any) -> Answer:
        if self.f.cloud:
            return 410, {"errorMessages": [
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
                "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"],
                "errors": {}}, {}
        found = self._jql(query.get("jql", ""))
        if isinstance(found, tuple):
            return found
        start, limit = int(query.get("startAt", 0)), max(1, min(int(query.get("maxResults", 50)), 100))
        window = found[start:start + limit]
        out: dict[str, Any] = {"expand": "schema,names", "startAt": start, "maxResults": limit, "total": len(found),
                               "issues": [self._issue_json(i, query.get("fields", "*navigable"), v == "3")
                                          for i in window]}
        if "names" in query.get("expand", ""):
            out["names"] = self._names()
        return 200, out, {}

    def enhanced_search(self, query: dict[str, str], **_: Any) -> Answer:
        jql = query.get("jql", "")
        found = self._jql(jql)
        if isinstance(found, tuple):
            return found
        token: dict[str, Any] | None = (_unb64(query["nextPageToken"]) if query.get("nextPageToken")
                                        else {"start": 0, "jql": jql})
        if token is None or token.get("jql") != jql:
            return 400, {"errorMessages": ["The provided next page token is invalid or expired."], "errors": {}}, {}
        start, limit = int(token["start"]), max(1, min(int(query.get("maxResults", 50)), 100))
        window = found[start:start + limit]
        out: dict[str, Any] = {"issues": [self._issue_json(i, query.get("fields", "id"), True) for i in window],
                               "isLast": start + limit >= len(found)}
        if not out["isLast"]:  # no total on Cloud: only a token, absent on the last page
            out["nextPageToken"] = _b64({"start": start + limit, "jql": jql})
        if "names" in query.get("expand", ""):
            out["names"] = self._names()
        return 200, out, {}

    def _issue_or_404(self, key: str) -> Issue | Answer:
        issue = self.f.issues.get(key) or next((i for i in self.f.issues.values() if i.id == key), None)
        if issue is None:
            return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                         "errors": {}}, {}
        return issue

    def issue(self, v: str, key: str, query: dict[str, str], **_: Any) -> Answer:
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        return 200, self._issue_json(issue, query.get("fields", "*all"), v == "3", query.get("expand", "")), {}

    def comments(self, v: str, key: str, query: dict[str, str], **_: Any) -> Answer:
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        start, limit = int(query.get("startAt", 0)), max(1, min(int(query.get("maxResults", 100)), 100))
        window = issue.comments[start:start + limit]
        return 200, {"startAt": start, "maxResults": limit, "total": len(issue.comments),
                     "comments": [self._comment_json(issue, c, v == "3") for c in window]}, {}

    def add_comment(self, v: str, key: str, body: Any, **_: Any) -> Answer:
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        text = (body or {}).get("body")
        if v == "3" and not isinstance(text, dict):
            return 400, {"errorMessages": ["Comment body is not valid!"], "errors": {}}, {}
        comment = Comment(self.f.next_id(), adf_to_text(text).strip(), DEFAULT_PERSON,
                          visibility=(body or {}).get("visibility"))
        issue.comments.append(comment)
        issue.updated = datetime.now(UTC)
        return 201, self._comment_json(issue, comment, v == "3"), {}

    def create_issue(self, v: str, body: Any, **_: Any) -> Answer:
        fields = (body or {}).get("fields") or {}
        project = (fields.get("project") or {}).get("key")
        errors = {}
        if project not in self._projects():
            errors["project"] = "Specify a valid project ID or key"
        summary_error = _summary_error(fields.get("summary"))
        if summary_error:
            errors["summary"] = summary_error
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        key = self.f.add_issue(str(project), fields["summary"], adf_to_text(fields.get("description") or "").strip(),
                               resolution=None, labels=fields.get("labels"))
        issue = self.f.issues[key]
        return 201, {"id": issue.id, "key": key, "self": f"{self.f.url}/rest/api/{v}/issue/{issue.id}"}, {}

    _TRANSITIONS = {"11": ("Reopen", None), "31": ("Done", "Done")}

    def transitions(self, key: str, **_: Any) -> Answer:
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        return 200, {"expand": "transitions", "transitions": [
            {"id": tid, "name": name, "hasScreen": False, "isAvailable": True,
             "to": {"name": "Done" if res else "Open", "id": tid,
                    "statusCategory": {"key": "done" if res else "new", "name": "Done" if res else "To Do"}}}
            for tid, (name, res) in self._TRANSITIONS.items()]}, {}

    def transition(self, key: str, body: Any, **_: Any) -> Answer:
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        tid = str(((body or {}).get("transition") or {}).get("id", ""))
        if tid not in self._TRANSITIONS:
            return 400, {"errorMessages": [f"Transition id '{tid}' is not valid for this issue."], "errors": {}}, {}
        issue.resolution = self._TRANSITIONS[tid][1]
        issue.updated = datetime.now(UTC)
        return 204, b"", {}

    def fields(self, **_: Any) -> Answer:
        out = []
        for fid, name in self._names().items():
            custom = fid.startswith("customfield_")
            schema: dict[str, Any] = {"type": "array", "items": "sd-customerorganization",
                                      "custom": "com.atlassian.servicedesk:sd-customer-organizations",
                                      "customId": int(fid.split("_")[1])} if custom else {"type": "string",
                                                                                           "system": fid}
            out.append({"id": fid, "key": fid, "name": name, "custom": custom, "orderable": True, "navigable": True,
                        "searchable": True, "clauseNames": [fid], "schema": schema})
        return 200, out, {}

    def myself(self, **_: Any) -> Answer:
        return 200, self._jira_user(Person("Sync Bot", self.f.user, "bot-account")), {}

    # -- Jira Service Management ----------------------------------------------------------------------------
    @staticmethod
    def _date(dt: datetime) -> dict[str, Any]:
        return {"iso8601": dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"), "jira": jira_time(dt),
                "friendly": "Today", "epochMillis": int(dt.timestamp() * 1000)}

    def _sd_user(self, person: Person) -> dict[str, Any]:
        out: dict[str, Any] = {"displayName": person.display_name, "emailAddress": person.email, "active": True,
                               "timeZone": "UTC", "_links": {"self": f"{self.f.url}/rest/api/2/user"}}
        if self.f.cloud:
            out["accountId"] = person.account_id
        else:
            out.update(key=person.account_id, name=person.email.split("@")[0])
        return out

    def _request_json(self, issue: Issue) -> dict[str, Any]:
        desk = next((d for d, p in self.f.service_desks.items() if p == issue.project), "1")
        return {
            "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action",
                         "comment"],
            "issueId": issue.id, "issueKey": issue.key, "requestTypeId": "10", "serviceDeskId": desk,
            "summary": issue.summary, "createdDate": self._date(issue.created),
            "reporter": self._sd_user(issue.reporter),
            "requestFieldValues": [{"fieldId": "summary", "label": "Summary", "value": issue.summary},
                                   {"fieldId": "description", "label": "Description", "value": issue.description}],
            "currentStatus": {"status": "Resolved" if issue.resolution else "Waiting for support",
                              "statusCategory": "DONE" if issue.resolution else "NEW",
                              "statusDate": self._date(issue.updated)},
            "_links": {"web": f"{self.f.url}/servicedesk/customer/portal/{desk}/{issue.key}",
                       "self": f"{self.f.url}/rest/servicedeskapi/request/{issue.id}",
                       "jiraRest": f"{self.f.url}/rest/api/2/issue/{issue.id}",
                       "agent": f"{self.f.url}/browse/{issue.key}"},
        }

    def _request_or_404(self, key: str) -> Issue | Answer:
        issue = self.f.issues.get(key) or next((i for i in self.f.issues.values() if i.id == key), None)
        if issue is None or not issue.jsm:
            return 404, {"errorMessage": "The customer request does not exist or you do not have permission to see "
                                         "it.", "i18nErrorMessage": {"i18nKey": "sd.request.error.notfound",
                                                                     "parameters": []}}, {}
        return issue

    def jsm_create(self, body: Any, **_: Any) -> Answer:
        body = body or {}
        project = self.f.service_desks.get(str(body.get("serviceDeskId")))
        values = body.get("requestFieldValues") or {}
        summary_error = _summary_error(values.get("summary"))
        if project is None or summary_error:
            return 400, {"errorMessage": summary_error or "The service desk does not exist.",
                         "i18nErrorMessage": {"i18nKey": "sd.request.create.error", "parameters": []}}, {}
        reporter = DEFAULT_PERSON
        if body.get("raiseOnBehalfOf"):
            email = str(body["raiseOnBehalfOf"])
            reporter = Person(email.split("@")[0].replace(".", " ").title(), email, f"qm:{email}")
        key = self.f.add_issue(project, values["summary"], str(values.get("description", "")), reporter=reporter,
                               resolution=None, jsm=True, labels=values.get("labels"))  # a field of the request type
        return 201, self._request_json(self.f.issues[key]), {}

    def jsm_list(self, query: dict[str, str], **_: Any) -> Answer:
        found = [i for i in self.f.issues.values() if i.jsm]
        start, limit = int(query.get("start", 0)), max(1, min(int(query.get("limit", 50)), 100))
        window = found[start:start + limit]
        return 200, {"_expands": [], "size": len(window), "start": start, "limit": limit,
                     "isLastPage": start + limit >= len(found), "values": [self._request_json(i) for i in window],
                     "_links": {"base": self.f.url, "context": ""}}, {}

    def jsm_request(self, key: str, **_: Any) -> Answer:
        issue = self._request_or_404(key)
        return issue if isinstance(issue, tuple) else (200, self._request_json(issue), {})

    def _sd_comment(self, issue: Issue, c: Comment) -> dict[str, Any]:
        return {"_expands": ["attachment", "renderedBody"], "id": c.id, "body": c.body, "public": c.public,
                "author": self._sd_user(c.author), "created": self._date(c.created),
                "_links": {"self": f"{self.f.url}/rest/servicedeskapi/request/{issue.id}/comment/{c.id}"}}

    def jsm_comments(self, key: str, query: dict[str, str], **_: Any) -> Answer:
        issue = self._request_or_404(key)
        if isinstance(issue, tuple):
            return issue
        public = query.get("public", "true").lower() != "false"
        internal = query.get("internal", "true").lower() != "false"
        found = [c for c in issue.comments if (c.public and public) or (not c.public and internal)]
        start, limit = int(query.get("start", 0)), max(1, min(int(query.get("limit", 50)), 100))
        window = found[start:start + limit]
        links = {"base": f"{self.f.url}/rest/servicedeskapi", "context": "",
                 "self": f"{self.f.url}/rest/servicedeskapi/request/{issue.id}/comment"}
        if start + limit < len(found):
            links["next"] = links["self"] + "?" + urlencode({**query, "start": start + limit, "limit": limit})
        return 200, {"_expands": [], "size": len(window), "start": start, "limit": limit,
                     "isLastPage": start + limit >= len(found), "values": [self._sd_comment(issue, c) for c in window],
                     "_links": links}, {}

    def jsm_add_comment(self, key: str, body: Any, **_: Any) -> Answer:
        issue = self._request_or_404(key)
        if isinstance(issue, tuple):
            return issue
        body = body or {}
        if not isinstance(body.get("body"), str) or not isinstance(body.get("public"), bool):
            return 400, {"errorMessage": "The comment body and public flag are required.",
                         "i18nErrorMessage": {"i18nKey": "sd.comment.error", "parameters": []}}, {}
        comment = Comment(self.f.next_id(), body["body"], DEFAULT_PERSON, public=body["public"])
        issue.comments.append(comment)
        issue.updated = datetime.now(UTC)
        return 201, self._sd_comment(issue, comment), {}
