"""`answerdesk db ...`: the database schema's revision, and upgrading it (assistant/schema.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from assistant import schema
from assistant.jobs.queue_db import install_schema
from cli.common import console, err, friendly, services

app = typer.Typer(help="The database schema: show its revision, upgrade it.", no_args_is_help=True)


@app.command("upgrade")
@friendly
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations, under a lock: run it once per release, before starting the new version.
    Several at once are safe (the others wait, then find nothing to do). On PostgreSQL it also creates the
    job queue's tables (`answerdesk worker`) when they are missing."""
    engine = services(ctx).engine
    console.print(f"database: {engine.url.render_as_string(hide_password=True)}", highlight=False, soft_wrap=True)
    try:
        result = schema.upgrade(engine)
        jobs = engine.dialect.name == "postgresql" and install_schema(engine)  # the job queue's own tables
    except SQLAlchemyError as exc:  # one transaction: nothing of it stays
        err.print(f"[red]error:[/red] the upgrade failed and was rolled back: {getattr(exc, 'orig', None) or exc}",
                  highlight=False)
        raise typer.Exit(1) from None
    before = result.before or "base"
    if jobs:
        console.print("job queue tables created (procrastinate, for `answerdesk worker`)", highlight=False)
    if not result.changed:
        console.print(f"schema already at revision {result.after}: nothing to do", highlight=False)
        return
    if result.legacy:
        err.print("a database made before migrations: completed to revision 0001 in place, rows kept",
                  highlight=False, soft_wrap=True)
    console.print(f"schema upgraded: {before} -> {result.after}", highlight=False)


@app.command("current")
@friendly
def db_current(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Exit with status 1 unless the schema is up to date.")] = False,
) -> None:
    """Show the schema's revision and whether it is the newest this version knows."""
    try:
        s = schema.status(services(ctx).engine)
    except SQLAlchemyError as exc:
        err.print(f"[red]error:[/red] cannot read the database: {getattr(exc, 'orig', None) or exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"revision: {s.describe()}", highlight=False)
    console.print(f"newest known: {s.head}", highlight=False)
    if s.up_to_date:
        console.print("up to date", highlight=False)
        return
    if s.known:
        console.print("behind: run `answerdesk db upgrade`", highlight=False)
    else:
        console.print("newer than this version of answerdesk: run the version that upgraded it", highlight=False)
    if check:
        raise typer.Exit(1)


@app.command("revision")
@friendly
def db_revision(message: Annotated[str, typer.Argument(help="What the revision changes, e.g. 'add tickets.sla'")],
                ) -> None:
    """For contributors, after changing a table in assistant/db.py: write the next numbered revision file
    with the difference (read it before committing; docs/architecture.md, "Changing the schema")."""
    path = schema.new_revision(message)
    console.print(f"wrote {path}", highlight=False)
