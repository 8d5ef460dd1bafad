"""One contract for the vector index seam, run against embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import ConfigError, RetrievalError
from assistant.index.vector import ChromaIndex


@pytest.fixture(params=["embedded", "server"])
def chroma(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    url = "" if request.param == "embedded" else request.getfixturevalue("chroma_server")
    return url, tmp_path / "chroma"


def open_index(chroma: tuple[str, Path], name: str | None = None, model: str = "m", dim: int = 4) -> ChromaIndex:
    url, path = chroma
    return ChromaIndex.open(url, path, name or f"c-{uuid.uuid4().hex[:8]}", model, dim)


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def meta(audience: str, source: str = "docs") -> dict[str, str]:
    return {"audience": audience, "source": source}


def test_nearest_vector_first_and_similarity_is_cosine(chroma: tuple[str, Path]) -> None:
    idx = open_index(chroma)
    idx.upsert(["a", "b", "c"], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(1, 1, 0, 0)]),
               [meta("public")] * 3)
    got = idx.search(unit(1, 0.1, 0, 0), k=3)
    assert [m.id for m in got] == ["a", "c", "b"]
    assert got[0].similarity == pytest.approx(float(unit(1, 0.1, 0, 0) @ unit(1, 0, 0, 0)), abs=1e-4)


def test_filters_apply_inside_the_query_so_k_stays_full(chroma: tuple[str, Path]) -> None:
    idx = open_index(chroma)
    # The internal vectors are the nearest; a post-filter would return fewer than k results.
    vecs = [unit(1, 0, 0, 0)] * 5 + [unit(0, 1, 0, 0), unit(0, 1, 1, 0), unit(0, 0, 1, 0)]
    ids = [f"internal{i}" for i in range(5)] + ["p1", "p2", "p3"]
    metas = [meta("internal")] * 5 + [meta("public"), meta("customer"), meta("public", "wiki")]
    idx.upsert(ids, np.stack(vecs), metas)
    got = idx.search(unit(1, 0, 0, 0), k=3, where={"audience": ["public", "customer"]})
    assert sorted(m.id for m in got) == ["p1", "p2", "p3"]
    got = idx.search(unit(1, 0, 0, 0), k=3, where={"audience": "public", "source": "docs"})
    assert [m.id for m in got] == ["p1"]


def test_upsert_is_idempotent_and_replaces(chroma: tuple[str, Path]) -> None:
    idx = open_index(chroma)
    idx.upsert(["a"], unit(1, 0, 0, 0)[None], [meta("public")])
    idx.upsert(["a"], unit(0, 0, 0, 1)[None], [meta("public")])
    assert idx.count() == 1
    assert idx.search(unit(0, 0, 0, 1), k=1)[0].similarity == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(idx.get_vectors(["a"])["a"], unit(0, 0, 0, 1), atol=1e-6)


def test_delete_and_metadata_update(chroma: tuple[str, Path]) -> None:
    idx = open_index(chroma)
    idx.upsert(["a", "b"], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]), [meta("public")] * 2)
    idx.delete(["a"])
    assert idx.count() == 1
    assert [m.id for m in idx.search(unit(1, 0, 0, 0), k=5)] == ["b"]
    idx.update_metadata(["b"], [meta("internal")])
    assert idx.search(unit(0, 1, 0, 0), k=5, where={"audience": "public"}) == []


def test_persists_across_clients(chroma: tuple[str, Path]) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    open_index(chroma, name).upsert(["a"], unit(1, 0, 0, 0)[None], [meta("public")])
    assert open_index(chroma, name).count() == 1


def test_refuses_vectors_of_another_model(chroma: tuple[str, Path]) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    open_index(chroma, name, model="model-a").upsert(["a"], unit(1, 0, 0, 0)[None], [meta("public")])
    with pytest.raises(ConfigError, match="ANSWERDESK_CHROMA_COLLECTION"):
        open_index(chroma, name, model="model-b")


def test_collection_has_no_default_embedding_function(chroma: tuple[str, Path]) -> None:
    # Chroma's default function downloads an ONNX model: it must never be configured.
    idx = open_index(chroma)
    assert idx._col.configuration.get("embedding_function") is None  # noqa: SLF001


def test_unreachable_server_is_a_retrieval_error(tmp_path: Path) -> None:
    from tests.conftest import free_port

    with pytest.raises(RetrievalError, match="Chroma"):
        ChromaIndex.open(f"http://127.0.0.1:{free_port()}", tmp_path, "unreachable", "m", 4)



def test_a_vector_the_index_lost_is_written_again(chroma: tuple[str, Path]) -> None:
    """Embedded Chroma 1.5 sometimes stores a vector written after queries without making it searchable:
    get() has it, query() never returns it (chroma-core/chroma#5367; seen here as a new internal page that
    dense search never found, about one run in three). Writing it again puts it back. Here the collection
    hides "new" from queries until it is written a second time, as Chroma does; upsert must notice."""
    idx = open_index(chroma)
    idx.upsert(["a", "b"], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]), [meta("public")] * 2)
    real, writes = idx._col, []

    class Lossy:  # the real collection, except that "new" stays unsearchable after its first write
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def upsert(self, **kwargs: object) -> None:
            writes.append(list(kwargs["ids"]))  # type: ignore[call-overload]
            real.upsert(**kwargs)

        def query(self, **kwargs: object) -> dict[str, list[list[str]]]:
            res = real.query(**kwargs)
            if sum("new" in w for w in writes) < 2:
                res["ids"] = [[i for i in ids if i != "new"] for ids in res["ids"]]
            return res  # type: ignore[no-any-return]

    idx._col = Lossy()
    idx.upsert(["c", "new"], np.stack([unit(1, 1, 0, 0), unit(0, 0, 1, 0)]), [meta("public")] * 2)
    assert writes == [["c", "new"], ["new"]]  # only the lost one is written again
    assert idx.search(unit(0, 0, 1, 0), k=1)[0].id == "new"
