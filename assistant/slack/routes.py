"""POST /slack/events: Slack's events, button clicks and slash commands, all on one URL.

bolt's own Starlette adapter calls the synchronous `App.dispatch` inside `async def`, which would
hold the event loop while bolt verifies the signature, calls auth.test once and waits for the ack.
Here dispatch runs in the thread pool; the answer itself runs later on the bot's own pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.slack.bot import SlackBot

log = logging.getLogger("answerdesk.slack")
_build_lock = threading.Lock()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    bot: SlackBot | None = getattr(app.state, "slack_bot", None)
    if bot is not None:
        await run_in_threadpool(bot.close)  # let answers being written finish


slack_router = APIRouter(lifespan=_lifespan)


def missing_settings(settings: Settings) -> list[str]:
    return [name for name, value in (("ANSWERDESK_SLACK_BOT_TOKEN", settings.slack_bot_token),
                                     ("ANSWERDESK_SLACK_SIGNING_SECRET", settings.slack_signing_secret))
            if value is None]


def _bot(app: FastAPI, loop: asyncio.AbstractEventLoop) -> SlackBot:
    """One bot per app, built on the first Slack request (after the lifespan made the services). Its
    answers queue in the API's priority queue, on the loop that serves the API."""
    with _build_lock:
        bot: SlackBot | None = getattr(app.state, "slack_bot", None)
        if bot is None:
            from assistant.slack.bot import SlackBot
            from assistant.traffic import SlotGate

            bot = app.state.slack_bot = SlackBot(app.state.services, gate=SlotGate(app.state.traffic.slots, loop))
        return bot


@slack_router.post("/slack/events", include_in_schema=False)
async def slack_events(request: Request) -> Response:
    settings: Settings = request.app.state.services.settings
    missing = missing_settings(settings)
    if missing:
        return JSONResponse({"detail": f"The Slack bot is not configured: set {' and '.join(missing)}."},
                            status_code=404)
    from slack_bolt import BoltRequest

    bot = await run_in_threadpool(_bot, request.app, asyncio.get_running_loop())
    # Undecodable bytes are replaced, so the signature check fails them with 401 rather than a 500.
    body = (await request.body()).decode("utf-8", errors="replace")
    bolt_request = BoltRequest(body=body, query=request.url.query, headers=dict(request.headers))
    answer = await run_in_threadpool(bot.app.dispatch, bolt_request)
    return Response(status_code=answer.status, content=answer.body,
                    headers=answer.first_headers_without_set_cookie())
