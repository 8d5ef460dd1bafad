"""Answers back to the asker, at the HTTP edge: Jira's webhook, the widget's view of the support team's
replies, and the 'did this solve your problem?' links. The work is in assistant/replies."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import hashlib
import html
import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import CurrentIdentity, require
from assistant.api.routes import ERRORS, OPTIONAL_KEY, Svc, problem
from assistant.api.schemas import ConversationId, RatingCreate, RatingOut, SupportReply
from assistant.escalation.queue import get_escalation
from assistant.replies.channels import conversation_replies
from assistant.replies.events import created_ticket, event_time, signature_ok, webhook_events
from assistant.replies.ratings import rate, rating_of, resolution_ratings, summary
from assistant.store import utcnow

log = logging.getLogger("answerdesk.replies")
router = APIRouter()
FUTURE_SKEW = timedelta(minutes=5)  # clocks differ a little; a delivery from further ahead is forged
RATING_VIA = ("email", "slack", "widget")


@router.post("/v1/webhooks/jira", tags=["escalations"], responses={
    400: {"description": "Not a Jira webhook body, or its timestamp is missing or too old"},
    401: {"description": "Bad or missing X-Hub-Signature"}, 404: {"description": "Webhooks not configured"}})
async def jira_webhook(svc: Svc, request: Request) -> JSONResponse:
    """Jira's webhook (comment_created, jira:issue_updated, jira:issue_created): an agent's public comment
    and the resolution of a ticket answerdesk created go back to the person who asked; a ticket made in
    Jira directly gets agent assist's suggested reply as an internal comment, once (after the answer: Jira
    is not kept waiting for the draft). Signed with the webhook secret (`X-Hub-Signature: sha256=<HMAC of
    the body>`); a replayed delivery is acknowledged and ignored."""
    settings = svc.settings
    if settings.jira_webhook_secret is None:
        return problem(404, "Jira webhooks are not configured: set ANSWERDESK_JIRA_WEBHOOK_SECRET to the secret "
                            "of the Jira webhook.")
    body = await request.body()
    if not signature_ok(settings.jira_webhook_secret.get_secret_value(), body, request.headers.get("x-hub-signature")):
        log.warning("Jira webhook refused: bad or missing X-Hub-Signature")
        return problem(401, "X-Hub-Signature: missing or wrong (sha256=HMAC of the body with the webhook secret)")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("webhookEvent"), str):
        return problem(400, "body: not a Jira webhook (a JSON object with webhookEvent)")
    at = event_time(payload)
    now = utcnow()
    if at is None:
        return problem(400, "timestamp: missing (milliseconds since the epoch)")
    if at < now - timedelta(seconds=settings.jira_webhook_max_age) or at > now + FUTURE_SKEW:
        log.warning("Jira webhook refused: timestamp %s outside the accepted window", at.isoformat())
        return problem(400, f"timestamp: {at.isoformat()} is older than ANSWERDESK_JIRA_WEBHOOK_MAX_AGE "
                            f"({settings.jira_webhook_max_age:g} s) or in the future")
    delivery = request.headers.get("x-atlassian-webhook-identifier") or ""
    key = f"jira:{delivery}" if delivery else f"body:{signature_of(body)}"
    outbox = svc.replies
    if not await run_in_threadpool(outbox.first_delivery, key, settings.jira_webhook_max_age):
        log.info("Jira webhook %s replayed: ignored", key)
        return JSONResponse({"status": "duplicate"})
    events = webhook_events(payload, outbox.bot.ids(fetch=False))
    try:
        added = await run_in_threadpool(outbox.record, events)
    except sa.exc.SQLAlchemyError:
        await run_in_threadpool(outbox.forget_delivery, key)  # Jira retries; the retry must not be a "replay"
        raise
    wanted = settings.escalation == "jira" and settings.assist_on_new_tickets
    ticket = created_ticket(payload, settings.jira_project) if wanted else None
    after = BackgroundTasks()
    if not outbox.bot.known:  # read answerdesk's Jira account after answering (a replica may run no poll)
        after.add_task(outbox.bot.ids)
    queued = False
    if ticket:  # recorded first: the worker posts it if this process stops before the background post ends
        queued = await run_in_threadpool(svc.assist_poster.enqueue, ticket)
        if queued:
            after.add_task(svc.post_assist, ticket)
    return JSONResponse({"status": "accepted", "events": len(events), "replies": added, "assist": queued},
                        background=after)


def signature_of(body: bytes) -> str:
    """A delivery without Jira's identifier header is known by its body (which carries its timestamp)."""
    return hashlib.sha256(body).hexdigest()


@router.get("/v1/conversations/{conversation_id}/replies", response_model=list[SupportReply], responses=ERRORS,
            tags=["escalations"], openapi_extra=OPTIONAL_KEY)
def replies(svc: Svc, identity: CurrentIdentity, conversation_id: ConversationId) -> list[SupportReply]:
    """The support team's replies in a conversation (what the widget shows when it opens): its owner and
    staff may read them. A `resolved` reply carries the token to answer 'did this solve your problem?'."""
    svc.conversations.ensure(conversation_id, owner=identity.owner, staff=identity.staff)
    out = []
    for r in conversation_replies(svc.store.engine, conversation_id):
        shown = SupportReply.model_validate(r)
        if r["kind"] == "resolved" and r["escalation_id"]:
            shown.rating_token = svc.replies.tokens.token(r["escalation_id"])
            shown.solved = rating_of(svc.store.engine, r["escalation_id"])
        out.append(shown)
    return out


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport "
                        f"content='width=device-width'><title>{html.escape(title)}</title><body style='font:16px "
                        f"system-ui;max-width:32em;margin:3em auto'><h1>{html.escape(title)}</h1>{body}</body></html>",
                        status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


EXPIRED_TEXT = ("<p>This link has expired: answers are taken for {days:g} days after the ticket was resolved. "
                "Nothing was recorded.</p>")


def _expired_page(svc: Any) -> HTMLResponse:
    return _page("Link expired", EXPIRED_TEXT.format(days=svc.settings.rating_link_days), 410)


@router.get("/v1/ratings/{token}", response_class=HTMLResponse, tags=["escalations"],
            responses={404: {"description": "Unknown or forged link"}, 410: {"description": "Expired link"}})
def rating_page(svc: Svc, token: str, via: str = "email") -> HTMLResponse:
    """The page an e-mailed or Slack link opens: two buttons. Opening it changes nothing (mail scanners
    open links); only the buttons (a POST) record the answer. A link older than
    ANSWERDESK_RATING_LINK_DAYS answers 410 with a page saying so."""
    if svc.replies.tokens.expired(token):
        return _expired_page(svc)
    eid = svc.replies.tokens.escalation(token)
    if eid is None or get_escalation(svc.store.engine, eid) is None:
        return _page("Link not valid", "<p>This link is not valid. It may have been cut short.</p>", 404)
    channel = via if via in RATING_VIA else "email"
    action = f"/v1/ratings/{html.escape(token)}?via={channel}"
    buttons = "".join(f"<button name=solved value={v} style='font-size:1.1em;margin-right:1em'>{label}</button>"
                      for v, label in (("yes", "Yes, it did"), ("no", "No, it did not")))
    return _page("Did this solve your problem?", f"<form method=post action='{action}'>{buttons}</form>")


@router.post("/v1/ratings/{token}", tags=["escalations"], response_model=RatingOut,
             responses={400: {"description": "`solved` missing or not yes/no"}, 404: {"description": "Unknown link"},
                        410: {"description": "Expired link: nothing recorded"}})
async def rating(svc: Svc, request: Request, token: str, via: str = "widget") -> Response:
    """Answer 'did this solve your problem?': JSON `{"solved": true}` (the widget), or the rating page's
    form (`solved=yes|no`, answered with a page). An expired link records nothing (410)."""
    eid = svc.replies.tokens.escalation(token)
    form = "application/x-www-form-urlencoded" in request.headers.get("content-type", "")
    if svc.replies.tokens.expired(token):
        return _expired_page(svc) if form else problem(410, "rating link expired: nothing recorded")
    if eid is None or await run_in_threadpool(get_escalation, svc.store.engine, eid) is None:
        return _page("Link not valid", "<p>This link is not valid.</p>", 404) if form else problem(404, "rating "
                                                                                                    "link not valid")
    if form:
        # The page's form is url-encoded; parsed here rather than adding python-multipart for one field.
        answer = parse_qs((await request.body()).decode("utf-8", "replace")).get("solved", [None])[-1]
        if answer not in ("yes", "no"):
            return problem(400, "solved: must be yes or no")
        solved = answer == "yes"
    else:
        try:
            solved = RatingCreate.model_validate_json(await request.body()).solved
        except ValidationError:
            return problem(400, "solved: a JSON body {\"solved\": true|false} is required")
    channel = via if via in RATING_VIA else "widget"
    await run_in_threadpool(rate, svc.store.engine, eid, solved, channel)
    if form:
        return _page("Thank you", "<p>Your answer was recorded. You can close this page.</p>")
    return JSONResponse(RatingOut(escalation_id=eid, solved=solved, channel=channel).model_dump())


@router.get("/v1/ratings", tags=["escalations"], dependencies=[require("agent", "admin")],
            responses={**ERRORS, 403: {"description": "Agents and admins only"}})
def ratings(svc: Svc) -> dict[str, Any]:
    """Resolution ratings: solved / answered overall, per tier and per channel, and every answer."""
    rows = resolution_ratings(svc.store.engine)
    return {"summary": summary(rows), "ratings": [r.__dict__ for r in rows]}
