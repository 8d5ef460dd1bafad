"""ANSWERDESK_EMBEDDING_URL: embeddings from an OpenAI-compatible server over real HTTP.

The server is tests/fakes/embedding_server.py (TEI's behaviour: one model, hub id in the answer,
no /v1/models, 413 above its batch limit) serving the bundled all-MiniLM-L6-v2; the client is the
real openai SDK inside assistant/embeddings_http.py. Ingestion, sentence vectors and questions all
go through it; a server that is down, or that serves another model than the collection holds, is
refused with a message that says what to do."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from assistant.answering import sentences
from assistant.api import create_app
from assistant.embedders import load_embedder
from assistant.embeddings import QueryBatcher, SentenceTransformerEmbedder
from assistant.embeddings_http import ServerEmbedder, api_base
from assistant.errors import ConfigError, EmbeddingError
from assistant.services import Services
from assistant.settings import Settings, bundled_model_path
from tests.conftest import ROOT, free_port, index_docs
from tests.fakes.embedding_server import MODEL_ID, EmbeddingServer, load_bundled_model
from tests.servers import AsgiServer

TEXTS = [
    "How do I set the database URL?",
    "Escalations go to Jira when ANSWERDESK_ESCALATION=jira.",
    "Die Antwort zitiert die Quelle.",  # not English: still the same vectors both ways
    "x",
    "A long text " + "with many words about chunking and overlap " * 60,  # past the model's 256 tokens
] + [f"question number {i} about rate limits and API keys" for i in range(70)]  # > the server's batch of 32


@pytest.fixture(scope="module")
def server_model() -> Any:
    """The server's own copy of the bundled model, in float32 as TEI runs it on a CPU."""
    return load_bundled_model()


@pytest.fixture(scope="module")
def in_process() -> SentenceTransformerEmbedder:
    """The in-process embedder at full precision, as the server runs. (`auto` picks bfloat16 on CPUs with native
    support; its vectors are normalised in bfloat16, so their norms are off by up to 0.3%.)"""
    return SentenceTransformerEmbedder(bundled_model_path(), dtype="float32")


@pytest.fixture(scope="module")
def server(server_model: Any) -> Iterator[tuple[EmbeddingServer, AsgiServer]]:
    fake = EmbeddingServer(server_model)
    http = AsgiServer(fake.app, name="embedding server")
    http.start()
    yield fake, http
    http.stop()


def server_settings(root: Path, url: str, **extra: Any) -> Settings:
    return Settings(data_dir=root / "data", embedding_url=url, _env_file=None, **extra)  # type: ignore[call-arg]


def test_vectors_from_the_server_match_the_in_process_model(
    server: tuple[EmbeddingServer, AsgiServer], in_process: SentenceTransformerEmbedder,
    embedder: SentenceTransformerEmbedder,
) -> None:
    fake, http = server
    remote = ServerEmbedder(http.url)  # no /v1 written: it is added
    assert remote.url == http.url + "/v1"
    assert remote.name == "sentence-transformers/all-MiniLM-L6-v2" == embedder.name  # same collection check
    assert remote.dimension == embedder.dimension == 384
    before = len(fake.requests)
    got = remote.embed(TEXTS, kind="document")
    want = in_process.embed(TEXTS, kind="document")
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # normalised here, not by the server
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    # Against the default in-process embedder too (bfloat16 where the CPU has it): the same directions, so one's
    # collection can be searched with the other's questions (Chroma compares directions, not lengths).
    default = embedder.embed(TEXTS)
    default /= np.linalg.norm(default, axis=1, keepdims=True)
    assert np.sum(got * default, axis=1).min() >= 0.999
    # The server's 413 for 64 texts halved the batch: every request after that fits its limit of 32.
    sizes = [r["texts"] for r in fake.requests[before:]]
    assert max(sizes) == 64 and sizes.count(64) <= 2 and all(s <= 32 for s in sizes[sizes.index(32):])
    assert remote.batch_size == 32 and sum(s for s in sizes if s <= 32) == len(TEXTS)
    assert {r["encoding_format"] for r in fake.requests[before:]} == {"float"}


def test_the_query_batcher_still_groups_concurrent_questions(server: tuple[EmbeddingServer, AsgiServer]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fake, http = server
    batcher = QueryBatcher(ServerEmbedder(http.url), window=0.05)
    before = len(fake.requests)
    questions = [f"how do API keys work, take {i}" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        rows = list(pool.map(lambda q: batcher.embed([q], kind="query"), questions))
    assert all(r.shape == (1, 384) for r in rows)
    assert len(fake.requests) - before == batcher.batches < len(questions)  # shared requests, not one each
    assert batcher.embed([questions[0]], kind="query").shape == (1, 384)
    assert len(fake.requests) - before == batcher.batches  # asked again: from the cache, no request


def test_ingest_and_answer_end_to_end_through_the_server(
    tmp_path: Path, server: tuple[EmbeddingServer, AsgiServer], in_process: SentenceTransformerEmbedder
) -> None:
    fake, http = server
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("configuration.md", "installation.md", "escalations.md"):
        shutil.copy(ROOT / "docs" / name, docs / name)
    services = Services(server_settings(tmp_path, http.url + "/v1/embeddings"))  # the full URL works too
    before = len(fake.requests)
    index_docs(services, docs)
    chunks = services.store.count_chunks()
    assert chunks and services.vectors.count() == chunks
    # Chunks and their sentence vectors all came from the server, and they are the model's vectors.
    assert sum(r["texts"] for r in fake.requests[before:]) > chunks
    ids = services.store.chunk_ids("answerdesk-docs", [d.doc_id for d in services.store.documents("answerdesk-docs")])
    blobs = services.store.sentence_vectors(ids)
    assert set(blobs) == set(ids)
    for chunk in list(services.store.get_chunks(ids[:3]).values()):
        texts = sentences.sentence_texts(chunk)
        stored = sentences.decode(blobs[chunk.id], len(texts), 384)
        assert stored is not None
        assert np.sum(stored * in_process.embed(texts), axis=1).min() >= 0.999
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        asked = len(fake.requests)
        r = client.post("/v1/chat", json={"question": "How do I set the database URL?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["citations"] and "configuration.md#" in body["citations"][0]["url"]
        assert "[1]" in body["answer"]
        assert len(fake.requests) > asked  # the question was embedded by the server
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["checks"]["embeddings"] == "ok"


def test_a_server_that_is_down_is_a_clear_error_and_a_503(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EmbeddingError, match=r"Cannot reach the embedding server at .*ANSWERDESK_EMBEDDING_URL"):
        ServerEmbedder(down, max_retries=0)

    # The API starts anyway and answers 503 with Retry-After, not a 500 with a trace.
    services = Services(server_settings(tmp_path, down, embedding_max_retries=0))
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        r = client.post("/v1/chat", json={"question": "How do I set the database URL?"})
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert "Traceback" not in r.text and "127.0.0.1" not in r.text  # the cause is for admins and the log
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["embeddings"] == "unreachable"


def test_a_server_going_down_after_start_fails_requests_with_503(tmp_path: Path, server_model: Any) -> None:
    fake = EmbeddingServer(server_model)
    http = AsgiServer(fake.app, name="embedding server (stopped mid-test)")
    url = http.start()
    try:
        services = Services(server_settings(tmp_path, url, embedding_max_retries=1, embedding_timeout=120))
        index_docs(services, _one_doc(tmp_path))
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            assert client.post("/v1/chat", json={"question": "Which database can I use?"}).status_code == 200
            http.stop()
            r = client.post("/v1/chat", json={"question": "How do I change the chunk size?"})
            assert r.status_code == 503 and r.headers["Retry-After"], r.text
            assert client.get("/readyz").json()["checks"]["embeddings"] == "unreachable"
            http.start(http.port)  # back on the same address: answers come again without a restart
            r = client.post("/v1/chat", json={"question": "How do I change the chunk size?"})
            assert r.status_code == 200, r.text
    finally:
        http.stop()


def test_a_text_the_server_refuses_is_named_not_retried_forever(server_model: Any) -> None:
    """TEI without --auto-truncate refuses long inputs with 413: halving the batch cannot help a single text."""
    fake = EmbeddingServer(server_model, max_words=50)
    http = AsgiServer(fake.app, name="embedding server without auto-truncate")
    try:
        remote = ServerEmbedder(http.start())
        short = ["a short text", "another short one"]
        with pytest.raises(EmbeddingError, match=r"refused a text \(413: .*--auto-truncate"):
            remote.embed(short + ["word " * 80] + short)
        assert remote.embed(short).shape == (2, 384)  # the server still serves what it accepts
        assert len(fake.requests) < 12  # halved down to the one text, then stopped
    finally:
        http.stop()


def _one_doc(tmp_path: Path) -> Path:
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(ROOT / "docs" / "configuration.md", folder / "configuration.md")
    return folder


def test_a_collection_of_another_model_is_refused(tmp_path: Path, server: tuple[EmbeddingServer, AsgiServer],
                                                   embedder: SentenceTransformerEmbedder) -> None:
    _, http = server
    # A collection built by another model (the hash embedder's name, same width)...
    from assistant.embeddings_hash import HashEmbedder

    index_docs(Services(Settings(data_dir=tmp_path / "data", _env_file=None), embedder=HashEmbedder()),  # type: ignore[call-arg]
               _one_doc(tmp_path))
    # ...is not searched with the server's all-MiniLM vectors: the message says what to do.
    services = Services(server_settings(tmp_path, http.url))
    with pytest.raises(ConfigError, match=r"holds vectors of model 'hash-384'.*ANSWERDESK_CHROMA_COLLECTION"):
        services.vectors  # noqa: B018


def test_a_model_name_the_server_does_not_serve_is_refused(server: tuple[EmbeddingServer, AsgiServer]) -> None:
    _, http = server
    with pytest.raises(ConfigError, match=r"serves '" + MODEL_ID + r"', not 'BAAI/bge-small-en-v1.5'"):
        ServerEmbedder(http.url, model="BAAI/bge-small-en-v1.5")
    assert ServerEmbedder(http.url, model=MODEL_ID).name == MODEL_ID


def test_settings_pick_the_server_and_its_model(tmp_path: Path, server: tuple[EmbeddingServer, AsgiServer],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, http = server
    monkeypatch.setenv("ANSWERDESK_EMBEDDING_URL", http.url + "/v1")
    monkeypatch.setenv("ANSWERDESK_EMBEDDING_MODEL", MODEL_ID)
    from assistant.settings import load_settings

    batcher = load_embedder(load_settings(_env_file=None))
    assert isinstance(batcher.inner, ServerEmbedder) and batcher.name == MODEL_ID
    with pytest.raises(ConfigError, match="ANSWERDESK_EMBEDDING_URL"):
        load_settings(_env_file=None, embedding_url="tei:8080")


@pytest.mark.parametrize(("given", "base"), [
    ("http://tei:8080", "http://tei:8080/v1"),
    ("http://tei:8080/", "http://tei:8080/v1"),
    ("http://tei:8080/v1", "http://tei:8080/v1"),
    ("http://tei:8080/v1/embeddings", "http://tei:8080/v1"),
    ("https://gpu.example/embed/v1/", "https://gpu.example/embed/v1"),
])
def test_the_url_is_read_as_operators_write_it(given: str, base: str) -> None:
    assert api_base(given) == base
