"""What Jira tells us about a ticket, from a webhook delivery or a poll: the agent's public comments and
the resolution. Internal comments never become events: a Jira comment restricted by `visibility`, a JSM
comment with `jsdPublic: false` (Cloud) or the `sd.public.comment` property saying internal (Data
Center), and answerdesk's own comments. Nor do comments by the person who asked (the reporter: the JSM
customer commenting in the portal, or answerdesk's bot account when it raised the request) or by the bot
account: only someone else's public comment is the support team's answer.

Times are Jira's: a comment's `created`, a resolution's `resolutiondate` (the delivery's timestamp or the
poll's clock only when Jira gives none), so analytics measure when the human answered, not when we heard.
A resolution is known by its `resolutiondate`: a ticket resolved, reopened and resolved again makes two
resolution events, and the same resolution seen twice (replay, retry, the poll after the webhook) one."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assistant.atlassian.adf import adf_to_text

OWN_MARKER = "answerdesk escalation: "  # the last line of every comment answerdesk posts (jira_queue.marker)
ASSIST_MARKER = "answerdesk assist: "  # the last line of agent assist's suggestion (escalation.agent.assist_marker)
CONTACT_MARKER = "answerdesk contact update: "  # the last line of a contact note (escalation.contact_notes)


@dataclass(frozen=True)
class TicketEvent:
    ticket_key: str
    kind: str  # comment | resolved | reopened (nobody is told; analytics stop counting it resolved)
    ref: str  # the comment id; for a resolution, "resolved@<resolutiondate>" (or "resolved" when undated)
    body: str = ""
    author: str | None = None
    at: datetime | None = None
    author_ids: frozenset[str] = frozenset()  # what names the comment's author (account id, username, e-mail)


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Jira Cloud's admin-webhook signature (WebSub): `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw
    body under the webhook secret>`, compared in constant time."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    if method.lower() != "sha256":
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())  # bytes: any header text


def event_time(payload: dict[str, Any]) -> datetime | None:
    """The delivery's `timestamp` (milliseconds since the epoch), None when absent or not a number."""
    ts = payload.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return None
    try:
        return datetime.fromtimestamp(ts / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def jira_time(value: Any) -> datetime | None:
    """A Jira time as UTC: the platform API's `2026-12-04T15:32:57.123+0000`, or the servicedeskapi's
    `{"epochMillis": ..., "iso8601": ...}`. None when absent or unreadable."""
    if isinstance(value, dict):
        millis = value.get("epochMillis")
        if isinstance(millis, int | float) and not isinstance(millis, bool):
            try:
                return datetime.fromtimestamp(millis / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                return None
        value = value.get("iso8601") or value.get("jira")
    if not isinstance(value, str) or not value:
        return None
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%f%z")):
        try:
            found = parse(value)
        except ValueError:
            continue
        return found.astimezone(UTC) if found.tzinfo else found.replace(tzinfo=UTC)
    return None


def person_ids(user: Any) -> frozenset[str]:
    """Everything that names a Jira user in a payload: Cloud's accountId, Data Center's username and key,
    and the e-mail address where Jira shows it (lower case)."""
    if not isinstance(user, dict):
        return frozenset()
    ids = {str(user[k]) for k in ("accountId", "name", "key") if isinstance(user.get(k), str | int) and user.get(k)}
    if isinstance(user.get("emailAddress"), str) and user["emailAddress"]:
        ids.add(user["emailAddress"].lower())
    return frozenset(ids)


def comment_is_public(comment: dict[str, Any]) -> bool:
    """Public only when nothing says otherwise; anything unclear stays in Jira."""
    if comment.get("visibility"):
        return False
    if comment.get("jsdPublic") is False or comment.get("public") is False:
        return False
    for prop in comment.get("properties") or []:
        if isinstance(prop, dict) and prop.get("key") == "sd.public.comment":
            value = prop.get("value") or {}
            if not isinstance(value, dict) or value.get("internal") is not False:
                return False
    return True


def comment_event(ticket_key: str, comment: dict[str, Any], at: datetime | None = None,
                  skip: Collection[str] = ()) -> TicketEvent | None:
    """The event a Jira or JSM comment makes, or None (internal, ours, by someone in `skip` (the asker,
    the bot account), empty or malformed). Its time is the comment's `created`, else `at`."""
    cid = comment.get("id")
    if not isinstance(cid, str | int) or not comment_is_public(comment):
        return None
    raw = comment.get("body")
    text = (adf_to_text(raw) if isinstance(raw, dict) else str(raw or "")).strip()
    if not text or any(m in text for m in (OWN_MARKER, ASSIST_MARKER, CONTACT_MARKER)):
        return None
    author = comment.get("author") or {}
    ids = person_ids(author)
    if ids & set(skip):
        return None
    name = author.get("displayName") if isinstance(author, dict) else None
    return TicketEvent(ticket_key, "comment", str(cid), text, str(name) if name else None,
                       jira_time(comment.get("created")) or at, ids)


def resolution_event(ticket_key: str, fields: dict[str, Any], at: datetime | None = None) -> TicketEvent | None:
    """The ticket's current resolution as an event, or None while it is not done. Its ref and time are
    Jira's `resolutiondate`; a done status without one (a workflow that sets no resolution) is known
    only as "resolved", so a second such resolution of one ticket is not told apart."""
    if not is_done(fields):
        return None
    when = jira_time(fields.get("resolutiondate"))
    if when is None:
        return TicketEvent(ticket_key, "resolved", "resolved", at=at)
    return TicketEvent(ticket_key, "resolved", "resolved@" + when.isoformat(timespec="milliseconds"), at=when)


def reopen_event(ticket_key: str, fields: dict[str, Any], at: datetime | None) -> TicketEvent | None:
    """A ticket whose status is known and not done: if it was resolved before `at`, it no longer is."""
    if not isinstance(fields.get("status"), dict) or is_done(fields):
        return None
    return TicketEvent(ticket_key, "reopened", "reopened", at=at)


def reporter_ids(fields: dict[str, Any]) -> frozenset[str]:
    return person_ids(fields.get("reporter"))


def is_done(fields: dict[str, Any]) -> bool:
    status = fields.get("status") or {}
    category = status.get("statusCategory") or {} if isinstance(status, dict) else {}
    return isinstance(category, dict) and str(category.get("key", "")).lower() == "done"


def created_ticket(payload: dict[str, Any], project: str | None = None) -> str | None:
    """The key of a ticket a `jira:issue_created` delivery announces, unless answerdesk made it (its
    escalation tickets carry the `answerdesk` label and get agent assist at delivery) or it is in another
    project than `project` (a site-wide webhook must not draft replies on, say, HR's tickets)."""
    issue = payload.get("issue")
    if payload.get("webhookEvent") != "jira:issue_created" or not isinstance(issue, dict):
        return None
    key = issue.get("key")
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    labels = (fields or {}).get("labels") or []
    if not isinstance(key, str) or not key or (isinstance(labels, list) and "answerdesk" in labels):
        return None
    if project and ticket_project(key, fields or {}).upper() != project.upper():
        return None
    return key


def ticket_project(key: str, fields: dict[str, Any]) -> str:
    """The ticket's project key: the delivery's `fields.project.key`, else the key's prefix (SUP-12)."""
    found = fields.get("project")
    if isinstance(found, dict) and isinstance(found.get("key"), str):
        return str(found["key"])
    return key.rsplit("-", 1)[0]


def webhook_events(payload: dict[str, Any], bot: Collection[str] = ()) -> list[TicketEvent]:
    """The events in one webhook delivery: `comment_created` (and Data Center's `jira:issue_updated` of type
    `issue_commented`, which carries the comment), and `jira:issue_updated` to a done status category.
    `bot`: what names answerdesk's Jira account, whose comments are never the answer."""
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("key"), str):
        return []
    key, kind = issue["key"], payload.get("webhookEvent")
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    at = event_time(payload)
    out: list[TicketEvent] = []
    comment = payload.get("comment")
    commented = kind == "comment_created" or (
        kind == "jira:issue_updated" and payload.get("issue_event_type_name") == "issue_commented")
    if commented and isinstance(comment, dict):
        event = comment_event(key, comment, at, skip=reporter_ids(fields or {}) | set(bot))
        if event is not None:
            out.append(event)
    if kind == "jira:issue_updated":
        changed = resolution_event(key, fields or {}, at) or reopen_event(key, fields or {}, at)
        if changed is not None:
            out.append(changed)
    return out
