"""Alembic's environment, run by assistant/schema.py: always on the connection it hands over (in
config.attributes), inside the transaction that holds the migration lock."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from assistant import db


def _render(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Revision files stay independent of assistant/db.py's Python types: UTCDateTime is DateTime in DDL.
    if type_ == "type" and isinstance(obj, db.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection: sa.Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through assistant.schema (answerdesk db upgrade), not the alembic command")
context.configure(
    connection=connection,
    target_metadata=db.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table instead
    render_item=_render,
    compare_type=True,
    include_name=db.managed,  # tables made by raw DDL (db.UNMANAGED_TABLE_PREFIXES) are not dropped
)
with context.begin_transaction():
    context.run_migrations()
