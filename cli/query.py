"""`answerdesk search`, `status`, `ask` and `suggest`: what the index holds and what it answers."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, friendly, services


@friendly
def search(
    ctx: typer.Context,
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
    hits = services(ctx).retriever.search(question, k=k, where=where or None)
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


@friendly
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What is indexed, per source: documents, chunks, last run."""
    rows = services(ctx).store.status()
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


@friendly
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your question.")],
    audience: Annotated[
        list[str] | None, typer.Option(help="Answer only from these audiences (default: all, as an operator).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON.")] = False,
) -> None:
    """Answer QUESTION from the index, with numbered sources and the confidence."""
    response = services(ctx).assistant.respond(question, where={"audience": audience} if audience else None)
    if as_json:
        console.print_json(json.dumps(response.to_dict(), default=str))
        return
    console.print(response.answer, highlight=False, markup=False)
    console.print()
    for c in response.citations:
        console.print(f"[{c.n}] {c.title}  {c.url}", highlight=False, markup=False)
    note = " (escalated to a human)" if response.escalated else ""
    console.print(f"confidence {response.confidence:.2f}{note}", style="dim")


@friendly
def suggest_cmd(
    ctx: typer.Context,
    ticket_key: Annotated[str, typer.Argument(help="A Jira ticket key, e.g. SUP-123")],
    post: Annotated[bool, typer.Option(help="Add it to the ticket as an internal comment")] = False,
) -> None:
    """A suggested reply for a Jira ticket, with sources and similar resolved tickets."""
    result = services(ctx).agent_assist.suggest(ticket_key, post)
    console.print(result.comment(), markup=False, highlight=False)
    if result.posted:
        console.print(f"Posted to {ticket_key} as an internal comment.", style="dim")
