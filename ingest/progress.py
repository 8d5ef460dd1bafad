"""How a connector reports progress without knowing who is watching: the CLI draws a rich bar from
these calls, tests and library callers pass nothing and get `SILENT`."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Calls a connector makes while it syncs; every call is optional and cheap."""

    def start(self, total: int | None) -> None:
        """How many items this run will handle, once known (None: not known up front)."""

    def advance(self, item: str) -> None:
        """One item (a page, a ticket, a file) was handled; `item` names it for the operator."""

    def note(self, text: str) -> None:
        """Something the operator should see now, e.g. a rate-limit wait."""


class Silent:
    """The default: progress goes nowhere."""

    def start(self, total: int | None) -> None:
        pass

    def advance(self, item: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


SILENT: Progress = Silent()
