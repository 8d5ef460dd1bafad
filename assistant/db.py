"""Database schema and engine: SQLite by default, PostgreSQL the same way (SQLAlchemy Core).

These tables are what the code reads and writes; the database gets them through numbered migrations
(assistant/migrations/versions/, applied by `answerdesk db upgrade`). A change here needs a new revision
file: tests/test_migrations.py fails until the newest revision builds exactly these tables."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

# Tables a revision makes with raw DDL and that are not in `metadata` (e.g. an SQLite FTS5 table and its
# shadow tables): name prefixes that autogenerate and the schema tests leave alone.
# The database keyword index (assistant/fts.py): an FTS5 virtual table and its shadow tables on SQLite,
# a tsvector table and term statistics on PostgreSQL, created and filled by fts.ensure_index.
# The job queue's tables (procrastinate, assistant/jobs/queue_db.py) are made by the library's own schema.
UNMANAGED_TABLE_PREFIXES: tuple[str, ...] = ("chunks_fts", "keyword_terms", "procrastinate_")


def managed(name: str | None, type_: str, _parents: object = None) -> bool:
    """Alembic's include_name: False for the tables of UNMANAGED_TABLE_PREFIXES."""
    return type_ != "table" or not (name or "").startswith(UNMANAGED_TABLE_PREFIXES)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend: SQLite would hand back naive datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

# One row per indexed document: what we saw last time, so unchanged content is skipped.
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("doc_id", sa.String(1000), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("audience", sa.String(20), nullable=False),
    sa.Column("updated_at", UTCDateTime()),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("indexed_at", UTCDateTime(), nullable=False),
    sa.Column("meta", sa.JSON),  # connector metadata: labels, breadcrumb, version, ticket fields...
)

# Every chunk's text and metadata: the keyword index is rebuilt from here, and hits are read
# from here, so the database stays the one record of what is indexed.
chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("doc_id", sa.String(1000), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("audience", sa.String(20), nullable=False),
    sa.Column("org", sa.String(200), nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    # float16 vectors of the heading and quotable sentences (assistant/answering/sentences.py);
    # NULL for rows written before they existed: the answerer then embeds that chunk itself.
    sa.Column("sentence_vectors", sa.LargeBinary),
    # float16 vector of the title + heading path (row 0 of sentence_vectors, copied): retrieval
    # reads it for ~100 candidates per question instead of embedding their titles (NULL: embedded).
    sa.Column("field_vector", sa.LargeBinary),
    sa.Index("ix_chunks_doc", "source", "doc_id"),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the key; the key is never kept
    sa.Column("prefix", sa.String(12), nullable=False),  # first characters, to recognise a key in lists
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # customer | agent | admin
    sa.Column("org", sa.String(200)),
    sa.Column("tier", sa.String(40)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("last_used_at", UTCDateTime()),
)

# Resolved escalations turned into eval cases: the question and the agent's final answer.
eval_candidates = sa.Table(
    "eval_candidates",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the escalation id
    sa.Column("ticket_key", sa.String(100), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # candidate | accepted | rejected
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Small key/value facts, e.g. the index generation that tells a keyword index it is stale.
state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def create_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while `answerdesk ingest` writes.
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _wal(cur: Any, wait_s: float = 30.0) -> None:
    """Switch to WAL, waiting for other connections: a new database's switch takes an exclusive lock and
    SQLite answers "database is locked" at once, without its busy timeout, to a connection that asks
    meanwhile (processes or replicas opening one new file together). Once WAL, it stays WAL."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def init_db(engine: Engine) -> None:
    """Bring the database to the newest schema revision, under the migration lock (assistant/schema.py).
    Changing a table here takes a new revision file too: see "Changing the schema" in docs/architecture.md."""
    from assistant import schema

    schema.upgrade(engine)


# -- conversations, answers, feedback, escalations -------------------------------------------
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner_key_id", sa.String(36)),  # the API key that started it, if any
    # Who may read and continue it (Identity.owner): "key:<id>", "widget:<session>", "slack:<team>/<channel>".
    # None (rows from before owners were recorded): staff only.
    sa.Column("owner", sa.String(200)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # user | assistant
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("search_query", sa.Text),  # the question as rewritten for retrieval
    sa.Column("citations", sa.JSON),
    sa.Column("confidence", sa.Float),
    sa.Column("flags", sa.JSON),
    sa.Column("answerer", sa.String(40)),
    sa.Column("latency_ms", sa.Integer),  # question received -> answer complete
    sa.Column("first_token_ms", sa.Integer),  # question received -> first text streamed
    # How the answer was checked (results.Checks: the confidence model's signals, reasons, support):
    # the staff page shows why an answer was (not) trusted. NULL for rows written before.
    sa.Column("checks", sa.JSON),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_messages_role_created", "role", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False, index=True),
    sa.Column("rating", sa.String(10), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False, index=True),
    sa.Column("message_id", sa.String(36)),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("transcript", sa.JSON, nullable=False),
    sa.Column("draft_answer", sa.Text, nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("requested_by_user", sa.Boolean, nullable=False),
    sa.Column("role", sa.String(20)),
    sa.Column("org", sa.String(200)),
    sa.Column("tier", sa.String(40)),
    sa.Column("priority", sa.String(40)),
    sa.Column("labels", sa.JSON),
    # Who to tell when the answer comes: a verified signed-in user's e-mail, or one the user typed and
    # agreed to be written to (notify). Personal data: never in analytics or logs.
    sa.Column("contact_email", sa.String(254)),
    sa.Column("notify", sa.Boolean, nullable=False, server_default="0", default=False),  # "0": false on both stores
    # The address is the signed-in user's own (verified identity): only then may a JSM request be raised
    # on their behalf. A typed address is only ever written to, never impersonated.
    sa.Column("contact_verified", sa.Boolean, nullable=False, server_default="0", default=False),
    # Contact changes after the escalation was recorded (POST /v1/escalations/{id}/contact): each real change
    # bumps contact_version; contact_noted is the version the ticket shows (the one it was created with, or
    # the last internal note posted). A delivered escalation with contact_version > contact_noted owes the
    # ticket a note (assistant/escalation/contact_notes.py).
    sa.Column("contact_version", sa.Integer, nullable=False, server_default="0", default=0),
    sa.Column("contact_noted", sa.Integer, nullable=False, server_default="0", default=0),
    # open (local queue) | pending | delivered | failed (Jira refused it: an admin fixes and retries)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("ticket_key", sa.String(100)),  # stored as soon as the ticket exists, before its comment
    sa.Column("ticket_url", sa.Text),
    # The outbox: delivery to Jira is retried from these until it succeeds, exactly once.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("claimed_until", UTCDateTime()),  # a worker's lease: two workers never deliver one escalation
    sa.Column("claimed_by", sa.String(36)),  # which delivery holds the lease: a step is recorded only by it
    sa.Column("last_error", sa.Text),
    sa.Column("jira_status", sa.String(100)),
    sa.Column("status_checked_at", UTCDateTime()),  # the worker refreshes jira_status, requests never call Jira
    sa.Column("delivered_at", UTCDateTime()),
    sa.Column("summary", sa.Text),  # an admin's summary for the ticket (default: the question, one line)
    # Where a delivery got to: created | created_jsm (context comment to post) | reescalated (comment on
    # the conversation's ticket to post) | commented.
    sa.Column("delivery_step", sa.String(20)),
    sa.Column("create_sent_at", UTCDateTime()),  # a create went out and got no answer: it may exist
    sa.Column("routing", sa.JSON),  # what the routing rules chose at delivery (rule, assignee, components...)
    # Closing the loop (filled from Jira as the ticket moves; analytics read them): when a human first
    # answered publicly, when the ticket was resolved, and the asker's rating of it ("yes" | "no").
    sa.Column("first_response_at", UTCDateTime()),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("rating", sa.String(10)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# -- answers back to the asker (assistant/replies/) --------------------------------------------
# The reply outbox: one row per (ticket event, channel). `key` makes a second recording of the same
# comment or resolution (a replayed webhook, the poll seeing it again) a no-op: nothing is sent twice.
replies = sa.Table(
    "replies",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),  # ticket:kind:comment id:channel
    sa.Column("escalation_id", sa.String(36), sa.ForeignKey("escalations.id"), nullable=False, index=True),
    sa.Column("ticket_key", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # comment | resolved
    sa.Column("body", sa.Text, nullable=False),  # the agent's public comment (empty for resolved)
    sa.Column("author", sa.String(200)),
    sa.Column("channel", sa.String(20), nullable=False),  # widget | slack | email
    sa.Column("state", sa.String(20), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("claimed_until", UTCDateTime()),
    sa.Column("claimed_by", sa.String(36)),
    sa.Column("last_error", sa.Text),
    sa.Column("event_at", UTCDateTime()),  # when Jira says it happened
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime()),
    sa.Index("ix_replies_due", "state", "next_attempt_at"),
)

# Webhook deliveries already handled (Jira's X-Atlassian-Webhook-Identifier): a replay is ignored.
jira_deliveries = sa.Table(
    "jira_deliveries",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("received_at", UTCDateTime(), nullable=False, index=True),
)

# "Did this solve your problem?" after a ticket is resolved: one answer per escalation (the latest wins).
resolution_ratings = sa.Table(
    "resolution_ratings",
    metadata,
    sa.Column("escalation_id", sa.String(36), sa.ForeignKey("escalations.id"), primary_key=True),
    sa.Column("solved", sa.Boolean, nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),  # widget | email | slack: where it was answered
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


# -- Slack: which thread is which conversation, which bot message is which answer ------------
# The Slack bot owns these three tables (assistant/slack/store.py).
slack_threads = sa.Table(
    "slack_threads",
    metadata,
    sa.Column("team_id", sa.String(32), primary_key=True),
    sa.Column("channel_id", sa.String(32), primary_key=True),
    sa.Column("thread_ts", sa.String(32), primary_key=True),  # the thread's first message
    sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

slack_answers = sa.Table(
    "slack_answers",
    metadata,
    sa.Column("channel_id", sa.String(32), primary_key=True),
    sa.Column("ts", sa.String(32), primary_key=True),  # the bot's message: reactions and buttons point at it
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("escalation_id", sa.String(36)),  # set once the answer went to a human
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Deliveries already handled: Slack retries an event it thinks we missed, and the same message can
# arrive as app_mention and as message.channels. The primary key makes the first claim win, across
# processes too.
slack_deliveries = sa.Table(
    "slack_deliveries",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)


# Agent assist posted on a ticket (escalation tickets at delivery, tickets made in Jira by the webhook):
# the primary key makes one claim win, `posted_at` says it is done, so a retry never posts twice.
assist_posts = sa.Table(
    "assist_posts",
    metadata,
    sa.Column("ticket_key", sa.String(100), primary_key=True),
    sa.Column("claimed_until", UTCDateTime()),  # a poster's lease; an expired one may be taken over
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("posted_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
