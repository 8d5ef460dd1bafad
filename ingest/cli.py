"""`answerdesk ingest ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant import cli as base_cli
from assistant.cli import console, friendly
from ingest.docs import folder_refs, list_files
from ingest.pipeline import Ingestor, IngestStats

app = typer.Typer(help="Index sources into the knowledge base.", no_args_is_help=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[item]}"), console=console, transient=False,
    )


def report(stats: IngestStats) -> None:
    for label, message in stats.failures:
        console.print(f"[red]failed:[/red] {label}: {message}", highlight=False)
    console.print(stats.summary(), highlight=False)
    if stats.failed:
        console.print(f"[red]{stats.failed} document(s) could not be indexed; the others were.[/red]")
        raise typer.Exit(1)


@app.command("docs")
@friendly
def docs(
    path: Annotated[Path, typer.Argument(help="A folder (or one file) of .md, .rst, .html files.")],
    base_url: Annotated[
        str | None, typer.Option(help="Public URL of the folder; links become BASE/relative/path#anchor.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: the folder's name).")] = None,
) -> None:
    """Index a docs folder: only new and changed files are embedded, deleted files are removed."""
    files = list_files(path)
    name = source or path.resolve().name
    svc = base_cli.services()  # looked up at call time, so tests (and embedders) can swap it
    with progress_bar() as bar:
        task = bar.add_task(f"Indexing {name}", total=len(files), item="")
        ingestor = Ingestor(svc, name, on_document=lambda label: bar.update(task, advance=1, item=label))
        stats = ingestor.run(folder_refs(path, files, base_url), kind="docs", location=str(path.resolve()))
    report(stats)
