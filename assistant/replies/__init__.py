"""Answers back to the asker: Jira's public comments and resolutions (webhook or poll) go through a reply
outbox to the widget conversation, the Slack thread and e-mail; resolved tickets ask for a rating.

Modules: `events` (Jira's webhook payloads and signature), `outbox` (record and deliver, exactly once),
`channels` (widget, Slack, e-mail), `ratings` (signed rating links, stored answers), `poll` (the loop
that polls Jira and drives the outbox)."""
