"""The job queue's place in PostgreSQL: the connection string procrastinate is given, and its own tables,
created with procrastinate's schema applier (its tables are not ours: no Alembic revision describes them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant.errors import ConfigError
from assistant.schema import LOCK_WAIT_S, PG_LOCK_KEY
from assistant.settings import Settings

NEEDS_POSTGRES = ("`answerdesk worker` needs PostgreSQL, where its job queue lives: set ANSWERDESK_DATABASE_URL="
                  "postgresql://... (with SQLite keep ANSWERDESK_WORKER=embedded: `answerdesk serve` does the "
                  "background work itself)")


def conninfo(settings: Settings) -> str:
    """The libpq URL of our database (options such as search_path kept), for procrastinate's psycopg pool."""
    url = sa.engine.make_url(settings.sqlalchemy_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(NEEDS_POSTGRES)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def install_schema(engine: Engine) -> bool:
    """Create procrastinate's tables unless they exist; True when it did. Under the advisory lock `answerdesk db
    upgrade` takes, so workers and upgrades starting together create them once."""
    from procrastinate.schema import SchemaManager

    with engine.begin() as conn:
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        # Several statements in one string: through the driver, which runs them as they are (no parameters).
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(SchemaManager.get_schema())
    return True
