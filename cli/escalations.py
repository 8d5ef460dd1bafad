"""`answerdesk escalations ...`: the escalation outbox."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, err, friendly, services

app = typer.Typer(help="The escalation outbox: what is pending or failed, and delivering it.", no_args_is_help=True)


@app.command("list")
@friendly
def escalations_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, pending, delivered or failed")] = None,
    limit: int = 50,
) -> None:
    """Recent escalations with their delivery state, ticket, and why one is waiting or failed."""
    from assistant.escalation.queue import list_escalations

    table = Table()
    for col in ("id", "created", "status", "ticket", "attempts", "priority", "question", "last error"):
        table.add_column(col, overflow="fold")
    for r in list_escalations(services(ctx).store.engine, limit=limit, status=status):
        table.add_row(r.id[:8], str(r.created_at)[:19], r.status, r.ticket_key or "", str(r.attempts),
                      r.priority or "", " ".join(r.question.split())[:60], (r.last_error or "")[:300])
    console.print(table)


@app.command("retry")
@friendly
def escalations_retry(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="One escalation (its id or the start of it) to put back, "
                                                   "e.g. a failed one after fixing what Jira refused")] = None,
    summary: Annotated[str | None, typer.Option(help="The ticket summary to use instead of the question")] = None,
) -> None:
    """Deliver every pending escalation now (ignoring backoff), or retry one; exit 1 if any is left."""
    svc = services(ctx)
    if not svc.queue.delivers:
        console.print("Escalations stay in the local queue (ANSWERDESK_ESCALATION=local): nothing to deliver.")
        return
    if ref is not None:
        row = svc.queue.retry(ref, summary)
        console.print(f"{row.id[:8]}: {row.status} {row.ticket_key or ''}".rstrip())
        if row.status != "delivered":
            err.print(f"[red]not delivered:[/red] {row.last_error}", highlight=False)
            raise typer.Exit(1)
        return
    if summary is not None:
        err.print("[red]error:[/red] --summary needs the escalation it is for (answerdesk escalations retry REF)")
        raise typer.Exit(2)
    result = svc.queue.deliver_pending(limit=1000, force=True)
    console.print(f"delivered {result['delivered']} of {result['due']} pending")
    from assistant.escalation.queue import count_escalations

    failed = count_escalations(svc.store.engine, status="failed")
    if failed:
        console.print(f"{failed} failed (Jira refused them): see `answerdesk escalations list --status failed`, "
                      "fix the cause, then `answerdesk escalations retry REF`.")
    if result["delivered"] < result["due"]:
        raise typer.Exit(1)
