"""The `answerdesk` application: the command groups of cli/ assembled under one root."""

from __future__ import annotations

import typer

from cli import db, escalations, evaluate, ingest, keys, query, serve, sync, worker

app = typer.Typer(help="answerdesk: cited answers from your docs, offline.", no_args_is_help=True, add_completion=False)
app.command()(query.search)
app.command()(query.status)
app.command()(query.ask)
app.command()(serve.serve)
app.add_typer(ingest.app, name="ingest")
app.add_typer(evaluate.app, name="eval")
app.command("sync")(sync.sync)
app.command("worker")(worker.worker)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(escalations.app, name="escalations")
app.command("suggest")(query.suggest_cmd)


def main() -> None:
    app()
