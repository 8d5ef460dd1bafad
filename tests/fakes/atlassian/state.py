"""The fake site's state: Confluence spaces and pages, Jira issues and comments (JSM requests are issues
with `jsm=True`), injected faults, and the request log. Plain data; nothing here speaks HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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
    username: str = ""  # Data Center's unique name; "" = the address's local part


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
    components: list[str] = field(default_factory=list)
    priority: str | None = None
    request_type: str | None = None  # JSM requests: the request type id they were raised with
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    resolved: datetime | None = None  # Jira's resolutiondate: set when resolved, cleared when reopened

    def __post_init__(self) -> None:
        if self.resolution is not None and self.resolved is None:
            self.resolved = self.created

    def set_resolution(self, resolution: str | None) -> bool:
        """Resolve or reopen as Jira does (resolutiondate follows); True when it changed."""
        if resolution == self.resolution:
            return False
        self.resolution = resolution
        self.resolved = datetime.now(UTC) if resolution is not None else None
        return True


DEFAULT_PERSON = Person("Sam Agent", "sam.agent@vendor.example", "5b10ac8d82e05b22cc7d4ef5")
ORG_FIELD = "customfield_10002"  # JSM "Organizations"
# People an issue can be assigned to: Cloud knows them by accountId, Data Center by username (the
# e-mail's local part here, as `_jira_user` shows them).
PEOPLE = [DEFAULT_PERSON, Person("Dana Billing", "dana.billing@vendor.example", "712020:5c1a0e2b-billing"),
          Person("Ivo Install", "ivo.install@vendor.example", "712020:93d4f7aa-install")]
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")


class Site:
    """What one fake site holds, and the changes and observations tests make on it; the HTTP side is
    server.FakeAtlassian. Handlers and tests alike change it under `lock`."""

    def __init__(self, cloud: bool, user: str = "bot@example.com", token: str = "tok-123") -> None:
        self.cloud = cloud
        self.user, self.token = user, token
        self.spaces: dict[str, Space] = {}
        self.pages: dict[str, Page] = {}
        self.issues: dict[str, Issue] = {}
        self.service_desks: dict[str, str] = {"1": "SUP"}  # serviceDeskId -> project key
        self.customers: dict[str, list[Person]] = {}  # serviceDeskId -> its customers (add_customer)
        self.request_types: dict[str, set[str]] = {"1": {"10", "11", "12"}}  # serviceDeskId -> request type ids
        self.components: dict[str, set[str]] = {"SUP": {"Billing", "Install", "Security"}}  # project -> names
        self.people = list(PEOPLE)
        # The account the API is called as: what /myself answers, the author of comments and the reporter of
        # issues and requests made through the REST API (unless raised on behalf of a customer).
        self.bot = Person("Sync Bot", user, "bot-account")
        self.unindexed: set[str] = set()  # page ids the (asynchronous) search index has not caught up with
        self.search_lag = 0.0  # seconds before JQL search sees a new issue (Jira indexes asynchronously)
        self.log: list[tuple[str, str, dict[str, str], int]] = []  # method, path, query, status
        self.slow: tuple[float, str] | None = None  # seconds, path part: answer late (after doing the work)
        self.failure: tuple[int, str, int | None, str] | None = None  # status, path part, times left, query part
        self.lock = threading.RLock()
        self._ids = 1000
        self.port = 0
        # Called on every new comment ("comment_created", issue, comment) and resolution change
        # ("jira:issue_updated", issue, None), whoever made it (a test or a REST call), and on every issue or
        # request made through the REST API ("jira:issue_created", issue, None): webhooks.py listens.
        self.listeners: list[Callable[[str, Issue, Comment | None], None]] = []

    def emit(self, event: str, issue: Issue, comment: Comment | None = None) -> None:
        for listener in list(self.listeners):
            listener(event, issue, comment)

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

    def add_customer(self, email: str, display_name: str, desk: str = "1") -> Person:
        """A customer of a service desk; its account id looks like Cloud's ("qm:..." for portal-only
        customers), and on Data Center its username is its address, as for customers who signed up on
        the portal."""
        with self.lock:
            person = Person(display_name, email, f"qm:{self.next_id()}:{email.split('@')[0]}", username=email)
            self.customers.setdefault(desk, []).append(person)
            return person

    def add_comment(self, key: str, body: str, *, public: bool = True, visibility: dict[str, str] | None = None,
                    author: Person | None = None) -> str:
        with self.lock:
            comment = Comment(self.next_id(), body, author or DEFAULT_PERSON, public, visibility)
            issue = self.issues[key]
            issue.comments.append(comment)
            issue.updated = datetime.now(UTC)
            self.emit("comment_created", issue, comment)
            return comment.id

    def update_issue(self, key: str, **changes: Any) -> None:
        with self.lock:
            issue = self.issues[key]
            resolution = changes.pop("resolution", issue.resolution)
            for name, value in changes.items():
                setattr(issue, name, value)
            issue.updated = datetime.now(UTC)
            if issue.set_resolution(resolution):
                self.emit("jira:issue_updated", issue)

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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def confluence_url(self) -> str:
        return self.url + ("/wiki" if self.cloud else "")

    def projects(self) -> set[str]:
        """Jira projects that exist: those with issues, and the service desks' projects."""
        return {i.project for i in self.issues.values()} | set(self.service_desks.values())
