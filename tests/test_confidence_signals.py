"""The confidence's sentence- and word-level signals: what tells "the docs answer this" from "the
docs are about something near it"."""

from __future__ import annotations

import numpy as np

from assistant.answering.confidence import features
from assistant.answering.types import Source
from assistant.types import Chunk, Hit


def source(n: int, doc_id: str, text: str, score: float = 1.0) -> Source:
    chunk = Chunk(id=f"{doc_id}#{n}", source="docs", doc_id=doc_id, ordinal=0, text=text, search_text=text,
                  content_hash=f"h{n}", audience="public", meta={"title": doc_id})
    return Source(n, Hit(chunk=chunk, score=score, dense_score=0.5, dense_rank=n, keyword_rank=n))


SOURCES = [source(1, "jira.md", "Escalations are created as Jira issues in the support project."),
           source(2, "slack.md", "The Slack bot answers in threads of the channels it was added to.")]


def test_a_product_no_source_names_counts_as_unknown() -> None:
    asked_about_zendesk = features("does it create zendesk tickets", SOURCES)
    asked_about_jira = features("does it create jira issues", SOURCES)
    assert asked_about_zendesk["unknown_terms"] > 0 == asked_about_jira["unknown_terms"]
    assert asked_about_zendesk["source_terms"] < asked_about_jira["source_terms"] == 1.0


def test_question_words_are_not_content_words() -> None:
    # "how do i" is how a question is asked: it must not count as a word the docs lack
    signals = features("how do i escalate to jira", SOURCES)
    assert signals["source_terms"] == 1.0 and signals["unknown_terms"] == 0.0


def test_the_best_sentence_of_the_first_document_is_compared_with_the_others() -> None:
    q = np.array([1.0, 0.0])
    answers = {1: {"Escalations are created as Jira issues.": np.array([0.9, np.sqrt(1 - 0.81)])},
               2: {"The Slack bot answers in threads.": np.array([0.3, np.sqrt(1 - 0.09)])}}
    signals = features("how are escalations created", SOURCES, q, answers)
    assert abs(signals["sentence_cosine"] - 0.9) < 1e-6
    assert abs(signals["sentence_margin"] - 0.6) < 1e-6
    # the other way round: the first document holds no sentence as close as another's
    swapped = features("how are escalations created", SOURCES, q, {1: answers[2], 2: answers[1]})
    assert swapped["sentence_margin"] < 0 < signals["sentence_margin"]


def test_without_vectors_the_sentence_signals_are_neutral() -> None:
    signals = features("how are escalations created", SOURCES)
    assert signals["sentence_cosine"] == 0.0 == signals["sentence_margin"]
