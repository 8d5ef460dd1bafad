"""`answerdesk sync`: every source in the sources file, one summary line each.

Exit code: 0 everything worked, 1 some source failed (the others still ran), 2 the file is unusable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.errors import ConfigError
from cli.common import console, err, services
from cli.progress import shown
from ingest.sync import Outcome, load_sources, select, sync_one


def sync(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Sources file, TOML or YAML (default: ANSWERDESK_SOURCES_FILE, answerdesk.toml).")
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="Sync only this source (repeat for several).")] = None,
) -> None:
    """Sync every configured source incrementally; exit 1 if any source failed, 2 if the file is invalid."""
    try:
        svc = services(ctx)
        path = config or svc.settings.sources_file
        sources = select(load_sources(path), only, path)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    outcomes = []
    for src in sources:
        with shown(f"Syncing {src.name}") as progress:
            outcome = sync_one(svc, src, progress)
        outcomes.append(outcome)
        _print(outcome)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(outcomes)} source(s) failed:[/red]", highlight=False)
        for o in failed:
            cause = o.error or f"{o.stats.failed if o.stats else 0} item(s) could not be indexed, the others were"
            console.print(f"  {o.source.name}: {cause}", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]{len(outcomes)} source(s) synced[/green]", highlight=False)


def _print(outcome: Outcome) -> None:
    head = f"{outcome.source.name} ({outcome.source.type})"
    if outcome.stats is None:
        console.print(f"[red]{head}: failed:[/red] {outcome.error}", highlight=False)
        return
    stats = outcome.stats
    for label, message in stats.failures:
        console.print(f"[red]  failed:[/red] {label}: {message}", highlight=False)
    status = "[yellow]partial[/yellow]" if stats.failed else "[green]ok[/green]"
    console.print(f"{head}: {status}: {stats.summary()}", highlight=False)
