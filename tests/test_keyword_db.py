"""Keyword search inside the database (SQLite FTS5, PostgreSQL full-text search), on both engines:
what one process commits another finds at once, the access filter is in the query, deletes and
re-ingests show, and BM25 ranks the rare term first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from assistant import fts
from assistant.access import access_filter
from assistant.db import create_engine
from assistant.index.database import DatabaseKeywordIndex
from assistant.index.keyword import KeywordIndex
from assistant.keys import Identity
from assistant.store import DocumentRecord, IndexStore
from assistant.types import Chunk

PUBLIC = access_filter(Identity(role="community"))
ACME = access_filter(Identity(role="customer", org="acme", tier="paid"))


def chunk(doc_id: str, text: str, audience: str = "public", org: str = "", n: int = 0,
          source: str = "docs") -> Chunk:
    return Chunk(id=f"{source}:{doc_id}-{n}", source=source, doc_id=doc_id, ordinal=n, text=text,
                 search_text=f"{doc_id}\n\n{text}", content_hash=f"h-{hash(text)}", audience=audience, org=org,
                 meta={"title": doc_id, "url": f"https://x/{doc_id}", "heading": ""})


def save(store: IndexStore, *chunks: Chunk) -> None:
    store.save_documents([(DocumentRecord(source=c.source, doc_id=c.doc_id, title=c.doc_id, url="https://x",
                                          content_hash=c.content_hash, audience=c.audience,
                                          updated_at=datetime.now(UTC)), [c]) for c in chunks])


def ids(hits: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in hits]


@pytest.fixture
def two_processes(database_url: str) -> tuple[IndexStore, DatabaseKeywordIndex]:
    """A writer's store and a reader's index on their own engines (connection pools), as two processes."""
    return IndexStore(create_engine(database_url)), DatabaseKeywordIndex(IndexStore(create_engine(database_url)))


def test_a_commit_is_found_by_another_engine_at_once(two_processes: tuple[IndexStore, DatabaseKeywordIndex]) -> None:
    writer, reader = two_processes
    assert reader.search("pelican", 5) == []
    save(writer, chunk("billing.md", "Invoices are sent by the PELICAN service each month."))
    assert ids(reader.search("pelican invoices", 5)) == ["docs:billing.md-0"]
    save(writer, chunk("ship.md", "Pelicans deliver the parcels."))  # stemmed: pelicans -> pelican
    assert set(ids(reader.search("pelican", 5))) == {"docs:billing.md-0", "docs:ship.md-0"}


def test_access_filter_is_inside_the_query(two_processes: tuple[IndexStore, DatabaseKeywordIndex]) -> None:
    writer, reader = two_processes
    # Many internal chunks match better than the public one: a post-filter on top-k would return nothing.
    save(writer, *[chunk(f"internal{i}.md", "zebrafish zebrafish zebrafish rollout", "internal") for i in range(8)],
         chunk("acme-ticket.md", "zebrafish rollout for acme", "customer", org="acme"),
         chunk("globex-ticket.md", "zebrafish zebrafish rollout for globex", "customer", org="globex"),
         chunk("plan.md", "customer plan zebrafish", "customer"),
         chunk("public.md", "the zebrafish page"))
    assert ids(reader.search("zebrafish", 3, PUBLIC)) == ["docs:public.md-0"]
    got = ids(reader.search("zebrafish", 3, ACME))
    assert sorted(got) == ["docs:acme-ticket.md-0", "docs:plan.md-0", "docs:public.md-0"]
    assert len(reader.search("zebrafish", 20)) == 12  # staff: no filter
    assert reader.search("zebrafish", 5, {"audience": []}) == []
    with pytest.raises(ValueError, match="cannot filter on 'title'"):
        reader.search("zebrafish", 5, {"title": "x"})


def test_delete_and_reingest_update_the_index(two_processes: tuple[IndexStore, DatabaseKeywordIndex]) -> None:
    writer, reader = two_processes
    save(writer, chunk("a.md", "the albatross migrates"), chunk("b.md", "the albatross sleeps"))
    assert len(reader.search("albatross", 5)) == 2
    save(writer, chunk("a.md", "now about cormorants"))  # re-ingest: new text replaces the old
    assert ids(reader.search("albatross", 5)) == ["docs:b.md-0"]
    assert ids(reader.search("cormorant", 5)) == ["docs:a.md-0"]
    save(writer, chunk("b.md", "the albatross sleeps", audience="internal"))  # audience changed
    assert reader.search("albatross", 5, PUBLIC) == []
    writer.delete_documents("docs", ["a.md", "b.md"])
    assert reader.search("albatross", 5) == [] and reader.search("cormorant", 5) == []


def test_the_rare_term_ranks_first(two_processes: tuple[IndexStore, DatabaseKeywordIndex]) -> None:
    writer, reader = two_processes
    common = [chunk(f"c{i}.md", f"database settings page {i} database connection database") for i in range(20)]
    save(writer, *common, chunk("rare.md", "database settings for the kraken replica"))
    hits = reader.search("kraken database settings", 5)
    assert hits[0][0] == "docs:rare.md-0"
    assert hits[0][1] > hits[1][1] > 0
    assert len(hits) == 5


def test_project_tokenizer_ticket_keys_and_stopwords(two_processes: tuple[IndexStore, DatabaseKeywordIndex]) -> None:
    writer, reader = two_processes
    save(writer, chunk("SUP-7", "Refund requested in SUP-7 by max_tokens users"), chunk("other.md", "Refund policy"))
    assert ids(reader.search("sup7", 5)) == ["docs:SUP-7-0"]  # the joined key, as the bm25s index has it
    assert ids(reader.search("SUP-7", 1)) == ["docs:SUP-7-0"]
    assert ids(reader.search("max_tokens", 5)) == ["docs:SUP-7-0"]
    assert reader.search("the and of", 5) == []  # stopwords only: nothing to match


def test_database_from_an_earlier_version_is_indexed_when_opened(database_url: str) -> None:
    store = IndexStore(create_engine(database_url))
    save(store, chunk("old.md", "heron nesting season"))
    # As an earlier version left it: chunks written, no keyword rows, no format marker.
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM chunks_fts"))
        conn.execute(sa.text("DELETE FROM state WHERE key = :k"), {"k": fts.FORMAT_KEY})
    assert DatabaseKeywordIndex(store).search("heron", 5) == []
    reopened = IndexStore(create_engine(database_url))
    assert ids(DatabaseKeywordIndex(reopened).search("heron", 5)) == ["docs:old.md-0"]
    assert fts.ensure_index(reopened.engine) == 0  # done once, not on every start


def test_with_bm25s_chosen_chunk_writes_skip_it_and_choosing_it_again_reindexes(database_url: str) -> None:
    store = IndexStore(create_engine(database_url))
    save(store, chunk("kept.md", "heron nesting season"))
    bm25s_store = IndexStore(create_engine(database_url), keyword_index=False)
    save(bm25s_store, chunk("later.md", "egret feeding grounds"))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM chunks_fts")).scalar_one() == 1  # later.md not written
    reopened = IndexStore(create_engine(database_url))  # the database index chosen again
    assert ids(DatabaseKeywordIndex(reopened).search("egret", 5)) == ["docs:later.md-0"]


def test_scores_match_the_bm25s_index_order(database_url: str, tmp_path: Path) -> None:
    store = IndexStore(create_engine(database_url))
    texts = ["solar panel efficiency in winter", "panel discussion about solar policy and solar taxes",
             "wind turbines and solar farms", "winter tyres", "efficiency of heat pumps in winter winter"]
    save(store, *[chunk(f"d{i}.md", t) for i, t in enumerate(texts)])
    query = "solar efficiency winter"
    bm25s = KeywordIndex(tmp_path / "kw", store).search(query, 5)
    database = DatabaseKeywordIndex(store).search(query, 5)
    assert set(ids(database)) == set(ids(bm25s))
    assert ids(database)[0] == ids(bm25s)[0]
    if fts.is_postgres(store.engine):  # same formula and statistics as bm25s: the same scores
        assert [round(s, 4) for _, s in database] == [round(s, 4) for _, s in bm25s]


def test_postgres_top_k_is_exact_bm25_when_candidates_are_pruned(pg_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates come first from the rarer query terms only (MaxScore); the top k must still be
    what scoring every matching chunk gives: the bm25s index's exact ranking and scores."""
    import random

    from assistant.index import database

    rng = random.Random(5)
    words = [f"w{i}" for i in range(40)]
    store = IndexStore(create_engine(pg_url))
    save(store, *[chunk(f"d{i}.md", " ".join(rng.choices(words, weights=[1 / (r + 1) for r in range(40)], k=30)),
                        "internal" if i % 5 == 0 else "public") for i in range(120)])
    monkeypatch.setattr(database, "CANDIDATE_BUDGET", 10)  # forces the two-step path on most queries
    index, bm25s = DatabaseKeywordIndex(store), KeywordIndex(tmp_path / "kw", store)
    for query in ["w0 w39", "w1 w2 w30", "w5 w6 w7 w38", "w0 w1", "w37"]:
        for where in (None, PUBLIC):
            want = [(i, round(s, 4)) for i, s in bm25s.search(query, 10, where)]
            got = [(i, round(s, 4)) for i, s in index.search(query, 10, where)]
            assert [s for _, s in got] == [s for _, s in want], (query, where)  # the same scores, in order
            last = want[-1][1]  # ties at the cut may fall either way; everything above it must match
            assert {h for h in got if h[1] > last} == {h for h in want if h[1] > last}, (query, where)


def test_setting_chooses_the_keyword_index(tmp_path: Path) -> None:
    from assistant.errors import ConfigError
    from assistant.services import Services
    from assistant.settings import Settings, load_settings

    def keywords(**kw: str) -> object:
        return Services(Settings(data_dir=tmp_path, _env_file=None, **kw)).keywords  # type: ignore[call-arg]

    assert isinstance(keywords(), KeywordIndex)  # bm25s stays the default until PostgreSQL meets its target
    assert isinstance(keywords(keyword_index="database"), DatabaseKeywordIndex)
    with pytest.raises(ConfigError, match="ANSWERDESK_KEYWORD_INDEX"):
        load_settings(keyword_index="elastic", _env_file=None)


def test_postgres_search_of_common_words_is_capped_and_finds_chunks_holding_all_of_them(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When every query word is common, PostgreSQL scores a capped sample instead of every chunk that
    holds one: the chunks holding all the words (written last, so outside any table-order sample of
    one word) still rank first, and the list is still k long."""
    from assistant.index import database

    store = IndexStore(create_engine(pg_url))
    save(store, *[chunk(f"a{i}.md", f"walrus colony report {i}") for i in range(30)],
         *[chunk(f"b{i}.md", f"penguin colony survey {i}") for i in range(30)],
         *[chunk(f"both{i}.md", f"walrus and penguin share the beach {i}") for i in range(3)])
    monkeypatch.setattr(database, "CANDIDATE_BUDGET", 10)  # neither word is rare enough to be exact
    monkeypatch.setattr(database, "FILL", 5)
    monkeypatch.setattr(database, "COMMON", 1.0)
    hits = DatabaseKeywordIndex(store).search("walrus penguin", 8, PUBLIC)
    assert sorted(ids(hits)[:3]) == [f"docs:both{i}.md-0" for i in range(3)]
    assert len(hits) == 8 and hits[2][1] > hits[3][1]


def test_postgres_full_reindex_equals_the_incremental_index(pg_url: str) -> None:
    """Re-indexing every chunk (bulk load, GIN index built once) gives the rows, term statistics and
    results that chunk-by-chunk ingestion gave."""
    store = IndexStore(create_engine(pg_url))
    save(store, *[chunk(f"d{i}.md", f"kestrel {'hovering ' * (i % 4)}over field {i} o'brien") for i in range(12)],
         chunk("x.md", "kestrel", "customer", org="acme"))
    index = DatabaseKeywordIndex(store)

    def snapshot() -> tuple[object, ...]:
        with store.engine.connect() as conn:
            terms = conn.execute(sa.text("SELECT term, df FROM keyword_terms WHERE df > 0 ORDER BY term")).all()
            rows = conn.execute(sa.text("SELECT id, org, length, terms::text FROM chunks_fts ORDER BY id")).all()
            gin = conn.execute(sa.text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_chunks_fts_terms'"
                                       " AND schemaname = current_schema()")).scalar_one()
        return terms, rows, gin, index.search("kestrel hovering", 20, ACME)

    before = snapshot()
    fts.forget(store.engine)
    assert fts.ensure_index(store.engine) == 13
    assert snapshot() == before and before[2] == 1
