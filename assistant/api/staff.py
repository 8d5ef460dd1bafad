"""The staff conversation page: where a ticket's "Conversation:" link goes.

`GET /v1/staff/conversations/{id}` is the JSON behind it, for an agent or admin API key in a header.
`GET /staff/conversations/{id}` is the page for a browser, which cannot send a header from a link: an
agent signs in once with their key on a plain form; the answer is a cookie naming the key (HMAC-signed,
HttpOnly, 8 hours), never holding it. Every request re-checks that key, so revoking it ends the
session. A signed link in the ticket was the alternative, and was refused: the link lives as long as
the ticket, anyone who can read the ticket (or a log, or a Referer) holds it, and it cannot be revoked
per person. Without a valid session the page shows the sign-in form (401), a customer key gets 403,
and neither ever sees the conversation."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import html
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import require
from assistant.api.routes import Svc
from assistant.api.schemas import Problem
from assistant.conversations import NotFound
from assistant.sessions import STAFF_TTL
from assistant.staff import conversation_for_staff

COOKIE = "answerdesk_staff"
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff"}

router = APIRouter()


class StaffMessage(BaseModel):
    id: str
    role: str
    content: str
    created_at: datetime
    citations: list[dict[str, Any]]
    confidence: float | None
    flags: list[str]
    answerer: str | None
    signals: dict[str, float]
    reasons: list[str]


class StaffEscalation(BaseModel):
    id: str
    status: str
    ticket_key: str | None
    ticket_url: str | None
    jira_status: str | None
    priority: str | None
    role: str | None
    org: str | None
    tier: str | None
    reasons: list[str]
    requested_by_user: bool
    confidence: float | None
    routing: dict[str, Any] | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    rating: str | None
    contact_email: str | None
    notify: bool
    contact_verified: bool
    contact_on_ticket: bool


class StaffConversation(BaseModel):
    id: str
    created_at: datetime
    updated_at: datetime
    messages: list[StaffMessage]
    escalations: list[StaffEscalation]


@router.get("/v1/staff/conversations/{conversation_id}", response_model=StaffConversation, tags=["staff"],
            dependencies=[require("agent", "admin")],
            responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}})
async def staff_conversation(svc: Svc, conversation_id: str) -> dict[str, Any]:
    """The whole conversation for agents and admins: every message, the sources cited, each answer's
    confidence and its signals, and the escalations' state, routing and ticket."""
    return await run_in_threadpool(conversation_for_staff, svc.store.engine, conversation_id)


# -- the page ----------------------------------------------------------------------------------------
def _staff_key(request: Request, svc: Any) -> str | None:
    key_id = request.app.state.sessions.verify_staff(request.cookies.get(COOKIE))
    identity = svc.keys.by_id(key_id) if key_id else None
    return key_id if identity is not None and identity.staff else None


@router.get("/staff/conversations/{conversation_id}", include_in_schema=False)
def staff_page(svc: Svc, request: Request, conversation_id: str) -> Response:
    if _staff_key(request, svc) is None:
        return _login(request.url.path, 401, "Sign in with an agent or admin API key to see this conversation.")
    try:
        data = conversation_for_staff(svc.store.engine, conversation_id)
    except NotFound:
        return _html("<h1>Conversation not found</h1>", 404)
    return _html(_render(data), 200)


@router.post("/staff/login", include_in_schema=False)
async def staff_login(svc: Svc, request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = (form.get("next") or ["/staff/conversations/"])[0]
    if not target.startswith("/staff/") or "//" in target or "\\" in target:
        target = "/staff/conversations/"  # only our own pages: never an open redirect
    identity = await run_in_threadpool(svc.keys.resolve, key) if key else None
    if identity is None:
        return _login(target, 401, "Unknown or revoked API key.")
    if not identity.staff:
        return _login(target, 403, "This page is for agents and admins; that key is not one.")
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https" or (svc.settings.public_url or "").startswith("https://")
    # Lax: the cookie goes with a click on the ticket's link (a top-level GET from Jira), not with
    # another site's POSTs or embedded requests.
    response.set_cookie(COOKIE, request.app.state.sessions.staff_token(identity.key_id), max_age=STAFF_TTL,
                        httponly=True, samesite="lax", secure=secure, path="/staff")
    return response


def _login(target: str, status: int, message: str) -> HTMLResponse:
    e = html.escape
    body = (f"<h1>answerdesk staff</h1><p>{e(message)}</p>"
            f'<form method="post" action="/staff/login"><input type="hidden" name="next" value="{e(target)}">'
            '<label>API key <input type="password" name="key" autocomplete="off" required></label> '
            "<button>Sign in</button></form>")
    return _html(body, status)


def _html(body: str, status: int) -> HTMLResponse:
    page = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>answerdesk staff</title>'
            "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            ".msg{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0;white-space:pre-wrap}"
            ".user{background:#f4f7fb}.meta{color:#555;font-size:13px;white-space:normal}"
            "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}"
            f"</style></head><body>{body}</body></html>")
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


def _link(url: Any, text: Any) -> str:
    """Only http(s) links become links: a `javascript:` URL from an ingested page stays text."""
    u, t = str(url or ""), html.escape(str(text or url or ""))
    if not u.startswith(("http://", "https://")):
        return t
    return f'<a href="{html.escape(u)}" rel="noopener noreferrer">{t}</a>'


def _contact(esc: dict[str, Any]) -> str | None:
    """The contact and the customer's consent, in the words the ticket uses."""
    if not esc["contact_email"]:
        return None
    wants = "wants to be told of the answer by e-mail" if esc["notify"] else "has not asked to be e-mailed"
    whose = "; their signed-in account's address" if esc["contact_verified"] else ""
    owed = "; the ticket's note on this change is not posted yet" if esc["ticket_key"] and not esc[
        "contact_on_ticket"] else ""
    return f"{esc['contact_email']} ({wants}{whose}{owed})"


def _render(data: dict[str, Any]) -> str:
    e = html.escape
    out = [f"<h1>Conversation {e(data['id'])}</h1>",
           f"<p class=meta>Started {e(str(data['created_at']))}, last message {e(str(data['updated_at']))}</p>"]
    for esc in data["escalations"]:
        routing = esc.get("routing") or {}
        rows = [("Status", esc["status"]), ("Ticket", None), ("Jira status", esc["jira_status"]),
                ("Priority", routing.get("priority") or esc["priority"]), ("Routed by", routing.get("rule")),
                # A display name (the rule's, or Jira's at delivery) rather than a Cloud accountId.
                ("Assignee", routing.get("assignee_name") or routing.get("assignee")),
                ("Components", ", ".join(routing.get("components") or [])), ("Contact", _contact(esc)),
                ("Asked by", ", ".join(f"{k}: {esc[k]}" for k in ("role", "tier", "org") if esc[k])),
                ("Why", ", ".join(esc["reasons"] or [])), ("Escalated", esc["created_at"]),
                ("First human answer", esc["first_response_at"]), ("Resolved", esc["resolved_at"]),
                ("Rating", esc["rating"]), ("Last error", esc["last_error"])]
        ticket = _link(esc["ticket_url"], esc["ticket_key"])
        cells = "".join(f"<tr><th>{e(k)}</th><td>{ticket if k == 'Ticket' else e(str(v))}</td></tr>"
                        for k, v in rows if v or (k == "Ticket" and esc["ticket_key"]))
        out.append(f"<h2>Escalation {e(esc['id'][:8])}</h2><table>{cells}</table>")
    out.append("<h2>Messages</h2>")
    for msg in data["messages"]:
        meta = ""
        if msg["role"] == "assistant":
            conf = "n/a" if msg["confidence"] is None else f"{msg['confidence']:.2f}"
            signals = ", ".join(f"{k} {v:.2f}" for k, v in msg["signals"].items())
            meta = (f"<div class=meta>Confidence {e(conf)}" + (f" ({e(signals)})" if signals else "")
                    + (f"; flags: {e(', '.join(msg['flags']))}" if msg["flags"] else "")
                    + (f"; why: {e('; '.join(msg['reasons']))}" if msg["reasons"] else "") + "</div>")
            if msg["citations"]:
                meta += "<ol class=meta>" + "".join(
                    f"<li value=\"{int(c.get('n') or 0)}\">{_link(c.get('url'), c.get('title'))}</li>"
                    for c in msg["citations"]) + "</ol>"
        out.append(f"<div class='msg {e(msg['role'])}'><b>{e(msg['role'])}</b> "
                   f"<span class=meta>{e(str(msg['created_at']))}</span>\n{e(msg['content'])}{meta}</div>")
    return "\n".join(out)
