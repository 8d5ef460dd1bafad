"""Numbered schema migrations (assistant/schema.py, assistant/migrations/): a fresh database upgrades to
exactly the tables of assistant/db.py; a database made before migrations upgrades in place keeping its
rows; concurrent upgrades wait for each other; a process refuses a schema that is behind or unknown.
SQLite always, PostgreSQL when reachable (the `database_url` and `pg_url` fixtures say why they skip)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from assistant import db, schema
from assistant.errors import SchemaError
from assistant.services import Services
from assistant.settings import Settings
from assistant.store import IndexStore
from cli.main import app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "assistant" / "migrations" / "versions"

# Columns, indexes and a table that answerdesk added after their tables first shipped: a database made by
# an earlier version lacks them (main's init_db added columns, never indexes, to existing tables).
LATER_COLUMNS = {"chunks": {"org", "sentence_vectors", "field_vector"}, "documents": {"meta"},
                 "conversations": {"owner"},
                 "escalations": {"claimed_by", "delivery_step", "create_sent_at", "summary", "contact_email",
                                 "notify", "contact_verified", "routing", "first_response_at", "resolved_at", "rating",
                                 "contact_version", "contact_noted"},
                 "messages": {"first_token_ms", "checks"}}
# Tables added after migrations began (revisions 0003, 0004) are never in a database that predates them.
LATER_TABLES = {"slack_deliveries", "replies", "jira_deliveries", "resolution_ratings", "assist_posts"}


def diff(engine: sa.Engine) -> list[Any]:
    """What autogenerate would still write to make the database match assistant/db.py."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": db.managed})
        return list(compare_metadata(ctx, db.metadata))


def old_database(engine: sa.Engine) -> None:
    """A database as an earlier answerdesk left it (metadata.create_all, later columns missing), with rows."""
    old = sa.MetaData()
    for table in db.metadata.sorted_tables:
        if table.name not in LATER_TABLES:  # columns keep keys and `index=True`; the table's Indexes go
            sa.Table(table.name, old, *[_column(c) for c in table.columns
                                        if c.name not in LATER_COLUMNS.get(table.name, ())])
    old.create_all(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(old.tables["chunks"].insert(), {
            "id": "old-0", "source": "docs", "doc_id": "old.md", "ordinal": 0, "content_hash": "h",
            "audience": "public", "text": "Old text.", "search_text": "Old\n\nOld text.",
            "meta": {"title": "Old", "url": "https://x/old.md", "heading": "Old"}})
        conn.execute(old.tables["conversations"].insert(),
                     {"id": "c-old", "owner_key_id": "k1", "created_at": now, "updated_at": now})


def _column(c: sa.Column[Any]) -> sa.Column[Any]:
    default = c.server_default.arg if c.server_default is not None else None  # type: ignore[attr-defined]
    return sa.Column(c.name, c.type, *[sa.ForeignKey(fk.target_fullname) for fk in c.foreign_keys],
                     primary_key=c.primary_key, nullable=c.nullable, index=c.index, unique=c.unique,
                     server_default=default, autoincrement=c.autoincrement)


def settings_for(tmp_path: Path, database_url: str = "", **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, _env_file=None,  # type: ignore[call-arg]
                    **extra)


def invoke(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(app, ["db", *args], obj=lambda: Services(settings), env={"COLUMNS": "200"})


def test_revisions_are_one_numbered_line() -> None:
    """Each revision file is NNNN_slug.py with revision "NNNN" and the one before it as down_revision:
    two branches that both added 0002 fail here (and in head()) until one renumbers."""
    revs = schema.revisions()
    assert revs == [f"{i:04d}" for i in range(1, len(revs) + 1)]
    assert schema.head() == revs[-1]
    files = sorted(p.name for p in VERSIONS.glob("[0-9]*.py"))
    assert [f[:4] for f in files] == revs


def test_a_fresh_database_upgrades_to_exactly_the_tables_in_db_py(database_url: str) -> None:
    engine = db.create_engine(database_url)
    assert schema.status(engine).current is None
    result = schema.upgrade(engine)
    assert (result.before, result.after, result.legacy) == (None, schema.head(), False)
    assert diff(engine) == []
    assert schema.status(engine).up_to_date
    assert not schema.upgrade(engine).changed  # the second time: nothing to do


def test_a_database_from_before_migrations_upgrades_in_place_keeping_its_rows(database_url: str,
                                                                               tmp_path: Path) -> None:
    engine = db.create_engine(database_url)
    old_database(engine)
    assert diff(engine) != []  # the test builds what it means to: an older schema
    before = schema.status(engine)
    assert before.legacy and before.current is None

    result = invoke(settings_for(tmp_path, database_url), "upgrade")
    assert result.exit_code == 0, result.output
    assert f"schema upgraded: base -> {schema.head()}" in result.output
    assert "made before migrations" in result.output

    assert diff(engine) == []
    store = IndexStore(engine, migrate=False)  # up to date now: opening it needs no upgrade
    old = store.get_chunks(["old-0"])["old-0"]
    assert (old.text, old.org) == ("Old text.", "")  # the new NOT NULL column took its default
    assert store.sentence_vectors(["old-0"]) == {}
    with engine.connect() as conn:
        owner = conn.execute(sa.select(db.conversations.c.owner_key_id, db.conversations.c.owner)).one()
    assert tuple(owner) == ("k1", None)


def test_concurrent_upgrades_wait_for_each_other(database_url: str) -> None:
    """Replicas starting together: each upgrade has its own connections; one migrates, the others wait on
    the lock and find nothing left to do. Without the lock the second CREATE TABLE fails."""
    engines = [db.create_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    results: list[schema.Upgrade] = []
    errors: list[BaseException] = []

    def run(engine: sa.Engine) -> None:
        start.wait()
        try:
            results.append(schema.upgrade(engine))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 4 and {r.after for r in results} == {schema.head()}
    assert sum(r.changed for r in results) == 1
    assert diff(engines[0]) == []


def test_two_db_upgrade_commands_at_once(database_url: str, tmp_path: Path) -> None:
    """The same through the command line, as two processes (a one-shot migrate job started twice)."""
    env = {**os.environ, "ANSWERDESK_DATABASE_URL": database_url, "ANSWERDESK_DATA_DIR": str(tmp_path / "data")}
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "db", "upgrade"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("schema upgraded: base -> " in out for out in outputs) == 1, outputs
    # On PostgreSQL the job queue's tables (`answerdesk worker`) come with it, made once under the same lock.
    assert sum("job queue tables created" in out for out in outputs) == (database_url.startswith("postgresql")), outputs
    assert diff(db.create_engine(database_url)) == []


def test_db_current_shows_the_revision_and_check_fails_when_behind(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    result = invoke(settings, "current", "--check")
    assert result.exit_code == 1 and "empty (no revision)" in result.output
    assert "run `answerdesk db upgrade`" in result.output
    assert invoke(settings, "upgrade").exit_code == 0
    result = invoke(settings, "current", "--check")
    assert result.exit_code == 0 and f"revision: {schema.head()}" in result.output and "up to date" in result.output


def test_sqlite_by_default_upgrades_when_the_store_opens(tmp_path: Path) -> None:
    """The embedded default stays zero-config: a fresh data dir works at once (make run, the test fixtures)."""
    services = Services(settings_for(tmp_path))
    assert services.settings.migrate_on_start
    services.store.save_documents([])
    assert schema.status(services.engine).up_to_date


def test_sqlite_with_auto_migrate_off_refuses_a_fresh_database(tmp_path: Path) -> None:
    services = Services(settings_for(tmp_path, auto_migrate=False))
    with pytest.raises(SchemaError, match="answerdesk db upgrade"):
        services.store  # noqa: B018


def test_a_revision_this_version_does_not_know_is_refused(tmp_path: Path) -> None:
    """A newer answerdesk upgraded the database, then an older one starts: it neither runs nor 'upgrades'."""
    settings = settings_for(tmp_path)
    engine = Services(settings).engine
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="9999, which this version of answerdesk does not know"):
        Services(settings).store  # noqa: B018
    result = invoke(settings, "upgrade")
    assert result.exit_code == 1 and "does not know" in result.output and "Traceback" not in result.output


def test_postgresql_refuses_a_schema_that_is_behind_unless_told_to_migrate(pg_url: str, tmp_path: Path) -> None:
    engine = db.create_engine(pg_url)
    old_database(engine)
    with pytest.raises(SchemaError, match="answerdesk db upgrade"):
        Services(settings_for(tmp_path, pg_url)).store  # noqa: B018
    assert schema.status(engine).legacy  # refusing changed nothing
    Services(settings_for(tmp_path, pg_url, auto_migrate=True)).store  # noqa: B018
    assert schema.status(engine).up_to_date and diff(engine) == []


def test_serve_refuses_to_start_on_a_postgresql_schema_that_is_behind(pg_url: str, tmp_path: Path) -> None:
    """The real command, as an operator runs it after installing a new version and forgetting the upgrade."""
    engine = db.create_engine(pg_url)
    old_database(engine)
    env = {**os.environ, "ANSWERDESK_DATABASE_URL": pg_url, "ANSWERDESK_DATA_DIR": str(tmp_path / "data")}
    env.pop("ANSWERDESK_AUTO_MIGRATE", None)
    proc = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", str(free_port())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "made before migrations" in proc.stderr and "answerdesk db upgrade" in proc.stderr
    assert "Traceback" not in proc.stderr and "answerdesk on http" not in proc.stdout
    assert schema.status(engine).legacy  # serve did not migrate behind the operator's back


NEW_COLUMN_SCRIPT = """
import sys
from pathlib import Path

import sqlalchemy as sa

from assistant import db, schema

schema.MIGRATIONS = Path(sys.argv[1])  # a copy: the source tree's versions/ stays as it is
db.chunks.append_column(sa.Column("reviewed_by", sa.String(100)))  # what a contributor adds to db.py
db.chunks.append_column(sa.Column("reviewed_at", db.UTCDateTime()))
print(schema.new_revision("add chunks.reviewed_by"))
"""

CHECK_SCRIPT = """
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from assistant import db, schema

schema.MIGRATIONS = Path(sys.argv[1])
db.chunks.append_column(sa.Column("reviewed_by", sa.String(100)))
db.chunks.append_column(sa.Column("reviewed_at", db.UTCDateTime()))
engine = db.create_engine(sys.argv[2])
with engine.begin() as conn:  # a row from before the revision
    conn.execute(sa.text("INSERT INTO chunks (id, source, doc_id, ordinal, content_hash, audience, text, "
                         "search_text, meta) VALUES ('c1', 's', 'd', 0, 'h', 'public', 't', 't', '{}')"))
result = schema.upgrade(engine)
with engine.connect() as conn:
    print(result.before, result.after, compare_metadata(MigrationContext.configure(conn), db.metadata),
          conn.execute(sa.text("SELECT id, reviewed_by FROM chunks")).all())
"""


def test_db_revision_turns_a_new_column_in_db_py_into_the_next_revision(database_url: str, tmp_path: Path) -> None:
    """The documented way to change the schema: add the column in db.py, run `answerdesk db revision`, and
    the new file upgrades a database at the previous revision to exactly db.py, keeping its rows."""
    import shutil

    migrations = tmp_path / "migrations"
    shutil.copytree(ROOT / "assistant" / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
    previous = schema.head()
    schema.upgrade(db.create_engine(database_url))  # a database at the previous head
    run = [sys.executable, "-c"]
    made = subprocess.run([*run, NEW_COLUMN_SCRIPT, str(migrations)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    new_rev = f"{int(previous) + 1:04d}"
    path = Path(made.stdout.splitlines()[-1])  # after Alembic's own "Generating ..." line
    assert path.parent == migrations / "versions" and path.name == f"{new_rev}_add_chunks_reviewed_by.py"
    text = path.read_text()
    assert f"down_revision: str | None = {previous!r}" in text and "batch_alter_table('chunks'" in text
    assert "add_column(sa.Column('reviewed_by', sa.String(length=100)" in text
    # Revision files do not import db.py's Python types, which move on: UTCDateTime is DateTime in DDL.
    assert "add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True)" in text and "assistant" not in text

    checked = subprocess.run([*run, CHECK_SCRIPT, str(migrations), database_url], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.split()[:2] == [previous, new_rev]
    assert "[] [('c1', None)]" in checked.stdout
