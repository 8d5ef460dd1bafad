"""Jira Service Management's /rest/servicedeskapi as the fake serves it: customer requests (issues with
`jsm=True`) and their public comments and internal notes; bodies are plain strings here, never ADF."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tests.fakes.atlassian.jira import summary_error
from tests.fakes.atlassian.queries import Answer, Api
from tests.fakes.atlassian.state import Comment, Issue, Person, jira_time


class JsmApi(Api):
    def routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        return [
            ("POST", r"/rest/servicedeskapi/request", self.jsm_create),
            ("GET", r"/rest/servicedeskapi/request", self.jsm_list),
            ("GET", r"/rest/servicedeskapi/request/(?P<key>[^/]+)", self.jsm_request),
            ("GET", r"/rest/servicedeskapi/request/(?P<key>[^/]+)/comment", self.jsm_comments),
            ("POST", r"/rest/servicedeskapi/request/(?P<key>[^/]+)/comment", self.jsm_add_comment),
            ("GET", r"/rest/servicedeskapi/servicedesk/(?P<desk>[^/]+)/customer", self.jsm_customers),
        ]

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
            out.update(key=person.account_id, name=self._username(person))
        return out

    @staticmethod
    def _username(person: Person) -> str:
        return person.username or person.email.split("@")[0]

    def jsm_customers(self, desk: str, query: dict[str, str], **_: Any) -> Answer:
        """getCustomers: `query` matches the start of a customer's display name (or of a word in it), name or
        e-mail address, case-insensitively, as JSM does; paged by start/limit."""
        if desk not in self.f.service_desks:
            return 404, {"errorMessage": "The service desk does not exist.",
                         "i18nErrorMessage": {"i18nKey": "sd.servicedesk.error.notfound", "parameters": []}}, {}
        q = query.get("query", "").lower()
        found = [p for p in self.f.customers.get(desk, []) if not q or any(
            w.startswith(q) for w in [p.email.lower(), self._username(p).lower(), p.display_name.lower(),
                                      *p.display_name.lower().split()])]
        start, limit = int(query.get("start", 0)), max(1, min(int(query.get("limit", 50)), 50))
        window = found[start:start + limit]
        return 200, {"_expands": [], "size": len(window), "start": start, "limit": limit,
                     "isLastPage": start + limit >= len(found), "values": [self._sd_user(p) for p in window],
                     "_links": {"base": f"{self.f.url}/rest/servicedeskapi", "context": ""}}, {}

    def _request_json(self, issue: Issue) -> dict[str, Any]:
        desk = next((d for d, p in self.f.service_desks.items() if p == issue.project), "1")
        return {
            "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action",
                         "comment"],
            "issueId": issue.id, "issueKey": issue.key, "requestTypeId": issue.request_type or "10",
            "serviceDeskId": desk,
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
        bad_summary = summary_error(values.get("summary"))
        request_type = str(body.get("requestTypeId"))
        if project is not None and request_type not in self.f.request_types.get(str(body.get("serviceDeskId")), set()):
            bad_summary = bad_summary or "The request type does not exist or you do not have permission to use it."
        if project is None or bad_summary:
            return 400, {"errorMessage": bad_summary or "The service desk does not exist.",
                         "i18nErrorMessage": {"i18nKey": "sd.request.create.error", "parameters": []}}, {}
        reporter = self.f.bot
        if body.get("raiseOnBehalfOf"):
            # Cloud names the customer by accountId, Data Center by username; anyone else is refused.
            who = str(body["raiseOnBehalfOf"])
            found = next((p for p in self.f.customers.get(str(body.get("serviceDeskId")), [])
                          if who == (p.account_id if self.f.cloud else self._username(p))), None)
            if found is None:
                return 400, {"errorMessage": f"The user '{who}' does not exist or is not a customer of this "
                                             "service desk.",
                             "i18nErrorMessage": {"i18nKey": "sd.request.create.error", "parameters": []}}, {}
            reporter = found
        key = self.f.add_issue(project, values["summary"], str(values.get("description", "")), reporter=reporter,
                               resolution=None, jsm=True, labels=values.get("labels"))  # a field of the request type
        self.f.issues[key].request_type = request_type
        self.f.emit("jira:issue_created", self.f.issues[key])
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
        comment = Comment(self.f.next_id(), body["body"], self.f.bot, public=body["public"])
        issue.comments.append(comment)
        issue.updated = datetime.now(UTC)
        self.f.emit("comment_created", issue, comment)
        return 201, self._sd_comment(issue, comment), {}
