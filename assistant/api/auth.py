"""Who is asking: an API key (Authorization: Bearer KEY, or X-API-Key) or nobody (community).

A revoked or unknown key is 401; a valid key on an endpoint its role may not use is 403."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assistant.keys import Identity
from assistant.sessions import HEADER as SESSION_HEADER
from assistant.widget_identity import HEADER as USER_HEADER

_bearer = HTTPBearer(auto_error=False, description="An answerdesk API key; none = community")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header")


def client_ip(request: Request) -> str:
    """The address community rate limits count by. Behind a reverse proxy every socket comes from the
    proxy, so X-Forwarded-For is read, but only when the socket is one of ANSWERDESK_TRUSTED_PROXIES
    (anyone else could claim any address): the client is the rightmost address no trusted proxy wrote."""
    peer = request.client.host if request.client else "unknown"
    trusted: Networks = request.app.state.trusted_proxies
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [a.strip() for line in request.headers.getlist("x-forwarded-for") for a in line.split(",")]
    for address in reversed(hops):
        if not _within(address, trusted):
            return address if _parse(address) is not None else peer  # garbage is nobody's address
    return peer


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def trusted_networks(entries: list[str]) -> Networks:
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _within(address: str, networks: Networks) -> bool:
    ip = _parse(address)
    return ip is not None and any(ip in net for net in networks)


def get_identity(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Identity:
    key = bearer.credentials if bearer else header
    ip = client_ip(request)
    if not key:
        # A signed-in user the host site vouches for; a bad token is logged and ignored, never refused.
        user = request.app.state.widget_identity.identity(request.headers.get(USER_HEADER), ip)
        if user is not None:
            return user  # type: ignore[no-any-return]
        # A forged or outdated session token is ignored, not refused: the caller simply owns nothing yet.
        sid = request.app.state.sessions.verify(request.headers.get(SESSION_HEADER))
        return Identity(role="community", client=ip, session=f"widget:{sid}" if sid else None)
    identity = request.app.state.services.keys.resolve(key)
    if identity is None:
        raise HTTPException(401, "Unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.identity = replace(identity, client=ip)  # error handlers read it, not the key again
    return request.state.identity  # type: ignore[no-any-return]


CurrentIdentity = Annotated[Identity, Depends(get_identity)]


def is_admin(request: Request) -> bool:
    """Whether the request carries a valid admin key: for error pages that show the cause only to admins.
    Never raises (it runs while something is already failing, the database perhaps)."""
    known = getattr(request.state, "identity", None)  # resolved by get_identity for this request
    if known is not None:
        return bool(known.role == "admin")
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not key:
        return False
    try:
        identity = request.app.state.services.keys.resolve(key)
    except Exception:  # noqa: BLE001 - any failure means: not known to be an admin
        return False
    return identity is not None and identity.role == "admin"


def start_session(request: Request, identity: Identity) -> tuple[Identity, dict[str, str]]:
    """A caller with neither key nor session gets a new session: the identity that owns what it starts,
    and the response header that hands the token over (the widget keeps it and sends it back)."""
    if identity.owner is not None:
        return identity, {}
    sid, token = request.app.state.sessions.new()
    return replace(identity, session=f"widget:{sid}"), {SESSION_HEADER: token}


def require(*roles: str) -> Any:
    """A dependency that lets only these roles through (403 for any other valid identity)."""

    def check(identity: CurrentIdentity) -> Identity:
        if identity.role not in roles:
            raise HTTPException(403, f"This endpoint is for: {', '.join(roles)}")
        return identity

    return Depends(check)
