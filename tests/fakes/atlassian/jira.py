"""Jira platform REST v2 and v3 as the fake serves them: Data Center search with startAt/total, Cloud's
enhanced search with nextPageToken (and 410 Gone on the removed /search), issues, comments (ADF on v3,
checked as Jira checks it), transitions and fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.atlassian import adf
from tests.fakes.atlassian.queries import (
    Answer,
    Api,
    decode_token,
    encode_token,
    query_filter,
)
from tests.fakes.atlassian.state import ORG_FIELD, PRIORITIES, Comment, Issue, Person, jira_time


def summary_error(summary: Any) -> str | None:
    """Jira's own rules for a summary (Cloud and Data Center), with its own words."""
    if not isinstance(summary, str) or not summary.strip():
        return "You must specify a summary of the issue."
    if "\n" in summary or "\r" in summary:
        return "The summary is invalid because it contains newline characters."
    if len(summary) > 255:
        return "Summary must be less than 255 characters."
    return None


def body_problem(value: Any, v: str) -> str | None:
    """Why Jira refuses a description or comment body: v3 takes only ADF documents, v2 only strings."""
    if v == "2":
        return None if isinstance(value, str) else "Operation value must be a string"
    if not isinstance(value, dict):
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    found = adf.problems(value)
    return f"Invalid ADF: {'; '.join(found[:3])}" if found else None


class JiraApi(Api):
    def routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        return [
            ("GET", r"/rest/api/(?P<v>[23])/search", self.search),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)", self.issue),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/comment", self.comments),
            ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/comment", self.add_comment),
            ("PUT", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)", self.edit_issue),
            ("POST", r"/rest/api/(?P<v>[23])/issue", self.create_issue),
            ("GET", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/transitions", self.transitions),
            ("POST", r"/rest/api/(?P<v>[23])/issue/(?P<key>[^/]+)/transitions", self.transition),
            ("GET", r"/rest/api/(?P<v>[23])/myself", self.myself),
            ("GET", r"/rest/api/(?P<v>[23])/field", self.fields),
            *([("GET", r"/rest/api/3/search/jql", self.enhanced_search)] if self.f.cloud else []),
        ]

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
            "body": adf.document(c.body) if v3 else c.body, "created": jira_time(c.created),
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
            "description": (adf.document(issue.description) if v3 else issue.description) or None,
            "status": {"name": "Done" if done else "Open",
                       "statusCategory": {"key": "done" if done else "new", "name": "Done" if done else "To Do"}},
            "resolution": {"name": issue.resolution} if done else None,
            "resolutiondate": jira_time(issue.resolved or issue.updated) if done else None,
            "created": jira_time(issue.created), "updated": jira_time(issue.updated),
            "project": {"key": issue.project, "name": f"{issue.project} project", "id": "10000"},
            "issuetype": {"name": "Service Request" if issue.jsm else "Bug"},
            "reporter": self._jira_user(issue.reporter), "assignee": self._jira_user(issue.assignee),
            "labels": list(issue.labels),
            "components": [{"name": c, "self": f"{self.f.url}/rest/api/2/component/{c}"} for c in issue.components],
            "priority": {"name": issue.priority} if issue.priority else None,
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

    def _jql_filter(self, jql: str) -> Callable[[Issue], bool] | str:
        fields: dict[str, Callable[[Issue], set[str]]] = {
            "project": lambda i: {i.project}, "key": lambda i: {i.key}, "issuekey": lambda i: {i.key},
            "labels": lambda i: set(i.labels)}
        return query_filter(jql, fields, "updated", lambda c: f"Error in the JQL Query: unsupported clause '{c}'",
                            self._resolution_clause, self._known_projects)

    @staticmethod
    def _resolution_clause(clause: str) -> Callable[[Issue], bool] | None:
        """`resolution is EMPTY` (or `is not`, `!=`, `=`) and `statusCategory = Done` (or `!=`)."""
        m = re.fullmatch(r"(resolution|resolved)\s*(is not|!=|is|=)\s*empty", clause, re.I)
        if m:
            done = m.group(2).lower() in ("is not", "!=")
            return lambda i: (i.resolution is not None) == done
        m = re.fullmatch(r"statusCategory\s*(=|!=)\s*\"?done\"?", clause, re.I)
        if m:
            done = m.group(1) == "="
            return lambda i: (i.resolution is not None) == done
        return None

    def _known_projects(self, field: str, values: set[str]) -> str | None:
        unknown = sorted(values - self.f.projects()) if field == "project" else []
        return f"The value '{unknown[0]}' does not exist for the field 'project'." if unknown else None

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
        token: dict[str, Any] | None = (decode_token(query["nextPageToken"]) if query.get("nextPageToken")
                                        else {"start": 0, "jql": jql})
        if token is None or token.get("jql") != jql:
            return 400, {"errorMessages": ["The provided next page token is invalid or expired."], "errors": {}}, {}
        start, limit = int(token["start"]), max(1, min(int(query.get("maxResults", 50)), 100))
        window = found[start:start + limit]
        out: dict[str, Any] = {"issues": [self._issue_json(i, query.get("fields", "id"), True) for i in window],
                               "isLast": start + limit >= len(found)}
        if not out["isLast"]:  # no total on Cloud: only a token, absent on the last page
            out["nextPageToken"] = encode_token({"start": start + limit, "jql": jql})
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
        wrong = body_problem(text, v)
        if wrong:  # Jira's words, then what exactly is wrong (Jira itself does not say)
            return 400, {"errorMessages": [f"Comment body is not valid! {wrong}"], "errors": {}}, {}
        comment = Comment(self.f.next_id(), adf.plain_text(text).strip(), self.f.bot,
                          visibility=(body or {}).get("visibility"))
        issue.comments.append(comment)
        issue.updated = datetime.now(UTC)
        self.f.emit("comment_created", issue, comment)
        return 201, self._comment_json(issue, comment, v == "3"), {}

    def create_issue(self, v: str, body: Any, **_: Any) -> Answer:
        fields = (body or {}).get("fields") or {}
        project = (fields.get("project") or {}).get("key")
        errors = {}
        if project not in self.f.projects():
            errors["project"] = "Specify a valid project ID or key"
        bad_summary = summary_error(fields.get("summary"))
        if bad_summary:
            errors["summary"] = bad_summary
        description = fields.get("description")
        wrong = body_problem(description, v) if description is not None else None
        if wrong:
            errors["description"] = wrong
        changes = self._routed_fields(str(project), fields, errors)
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        key = self.f.add_issue(str(project), fields["summary"], adf.plain_text(description or "").strip(),
                               reporter=self.f.bot, resolution=None, labels=fields.get("labels"))
        issue = self.f.issues[key]
        for name, value in changes.items():
            setattr(issue, name, value)
        self.f.emit("jira:issue_created", issue)
        return 201, {"id": issue.id, "key": key, "self": f"{self.f.url}/rest/api/{v}/issue/{issue.id}"}, {}

    def edit_issue(self, key: str, body: Any, **_: Any) -> Answer:
        """PUT /issue/{key}: only the fields routing sets (assignee, components, priority) are supported."""
        issue = self._issue_or_404(key)
        if isinstance(issue, tuple):
            return issue
        fields = (body or {}).get("fields") or {}
        errors: dict[str, str] = {}
        unsupported = sorted(set(fields) - {"assignee", "components", "priority"})
        if unsupported:
            errors[unsupported[0]] = f"Field '{unsupported[0]}' cannot be set by this fake."
        changes = self._routed_fields(issue.project, fields, errors)
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        for name, value in changes.items():
            setattr(issue, name, value)
        issue.updated = datetime.now(UTC)
        return 204, b"", {}

    def _routed_fields(self, project: str, fields: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        """Assignee, components and priority checked as Jira checks them (messages close to Jira's):
        Cloud names a user only by accountId (usernames were removed for privacy), Data Center by name;
        components and priorities must exist. Returns the Issue attributes to set."""
        changes: dict[str, Any] = {}
        if fields.get("assignee") is not None:
            value = fields["assignee"] if isinstance(fields["assignee"], dict) else {}
            if self.f.cloud:
                if "accountId" not in value:
                    errors["assignee"] = "Specify the user by accountId: 'name' and 'key' are not supported on Cloud."
                person = next((p for p in self.f.people if p.account_id == value.get("accountId")), None)
                shown = value.get("accountId")
            else:
                if "name" not in value:
                    errors["assignee"] = "Specify the user by name."
                person = next((p for p in self.f.people if p.email.split("@")[0] == value.get("name")), None)
                shown = value.get("name")
            if person is None:
                errors.setdefault("assignee", f"User '{shown}' does not exist.")
            changes["assignee"] = person
        if "components" in fields:
            names = [str((c or {}).get("name")) for c in fields.get("components") or []]
            known = self.f.components.get(project, set())
            bad = [n for n in names if n not in known]
            if bad:
                errors["components"] = f"Component name '{bad[0]}' is not valid"
            changes["components"] = names
        if fields.get("priority") is not None:
            name = (fields["priority"] or {}).get("name")
            if name not in PRIORITIES:
                errors["priority"] = f"Priority name '{name}' is not valid"
            changes["priority"] = name
        return changes

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
        issue.updated = datetime.now(UTC)
        if issue.set_resolution(self._TRANSITIONS[tid][1]):
            self.f.emit("jira:issue_updated", issue)
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
        return 200, self._jira_user(self.f.bot), {}
