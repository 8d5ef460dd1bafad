"""Who is asking: an API key (Authorization: Bearer KEY, or X-API-Key) or nobody (community).

A revoked or unknown key is 401; a valid key on an endpoint its role may not use is 403."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assistant.keys import Identity

_bearer = HTTPBearer(auto_error=False, description="An answerdesk API key; none = community")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def get_identity(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Identity:
    key = bearer.credentials if bearer else header
    ip = client_ip(request)
    if not key:
        return Identity(role="community", client=ip)
    identity = request.app.state.services.keys.resolve(key)
    if identity is None:
        raise HTTPException(401, "Unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return replace(identity, client=ip)


CurrentIdentity = Annotated[Identity, Depends(get_identity)]


def require(*roles: str) -> Any:
    """A dependency that lets only these roles through (403 for any other valid identity)."""

    def check(identity: CurrentIdentity) -> Identity:
        if identity.role not in roles:
            raise HTTPException(403, f"This endpoint is for: {', '.join(roles)}")
        return identity

    return Depends(check)
