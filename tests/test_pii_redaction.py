"""Personal data in what users write (issue 13): questions, escalation reasons and feedback comments
are redacted with the ingestion rules before they are stored, answered, escalated or exported, unless
a deployment turns it off (ANSWERDESK_REDACT_PII=false)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from assistant import db
from assistant.api import create_app
from assistant.services import Services
from tests.conftest import fresh_services
from tests.test_access import session

QUESTION = ("I want to talk to a human. Mail me at jane.doe@example.com or call +1 415 555 0100, "
            "my api_key=sk-abc123def456ghi789jkl0")
RAW = ("jane.doe@example.com", "415 555 0100", "sk-abc123def456ghi789jkl0", "j.smith@corp.example")


def stored_text(svc: Services) -> str:
    """Everything the database keeps about conversations, feedback and escalations."""
    with svc.store.engine.connect() as conn:
        return " ".join(str(dict(row._mapping)) for table in (db.messages, db.feedback, db.escalations)
                        for row in conn.execute(sa.select(table)))


def ask_rate_and_escalate(svc: Services) -> dict[str, Any]:
    with TestClient(create_app(services=svc)) as c:
        asked = c.post("/v1/chat", json={"question": QUESTION})
        c.headers.update(session(asked))  # the anonymous caller's session owns the conversation
        body = asked.json()
        assert c.post("/v1/feedback", json={"message_id": body["message_id"], "rating": "down",
                                            "comment": "Wrong. Write to j.smith@corp.example"}).status_code == 201
        assert c.post("/v1/escalations", json={"conversation_id": body["conversation_id"],
                                               "reason": "call me on +1 415 555 0100"}).status_code == 201
    return body  # type: ignore[no-any-return]


def test_questions_feedback_and_reasons_are_redacted_before_anything_keeps_them(services: Services) -> None:
    body = ask_rate_and_escalate(services)
    assert body["escalated"]
    kept = stored_text(services)
    for raw in RAW:
        assert raw not in kept and raw not in body["answer"], raw
    assert "[EMAIL]" in kept and "[PHONE]" in kept and "[SECRET]" in kept


def test_redaction_can_be_turned_off(tmp_path: Path, embedder: Any) -> None:
    svc = fresh_services(tmp_path, embedder, redact_pii=False)
    ask_rate_and_escalate(svc)
    kept = stored_text(svc)
    assert all(raw in kept for raw in RAW)


@pytest.mark.parametrize("value, expected", [("false", False), ("true", True)])
def test_setting_reads_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    from assistant.settings import load_settings

    monkeypatch.setenv("ANSWERDESK_REDACT_PII", value)
    assert load_settings(_env_file=None).redact_pii is expected
