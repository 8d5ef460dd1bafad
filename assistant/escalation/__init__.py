"""Escalation: where a case goes when the assistant is not sure or the user asks for a human.

- queue.py: the TicketQueue protocol (everything its callers use), the typed EscalationRecord, and
  the local queue (a database table, also the outbox the Jira queue delivers from);
- handoff.py: routing (priority and SLA label by who asked) and the handoff options offered;
- jira_client.py, jira_queue.py, worker.py: delivery to Jira through the outbox, and its worker loop;
- agent.py: agent assist (a suggested reply for a ticket); candidates.py: resolved escalations as eval cases;
- factory.py: the queue and the Jira client built from settings.

Nothing here imports the `Services` composition root: it builds these and injects them."""
