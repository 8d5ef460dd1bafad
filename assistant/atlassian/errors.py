"""One error type for every Atlassian call, whatever the library or requests raised.

atlassian-python-api raises a zoo (requests errors, HTTPError, its own ApiError keeping the response
in `.reason`); `call` turns all of them into `AtlassianError` carrying the HTTP status, whether the
request never went out, and a message that names the next step where the failure says what it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant.errors import AnswerdeskError


class AtlassianError(AnswerdeskError):
    """A Jira, JSM or Confluence call failed. `status`: the HTTP status, None without an answer.
    `never_sent`: the connection was refused or never made, so the server cannot have acted on it.
    `response`: the vendor's response object, for callers that read Atlassian's error body."""

    def __init__(self, message: str, status: int | None = None, never_sent: bool = False,
                 response: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.never_sent = never_sent
        self.response = response


def status_of(exc: BaseException | None) -> int | None:
    """The HTTP status behind a requests or atlassian-python-api error (ApiError keeps it in .reason)."""
    if isinstance(exc, AtlassianError):
        return exc.status
    return getattr(_response(exc), "status_code", None)


def _response(exc: BaseException | None) -> Any:
    if exc is None:
        return None
    for candidate in (exc, getattr(exc, "reason", None), exc.__cause__, exc.__context__):
        response = getattr(candidate, "response", None)  # not `or`: a 4xx Response is falsy
        if response is not None and getattr(response, "status_code", None) is not None:
            return response
    return None


def call(product: str, url: str, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one vendor call; any failure becomes an AtlassianError naming the product, the call and the cause."""
    import requests

    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        response = _response(exc)
        status = getattr(response, "status_code", None)
        # Refused or never connected: the request never went out. A read timeout or a dropped
        # connection is different: the server may have done the work.
        never_sent = status is None and ("NewConnectionError" in repr(exc) or "ConnectTimeout" in repr(exc)
                                         or "Failed to establish a new connection" in str(exc))
        if status is None and isinstance(exc, requests.ConnectionError):
            message = (f"Cannot reach {product} at {url} ({type(exc).__name__}); check the URL and that this "
                       "machine can reach it.")
        elif status is None and isinstance(exc, requests.Timeout):
            message = f"{product} at {url} did not answer in time ({what}: {type(exc).__name__}); try again later."
        else:
            detail = f"HTTP {status}" if status else type(exc).__name__
            message = f"{product} {what} failed ({detail}): {' '.join(str(exc).split())[:300]}"
        raise AtlassianError(message, int(status) if status is not None else None, never_sent, response) from exc
