"""The Alembic script directory: env.py, the revision template and versions/ (one file per revision).
Run through assistant/schema.py, never through an alembic.ini."""
