"""The one rich progress runner: connectors report through ingest.progress.Progress, drawn here as a bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import rich.progress as rp
import typer

from cli.common import console
from ingest.pipeline import IngestStats
from ingest.progress import Progress


def progress_bar() -> rp.Progress:
    return rp.Progress(
        rp.TextColumn("[bold]{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
        rp.TimeElapsedColumn(), rp.TextColumn("{task.fields[item]}"), console=console, transient=False,
    )


class BarProgress:
    """ingest.progress.Progress on one task of a rich bar; notes print above the bar."""

    def __init__(self, bar: rp.Progress, task: rp.TaskID) -> None:
        self.bar = bar
        self.task = task

    def start(self, total: int | None) -> None:
        self.bar.update(self.task, total=total)

    def advance(self, item: str) -> None:
        self.bar.update(self.task, advance=1, item=item)

    def note(self, text: str) -> None:
        console.print(f"[yellow]{text}[/yellow]", highlight=False)


@contextmanager
def shown(label: str) -> Iterator[Progress]:
    """A bar titled `label` (its length unknown until the connector says) for the duration of a sync."""
    with progress_bar() as bar:
        yield BarProgress(bar, bar.add_task(label, total=None, item=""))


def report(stats: IngestStats) -> None:
    """Failures by name, the summary line; exit 1 when some document could not be indexed."""
    for label, message in stats.failures:
        console.print(f"[red]failed:[/red] {label}: {message}", highlight=False)
    console.print(stats.summary(), highlight=False)
    if stats.failed:
        console.print(f"[red]{stats.failed} document(s) could not be indexed; the others were.[/red]")
        raise typer.Exit(1)
