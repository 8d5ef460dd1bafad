"""What every command shares: the consoles, the `friendly` error wrapper and the services factory."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from assistant.errors import AnswerdeskError
from assistant.services import Services
from assistant.settings import load_settings

console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
ServicesFactory = Callable[[], Services]


def friendly(fn: F) -> F:
    """Our errors become one red line and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AnswerdeskError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def default_services() -> Services:
    return Services(load_settings())


def services(ctx: typer.Context) -> Services:
    """The composition root for this command. `ctx.obj` may carry a factory (tests pass theirs with
    `CliRunner().invoke(app, args, obj=lambda: services)`); otherwise it is built from the settings."""
    factory: ServicesFactory = ctx.obj if callable(ctx.obj) else default_services
    return factory()
