"""Agent endpoints: suggested replies for Jira tickets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import require
from assistant.api.schemas import Citation, Problem

router = APIRouter(prefix="/v1/agent", tags=["agent"], dependencies=[require("agent", "admin")],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 503: {"model": Problem}})


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_key: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}-[0-9]{1,9}$")]
    post: bool = Field(False, description="Also add the draft to the ticket as an internal comment")


class SimilarTicket(BaseModel):
    key: str
    title: str
    url: str
    resolution: str | None
    score: float


class Suggestion(BaseModel):
    ticket_key: str
    summary: str
    draft: str
    citations: list[Citation]
    confidence: float
    flags: list[str]
    similar_tickets: list[SimilarTicket]
    posted: bool


@router.post("/suggest", response_model=Suggestion)
async def suggest_reply(request: Request, body: SuggestRequest) -> Suggestion:
    """Read the ticket from Jira, draft a cited reply, list similar resolved tickets; `post` adds it as an
    internal comment (never a public one)."""
    assist = request.app.state.services.agent_assist
    return Suggestion.model_validate(await run_in_threadpool(assist.suggest, body.ticket_key, body.post),
                                     from_attributes=True)
