"""The jobs `answerdesk worker` runs, as procrastinate tasks built over one Services per process.

- every ANSWERDESK_DELIVERY_INTERVAL: an escalation pass that defers one delivery job per due escalation
  (so several workers deliver side by side), posts agent assist and contact notes still owed and refreshes
  delivered tickets' Jira status; and a reply pass that delivers the reply outbox;
- every ANSWERDESK_JIRA_POLL_INTERVAL (when on): a poll of Jira for answers on open tickets;
- every ANSWERDESK_SYNC_INTERVAL (when on): one `sync` job per source of the sources file, under a lock
  named after the source (procrastinate runs jobs sharing a lock one at a time) and a queueing lock (at most
  one waiting), so one source never syncs twice at once and slow syncs do not pile up;
- every minute: jobs of a worker that stopped sending heartbeats (killed, machine lost) go back to the
  queue, which also frees the source lock such a job held.

A periodic job is deferred once per tick whatever the number of workers (procrastinate records each tick).
Each pass carries a queueing lock, so a slow pass is never followed by a pile of waiting ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status

from assistant.escalation.factory import jira_client_factory
from assistant.escalation.jira_queue import JiraQueue
from assistant.jobs.queue_db import conninfo
from assistant.jobs.schedule import cron_every
from assistant.replies.poll import poll_jira
from assistant.services import Services

log = logging.getLogger("answerdesk.worker")
STALLED_AFTER_S = 60  # a worker silent this long (it beats every 10 s) is taken for dead


class ScheduledSyncs(Protocol):
    """The sources a worker syncs on a schedule. The CLI builds it from the sources file and ingest's
    sync (assistant does not import ingest: ingestion depends on the assistant, not the other way)."""

    def names(self) -> list[str]: ...

    def run(self, name: str) -> None: ...


def build_app(svc: Services, syncs: ScheduledSyncs | None = None) -> procrastinate.App:
    """The job queue with this deployment's tasks and schedules (read from the settings; `syncs`: the
    sources file's sources, synced every ANSWERDESK_SYNC_INTERVAL)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(svc.settings)))
    _escalation_tasks(app, svc)
    _reply_tasks(app, svc)
    if syncs is not None:
        _sync_tasks(app, svc, syncs)

    @app.periodic(cron="* * * * *", periodic_id="stalled", queueing_lock="answerdesk.retry_stalled")
    @app.task(name="answerdesk.retry_stalled", pass_context=True)
    async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_S):
            assert job.id is not None
            try:
                await manager.retry_job(job)
                log.warning("job %s (%s) was running on a worker that stopped: queued again", job.id, job.task_name)
            except UniqueViolation:  # the next run is already waiting (queueing lock): that one will do
                await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
                log.warning("job %s (%s) was running on a worker that stopped: closed as failed (its next run "
                            "is queued), which frees its lock", job.id, job.task_name)

    return app


def _escalation_tasks(app: procrastinate.App, svc: Services) -> None:
    queue = svc.queue
    if not isinstance(queue, JiraQueue):  # the local queue only records: nothing to deliver
        return

    @app.task(name="answerdesk.deliver_escalation")
    def deliver_escalation(escalation_id: str) -> bool:
        return queue.deliver(escalation_id)  # claims the row with its lease: a second job is a no-op

    @app.periodic(cron=_every(svc.settings.delivery_interval), periodic_id="escalations",
                  queueing_lock="answerdesk.escalations_pass")
    @app.task(name="answerdesk.escalations_pass")
    async def escalations_pass(timestamp: int) -> None:
        for escalation_id in await asyncio.to_thread(queue.due):
            with contextlib.suppress(AlreadyEnqueued):  # the previous pass's job has not started yet
                await deliver_escalation.configure(queueing_lock=f"escalation:{escalation_id}").defer_async(
                    escalation_id=escalation_id)
        if queue.assist is not None:
            await asyncio.to_thread(queue.assist.post_pending)  # posts that failed, or were cut short
        await asyncio.to_thread(queue.notes.post_pending)  # contact changes the agent has not seen yet
        await asyncio.to_thread(queue.refresh_statuses)


def _reply_tasks(app: procrastinate.App, svc: Services) -> None:
    s = svc.settings
    if s.escalation != "jira":  # only Jira tickets get answers back
        return
    outbox = svc.replies

    @app.periodic(cron=_every(s.delivery_interval), periodic_id="replies", queueing_lock="answerdesk.replies_pass")
    @app.task(name="answerdesk.replies_pass")
    def replies_pass(timestamp: int) -> None:
        outbox.deliver_pending()

    factory = jira_client_factory(s)
    poll_every = cron_every(s.jira_poll_interval)
    if factory is None or poll_every is None:
        return

    @app.periodic(cron=poll_every, periodic_id="jira-poll", queueing_lock="answerdesk.poll_jira",
                  lock="answerdesk.poll_jira")
    @app.task(name="answerdesk.poll_jira")
    def poll(timestamp: int) -> None:
        if poll_jira(outbox, factory()):
            outbox.deliver_pending()


def _sync_tasks(app: procrastinate.App, svc: Services, syncs: ScheduledSyncs) -> None:
    every = cron_every(svc.settings.sync_interval)
    if every is None:
        return

    @app.task(name="answerdesk.sync_source")
    def sync_source(timestamp: int, source: str) -> None:
        syncs.run(source)

    for source in syncs.names():
        lock = f"answerdesk.sync:{source}"
        configure: dict[str, Any] = {"lock": lock, "queueing_lock": lock, "task_kwargs": {"source": source}}
        app.periodic(cron=every, periodic_id=f"sync:{source}", **configure)(sync_source)


def _every(seconds: float) -> str:
    cron = cron_every(seconds)
    assert cron is not None  # delivery_interval is > 0 by its setting
    return cron


def run(svc: Services, concurrency: int | None = None, name: str | None = None,
        syncs: ScheduledSyncs | None = None) -> None:
    """Run a worker until SIGINT/SIGTERM: its tables first (created when missing), then the jobs."""
    from assistant.jobs.queue_db import install_schema

    conninfo(svc.settings)  # refuses SQLite, naming the setting
    svc.store  # noqa: B018 - refuses a schema this version cannot use, naming `answerdesk db upgrade`
    if install_schema(svc.engine):
        log.info("created the job queue's tables")
    svc.queue, svc.replies  # noqa: B018 - built once here, not raced for by the first jobs' threads
    app = build_app(svc, syncs)
    app.run_worker(concurrency=concurrency or svc.settings.worker_concurrency, name=name,
                   delete_jobs="successful", shutdown_graceful_timeout=30)
