"""create_app(): settings -> services built once in the lifespan -> thin routes.

Errors are mapped at this edge: our exceptions to 404/413/503, anything else to a JSON 500
whose body says nothing about the internals (the trace goes to the server log)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.admin import router as admin_router
from assistant.api.agent import router as agent_router
from assistant.api.auth import is_admin, trusted_networks
from assistant.api.replies import router as replies_router
from assistant.api.routes import Traffic, build_router, problem, unavailable_detail
from assistant.api.staff import router as staff_router
from assistant.api.web import router as web_router
from assistant.conversations import NotFound
from assistant.errors import AnswerdeskError, EmbeddingError, EscalationError, RetrievalError
from assistant.escalation.factory import jira_client_factory
from assistant.escalation.worker import start_worker
from assistant.replies.poll import start_reply_worker
from assistant.services import Services
from assistant.sessions import HEADER as SESSION_HEADER
from assistant.sessions import Sessions
from assistant.settings import Settings, load_settings
from assistant.slack.routes import slack_router
from assistant.traffic import RateLimited, SlotTimeout
from assistant.widget_identity import HEADER as USER_HEADER
from assistant.widget_identity import WidgetIdentity

log = logging.getLogger("answerdesk.api")
WEB = Path(__file__).resolve().parent.parent / "web"


class BodyLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = f'{{"detail":"Request body larger than {self.max_bytes} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def start_replies(svc: Services) -> tuple[Any, Any] | None:
    """The reply worker, when escalations go to Jira (only Jira tickets get answers back)."""
    s = svc.settings
    if s.escalation != "jira":
        return None
    try:
        return start_reply_worker(svc.replies, s.jira_poll_interval, jira_client_factory(s))
    except AnswerdeskError as exc:
        log.error("answers from Jira will not be delivered: %s", exc)
        return None


def start_background(svc: Services) -> tuple[Any, Any]:
    """The outbox and reply threads (ANSWERDESK_WORKER=embedded), or none: with `external` requests only
    record escalations and `answerdesk worker` processes deliver them."""
    try:
        if svc.settings.worker == "external":
            svc.queue.in_background()  # never deliver in the request either
            return None, None
        worker = start_worker(svc.queue, svc.settings.delivery_interval)
    except AnswerdeskError as exc:  # misconfigured escalation: requests report it too
        log.error("escalations will not be delivered: %s", exc)
        worker = None
    return worker, start_replies(svc)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services(settings)
        app.state.services = svc
        svc.store  # noqa: B018 - a schema this version cannot use (SchemaError) stops the start
        try:
            svc.assistant  # noqa: B018 - load the model and answerer now, not on the first question
            svc.keywords.ensure_fresh()
        except AnswerdeskError as exc:
            # Start anyway: /readyz says what is wrong and requests get 503 until it is fixed.
            log.error("answerdesk is not ready: %s", exc)
        worker, replies = start_background(svc)
        yield
        for running in (worker, replies):
            if running is not None:
                thread, stop = running
                stop.set()
                thread.join(10)

    app = FastAPI(
        title="answerdesk",
        version="0.1.0",
        description="Cited answers from your documentation, with escalation to a human queue.",
        lifespan=lifespan,
    )
    app.state.traffic = Traffic(settings)
    app.state.sessions = Sessions.from_settings(settings)
    app.state.widget_identity = WidgetIdentity.from_settings(settings)
    app.state.trusted_proxies = trusted_networks(settings.trusted_proxies)
    app.include_router(build_router(settings))
    app.include_router(admin_router)
    app.include_router(agent_router)
    app.include_router(replies_router)
    app.include_router(web_router)
    app.include_router(staff_router)
    app.include_router(slack_router)

    @app.exception_handler(RateLimited)
    async def rate_limited(_request: Request, exc: RateLimited) -> JSONResponse:
        return problem(429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(SlotTimeout)
    async def busy(_request: Request, exc: SlotTimeout) -> JSONResponse:
        return problem(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(RetrievalError)
    @app.exception_handler(EmbeddingError)
    @app.exception_handler(EscalationError)
    async def unavailable(request: Request, exc: AnswerdeskError) -> JSONResponse:
        log.warning("dependency unavailable: %s", exc)
        # The cause names hosts and settings: for admins and the log, not for everyone.
        detail = unavailable_detail(exc, is_admin(request))
        return problem(503, detail, {"Retry-After": "10"})

    @app.exception_handler(AnswerdeskError)
    async def answerdesk_error(_request: Request, exc: AnswerdeskError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return problem(500, str(exc))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal error; the server log has the details.")

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]
    # Outermost, so 413/429/401 answers carry CORS headers too; only configured docs-site origins.
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],  # type: ignore[arg-type]
                       allow_headers=["Content-Type", "Authorization", "X-API-Key", SESSION_HEADER,
                                      USER_HEADER],
                       expose_headers=["Retry-After", SESSION_HEADER],
                       max_age=600)
    return app


def app_from_env() -> Any:
    """For `uvicorn --factory assistant.api.app:app_from_env`."""
    return create_app()
