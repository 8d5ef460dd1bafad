"""Background work on a job queue (procrastinate, in PostgreSQL), for `answerdesk worker`.

In the embedded default the same work runs as threads inside `answerdesk serve` (assistant/api/app.py);
with ANSWERDESK_WORKER=external it runs here, in as many worker processes as wanted. Exactly-once delivery
never rests on the queue: every outbox row is claimed with a lease (escalation/jira_queue.py,
replies/outbox.py), so two workers, or a worker and an embedded thread, never deliver one row twice."""
