"""`answerdesk worker`: the background work (deliveries, Jira polls, scheduled syncs) on the job queue."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli.common import err, friendly, services


@friendly
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option(
        help="Jobs run at once (default: ANSWERDESK_WORKER_CONCURRENCY).", min=1, max=64)] = None,
    name: Annotated[str | None, typer.Option(help="This worker's name in the logs and the job table.")] = None,
) -> None:
    """Run background jobs until stopped (Ctrl+C, SIGTERM); run one or more next to `answerdesk serve` with
    ANSWERDESK_WORKER=external. Needs PostgreSQL; creates the job queue's tables when missing."""
    from assistant.jobs.tasks import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # a line per job otherwise
    svc = services(ctx)
    if svc.settings.worker == "embedded":
        err.print("note: ANSWERDESK_WORKER is `embedded`, so `answerdesk serve` delivers too (safely: rows are "
                  "leased); set ANSWERDESK_WORKER=external on the API processes to leave it to workers",
                  highlight=False, soft_wrap=True)
    run(svc, concurrency, name)
