"""`answerdesk worker`: the background work (deliveries, Jira polls, scheduled syncs) on the job queue."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from assistant.services import Services
from cli.common import err, friendly, services

log = logging.getLogger("answerdesk.worker")


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
    syncs = SourcesFile(svc) if svc.settings.sync_interval > 0 else None  # a bad file stops the start here
    run(svc, concurrency, name, syncs)


class SourcesFile:
    """The sources file's sources, for the worker's scheduled syncs (assistant.jobs.tasks.ScheduledSyncs)."""

    def __init__(self, svc: Services) -> None:
        from ingest.sync import load_sources

        self.svc, self.path = svc, svc.settings.sources_file
        self._names = [src.name for src in load_sources(self.path)]  # naming every problem of a bad file

    def names(self) -> list[str]:
        return list(self._names)

    def run(self, name: str) -> None:
        from ingest.sync import load_sources, select, sync_one

        [src] = select(load_sources(self.path), [name], self.path)  # read again: an edit applies from the next run
        outcome = sync_one(self.svc, src)
        if outcome.stats is None:
            log.error("scheduled sync of %s failed: %s", name, outcome.error)
        else:
            log.info("scheduled sync of %s: %s", name, outcome.stats.summary())
