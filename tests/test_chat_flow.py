"""The chat flow's branches, fast: a scripted answerer and the hash embedder instead of a model, over
real Chroma, the real keyword index and SQLite. What each branch shows the user is checked here; the
real-model suites (test_chat_api, test_citations, test_golden_docs) stay the integration layer."""

from __future__ import annotations

import pytest

from assistant.answering.scripted import Fail, ScriptedAnswerer
from assistant.api.schemas import ChatResponse
from assistant.chat import Assistant
from assistant.embeddings_hash import HashEmbedder
from assistant.escalation.queue import get_escalation
from assistant.results import ChatResult
from assistant.services import Services
from assistant.settings import DEFAULT_CONFIDENCE_THRESHOLD, Settings
from tests.conftest import index_docs

PAGES = {
    "database.md": "# Database\n\n## Connection URL\n\nSet ANSWERDESK_DATABASE_URL to a PostgreSQL URL such as "
                   "postgresql://user@host/db. Without it answerdesk keeps its data in SQLite under the data "
                   "directory.\n\n## Password rotation\n\nTo rotate the database password, update the URL and "
                   "restart the server.\n",
    "slack.md": "# Slack\n\nInvite the answerdesk bot to a channel and mention it with your question. The bot "
                "answers in a thread.\n",
    "install.md": "# Installation\n\nInstall answerdesk with pip install answerdesk, then run answerdesk serve "
                  "to start the HTTP API on port 8000.\n",
}
DB_ANSWER = "Set ANSWERDESK_DATABASE_URL to a PostgreSQL URL such as postgresql://user@host/db [1]."


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Services:
    folder = tmp_path_factory.mktemp("pages")
    for name, text in PAGES.items():
        (folder / name).write_text(text)
    settings = Settings(data_dir=tmp_path_factory.mktemp("flow-index"), _env_file=None)  # type: ignore[call-arg]
    services = Services(settings, embedder=HashEmbedder())
    index_docs(services, folder, source="docs", base_url="https://docs.example")
    return services


def assistant(svc: Services, *replies: str | Fail, threshold: float = 0.0) -> tuple[Assistant, ScriptedAnswerer]:
    """The confidence model is fitted to the real model's scores, so with hash vectors its figure means
    little: a test picks the branch with the threshold (0: never low confidence, 1: always)."""
    answerer = ScriptedAnswerer(*replies)
    return Assistant(svc.retriever, answerer, svc.extractive, svc.queue, svc.conversations, svc.embedder,
                     threshold=threshold), answerer


def test_an_answer_cites_its_source_and_is_stored(svc: Services) -> None:
    bot, _ = assistant(svc, DB_ANSWER)
    result = bot.respond("How do I set the database URL for PostgreSQL?")
    assert isinstance(result, ChatResult)
    assert result.answer == DB_ANSWER and result.answerer == "scripted" and not result.escalated
    assert result.escalation_id is None and result.handoff == [] and result.flags == []
    [cited] = result.citations
    assert cited.n == 1 and cited.doc_id == "database.md" and cited.url == "https://docs.example/database.md#connection-url"
    assert cited.title == "Database — Connection URL" and "ANSWERDESK_DATABASE_URL" in cited.snippet
    assert result.checks.sentences == 1 and result.checks.supported_sentences == 1
    stored = svc.conversations.messages(result.conversation_id)
    assert [(m.role, m.content) for m in stored] == [("user", "How do I set the database URL for PostgreSQL?"),
                                                     ("assistant", DB_ANSWER)]
    assert stored[-1].id == result.message_id and stored[-1].citations == [cited.to_dict()]


def test_the_api_schema_validates_from_the_result_and_keeps_the_json_shape(svc: Services) -> None:
    bot, _ = assistant(svc, DB_ANSWER)
    result = bot.respond("How do I set the database URL?")
    body = ChatResponse.model_validate(result).model_dump(mode="json")
    assert body == result.to_dict()
    assert list(result.to_dict()) == ["conversation_id", "answer", "citations", "confidence", "escalated",
                                      "escalation_id", "handoff", "answerer", "flags", "search_query", "checks",
                                      "message_id"]
    assert ChatResult.from_dict(body) == result


def test_low_confidence_escalates_with_a_reference_in_the_answer(svc: Services) -> None:
    bot, _ = assistant(svc, DB_ANSWER, threshold=1.0)  # no answer reaches certainty 1
    result = bot.respond("How do I set the database URL?")
    assert result.escalated and result.escalation_id and "low_confidence" in result.flags
    assert result.answer.startswith(DB_ANSWER + "\n\n")
    assert result.answer.endswith(f"I'm not sure this answers your question, so I've passed it to the support "
                                  f"team (reference {result.escalation_id}).")
    row = get_escalation(svc.store.engine, result.escalation_id)
    assert row is not None and row.question == "How do I set the database URL?"
    assert row.draft_answer == DB_ANSWER and [s["n"] for s in row.sources] == [1]
    assert not row.requested_by_user


def test_asking_for_a_human_escalates_whatever_the_confidence(svc: Services) -> None:
    bot, _ = assistant(svc, DB_ANSWER)
    result = bot.respond("Can I talk to a human please?")
    assert result.escalated and "human_requested" in result.flags and "low_confidence" not in result.flags
    assert result.answer.endswith(f"I've passed your request to the support team (reference {result.escalation_id}).")
    row = get_escalation(svc.store.engine, result.escalation_id or "")
    assert row is not None and row.requested_by_user


def test_no_sources_means_no_answer_and_an_escalation(svc: Services) -> None:
    """A filter nothing matches: the answerer's uncited text is replaced, and the user is told so."""
    bot, answerer = assistant(svc, "Probably restart it.", threshold=DEFAULT_CONFIDENCE_THRESHOLD)
    result = bot.respond("How do I set the database URL?", where={"source": "no-such-source"})
    assert result.confidence == 0 and "no_sources" in result.checks.reasons
    assert answerer.calls[0].sources == []
    assert result.citations == [] and result.escalated and "llm_fallback" in result.flags
    assert result.answer == (f"I couldn't find this in the documentation, so I've passed it to the support team "
                             f"(reference {result.escalation_id}).")


def test_an_off_topic_question_is_not_answered_from_unrelated_pages(svc: Services) -> None:
    """The answerer says nothing about the sources: its text has no citation, the quote fallback finds
    nothing close, and the confidence (threshold as shipped) sends it to a human."""
    bot, _ = assistant(svc, "It will be sunny.", threshold=DEFAULT_CONFIDENCE_THRESHOLD)
    result = bot.respond("Will it rain in Paris tomorrow?")
    assert result.escalated and {"llm_fallback", "low_confidence"} <= set(result.flags)
    assert "sunny" not in result.answer and result.confidence < DEFAULT_CONFIDENCE_THRESHOLD
    assert result.answer.endswith(f"so I've passed it to the support team (reference {result.escalation_id}).")


def test_a_follow_up_carries_the_history_and_the_previous_query(svc: Services) -> None:
    bot, answerer = assistant(svc, DB_ANSWER, "Update the URL and restart the server [1].")
    first = bot.respond("How do I set the database URL?")
    follow = bot.respond("and the password?", first.conversation_id)
    assert follow.conversation_id == first.conversation_id
    assert follow.search_query == "How do I set the database URL? and the password?"
    history = answerer.calls[1].history
    assert [(t.role, t.content) for t in history] == [("user", "How do I set the database URL?"),
                                                      ("assistant", DB_ANSWER)]
    assert follow.citations[0].url.endswith("#password-rotation")


def test_an_answerer_failure_degrades_to_quoting_the_sources(svc: Services) -> None:
    bot, _ = assistant(svc, Fail(before="Set the data"))
    events = list(bot.stream("How do I rotate the database password?"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "delta" and "reset" in kinds and kinds[-2:] == ["citations", "done"]
    result = events[-1].data
    assert result.answerer == "extractive" and "llm_fallback" in result.flags
    assert "rotate the database password" in result.answer and "[1]" in result.answer
    assert not result.answer.startswith("Set the data")
    # What streamed after the reset is what the result says.
    after_reset = "".join(e.data for e in events[kinds.index("reset") + 1:] if e.kind == "delta")
    assert after_reset == result.answer


def test_citations_of_sources_that_were_not_given_are_removed(svc: Services) -> None:
    bot, _ = assistant(svc, DB_ANSWER[:-1] + " [9].")
    result = bot.respond("How do I set the database URL?")
    assert "[9]" not in result.answer and "invalid_citations_removed" in result.flags
    assert result.checks.removed_citations == 1 and [c.n for c in result.citations] == [1]


def test_the_hash_embedder_is_deterministic_and_normalised() -> None:
    a, b = HashEmbedder(), HashEmbedder(dimension=384)
    vectors = a.embed(["rotate the database password", "Rotate the DATABASE password!", "", "slack bot"])
    assert vectors.shape == (4, 384) and (vectors == b.embed(["rotate the database password", "Rotate the "
                                                              "DATABASE password!", "", "slack bot"])).all()
    assert all(abs(float(v @ v) - 1) < 1e-6 for v in vectors)  # unit length, the empty text too
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0) and abs(float(vectors[0] @ vectors[3])) < 0.5


def test_the_scripted_answerer_streams_markers_in_pieces() -> None:
    answerer = ScriptedAnswerer("One [1]. Two [2].", "Last.")
    assert "".join(answerer.stream("q", [], [])) == "One [1]. Two [2]."
    assert list(answerer.stream("q", [], [])) == ["Last."] == list(answerer.stream("q", [], []))
    with pytest.raises(ValueError, match="at least one reply"):
        ScriptedAnswerer()
