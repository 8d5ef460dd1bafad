"""Routes stay thin: validate, call the assistant, shape the response."""

# No `from __future__ import annotations`: FastAPI must see the per-app ChatRequest class itself.

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from itertools import chain
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assistant.access import access_filter
from assistant.api.auth import CurrentIdentity, is_admin, require, start_session
from assistant.api.schemas import (
    ChatResponse,
    Escalation,
    EscalationContact,
    EscalationCreate,
    FeedbackCreate,
    FeedbackOut,
    HandoffOption,
    Problem,
    Readiness,
    chat_request_model,
)
from assistant.chat import Event
from assistant.conversations import NotFound
from assistant.errors import AnswerdeskError
from assistant.escalation.handoff import ContactError, contact_for, request_human, verified_contact
from assistant.escalation.queue import EscalationRecord, get_escalation, list_escalations, set_contact
from assistant.keys import Identity
from assistant.services import Services
from assistant.settings import Settings
from assistant.traffic import Limits, PrioritySlots

log = logging.getLogger("answerdesk.api")
# What everyone but an admin sees when a dependency fails: the cause names hosts and settings.
UNAVAILABLE = "The assistant is temporarily unavailable; please retry in a few seconds."


def unavailable_detail(exc: Exception, admin: bool) -> str:
    return f"Temporarily unavailable: {exc}" if admin else UNAVAILABLE


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


Svc = Annotated[Services, Depends(get_services)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Unknown or revoked API key"},
    404: {"model": Problem, "description": "Unknown conversation or message"},
    413: {"model": Problem, "description": "Request body too large"},
    429: {"model": Problem, "description": "Rate limit reached; see Retry-After"},
    503: {"model": Problem, "description": "Index or database unavailable; retry later"},
}


# Community endpoints: a key is optional (no key = community), which OpenAPI says with an
# empty security requirement next to the two key schemes.
OPTIONAL_KEY: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}, {"APIKeyHeader": []}]}


def sse(event: Event) -> str:
    data = {"text": event.data} if event.kind == "delta" else event.data if event.data is not None else {}
    return f"event: {event.kind}\ndata: {json.dumps(data, default=_plain)}\n\n"


def _plain(value: object) -> object:
    """JSON for the typed results in events (Citation, ChatResult): the same fields as the JSON answer."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    ChatRequest = chat_request_model(settings.max_question_chars)  # noqa: N806 - a class

    @router.post(
        "/v1/chat",
        response_model=ChatResponse,
        responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description":
               "JSON, or with `Accept: text/event-stream` Server-Sent Events: delta, citations, done"}},
        tags=["chat"], openapi_extra=OPTIONAL_KEY,
    )
    async def chat(svc: Svc, request: Request, response: Response, identity: CurrentIdentity,
                   body: Annotated[ChatRequest, Body()]) -> Any:  # type: ignore[valid-type]
        """Ask a question; the answer cites its sources as [n]. Low confidence escalates to a human.

        Anonymous callers are community users and see public documents only; an API key can see more.
        A conversation belongs to who started it: an anonymous caller gets an `X-Answerdesk-Session`
        response header and sends it back to continue the conversation, rate it or escalate it. The widget
        of a signed-in reader sends their host site's signed token in `X-Answerdesk-User` instead (see
        docs/widget.md); a bad token is ignored and the caller is community."""
        question, conversation_id = body.question, body.conversation_id  # type: ignore[attr-defined]
        traffic: Traffic = request.app.state.traffic
        traffic.limits.hit(identity)
        where = access_filter(identity)
        identity, session_header = start_session(request, identity)
        response.headers.update(session_header)
        if "text/event-stream" not in request.headers.get("accept", ""):
            await traffic.slots.acquire(identity.priority, identity.plan)
            try:
                result = await run_in_threadpool(svc.assistant.respond, question, conversation_id, where, identity)
                return ChatResponse.model_validate(result)
            finally:
                traffic.slots.release()
        stream_token = traffic.limits.open_stream(identity)
        try:
            await traffic.slots.acquire(identity.priority, identity.plan)
        except BaseException:
            traffic.limits.close_stream(stream_token)
            raise
        try:
            events = svc.assistant.stream(question, conversation_id, where, identity)
            # The first event comes after retrieval: unknown conversations and index failures
            # surface here, as proper 404/503 responses instead of a broken stream.
            first = await run_in_threadpool(next, events)
        except BaseException:
            traffic.slots.release()
            traffic.limits.close_stream(stream_token)
            raise

        async def body_stream() -> AsyncIterator[str]:
            try:
                async for chunk in iterate_in_threadpool(_stream(chain([first], events), identity.role == "admin")):
                    yield chunk
            finally:
                traffic.slots.release()
                traffic.limits.close_stream(stream_token)

        return StreamingResponse(body_stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **session_header})

    @router.post("/v1/escalations", response_model=Escalation, status_code=201, responses=ERRORS,
                 tags=["escalations"], openapi_extra=OPTIONAL_KEY)
    def create_escalation(svc: Svc, request: Request, identity: CurrentIdentity,
                          body: EscalationCreate) -> Escalation:
        """The user asks for a human: the conversation so far goes to the support queue. The reference
        comes back at once; delivery to Jira happens in the background (`status` says how far it got)."""
        request.app.state.traffic.limits.hit(identity)  # rate-limited like chat: each one makes a ticket
        cid = svc.conversations.ensure(body.conversation_id, owner=identity.owner, staff=identity.staff)
        contact = _contact(identity, body.contact_email, body.notify)
        ref = request_human(svc.conversations, svc.queue, svc.routing, cid, identity, body.reason, contact,
                            body.notify)
        return _shown(svc, identity, _escalation(svc, ref.id))

    @router.post("/v1/escalations/{escalation_id}/contact", response_model=Escalation, responses=ERRORS,
                 tags=["escalations"], openapi_extra=OPTIONAL_KEY)
    def escalation_contact(svc: Svc, identity: CurrentIdentity, escalation_id: str,
                           body: EscalationContact) -> Escalation:
        """Say where to be told of the answer, after the assistant escalated on its own (low confidence):
        the contact and consent are stored with the escalation; its owner and staff may set them. A ticket
        already in Jira gets an internal note with the new choice (delivered by the outbox worker)."""
        row = _escalation(svc, escalation_id)
        try:
            svc.conversations.ensure(row.conversation_id, owner=identity.owner, staff=identity.staff)
        except NotFound:
            raise NotFound("escalation not found") from None
        contact = _contact(identity, body.contact_email, body.notify)
        if set_contact(svc.store.engine, row.id, contact, body.notify and contact is not None,
                       verified_contact(identity, contact)):
            svc.queue.contact_changed(row.id)  # a ticket already made gets a note with the new contact
        return _shown(svc, identity, _escalation(svc, row.id))

    @router.get("/v1/escalations", response_model=list[Escalation], tags=["escalations"],
                responses={**ERRORS, 403: {"model": Problem, "description": "Agents and admins only"}},
                dependencies=[require("agent", "admin")])
    def escalations(svc: Svc) -> list[Escalation]:
        """The most recent escalations, newest first (agents and admins)."""
        return [Escalation.model_validate(row, from_attributes=True) for row in list_escalations(svc.store.engine)]

    @router.get("/v1/escalations/{escalation_id}", response_model=Escalation, responses=ERRORS,
                tags=["escalations"], openapi_extra=OPTIONAL_KEY)
    def escalation(svc: Svc, identity: CurrentIdentity, escalation_id: str) -> Escalation:
        """One escalation: its owner (the conversation's) and staff may see it. The Jira status is the
        one the delivery worker last read (it refreshes it), so reading never calls Jira."""
        row = _escalation(svc, escalation_id)
        try:
            svc.conversations.ensure(row.conversation_id, owner=identity.owner, staff=identity.staff)
        except NotFound:
            raise NotFound("escalation not found") from None
        return _shown(svc, identity, row)

    @router.post("/v1/feedback", response_model=FeedbackOut, status_code=201, responses=ERRORS, tags=["chat"],
                 openapi_extra=OPTIONAL_KEY)
    def feedback(svc: Svc, identity: CurrentIdentity, body: FeedbackCreate) -> dict[str, Any]:
        """Thumbs up or down on an answer, with an optional comment."""
        cid = svc.conversations.message_conversation(body.message_id)
        svc.conversations.ensure(cid, owner=identity.owner, staff=identity.staff)
        fid = svc.conversations.add_feedback(body.message_id, body.rating, body.comment)
        return {"id": fid, "message_id": body.message_id, "rating": body.rating}

    @router.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["ops"])
    def readyz(svc: Svc, request: Request, response: Response) -> dict[str, Any]:
        """The database, the index and an embedding server (when set) answer. Why not is shown with an admin
        key (and logged)."""
        checks = {}
        try:
            with svc.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            log.warning("readiness: database unreachable: %s", exc)
            checks["database"] = f"unreachable: {exc.__class__.__name__}" if is_admin(request) else "unreachable"
        try:
            svc.vectors.ping()  # bounded: a paused Chroma server must not hold the probe
            checks["index"] = f"ok ({svc.vectors.count()} vectors)"
        except AnswerdeskError as exc:
            log.warning("readiness: index unreachable: %s", exc)
            checks["index"] = f"unreachable: {exc}" if is_admin(request) else "unreachable"
        if svc.settings.embedding_url:  # an embedding server is a dependency like the index
            try:
                svc.embedder.ping()  # type: ignore[attr-defined]  # the server embedder's, through the batcher
                checks["embeddings"] = "ok"
            except AnswerdeskError as exc:
                log.warning("readiness: embedding server unreachable: %s", exc)
                checks["embeddings"] = f"unreachable: {exc}" if is_admin(request) else "unreachable"
        ready = all(v.startswith("ok") for v in checks.values())
        if not ready:
            response.status_code = 503
            response.headers["Retry-After"] = "10"
        return {"status": "ready" if ready else "unavailable", "checks": checks}

    return router


class Traffic:
    """The app's priority queue and rate limits, built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.slots = PrioritySlots(settings.max_concurrent_answers, settings.priority_share, settings.answer_slot_wait)
        self.limits = Limits(settings.rate_limits, settings.stream_limits, settings.redis_url)


def _contact(identity: Identity, given: str | None, notify: bool) -> str | None:
    """The contact to store, or a 422 that names the field, like any other invalid body."""
    try:
        return contact_for(identity, given, notify)
    except ContactError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "contact_email"), "msg": str(exc),
                                       "input": None}]) from None


def _escalation(svc: Services, escalation_id: str) -> EscalationRecord:
    row = get_escalation(svc.store.engine, escalation_id)
    if row is None:
        raise NotFound("escalation not found")
    return row


def _shown(svc: Services, identity: Identity, row: EscalationRecord) -> Escalation:
    """With the handoff options for whoever asks. Delivery errors are for staff; the ticket's own URL
    (Jira, usually behind a login) for key holders."""
    shown = Escalation.model_validate(row, from_attributes=True)
    shown.handoff = [HandoffOption.model_validate(o) for o in svc.routing.options(identity)]
    if not identity.staff:
        shown.last_error = None
        shown.ticket_url = row.ticket_url if identity.key_id else None
    return shown


def _stream(events: Iterator[Event], admin: bool) -> Iterator[str]:
    try:
        for event in events:
            yield sse(event)
    except AnswerdeskError as exc:
        log.warning("answer stream failed: %s", exc)
        yield sse(Event("error", {"detail": unavailable_detail(exc, admin)}))
    except Exception:  # the status line is already sent: report in-band, never a trace
        log.exception("answer stream failed")
        yield sse(Event("error", {"detail": "internal error"}))


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
