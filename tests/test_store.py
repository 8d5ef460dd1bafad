"""The storage contract, run against SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from assistant.db import create_engine
from assistant.store import DocumentRecord, IndexStore
from assistant.types import Chunk


def chunk(doc_id: str, n: int, text: str = "text", audience: str = "public") -> Chunk:
    return Chunk(id=f"{doc_id}-{n}", source="docs", doc_id=doc_id, ordinal=n, text=text,
                 search_text=f"Title\n\n{text}", content_hash=f"h-{text}", audience=audience,
                 meta={"title": "Title", "url": f"https://x/{doc_id}#s{n}", "heading": "S"})


def record(doc_id: str, content_hash: str = "v1") -> DocumentRecord:
    return DocumentRecord(source="docs", doc_id=doc_id, title="Title", url=f"https://x/{doc_id}",
                          content_hash=content_hash, audience="public", updated_at=datetime.now(UTC))


def test_save_replace_delete_and_generation(database_url: str) -> None:
    store = IndexStore(create_engine(database_url))
    g0 = store.generation()
    store.save_documents([(record("a.md"), [chunk("a.md", 0, "alpha"), chunk("a.md", 1, "beta")]),
                          (record("b.md"), [chunk("b.md", 0, "gamma")])])
    assert store.generation() == g0 + 1
    assert store.document_hashes("docs") == {"a.md": "v1", "b.md": "v1"}
    assert store.chunk_hashes("docs", "a.md") == {"a.md-0": "h-alpha", "a.md-1": "h-beta"}

    # Replacing a document drops chunks it no longer has.
    store.save_documents([(record("a.md", "v2"), [chunk("a.md", 0, "alpha2")])])
    assert store.chunk_hashes("docs", "a.md") == {"a.md-0": "h-alpha2"}
    assert store.document_hashes("docs")["a.md"] == "v2"
    got = store.get_chunks(["a.md-0", "b.md-0", "missing"])
    assert set(got) == {"a.md-0", "b.md-0"}
    assert got["a.md-0"].text == "alpha2" and got["a.md-0"].url == "https://x/a.md#s0"

    store.delete_documents("docs", ["b.md"])
    assert store.document_hashes("docs") == {"a.md": "v2"}
    assert [row[0] for row in store.iter_keyword_rows()] == ["a.md-0"]
    assert store.generation() == g0 + 3


def test_keyword_rows_stream_every_chunk_with_filters(database_url: str) -> None:
    store = IndexStore(create_engine(database_url))
    items = [(record(f"d{i}.md"), [chunk(f"d{i}.md", 0, f"t{i}", "internal" if i % 2 else "public")])
             for i in range(30)]
    store.save_documents(items)
    rows = list(store.iter_keyword_rows(batch=7))
    assert len(rows) == 30 == store.count_chunks()
    assert {r[2]["audience"] for r in rows} == {"public", "internal"}


def test_runs_and_status(database_url: str) -> None:
    store = IndexStore(create_engine(database_url))
    store.save_documents([(record("a.md"), [chunk("a.md", 0)])])
    run = store.start_run("docs", "docs", "/tmp/docs")
    store.finish_run(run, "ok", {"seen": 1})
    failed = store.start_run("wiki", "docs", "/tmp/wiki")
    store.finish_run(failed, "failed", {}, "SourceError: boom")
    status = {row["source"]: row for row in store.status()}
    assert status["docs"]["documents"] == 1 and status["docs"]["chunks"] == 1
    assert status["docs"]["last_run"]["status"] == "ok"
    assert status["wiki"]["documents"] == 0
    assert status["wiki"]["last_run"]["error"] == "SourceError: boom"


def test_an_older_database_gains_new_columns(database_url: str) -> None:
    """A database made by an earlier version (no chunks.org, no documents.meta) keeps working."""
    import sqlalchemy as sa

    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE chunks (id VARCHAR(64) PRIMARY KEY, source VARCHAR(200) NOT NULL, "
                             "doc_id VARCHAR(1000) NOT NULL, ordinal INTEGER NOT NULL, content_hash VARCHAR(64) NOT "
                             "NULL, audience VARCHAR(20) NOT NULL, text TEXT NOT NULL, search_text TEXT NOT NULL, "
                             "meta JSON NOT NULL)"))
        conn.execute(sa.text("INSERT INTO chunks VALUES ('old-0', 'docs', 'old.md', 0, 'h', 'public', 't', 's', '{}')"))
    store = IndexStore(engine)
    assert store.get_chunks(["old-0"])["old-0"].org == ""
    new = chunk("a.md", 0)
    store.save_documents([(record("a.md"), [new])], sentence_vectors={new.id: b"\x00\x3c" * 8})
    assert store.count_chunks() == 2
    # The old row has no sentence vectors (the answerer embeds it itself); the new row keeps its bytes.
    assert store.sentence_vectors(["old-0", new.id]) == {new.id: b"\x00\x3c" * 8}


def test_conversation_owners_on_an_upgraded_database(database_url: str) -> None:
    """A database from before owners were recorded gains the column on start; its key-owned rows keep their
    owner, its ownerless rows become staff-only, and new rows are owned, on SQLite and PostgreSQL alike."""
    import pytest
    import sqlalchemy as sa

    from assistant.conversations import Conversations, NotFound
    from assistant.db import init_db

    engine = create_engine(database_url)
    with engine.begin() as conn:  # the table as the previous version created it
        conn.execute(sa.text("CREATE TABLE conversations (id VARCHAR(36) PRIMARY KEY, owner_key_id VARCHAR(36), "
                             "created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)"))
        conn.execute(sa.text("INSERT INTO conversations VALUES ('old-key', 'k1', :t, :t), ('old-anon', NULL, :t, :t)"),
                     {"t": datetime(2026, 1, 1)})
    init_db(engine)
    convs = Conversations(engine)
    assert convs.ensure("old-key", owner="key:k1", staff=False) == "old-key"
    for cid, owner in (("old-key", "key:k2"), ("old-anon", None), ("old-anon", "widget:abc")):
        with pytest.raises(NotFound):
            convs.ensure(cid, owner=owner, staff=False)
    assert convs.ensure("old-anon", owner=None, staff=True) == "old-anon"
    new = convs.ensure(None, owner="slack:T1/C1", staff=False)
    assert convs.ensure(new, owner="slack:T1/C1", staff=False) == new
    with pytest.raises(NotFound):
        convs.ensure(new, owner="slack:T1/C2", staff=False)
