"""What the Confluence and Jira connectors share: every call goes through the Atlassian adapter, and a
failure becomes a SourceError worded for that source by its `explain` (what the status means, what to do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant.atlassian.errors import AtlassianError
from assistant.atlassian.errors import call as atlassian_call
from assistant.errors import SourceError


class AtlassianSource:
    product: str  # "Confluence" or "Jira", as the adapter's messages name it
    url: str

    def raw_call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call, whatever JSON it answers; failures become SourceErrors naming the cause."""
        try:
            return atlassian_call(self.product, self.url, what, fn, *args, **kwargs)
        except AtlassianError as exc:
            raise SourceError(self.explain(exc, what)) from exc

    def explain(self, exc: AtlassianError, what: str) -> str:
        raise NotImplementedError
