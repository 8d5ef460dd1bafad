"""Citation checks on their own: markers split across streamed pieces, sentences that cite
after the full stop, support by words and by meaning."""

from __future__ import annotations

from assistant.answering.citations import MarkerFilter, verify
from assistant.answering.text import source_units, split_sentences
from assistant.answering.types import Source
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.types import Chunk, Hit


def source(n: int, text: str) -> Source:
    chunk = Chunk(f"c{n}", "docs", f"d{n}", 0, text, text, f"h{n}", "public", {"title": f"T{n}", "url": f"u{n}"})
    return Source(n, Hit(chunk, 1.0, dense_score=0.8, keyword_score=3.0, dense_rank=n, keyword_rank=n))


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


def test_units_keep_code_blocks_whole_and_skip_tables() -> None:
    text = ("Run this:\n\n```bash\npip install x\n# comment\n```\n\n"
            "| a | b |\n|---|---|\n\n- First item here.\n- Second item.")
    units = source_units(text)
    assert [u.is_code for u in units] == [False, True, False, False]
    assert units[1].text.startswith("```bash") and "# comment" in units[1].text
    assert units[2].text == "First item here."


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
