"""Citation checks on their own: markers split across streamed pieces, sentences that cite
after the full stop, support by words and by meaning; and what the extractive answerer quotes:
rendered text, the list a sentence introduces, the section that answers and nothing unrelated."""

from __future__ import annotations

import re

from assistant.answering.citations import MarkerFilter, verify
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.text import render_inline, source_units, split_sentences
from assistant.answering.types import Source
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.services import Services
from assistant.types import Chunk, Hit


def source(n: int, text: str, title: str = "", heading: str = "") -> Source:
    meta = {"title": title or f"T{n}", "url": f"u{n}", "heading": heading}
    search_text = "\n".join(p for p in (title, heading, text) if p)
    chunk = Chunk(f"c{n}", "docs", f"d{n}", 0, text, search_text, f"h{n}-{hash(text)}", "public", meta)
    return Source(n, Hit(chunk, 1.0, dense_score=0.8, keyword_score=3.0, dense_rank=n, keyword_rank=n))


def answer(embedder: SentenceTransformerEmbedder, question: str, sources: list[Source]) -> str:
    return "".join(ExtractiveAnswerer(embedder).stream(question, sources, []))


def stream(pieces: list[str], valid: set[int]) -> tuple[str, int]:
    f = MarkerFilter(valid)
    out = "".join(f.feed(p) for p in pieces) + f.finish()
    return out, f.removed


def test_marker_filter_handles_markers_split_across_pieces() -> None:
    assert stream(["Use pip [", "1", "] and then", " [", "7", "]."], {1, 2}) == ("Use pip [1] and then.", 1)
    assert stream(["Arrays like a[", "i] stay; [12", "3] goes"], {1}) == ("Arrays like a[i] stay; goes", 1)
    assert stream(["Ends with [2"], {2}) == ("Ends with [2", 0)  # never closed: not a marker, kept
    assert stream(["[1][2][9]"], {1, 2}) == ("[1][2]", 1)


def test_sentences_keep_citations_written_after_the_full_stop() -> None:
    assert split_sentences("Install it. [1] Then run it [2]. Done.") == ["Install it. [1]", "Then run it [2].", "Done."]


def test_a_stray_full_stop_is_not_a_sentence() -> None:
    """SciFact abstracts can start with ". It is now recognized ...": the answer quoted ". [1]"."""
    assert [u.text for u in source_units(". It is now recognized that D matters. Yes.")] == [
        "It is now recognized that D matters.", "Yes."]


def test_units_keep_code_blocks_tables_and_list_items_whole() -> None:
    text = ("Run this:\n\n```bash\npip install x\n# comment\n```\n\n"
            "| a | b \\| c |\n|---|---|\n\n- First item here,\n  wrapped.\n- Second item.")
    units = source_units(text)
    assert [u.kind for u in units] == ["sentence", "code", "table", "item", "item"]
    assert units[1].text.startswith("```bash") and "# comment" in units[1].text
    assert units[2].text == "| a | b \\| c |\n|---|---|"  # an escaped pipe stays escaped: it is a table
    assert units[3].text == "First item here, wrapped." and units[3].bullet == "-"


def test_quotes_are_rendered_text_not_markdown() -> None:
    assert render_inline("Use [current generation](instance-types.md#current-gen) types, "
                         "it is straight\\-forward and **fast** (_really_), see <https://x.example/a>.") == (
        "Use current generation types, it is straight-forward and **fast** (_really_), see https://x.example/a.")
    # Code stays as written, and so do words that only look like emphasis.
    assert render_inline("Set `ANSWERDESK_DATA_DIR` or ANSWERDESK_DATA_DIR, `a\\-b` and 2 * 3 * 4.") == (
        "Set `ANSWERDESK_DATA_DIR` or ANSWERDESK_DATA_DIR, `a\\-b` and 2 * 3 * 4.")
    assert render_inline("![diagram](img.png) \\*not emphasis\\*") == "diagram *not emphasis*"


def test_verify_support_by_words_and_by_meaning(embedder: SentenceTransformerEmbedder) -> None:
    sources = [source(1, "Set ANSWERDESK_DATABASE_URL to a postgresql:// URL to use PostgreSQL."),
               source(2, "The widget streams answers token by token.")]
    text = ("Set ANSWERDESK_DATABASE_URL to a postgresql:// URL. [1] "
            "The chat widget shows responses progressively as tokens are generated [2]. "
            "The widget renders the whole answer at once after generation finishes [2]. "
            "The assistant can also book flights to Lisbon and pay invoices [2]. "
            "Bogus marker here [5].")
    v = verify(text, sources, embedder)
    assert v.removed_markers == 1 and "[5]" not in v.text
    assert v.cited == [1, 2]
    supported = {s.text: s.supported for s in v.sentences}
    assert supported["Set ANSWERDESK_DATABASE_URL to a postgresql:// URL."]
    assert supported["The chat widget shows responses progressively as tokens are generated."]  # paraphrase
    assert not supported["The widget renders the whole answer at once after generation finishes."]  # contradiction
    assert not supported["The assistant can also book flights to Lisbon and pay invoices."]
    assert not supported["Bogus marker here."]  # uncited claim
    assert 0 < v.support_ratio < 1


def test_a_sentence_that_introduces_a_list_brings_the_list(embedder: SentenceTransformerEmbedder) -> None:
    reserved = source(1, "Amazon Forecast reserves the following names.\n\n- Admin\n- Cost\n- Forecast\n"
                         "- Region\n\nYou cannot use a reserved name as a field name in a schema.",
                      "Dataset guidelines", "Reserved field names")
    other = source(2, "A dataset group holds up to three datasets, one of each dataset type.", "Datasets")
    text = answer(embedder, "Is Admin a reserved field name?", [reserved, other])
    assert "Amazon Forecast reserves the following names. [1]\n\n- Admin\n- Cost\n- Forecast\n- Region" in text
    checked = verify(text, [reserved, other], embedder)
    assert not checked.unsupported and checked.cited == [1]  # the list is a quote, not an uncited claim


def test_answers_quote_rendered_text(embedder: SentenceTransformerEmbedder) -> None:
    src = source(1, "Instances of the [current generation](instance-types.md#current-generation) are "
                    "straight\\-forward to resize: **stop** the instance, change its type, start it again.",
                 "Instances", "Resizing an instance")
    text = answer(embedder, "how do I resize an instance?", [src])
    assert text == ("Instances of the current generation are straight-forward to resize: **stop** the instance, "
                    "change its type, start it again. [1]")
    assert verify(text, [src], embedder).support_ratio == 1.0


def test_a_good_answer_is_not_padded_with_unrelated_sections(embedder: SentenceTransformerEmbedder) -> None:
    how = source(1, "Set `ANSWERDESK_ESCALATION=jira` together with the Jira URL, user, token and project. Each "
                    "escalation then becomes a Jira issue whose summary is the question.",
                 "Escalations", "Sending escalations to Jira")
    benchmark = source(2, "The benchmark creates 100 escalations against the fake Jira failing 30% of its calls. "
                          "All of them reach Jira in the end.", "Performance",
                       "Escalation delivery through a flaky Jira")
    tickets = source(3, "Resolved Jira tickets are indexed with their public comments.", "Confluence and Jira",
                     "Indexing resolved Jira tickets")
    text = answer(embedder, "how do i make escalations go to jira", [how, benchmark, tickets])
    assert text == ("Set `ANSWERDESK_ESCALATION=jira` together with the Jira URL, user, token and project. [1] "
                    "Each escalation then becomes a Jira issue whose summary is the question. [1]")


def test_not_sure_question_gets_the_escalation_section(docs_services: Services) -> None:
    """Issue 15: this answered "answerdesk validates its settings when it starts." with confidence.
    index.md ranks first by a hair; the escalations section matches clearly better, so it leads."""
    body = docs_services.assistant.respond("What does answerdesk do when it is not sure?")
    assert "validates its settings" not in body.answer
    # A quoted, cited sentence says it (not only the escalation note the chat flow may add).
    assert re.search(r"not sure[^\[\n]*\[\d+\]", body.answer), body.answer
    assert {c.doc_id for c in body.citations} <= {"index.md", "escalations.md", "configuration.md"}


def test_the_first_citation_follows_retrieval_unless_another_page_clearly_answers(
        embedder: SentenceTransformerEmbedder) -> None:
    """Issue 15: the answer's first [n] is the page a reader follows. When retrieval puts the first
    page well ahead it keeps the lead even if another page words the answer better; when two pages
    tie, the one that answers leads."""
    from dataclasses import replace

    question = "How do I rotate an API key?"
    listed = source(1, "API keys are listed on the admin page with their role and organisation.",
                    title="Admin page")
    rotate = source(2, "To rotate an API key, create a new key and then revoke the old one.",
                    title="Keys")

    def scored(s: Source, score: float) -> Source:
        return Source(s.n, replace(s.hit, score=score))

    sure = answer(embedder, question, [scored(listed, 8.0), scored(rotate, 0.0)])
    assert sure.startswith("API keys are listed on the admin page"), sure
    tie = answer(embedder, question, [scored(listed, 1.0), scored(rotate, 0.98)])
    assert tie.startswith("To rotate an API key, create a new key and then revoke the old one. [2]"), tie


ERROR_TABLE = ("| Status | Meaning | What to do |\n|---|---|---|\n"
               "| 401 | the API key is missing or wrong | send a valid key in the `Authorization` header |\n"
               "| 413 | the request body is too large | send a shorter question |\n"
               "| 429 | too many requests for your plan | wait for the seconds the `Retry-After` header gives |\n"
               "| 503 | the index is unreachable | retry later |")


def test_a_question_about_a_table_only_section_cites_it_first_with_its_rows(
        embedder: SentenceTransformerEmbedder) -> None:
    """Issue 15: a section that is only a table (an error table) had nothing to quote, so the answer
    led with another page. Its rows are ranked like sentences; the table is quoted word for word
    under the section's heading, which cites it."""
    limits = source(1, "Requests are counted per API key. Each plan allows a number of requests per minute, "
                       "and streams are limited too.", "Access", "Plans")
    errors = source(2, ERROR_TABLE, "API", "Error codes")
    question = "why do i get a 429 error from the api"
    text = answer(embedder, question, [limits, errors])
    assert text.startswith("API — Error codes [2]\n\n| Status | Meaning | What to do |"), text
    assert "| 429 | too many requests for your plan | wait for the seconds the `Retry-After` header gives |" in text
    checked = verify(text, [limits, errors], embedder)
    assert checked.cited[0] == 2 and not checked.unsupported


def test_a_long_table_is_quoted_by_its_head_and_the_matching_rows(embedder: SentenceTransformerEmbedder) -> None:
    rows = "".join(f"| `ANSWERDESK_SETTING_{k}` | {k * 10} | tunes part {k} of the indexing pipeline |\n"
                   for k in range(1, 30))
    table = ("| setting | default | meaning |\n|---|---|---|\n" + rows
             + "| `ANSWERDESK_RATE_LIMITS` | 60 | requests per minute a customer may send before answers wait |\n")
    settings = source(1, table, "Configuration", "All settings")
    text = answer(embedder, "how many requests per minute may a customer send", [settings])
    assert text.startswith("Configuration — All settings [1]\n\n| setting | default | meaning |\n|---|---|---|\n")
    assert "| `ANSWERDESK_RATE_LIMITS` | 60 | requests per minute a customer may send before answers wait |" in text
    assert len(text) < len(table) / 3  # not all 30 rows
    assert not verify(text, [settings], embedder).unsupported


def test_the_confluence_error_table_answers_its_error(docs_services: Services) -> None:
    """Bundled docs: the Confluence errors are only a table; the answer cites that page first."""
    body = docs_services.assistant.respond("confluence ingest fails with 410 gone")
    first = re.search(r"\[(\d+)\]", body.answer)
    assert first and {c.n: c.doc_id for c in body.citations}[int(first.group(1))] == "confluence-and-jira.md", (
        body.answer)
    assert "| `410 Gone` from Confluence | a scoped token through `api.atlassian.com` |" in body.answer
