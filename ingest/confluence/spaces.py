"""Who may see a Confluence space's pages when the configuration does not say: the space's own permission.

A space that anonymous users may view in Confluence is public; any other space is internal, and so is one
whose permissions cannot be read (fail closed: indexing a members-only space as public would hand its pages
to every community user). The configuration (--public-space / --customer-space / --internal-space, or the
sources file) overrides this per space. Restricted pages stay internal whatever their space's audience.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from assistant.atlassian.errors import status_of
from assistant.errors import SourceError


class Client(Protocol):
    """What reading a space's permissions needs of ingest.confluence.pages.Client (a protocol, so this
    module does not import the one that imports it)."""

    cloud: bool
    api: Any

    def raw_call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


def anonymous_view(client: Client, key: str, space: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether anonymous users may view the space; None, with the reason, when that cannot be read.

    Cloud: the space's `permissions` expansion (v1), where a `read`/`space` grant has anonymousAccess true.
    Data Center: GET rest/api/space/{key}/permissions/anonymous (space admins only), the operations granted
    to the anonymous user."""
    if client.cloud:
        grants = space.get("permissions")
        if not isinstance(grants, list):
            return None, "the account may not read its permissions"
        return any(isinstance(g, dict) and g.get("anonymousAccess") is True
                   and _is_view(g.get("operation"), "operation") for g in grants), ""
    try:
        grants = client.raw_call(f"the anonymous permissions of space {key}", client.api.get,
                                 f"rest/api/space/{key}/permissions/anonymous")
    except SourceError as exc:  # no admin rights, or a version without this API
        status = status_of(exc.__cause__)
        return None, f"its permissions could not be read: {f'HTTP {status}' if status else exc}"
    if not isinstance(grants, list):
        return None, "its permissions could not be read: unexpected answer"
    return any(isinstance(g, dict) and _is_view(g.get("operation"), "operationKey") for g in grants), ""


def _is_view(operation: Any, name: str) -> bool:
    return isinstance(operation, dict) and operation.get(name) == "read" and operation.get("targetType") == "space"


def space_audiences(client: Client, found: dict[str, dict[str, Any]], configured: dict[str, str]
                    ) -> tuple[dict[str, str], list[str]]:
    """The audience of every space in `found` (key -> the space as Confluence describes it), and one line
    per space for the run summary saying which audience it got and why."""
    audiences: dict[str, str] = {}
    notes: list[str] = []
    for key, space in found.items():
        if key in configured:
            audiences[key] = configured[key]
            notes.append(f"space {key}: {configured[key]} (as configured)")
            continue
        anonymous, problem = anonymous_view(client, key, space)
        audiences[key] = "public" if anonymous else "internal"
        if anonymous is None:
            why = f"{problem}; map the space as public, customer or internal to choose"
        else:
            why = f"anonymous users {'may' if anonymous else 'may not'} view it in Confluence"
        notes.append(f"space {key}: {audiences[key]} ({why})")
    return audiences, notes
