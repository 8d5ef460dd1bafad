"""The schema as it stood when migrations began (assistant/db.py at that time), on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-12-03

A database made before migrations existed has no alembic_version table but some of these tables,
possibly without columns added later (chunks.org, chunks.sentence_vectors, ...). Upgrading it runs this
revision too: tables that are missing are created, tables that exist gain the columns and indexes they
lack, and their rows stay. Every column added after a table's first release is nullable or has a server
default, so adding it to a populated table is safe.

The tables are frozen copies, not imports of assistant/db.py: db.py moves on with later revisions.
UTCDateTime in db.py is sa.DateTime(timezone=True) in DDL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def schema() -> sa.MetaData:
    """The tables of revision 0001, on a new MetaData."""
    m = sa.MetaData()
    sa.Table(
        "documents", m,
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("doc_id", sa.String(1000), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        _ts("updated_at"),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        _ts("indexed_at", nullable=False),
        sa.Column("meta", sa.JSON),
    )
    sa.Table(
        "chunks", m,
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
        sa.Column("sentence_vectors", sa.LargeBinary),
        sa.Index("ix_chunks_doc", "source", "doc_id"),
    )
    sa.Table(
        "ingest_runs", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "api_keys", m,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("org", sa.String(200)),
        sa.Column("tier", sa.String(40)),
        _ts("created_at", nullable=False),
        _ts("revoked_at"),
        _ts("last_used_at"),
    )
    sa.Table(
        "eval_candidates", m,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("ticket_key", sa.String(100), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("created_at", nullable=False),
    )
    sa.Table(
        "state", m,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    sa.Table(
        "conversations", m,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_key_id", sa.String(36)),
        sa.Column("owner", sa.String(200)),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
    )
    sa.Table(
        "messages", m,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("search_query", sa.Text),
        sa.Column("citations", sa.JSON),
        sa.Column("confidence", sa.Float),
        sa.Column("flags", sa.JSON),
        sa.Column("answerer", sa.String(40)),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("first_token_ms", sa.Integer),
        _ts("created_at", nullable=False),
        sa.Index("ix_messages_role_created", "role", "created_at"),
    )
    sa.Table(
        "feedback", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False, index=True),
        sa.Column("rating", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text),
        _ts("created_at", nullable=False),
    )
    sa.Table(
        "escalations", m,
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
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("ticket_key", sa.String(100)),
        sa.Column("ticket_url", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("next_attempt_at"),
        _ts("claimed_until"),
        sa.Column("claimed_by", sa.String(36)),
        sa.Column("last_error", sa.Text),
        sa.Column("jira_status", sa.String(100)),
        _ts("status_checked_at"),
        _ts("delivered_at"),
        sa.Column("summary", sa.Text),
        sa.Column("delivery_step", sa.String(20)),
        _ts("create_sent_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
    )
    sa.Table(
        "slack_threads", m,
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("thread_ts", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False),
        _ts("created_at", nullable=False),
    )
    sa.Table(
        "slack_answers", m,
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("ts", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("escalation_id", sa.String(36)),
        _ts("created_at", nullable=False),
    )
    sa.Table(
        "slack_deliveries", m,
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    return m


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for table in schema().sorted_tables:
        if table.name not in present:
            table.create(bind)
        else:
            _complete(table)


def _complete(table: sa.Table) -> None:
    """Give a table made before migrations the columns and indexes of this revision that it lacks."""
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns(table.name)}
    indexes = {i["name"] for i in inspector.get_indexes(table.name)}
    missing = [c for c in table.columns if c.name not in columns]
    if missing:
        # Batch mode: on SQLite, ADD COLUMN is native; batch keeps the same file working for later changes.
        with op.batch_alter_table(table.name) as batch:
            for column in missing:
                default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
                batch.add_column(sa.Column(column.name, column.type, nullable=column.nullable, server_default=default))
    for index in table.indexes:
        if index.name not in indexes:
            op.create_index(index.name, table.name, [c.name for c in index.columns], unique=index.unique)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(schema().sorted_tables):
        table.drop(bind, checkfirst=True)
