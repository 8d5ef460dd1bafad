"""Numbered schema migrations (Alembic, revisions in assistant/migrations/versions/), applied under a lock.

`upgrade(engine)` brings a database to the newest revision. Two processes may call it at once: the second
waits for the first, then finds nothing to do. The lock and the upgrade are one transaction:
- PostgreSQL: pg_advisory_xact_lock, and DDL is transactional, so a failed upgrade leaves no trace;
- SQLite: BEGIN IMMEDIATE on a connection of its own (SQLite's write lock, across processes; readers go on
  under WAL), and SQLite's DDL is transactional too.
A database made before migrations (our tables, no alembic_version) upgrades in place: revision 0001 adds
the columns and indexes it lacks and keeps its rows.

`prepare(engine, auto)` is what every process runs when it opens the store: upgrade when `auto`
(ANSWERDESK_AUTO_MIGRATE, on by default for SQLite only), otherwise refuse a schema that is not the newest
this version knows, naming `answerdesk db upgrade`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assistant.errors import SchemaError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_KEY = 0x616E737765726473  # "answerds": one advisory lock per PostgreSQL database
LOCK_WAIT_S = 600  # a second upgrader waits this long for the first before giving up


@dataclass(frozen=True)
class Status:
    current: str | None  # the revision in alembic_version; None: not under migrations (empty, or made before)
    head: str  # the newest revision this version knows
    legacy: bool = False  # our tables are there but no alembic_version: made before migrations existed
    known: bool = True  # False: a revision this version has never heard of (a newer answerdesk upgraded it)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.current is None:
            return "made before migrations (no revision recorded)" if self.legacy else "empty (no revision)"
        return self.current + ("" if self.known else " (unknown to this version)")


@dataclass(frozen=True)
class Upgrade:
    before: str | None
    after: str
    legacy: bool  # the database was made before migrations and has been adopted

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()  # no alembic.ini: the package carries its script directory
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    heads = _script().get_heads()
    if len(heads) != 1:  # two branches each added a revision after the same one: renumber one of them
        raise SchemaError(f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); each revision "
                          "file's down_revision must name the one before it (docs/architecture.md)")
    return str(heads[0])


def revisions() -> list[str]:
    """Every known revision, oldest first."""
    return [s.revision for s in reversed(list(_script().walk_revisions()))]


def _our_tables() -> set[str]:
    module = _script().get_revision("0001").module
    return {t.name for t in module.schema().sorted_tables}


def _status(conn: Connection) -> Status:
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(conn).get_current_revision()
    legacy = current is None and bool(_our_tables() & set(sa.inspect(conn).get_table_names()))
    return Status(current, head(), legacy, current is None or current in revisions())


def status(engine: Engine) -> Status:
    with engine.connect() as conn:
        return _status(conn)


def _locked(engine: Engine) -> tuple[Engine, bool]:
    """(the engine to upgrade with, whether to dispose of it afterwards)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine, False  # an in-memory SQLite database belongs to one connection: nothing to lock
    own = sa.create_engine(engine.url, connect_args={"timeout": LOCK_WAIT_S}, poolclass=sa.pool.NullPool)

    @sa.event.listens_for(own, "connect")
    def _driver_autocommit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite would otherwise issue its own BEGIN (SQLAlchemy's recipe)

    @sa.event.listens_for(own, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first write

    return own, True


def upgrade(engine: Engine) -> Upgrade:
    """Bring the database to the newest revision, under the lock; safe to run from several processes."""
    quick = status(engine)
    if quick.up_to_date:
        return Upgrade(quick.current, quick.head, False)
    from alembic import command

    target, dispose = _locked(engine)
    try:
        with target.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            before = _status(conn)  # again, under the lock: another process may have just upgraded
            if not before.known:
                raise SchemaError(_unknown(before))
            if not before.up_to_date:
                command.upgrade(_config(conn), "head")
            return Upgrade(before.current, _status(conn).current or "", before.legacy)
    finally:
        if dispose:
            target.dispose()


def _unknown(s: Status) -> str:
    return (f"the database schema is at revision {s.current}, which this version of answerdesk does not know "
            f"(its newest is {s.head}): a newer answerdesk ran `answerdesk db upgrade` on it. Run that version; "
            "revisions are not undone automatically.")


def require_current(engine: Engine) -> None:
    """Refuse a schema this version cannot use, with the command that fixes it."""
    s = status(engine)
    if s.up_to_date:
        return
    if not s.known:
        raise SchemaError(_unknown(s))
    raise SchemaError(f"the database schema is behind (revision: {s.describe()}); this version of answerdesk "
                      f"needs revision {s.head}. Run `answerdesk db upgrade` once (one process migrates; other "
                      "replicas wait for it), or set ANSWERDESK_AUTO_MIGRATE=true to upgrade on start.")


def new_revision(message: str) -> Path:
    """For contributors: write the next numbered revision file, holding what assistant/db.py has and the
    newest revision lacks (autogenerate against a scratch SQLite database upgraded to the newest revision).
    Read it before committing: autogenerate does not see renames, data moves or server-side details."""
    import tempfile

    from alembic import command

    rev_id = f"{int(head()) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{scratch}/head.db", poolclass=sa.pool.NullPool)
        upgrade(engine)
        with engine.begin() as conn:
            script = command.revision(_config(conn), message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    _script.cache_clear()
    return Path(script.path)  # type: ignore[union-attr]


def prepare(engine: Engine, auto: bool) -> None:
    """What a process does on opening the store: upgrade (auto) or check."""
    if auto:
        upgrade(engine)
    else:
        require_current(engine)
