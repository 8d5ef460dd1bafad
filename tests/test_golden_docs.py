"""The bundled-docs golden set as a regression test: docs/ indexed with the real model, every
question asked through `POST /v1/chat` as a community user would ask it, and the issue 15 figures
held to their thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.results import ChatResult
from assistant.services import Services
from assistant.settings import Settings
from eval.golden_docs import GoldenDocs, GoldenSetError, Outcome, figures, load, outcome


@pytest.fixture(scope="module")
def golden() -> GoldenDocs:
    return load()


@pytest.fixture(scope="module")
def docs_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # The whole set is asked from one client address: lift the community per-minute limit only.
    return Settings(data_dir=tmp_path_factory.mktemp("golden-docs"), rate_limits={"community": 100_000},
                    _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def outcomes(golden: GoldenDocs, docs_settings: Settings, embedder: SentenceTransformerEmbedder) -> list[Outcome]:
    from ingest.pipeline import Ingestor

    services = Services(docs_settings, embedder=embedder)
    Ingestor(services, "answerdesk-docs").run(golden.refs("https://answerdesk.example/docs"), "docs",
                                              str(golden.docs_dir))
    out = []
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        for q in golden.questions:
            r = client.post("/v1/chat", json={"question": q.question, "conversation_id": None})
            assert r.status_code == 200, (q.id, r.text)
            out.append(outcome(q, ChatResult.from_dict(r.json())))
    return out


def misses(outcomes: list[Outcome], wrong: str) -> str:
    bad = [o for o in outcomes if (wrong == "page" and not o.question.should_escalate and not o.right_page_first)
           or (wrong == "escalated" and not o.question.should_escalate and o.escalated)
           or (wrong == "answered" and o.question.should_escalate and not o.escalated)]
    lines = [f"{o.question.id} {o.question.question!r}: cited {o.first_cited}, confidence {o.confidence:.3f}"
             for o in bad]
    return f"figures {figures(outcomes)}; misses:\n" + "\n".join(lines)


def test_the_set_is_as_the_issue_asks(golden: GoldenDocs) -> None:
    kinds = [q.kind for q in golden.questions]
    assert kinds.count("answerable") >= 40 and kinds.count("unanswerable") >= 12 and kinds.count("offtopic") >= 4
    pages = {p.name for p in golden.docs_dir.glob("*.md")}
    assert pages <= {d for q in golden.questions for d in q.relevant}, "every docs page has a question"
    by_question = {q.question: q for q in golden.questions}
    assert by_question["Configuring answerdesk?"].relevant == ("configuration.md",)
    assert "escalations.md" in by_question["how do i make escalations go to jira"].relevant
    assert "What does answerdesk do when it is not sure?" in by_question


def test_a_malformed_line_is_named(tmp_path: Path, golden: GoldenDocs) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "x", "kind": "answerable", "question": "q?", "relevant": ["nope.md"]}\n')
    with pytest.raises(GoldenSetError, match=r"set.jsonl:1: relevant pages not in the docs folder: nope.md"):
        load(path, golden.docs_dir)


# Two kinds of check on the same run. Floors (hard): what main reaches today, a little below, so that
# a change that makes the bundled-docs answers worse fails `make test`. Targets (issue 15): the ones
# not yet reached by the learned confidence at the default threshold are expected failures that say
# the measured figure; a change that reaches one shows up as XPASS.
# Measured 2026-12-04, confidence fitted on all three shared train splits (SciFact train included),
# 91 questions at threshold 0.25: the two figures in NOT_YET, and unanswerable and off-topic
# escalated 0.944 (one question is 0.014 of the answerable, 0.056 of the rest).
FLOORS = {"right_page_first": 0.83, "answerable_answered": 0.70, "unanswerable_escalated": 0.88}
TARGETS = {"right_page_first": 0.90, "answerable_answered": 0.85, "unanswerable_escalated": 0.90}
NOT_YET = {"right_page_first": 0.863, "answerable_answered": 0.740}
WRONG = {"right_page_first": "page", "answerable_answered": "escalated", "unanswerable_escalated": "answered"}


@pytest.mark.parametrize("figure", FLOORS)
def test_bundled_docs_answers_do_not_get_worse(outcomes: list[Outcome], figure: str) -> None:
    assert figures(outcomes)[figure] >= FLOORS[figure], misses(outcomes, WRONG[figure])


@pytest.mark.parametrize("figure", [
    pytest.param(f, marks=pytest.mark.xfail(strict=False, reason=f"issue 15 target not reached yet: {f} "
                                                                 f"{NOT_YET[f]:.3f} (docs/evaluation.md)"))
    if f in NOT_YET else f for f in TARGETS])
def test_bundled_docs_reach_the_issue_targets(outcomes: list[Outcome], figure: str) -> None:
    assert figures(outcomes)[figure] >= TARGETS[figure], misses(outcomes, WRONG[figure])
