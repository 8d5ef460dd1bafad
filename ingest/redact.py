"""The redaction rules live in assistant/redact.py: the API redacts questions and feedback with the
same rules ingestion uses for tickets, and assistant never imports from ingest."""

from assistant.redact import KINDS, Finding, find_pii, redact

__all__ = ["KINDS", "Finding", "find_pii", "redact"]
