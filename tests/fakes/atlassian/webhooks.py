"""Jira's admin webhooks as the fake site sends them: a signed JSON POST for every new comment
(`comment_created`) and resolution change (`jira:issue_updated`), whoever made it, and, to subscribers
that ask for it (Jira's webhooks list their events), for every issue made through the REST API
(`jira:issue_created`).

The shape follows Jira's: a `timestamp` in milliseconds, `webhookEvent`, the `issue` (key, fields with the
status and its category) and the `comment` as the REST v2 API returns it (body a string; on Cloud
`jsdPublic`, restricted comments with `visibility`; Data Center JSM internal notes carry the
`sd.public.comment` property). Headers: `X-Atlassian-Webhook-Identifier` (the same on every retry of a
delivery), `X-Atlassian-Webhook-Retry` on retries, and `X-Hub-Signature: sha256=<HMAC of the body>`.

    hooks = JiraWebhooks(fake).subscribe(url, secret)
    fake.add_comment(key, "Try restarting")      # POSTs comment_created now; hooks.sent has the delivery
    hooks.redeliver(hooks.sent[-1])              # Jira's retry: same identifier, same body
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fakes.atlassian.state import Comment, Issue, Site


@dataclass
class Delivery:
    event: str
    identifier: str
    body: bytes
    statuses: list[int] = field(default_factory=list)  # one per POST (first send and redeliveries)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class JiraWebhooks:
    def __init__(self, site: Site, post: Callable[[str, bytes, dict[str, str]], int] | None = None) -> None:
        self.site = site
        self.targets: list[tuple[str, str | None, frozenset[str]]] = []
        self.sent: list[Delivery] = []
        self.post = post or self._http_post
        self._lock = threading.Lock()
        site.listeners.append(self._on_change)

    def subscribe(self, url: str, secret: str | None,
                  events: tuple[str, ...] = ("comment_created", "jira:issue_updated")) -> JiraWebhooks:
        self.targets.append((url, secret, frozenset(events)))
        return self

    # -- payloads ------------------------------------------------------------------------------------
    def comment_payload(self, issue: Issue, comment: Comment) -> dict[str, Any]:
        data = self.site.jira._comment_json(issue, comment, v3=False)  # type: ignore[attr-defined]
        if not self.site.cloud and issue.jsm:  # Data Center: JSM's public flag lives in an entity property
            data["properties"] = [{"key": "sd.public.comment", "value": {"internal": not comment.public}}]
        return {"timestamp": int(time.time() * 1000), "webhookEvent": "comment_created", "comment": data,
                "issue": self._issue(issue)}

    def updated_payload(self, issue: Issue) -> dict[str, Any]:
        done = issue.resolution is not None
        items = [{"field": "resolution", "fieldtype": "jira", "from": None if done else "10000",
                  "fromString": None if done else "Done", "to": "10000" if done else None,
                  "toString": issue.resolution},
                 {"field": "status", "fieldtype": "jira", "from": "1" if done else "10001",
                  "fromString": "Open" if done else "Done", "to": "10001" if done else "1",
                  "toString": "Done" if done else "Open"}]
        return {"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_resolved" if done else "issue_reopened",
                "user": self.site.jira._jira_user(issue.assignee or issue.reporter),  # type: ignore[attr-defined]
                "issue": self._issue(issue), "changelog": {"id": self.site.next_id(), "items": items}}

    def created_payload(self, issue: Issue) -> dict[str, Any]:
        return {"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_created",
                "issue_event_type_name": "issue_created",
                "user": self.site.jira._jira_user(issue.reporter),  # type: ignore[attr-defined]
                "issue": self._issue(issue)}

    def _issue(self, issue: Issue) -> dict[str, Any]:
        return self.site.jira._issue_json(issue, "summary,status,resolutiondate,reporter,labels,project",  # type: ignore[attr-defined]
                                          v3=False)

    # -- sending -------------------------------------------------------------------------------------
    def _on_change(self, event: str, issue: Issue, comment: Comment | None) -> None:
        if event == "jira:issue_created" and not any(event in wanted for _url, _secret, wanted in self.targets):
            return  # asked for by few subscribers: not even recorded as sent
        if comment is not None:
            payload = self.comment_payload(issue, comment)
        elif event == "jira:issue_created":
            payload = self.created_payload(issue)
        else:
            payload = self.updated_payload(issue)
        self.send(event, payload)

    def send(self, event: str, payload: dict[str, Any], identifier: str | None = None) -> Delivery:
        delivery = Delivery(event, identifier or str(uuid.uuid4()), json.dumps(payload).encode())
        with self._lock:
            self.sent.append(delivery)
        self._post_all(delivery, retry=0)
        return delivery

    def redeliver(self, delivery: Delivery) -> None:
        """Jira's retry of a delivery (or an attacker's replay of a captured one): same identifier and body."""
        self._post_all(delivery, retry=len(delivery.statuses))

    def _post_all(self, delivery: Delivery, retry: int) -> None:
        for url, secret, wanted in self.targets:
            if delivery.event not in wanted:
                continue
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Atlassian Webhook HTTP Client",
                       "X-Atlassian-Webhook-Identifier": delivery.identifier}
            if retry:
                headers["X-Atlassian-Webhook-Retry"] = str(retry)
            if secret is not None:
                headers["X-Hub-Signature"] = sign(secret, delivery.body)
            delivery.statuses.append(self.post(url, delivery.body, headers))

    @staticmethod
    def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return httpx.post(url, content=body, headers=headers, timeout=10).status_code
        except httpx.HTTPError:
            return 0  # Jira records a failed delivery; nothing else happens here
