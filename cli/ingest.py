"""`answerdesk ingest TYPE ...`: one source from options. Each command builds the same config model as the
sources file (ingest/connectors.py) and runs it through the connector seam with a progress bar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import friendly, services
from cli.progress import report, shown
from ingest.connectors import audience_map, build, run_source

app = typer.Typer(help="Index sources into the knowledge base.", no_args_is_help=True)


def _index(ctx: typer.Context, kind: str, name: str, **options: Any) -> None:
    config = build(kind, name=name, **options)  # bad options fail here, before any service starts
    svc = services(ctx)
    with shown(f"Indexing {name}") as progress:
        stats = run_source(svc, config, progress)
    report(stats)


@app.command("docs")
@friendly
def docs(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A folder (or one file) of .md, .rst, .html files.")],
    base_url: Annotated[
        str | None, typer.Option(help="Public URL of the folder; links become BASE/relative/path#anchor.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: the folder's name).")] = None,
) -> None:
    """Index a docs folder: only new and changed files are embedded, deleted files are removed."""
    _index(ctx, "docs", source or path.resolve().name, path=path, base_url=base_url)


@app.command("confluence")
@friendly
def confluence(
    ctx: typer.Context,
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
    _index(ctx, "confluence", source or "confluence-" + "-".join(k.lower() for k in space), url=url, spaces=space,
           cloud=cloud, internal_spaces=internal_space, customer_spaces=customer_space, public_spaces=public_space)


@app.command("jira")
@friendly
def jira(
    ctx: typer.Context,
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
    _index(ctx, "jira", source or "jira", url=url, jql=jql, cloud=cloud,
           project_audience=audience_map(None, customer_project, public_project))


@app.command("github")
@friendly
def github(
    ctx: typer.Context,
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
    from ingest.github.sync import default_source, split_repo

    both = not issues and not discussions
    _index(ctx, "github", source or default_source(repo), repo="/".join(split_repo(repo)),
           issues=issues or both, discussions=discussions or both, since=since.date() if since else None,
           audience=audience, full=full, max_wait=max_wait)


@app.command("site")
@friendly
def site(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The docs site (its /sitemap.xml is read) or a sitemap's URL.")],
    source: Annotated[str | None, typer.Option(help="Source name (default: the site's host name).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Pages fetched at the same time.")] = 4,
) -> None:
    """Index a docs site from its sitemap: only changed pages are downloaded and embedded."""
    from ingest.site.sitemaps import default_source_name

    _index(ctx, "site", source or default_source_name(url), url=url, concurrency=concurrency)
