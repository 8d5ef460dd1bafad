"""`answerdesk` command line. This is an edge: it composes the command groups of ingest/ and eval/
(the only place assistant/ reaches back to them) and turns our errors into messages and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from assistant.errors import AnswerdeskError
from assistant.services import Services
from assistant.settings import load_settings

app = typer.Typer(help="answerdesk: cited answers from your docs, offline.", no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


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


def services() -> Services:
    return Services(load_settings())


@app.command()
@friendly
def search(
    question: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="How many chunks.")] = 5,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources.")] = None,
    audience: Annotated[
        list[str] | None, typer.Option(help="Only these audiences (public, customer, internal).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the chunks that best match QUESTION: title, link and fused score."""
    where: dict[str, str | list[str]] = {}
    if source:
        where["source"] = source
    if audience:
        where["audience"] = audience
    hits = services().retriever.search(question, k=k, where=where or None)
    if as_json:
        rows = [
            {"rank": i, "title": h.chunk.title, "heading": h.chunk.heading, "url": h.chunk.url,
             "source": h.chunk.source, "score": round(h.score, 5), "dense": h.dense_score, "keyword": h.keyword_score}
            for i, h in enumerate(hits, 1)
        ]
        console.print_json(json.dumps(rows))
        return
    if not hits:
        console.print("No matching chunks. Is anything indexed? Try `answerdesk status`.")
        raise typer.Exit(1)
    table = Table(show_lines=False)
    for col in ("#", "title", "section", "url", "score"):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), h.chunk.title, h.chunk.heading, h.chunk.url, f"{h.score:.4f}")
    console.print(table)


@app.command()
@friendly
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What is indexed, per source: documents, chunks, last run."""
    rows = services().store.status()
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("Nothing indexed yet. Run `answerdesk ingest docs PATH`.")
        return
    table = Table()
    for col in ("source", "documents", "chunks", "last run", "result"):
        table.add_column(col)
    for r in rows:
        run = r["last_run"] or {}
        when = run.get("finished_at") or run.get("started_at") or ""
        result = run.get("status", "")
        if run.get("error"):
            result += f" ({run['error'][:80]})"
        table.add_row(r["source"], str(r["documents"]), str(r["chunks"]), str(when)[:19], result)
    console.print(table)


@app.command()
@friendly
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    audience: Annotated[
        list[str] | None, typer.Option(help="Answer only from these audiences (default: all, as an operator).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON.")] = False,
) -> None:
    """Answer QUESTION from the index, with numbered sources and the confidence."""
    response = services().assistant.respond(question, where={"audience": audience} if audience else None)
    if as_json:
        console.print_json(json.dumps(response, default=str))
        return
    console.print(response["answer"], highlight=False, markup=False)
    console.print()
    for c in response["citations"]:
        console.print(f"[{c['n']}] {c['title']}  {c['url']}", highlight=False, markup=False)
    note = " (escalated to a human)" if response["escalated"] else ""
    console.print(f"confidence {response['confidence']:.2f}{note}", style="dim")


@app.command()
@friendly
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000) -> None:
    """Serve the HTTP API and the demo page."""
    import uvicorn

    from assistant.api import create_app

    app_ = create_app(load_settings())
    console.print(f"answerdesk on http://{host}:{port}  (API docs: /docs)")
    # Forwarded addresses are trusted only per ANSWERDESK_TRUSTED_PROXIES (assistant/api/auth.py), not by
    # uvicorn's own default of believing 127.0.0.1.
    uvicorn.run(app_, host=host, port=port, log_level="info", proxy_headers=False)


def main() -> None:
    register()
    app()


def register() -> None:
    """Attach the command groups that live in ingest/ and eval/ (idempotent, for tests too)."""
    from eval.cli import app as eval_app
    from ingest.cli import app as ingest_app
    from ingest.site import site_command
    from ingest.sync import sync_command

    if any(g.name == "ingest" for g in app.registered_groups):
        return
    ingest_app.command("site")(site_command)
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(eval_app, name="eval")
    app.command("sync")(sync_command)


keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@friendly
def keys_create(
    role: Annotated[str, typer.Option(help="customer, agent or admin")],
    org: Annotated[str | None, typer.Option(help="Customer organisation (customers only)")] = None,
    tier: Annotated[str | None, typer.Option(help="Customer tier: free (default), paid, ...")] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
) -> None:
    """Create a key. It is printed once and only its hash is stored."""
    try:
        key, record = services().keys.create(role, name, org, tier)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(key, markup=False, highlight=False)
    err.print(f"Key {record['id']} ({record['role']}{', ' + record['org'] if record['org'] else ''}"
              f"{', ' + record['tier'] if record['tier'] else ''}) created. Store it now: it is not shown again.")


@keys_app.command("list")
@friendly
def keys_list() -> None:
    """Keys with their role, organisation, tier and state (never the key itself)."""
    table = Table()
    for col in ("id", "prefix", "name", "role", "org", "tier", "created", "revoked"):
        table.add_column(col)
    for r in services().keys.list():
        table.add_row(r["id"], r["prefix"] + "…", r["name"], r["role"], r["org"] or "", r["tier"] or "",
                      str(r["created_at"])[:19], str(r["revoked_at"] or "")[:19])
    console.print(table)


@keys_app.command("revoke")
@friendly
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`)")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    if not services().keys.revoke(key_id):
        err.print(f"[red]error:[/red] no active key {key_id}")
        raise typer.Exit(1)
    console.print(f"Revoked {key_id}.")


escalations_app = typer.Typer(help="The escalation outbox: what is pending or failed, and delivering it.",
                              no_args_is_help=True)
app.add_typer(escalations_app, name="escalations")


@escalations_app.command("list")
@friendly
def escalations_list(status: Annotated[str | None, typer.Option(help="open, pending, delivered or failed")] = None,
                     limit: int = 50) -> None:
    """Recent escalations with their delivery state, ticket, and why one is waiting or failed."""
    from assistant.escalation.queue import list_escalations

    table = Table()
    for col in ("id", "created", "status", "ticket", "attempts", "priority", "question", "last error"):
        table.add_column(col, overflow="fold")
    for r in list_escalations(services().store.engine, limit=limit, status=status):
        table.add_row(r.id[:8], str(r.created_at)[:19], r.status, r.ticket_key or "", str(r.attempts),
                      r.priority or "", " ".join(r.question.split())[:60], (r.last_error or "")[:300])
    console.print(table)


@escalations_app.command("retry")
@friendly
def escalations_retry(
    ref: Annotated[str | None, typer.Argument(help="One escalation (its id or the start of it) to put back, "
                                                   "e.g. a failed one after fixing what Jira refused")] = None,
    summary: Annotated[str | None, typer.Option(help="The ticket summary to use instead of the question")] = None,
) -> None:
    """Deliver every pending escalation now (ignoring backoff), or retry one; exit 1 if any is left."""
    svc = services()
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


@app.command("suggest")
@friendly
def suggest_cmd(
    ticket_key: Annotated[str, typer.Argument(help="A Jira ticket key, e.g. SUP-123")],
    post: Annotated[bool, typer.Option(help="Add it to the ticket as an internal comment")] = False,
) -> None:
    """A suggested reply for a Jira ticket, with sources and similar resolved tickets."""
    result = services().agent_assist.suggest(ticket_key, post)
    console.print(result.comment(), markup=False, highlight=False)
    if result.posted:
        console.print(f"Posted to {ticket_key} as an internal comment.", style="dim")
