"""What Jira tells us about a ticket, from a webhook delivery or a poll: the agent's public comments and
the resolution. Internal comments never become events: a Jira comment restricted by `visibility`, a JSM
comment with `jsdPublic: false` (Cloud) or the `sd.public.comment` property saying internal (Data
Center), and answerdesk's own context comment."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assistant.atlassian.adf import adf_to_text

OWN_MARKER = "answerdesk escalation: "  # the last line of every comment answerdesk posts (jira_queue.marker)


@dataclass(frozen=True)
class TicketEvent:
    ticket_key: str
    kind: str  # comment | resolved
    ref: str  # the comment id; for a resolution, "resolved"
    body: str = ""
    author: str | None = None
    at: datetime | None = None


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


def comment_event(ticket_key: str, comment: dict[str, Any], at: datetime | None = None) -> TicketEvent | None:
    """The event a Jira or JSM comment makes, or None (internal, ours, empty or malformed)."""
    cid = comment.get("id")
    if not isinstance(cid, str | int) or not comment_is_public(comment):
        return None
    raw = comment.get("body")
    text = (adf_to_text(raw) if isinstance(raw, dict) else str(raw or "")).strip()
    if not text or OWN_MARKER in text:
        return None
    author = comment.get("author") or {}
    name = author.get("displayName") if isinstance(author, dict) else None
    return TicketEvent(ticket_key, "comment", str(cid), text, str(name) if name else None, at)


def is_done(fields: dict[str, Any]) -> bool:
    status = fields.get("status") or {}
    category = status.get("statusCategory") or {} if isinstance(status, dict) else {}
    return isinstance(category, dict) and str(category.get("key", "")).lower() == "done"


def webhook_events(payload: dict[str, Any]) -> list[TicketEvent]:
    """The events in one webhook delivery: `comment_created` (and Data Center's `jira:issue_updated` of type
    `issue_commented`, which carries the comment), and `jira:issue_updated` to a done status category."""
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
        event = comment_event(key, comment, at)
        if event is not None:
            out.append(event)
    if kind == "jira:issue_updated" and is_done(fields or {}):
        out.append(TicketEvent(key, "resolved", "resolved", at=at))
    return out
