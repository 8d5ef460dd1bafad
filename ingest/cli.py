"""`answerdesk ingest ...` commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant import cli as base_cli
from assistant.cli import console, friendly
from ingest.confluence.spaces import audience_map
from ingest.docs import index_folder
from ingest.pipeline import IngestStats

app = typer.Typer(help="Index sources into the knowledge base.", no_args_is_help=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[item]}"), console=console, transient=False,
    )


def index_with_progress(name: str, run: Callable[[Callable[[str], None]], IngestStats]) -> None:
    """Run a connector's sync with a progress bar (its length unknown up front), then report."""
    with progress_bar() as bar:
        task = bar.add_task(f"Indexing {name}", total=None, item="")
        stats = run(lambda label: bar.update(task, advance=1, item=label))
    report(stats)


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
    name = source or path.resolve().name
    svc = base_cli.services()  # looked up at call time, so tests (and embedders) can swap it
    with progress_bar() as bar:
        task = bar.add_task(f"Indexing {name}", total=None, item="")
        stats = index_folder(svc, name, path, base_url,
                             on_document=lambda label: bar.update(task, advance=1, item=label),
                             on_total=lambda n: bar.update(task, total=n))
    report(stats)


@app.command("confluence")
@friendly
def confluence(
    url: Annotated[str, typer.Option(help="Cloud: https://SITE.atlassian.net/wiki; Data Center: the address you "
                                          "open Confluence at (with its context path, e.g. /confluence).")],
    space: Annotated[list[str], typer.Option("--space", help="Space key; repeat for several spaces.")],
    cloud: Annotated[bool, typer.Option(
        "--cloud", help="Confluence Cloud: Basic auth with ANSWERDESK_CONFLUENCE_USER (e-mail) and an API token.")
    ] = False,
    internal_space: Annotated[
        list[str] | None, typer.Option(help="Space whose pages are internal-only; repeatable.")] = None,
    customer_space: Annotated[
        list[str] | None, typer.Option(help="Space whose pages paying customers may see; repeatable.")] = None,
    public_space: Annotated[
        list[str] | None, typer.Option(help="Space whose pages anyone may see, whatever Confluence's own "
                                            "permission says; repeatable. Use with care.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: confluence-<space keys>).")] = None,
) -> None:
    """Index Confluence spaces: only changed pages are fetched and embedded, deleted or moved pages removed.

    Credentials: ANSWERDESK_CONFLUENCE_TOKEN (Cloud API token, or Data Center personal access token) and,
    for Cloud, ANSWERDESK_CONFLUENCE_USER. Restricted pages are always internal. A space not mapped follows
    its permission in Confluence: public if anonymous users may view it, otherwise (or if that cannot be
    read) internal; the summary says which."""
    from ingest.confluence.pages import sync_confluence

    name = source or "confluence-" + "-".join(k.lower() for k in space)
    svc = base_cli.services()
    index_with_progress(name, lambda progress: sync_confluence(
        svc, name, url, list(space), cloud, audience_map(internal_space, customer_space, public_space),
        on_document=progress))


@app.command("jira")
@friendly
def jira(
    url: Annotated[str, typer.Option(help="Cloud: https://SITE.atlassian.net; Data Center: your Jira's address.")],
    jql: Annotated[str | None, typer.Option(help="Which tickets (default: resolved tickets of "
                                                 "ANSWERDESK_JIRA_PROJECT).")] = None,
    cloud: Annotated[bool, typer.Option("--cloud", help="Jira Cloud: enhanced search, Basic auth with "
                                                        "ANSWERDESK_JIRA_USER (e-mail) and an API token.")] = False,
    customer_project: Annotated[
        list[str] | None, typer.Option(help="Project whose tickets customers may see (default: internal).")] = None,
    public_project: Annotated[
        list[str] | None, typer.Option(help="Project whose tickets anyone may see; use with care.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: jira).")] = None,
) -> None:
    """Index resolved Jira tickets, one document per ticket, with personal data redacted.

    Internal comments (JSM internal notes, role-restricted comments) are never indexed. Tickets are
    internal unless their project is mapped with --customer-project or --public-project."""
    from ingest.jira import sync_jira

    audiences = {key: "public" for key in public_project or []}
    audiences.update({key: "customer" for key in customer_project or []})
    name = source or "jira"
    svc = base_cli.services()
    index_with_progress(name, lambda progress: sync_jira(svc, name, url, jql, cloud, audiences,
                                                         on_document=progress))


@app.command("github")
@friendly
def github(
    repo: Annotated[str, typer.Argument(help="OWNER/REPO (or https://github.com/OWNER/REPO).")],
    issues: Annotated[bool, typer.Option(
        "--issues", help="Closed issues that were completed, with their comments (default: issues and discussions).")
    ] = False,
    discussions: Annotated[bool, typer.Option("--discussions", help="Answered discussions.")] = False,
    since: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="Leave out what was last updated before this day (YYYY-MM-DD).")] = None,
    audience: Annotated[str | None, typer.Option(
        help="public, customer or internal (default: public for a public repository, internal otherwise).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore the saved state and list everything again.")] = False,
    max_wait: Annotated[int, typer.Option(
        min=0, help="Most seconds this run may wait out GitHub rate limits before it stops (re-run to resume).")
    ] = 3900,
    source: Annotated[str | None, typer.Option(help="Source name (default: github-OWNER-REPO).")] = None,
) -> None:
    """Index a GitHub repository's closed issues and answered discussions, with personal data redacted.

    Token: ANSWERDESK_GITHUB_TOKEN. GitHub Enterprise Server: ANSWERDESK_GITHUB_URL=https://HOST/api/v3.
    Incremental: an unchanged repository costs a few free 304 answers (docs/github.md)."""
    from ingest.github.sync import default_source, sync_github

    both = not issues and not discussions
    name = source or default_source(repo)
    svc = base_cli.services()
    index_with_progress(name, lambda progress: sync_github(
        svc, name, repo, issues=issues or both, discussions=discussions or both,
        since=since.date() if since else None, audience=audience, full=full, max_wait=float(max_wait),
        on_document=progress, on_wait=lambda message: console.print(f"[yellow]{message}[/yellow]", highlight=False)))
