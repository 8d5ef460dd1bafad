"""Admin-only endpoints: API keys (the same operations as `answerdesk keys`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from assistant.api.auth import require
from assistant.api.schemas import Problem
from assistant.services import Services

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[require("admin")],
                   responses={401: {"model": Problem}, 403: {"model": Problem}})

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["customer", "agent", "admin"]
    name: Name | None = None
    org: Name | None = Field(None, description="Required for customers")
    tier: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] | None = Field(
        None, description="Customers: free (default), paid, or a tier of your own")


class KeyRecord(BaseModel):
    id: str
    prefix: str
    name: str
    role: str
    org: str | None
    tier: str | None
    created_at: Any
    revoked_at: Any | None
    last_used_at: Any | None


class KeyCreated(BaseModel):
    key: str = Field(description="Shown once: only its hash is stored")
    record: KeyRecord


@router.post("/keys", response_model=KeyCreated, status_code=201, responses={422: {"model": Problem}})
def create_key(body: KeyCreate, svc: Annotated[Services, Depends(_services)]) -> dict[str, Any]:
    try:
        key, record = svc.keys.create(body.role, body.name or "", body.org, body.tier)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"key": key, "record": record}


@router.get("/keys", response_model=list[KeyRecord])
def list_keys(svc: Annotated[Services, Depends(_services)]) -> list[dict[str, Any]]:
    return svc.keys.list()


@router.delete("/keys/{key_id}", status_code=204, responses={404: {"model": Problem}})
def revoke_key(key_id: str, svc: Annotated[Services, Depends(_services)]) -> Response:
    if not svc.keys.revoke(key_id):
        raise HTTPException(404, f"No active key {key_id}")
    return Response(status_code=204)
