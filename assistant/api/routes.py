"""Routes stay thin: validate, call the assistant, shape the response."""

# No `from __future__ import annotations`: FastAPI must see the per-app ChatRequest class itself.

import json
from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant.api.schemas import (
    ChatResponse,
    Escalation,
    EscalationCreate,
    FeedbackCreate,
    FeedbackOut,
    Problem,
    Readiness,
    chat_request_model,
)
from assistant.chat import Event
from assistant.conversations import NotFound
from assistant.errors import AnswerdeskError
from assistant.escalation import EscalationRequest, get_escalation, list_escalations
from assistant.services import Services
from assistant.settings import Settings
from assistant.types import Where


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


Svc = Annotated[Services, Depends(get_services)]
# Until API keys and roles exist, every HTTP caller is an anonymous community user: they see
# public documents only, enforced inside both indexes by this filter.
PUBLIC: Where = {"audience": ["public"]}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown conversation or message"},
    413: {"model": Problem, "description": "Request body too large"},
    503: {"model": Problem, "description": "Index or database unavailable; retry later"},
}


def sse(event: Event) -> str:
    data = {"text": event.data} if event.kind == "delta" else event.data if event.data is not None else {}
    return f"event: {event.kind}\ndata: {json.dumps(data, default=str)}\n\n"


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    ChatRequest = chat_request_model(settings.max_question_chars)  # noqa: N806 - a class

    @router.post(
        "/v1/chat",
        response_model=ChatResponse,
        responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description":
               "JSON, or with `Accept: text/event-stream` Server-Sent Events: delta, citations, done"}},
        tags=["chat"],
    )
    async def chat(svc: Svc, request: Request, body: Annotated[ChatRequest, Body()]) -> Any:  # type: ignore[valid-type]
        """Ask a question; the answer cites its sources as [n]. Low confidence escalates to a human."""
        question, conversation_id = body.question, body.conversation_id  # type: ignore[attr-defined]
        if "text/event-stream" not in request.headers.get("accept", ""):
            return await run_in_threadpool(svc.assistant.respond, question, conversation_id, PUBLIC)
        events = svc.assistant.stream(question, conversation_id, PUBLIC)
        # The first event comes after retrieval: unknown conversations and index failures
        # surface here, as proper 404/503 responses instead of a broken stream.
        first = await run_in_threadpool(next, events)
        return StreamingResponse(
            _stream(chain([first], events)), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.post("/v1/escalations", response_model=Escalation, status_code=201, responses=ERRORS,
                 tags=["escalations"])
    def create_escalation(svc: Svc, body: EscalationCreate) -> dict[str, Any]:
        """The user asks for a human: the conversation so far goes to the support queue."""
        past = svc.conversations.messages(svc.conversations.ensure(body.conversation_id))
        question = next((m.content for m in reversed(past) if m.role == "user"), "")
        answer = next((m for m in reversed(past) if m.role == "assistant"), None)
        ref = svc.queue.open(EscalationRequest(
            conversation_id=body.conversation_id,
            question=question or "(no question asked yet)",
            transcript=[{"role": m.role, "content": m.content} for m in past],
            draft_answer=answer.content if answer else "",
            sources=[{k: c.get(k) for k in ("n", "title", "url", "score")} for c in (answer.citations or [])]
            if answer else [],
            confidence=answer.confidence if answer else None,
            reasons=["user_requested"] + ([body.reason] if body.reason else []),
            requested_by_user=True,
            message_id=answer.id if answer else None,
        ))
        return _escalation(svc, ref.id)

    @router.get("/v1/escalations", response_model=list[Escalation], tags=["escalations"])
    def escalations(svc: Svc) -> list[dict[str, Any]]:
        """The most recent escalations, newest first."""
        return list_escalations(svc.store.engine)

    @router.post("/v1/feedback", response_model=FeedbackOut, status_code=201, responses=ERRORS, tags=["chat"])
    def feedback(svc: Svc, body: FeedbackCreate) -> dict[str, Any]:
        """Thumbs up or down on an answer, with an optional comment."""
        fid = svc.conversations.add_feedback(body.message_id, body.rating, body.comment)
        return {"id": fid, "message_id": body.message_id, "rating": body.rating}

    @router.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["ops"])
    def readyz(svc: Svc, response: Response) -> dict[str, Any]:
        """The database and the index can be reached."""
        checks = {}
        try:
            with svc.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            checks["database"] = f"unreachable: {exc.__class__.__name__}"
        try:
            checks["index"] = f"ok ({svc.vectors.count()} vectors)"
        except AnswerdeskError as exc:
            checks["index"] = f"unreachable: {exc}"
        ready = all(v.startswith("ok") for v in checks.values())
        if not ready:
            response.status_code = 503
            response.headers["Retry-After"] = "10"
        return {"status": "ready" if ready else "unavailable", "checks": checks}

    return router


def _escalation(svc: Services, escalation_id: str) -> dict[str, Any]:
    row = get_escalation(svc.store.engine, escalation_id)
    if row is None:
        raise NotFound(f"escalation {escalation_id} not found")
    return row


def _stream(events: Iterator[Event]) -> Iterator[str]:
    try:
        for event in events:
            yield sse(event)
    except AnswerdeskError as exc:
        yield sse(Event("error", {"detail": str(exc)}))
    except Exception:  # the status line is already sent: report in-band, never a trace
        yield sse(Event("error", {"detail": "internal error"}))


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
