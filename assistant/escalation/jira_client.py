"""The few Jira calls escalations and agent assist need, through the Atlassian adapter.

Jira Cloud uses REST v3 (descriptions and comments are ADF documents); Data Center v2 (plain
text). With a JSM service desk configured, escalations are customer requests and context goes in
as an internal comment (`public: false`), which the caller posts as its own step. The adapter's
AtlassianError becomes JiraCallFailed here, which says whether retrying can help and whether Jira may
have acted on the request anyway.

What we post is plain text and must stay plain: on Cloud it goes in ADF text nodes (never parsed
as markup); Data Center bodies and JSM comments are wiki markup, so the characters that make images,
links, mentions and macros are escaped (`!https://host/p.png!` would load an image for every agent
who opens the ticket, `[~jdoe]` would notify jdoe)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from assistant.atlassian.adf import adf_to_text, text_to_adf
from assistant.atlassian.clients import Credentials, jira_clients
from assistant.atlassian.errors import AtlassianError
from assistant.atlassian.errors import call as atlassian_call
from assistant.errors import EscalationError
from assistant.escalation.routing import Route

log = logging.getLogger("answerdesk.escalations")

SUMMARY_MAX = 255  # Jira refuses longer summaries (Cloud and Data Center alike)
# 4xx answers a later attempt can succeed with: timeout, conflict, locked, too many requests.
RETRYABLE_4XX = {408, 409, 423, 429}
AMBIGUOUS_5XX = {500, 502, 504}
# Wiki markup: ! embeds an image or attachment, [ ] make links, [~user] mentions, { } macros, | tables
# and link targets. Jira's renderer shows a character after a backslash literally.
WIKI_SPECIAL = re.compile(r"([!\[\]{}|])")


class JiraCallFailed(EscalationError):
    """A Jira call failed. `permanent`: Jira refused the request itself (a 4xx other than the
    retryable ones), so sending it again cannot help. `maybe_sent`: Jira may have acted on it (no
    answer after the request went out, an internal error, or a gateway's 502/504)."""

    def __init__(self, message: str, status: int | None = None, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.maybe_sent = maybe_sent

    @classmethod
    def of(cls, exc: AtlassianError) -> JiraCallFailed:
        """No answer after the request went out, a 500, or a gateway's 502/504: Jira may have done the
        work. 503 and 429 say it was turned away; a refused connection never reached it."""
        maybe_sent = (exc.status is None and not exc.never_sent) or exc.status in AMBIGUOUS_5XX
        return cls(str(exc), exc.status, maybe_sent)

    @property
    def permanent(self) -> bool:
        return self.status is not None and 400 <= self.status < 500 and self.status not in RETRYABLE_4XX


def summary_line(text: str) -> str:
    """A Jira summary from a question: one line (Jira refuses newlines), at most 255 characters,
    never empty."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(line) > SUMMARY_MAX:
        line = line[:SUMMARY_MAX - 1].rstrip() + "\u2026"
    return line or "(no question asked)"


def wiki_escape(text: str) -> str:
    """Plain text for a wiki-markup body. A backslash already in the text gets a zero-width space
    after it, so it cannot pair with our escape into `\\\\` (a line break) and free the character."""
    return WIKI_SPECIAL.sub(r"\\\1", text.replace("\\", "\\\u200b"))


@dataclass
class JsmTarget:
    service_desk_id: str
    request_type_id: str


class JiraClient:
    """Jira (and JSM) as escalations and agent assist see it; built by escalation.factory from settings."""

    def __init__(self, creds: Credentials, issue_type: str = "Task", jsm: JsmTarget | None = None,
                 internal_role: str = "Administrators", timeout: int = 20) -> None:
        self.url, self.cloud, self.issue_type, self.jsm, self.internal_role = (
            creds.base, creds.cloud, issue_type, jsm, internal_role)
        self.v = 3 if creds.cloud else 2
        self.jira, self.desk = jira_clients(creds, timeout, api_version=self.v)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return atlassian_call("Jira", self.url, what, fn, *args, **kwargs)
        except AtlassianError as exc:
            raise JiraCallFailed.of(exc) from exc

    def body(self, text: str) -> Any:
        return text_to_adf(text) if self.v == 3 else wiki_escape(text)

    def find_by_label(self, label: str) -> str | None:
        jql = f'labels = "{label}" ORDER BY created ASC'
        if self.cloud:
            data = self._call("search", self.jira.enhanced_jql, jql, fields="key", limit=1)
        else:
            data = self._call("search", self.jira.jql, jql, fields="key", limit=1)
        issues = (data or {}).get("issues") or []
        return str(issues[0]["key"]) if issues else None

    def create(self, project: str, summary: str, description: str, labels: list[str],
               priority: str | None, contact: str | None = None, route: Route | None = None,
               on_behalf: bool = False) -> str:
        """contact: the e-mail of a user who agreed to be told of the answer. In JSM the request is raised
        on their behalf when they are a customer of the service desk (JSM then notifies them itself);
        otherwise by the bot, with the contact in the description for the agent. Only a verified address
        (on_behalf: the signed-in user's own) is looked up: a typed one could be any customer's. route: the routing
        rule's assignee, components, priority and request type."""
        route = route or Route()
        if self.jsm is not None:
            text = "A customer question the assistant escalated; the full context is in the internal comment."
            customer = self.customer(contact) if contact and on_behalf else None
            if contact and customer is None:
                text += f"\n\nContact: {contact} (asked to be told of the answer; not a customer of this service desk)"
            values = {"summary": summary, "description": text, "labels": labels}
            # Assignee, components and priority are rarely fields of a request type: `route_issue` sets them.
            created = self._call("request creation", self.desk.create_customer_request,
                                 self.jsm.service_desk_id, route.request_type or self.jsm.request_type_id, values,
                                 raise_on_behalf_of=customer)
            return str(created["issueKey"])  # the caller records the key, then posts the context comment
        fields: dict[str, Any] = {"project": {"key": project}, "summary": summary,
                                  "issuetype": {"name": self.issue_type}, "description": self.body(description),
                                  "labels": labels, **self.route_fields(route)}
        if priority and "priority" not in fields:
            fields["priority"] = {"name": priority}
        created = self._call("issue creation", self.jira.create_issue, fields=fields)
        return str(created["key"])

    def customer(self, email: str) -> str | None:
        """The service desk customer with this e-mail, as raiseOnBehalfOf names them (Cloud: accountId; Data
        Center: username), or None. JSM matches `query` against names and addresses by prefix: only an
        exact address counts. A desk whose customers we may not list (403/404) has none we can use."""
        assert self.jsm is not None
        try:
            page = self._call("customer lookup", self.desk.get_customers, self.jsm.service_desk_id,
                              query=email, limit=50)
        except JiraCallFailed as exc:
            if not exc.permanent:
                raise  # transient: the delivery retries, rather than raising it as the bot for good
            log.warning("JSM customers of service desk %s cannot be listed (%s): requests are raised by the "
                        "bot", self.jsm.service_desk_id, exc.status)
            return None
        for user in (page or {}).get("values") or []:
            if str(user.get("emailAddress") or "").lower() == email.lower():
                found = user.get("accountId") if self.cloud else user.get("name") or user.get("key")
                return str(found) if found else None
        return None

    def route_fields(self, route: Route) -> dict[str, Any]:
        """Jira's fields for a route. Cloud names users by accountId only (usernames were removed for
        privacy); Data Center by username. No assignee field at all: the project's default assignee."""
        fields: dict[str, Any] = {}
        if route.assignee:
            fields["assignee"] = {"accountId": route.assignee} if self.cloud else {"name": route.assignee}
        if route.components:
            fields["components"] = [{"name": c} for c in route.components]
        if route.priority:
            fields["priority"] = {"name": route.priority}
        return fields

    def route_issue(self, key: str, route: Route) -> None:
        """Set a route's assignee, components and priority on an existing issue (a JSM request); editing
        to the same values again is harmless, so a retried delivery may repeat it."""
        fields = self.route_fields(route)
        if fields:
            self._call("routing", self.jira.put, f"rest/api/{self.v}/issue/{key}", data={"fields": fields})

    def comment(self, key: str, text: str, internal: bool) -> None:
        if self.jsm is not None:
            # JSM comment bodies are wiki markup on Cloud and Data Center alike.
            self._call("comment", self.desk.create_request_comment, key, wiki_escape(text), public=not internal)
            return
        data: dict[str, Any] = {"body": self.body(text)}
        if internal:
            data["visibility"] = {"type": "role", "value": self.internal_role}
        self._call("comment", self.jira.post, f"rest/api/{self.v}/issue/{key}/comment", data=data)

    def has_comment(self, key: str, text: str) -> bool:
        """Whether a comment containing `text` is on the ticket (internal ones included)."""
        return any(text in c["body"] for c in self.issue(key)["comments"])

    def status(self, key: str) -> str:
        return self.state(key)[0]

    def state(self, key: str) -> tuple[str, str | None]:
        """The ticket's status name and its assignee's display name (None: unassigned), in one call."""
        data = self._call("status", self.jira.get, f"rest/api/{self.v}/issue/{key}",
                          params={"fields": "status,assignee"})
        f = (data or {}).get("fields") or {}
        name = (f.get("assignee") or {}).get("displayName")
        return str((f.get("status") or {}).get("name", "unknown")), str(name) if name else None

    def issue(self, key: str) -> dict[str, Any]:
        """Summary, description and comments (with their visibility) as plain text."""
        data = self._call("read", self.jira.get, f"rest/api/{self.v}/issue/{key}",
                          params={"fields": "summary,description,comment,status,labels"})
        f = (data or {}).get("fields") or {}
        comments = [{"body": adf_to_text(c.get("body")), "public": not c.get("visibility")}
                    for c in ((f.get("comment") or {}).get("comments") or [])]
        return {"key": key, "summary": f.get("summary") or "", "description": adf_to_text(f.get("description")),
                "comments": comments, "status": ((f.get("status") or {}).get("name") or "")}

    def updates(self, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """For the reply poll: the ticket's comments as Jira returns them (visibility, jsdPublic, author and
        created: the caller keeps the public ones by others than the asker and us) and the fields that say
        whether and when it was resolved and who reported it (status, resolutiondate, reporter). JSM
        requests read their comments from the servicedeskapi, asking for public ones only: Data Center's
        platform API does not say which comments are internal."""
        data = self._call("read", self.jira.get, f"rest/api/{self.v}/issue/{key}",
                          params={"fields": "comment,status,resolutiondate,reporter"})
        f = (data or {}).get("fields") or {}
        if self.jsm is not None:
            comments = self._call("comments", self.desk.get_request_comments, key, limit=100, public=True,
                                  internal=False) or []
        else:
            comments = (f.get("comment") or {}).get("comments") or []
        return list(comments), {k: f.get(k) for k in ("status", "resolutiondate", "reporter")}

    def myself(self) -> dict[str, Any]:
        """The account answerdesk calls Jira as (its comments and the requests it raised are its own)."""
        return dict(self._call("myself", self.jira.get, f"rest/api/{self.v}/myself") or {})

    def browse_url(self, key: str) -> str:
        return f"{self.url}/browse/{key}"
