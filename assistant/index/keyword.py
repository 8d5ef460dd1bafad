"""BM25 keyword index (bm25s) in the process, rebuilt from the database's chunks and persisted on disk.

bm25s cannot add or remove single documents, so the index is a snapshot of the chunks table
at one *generation* (a counter every database write bumps). A search first compares
generations: a stale snapshot (after an ingest, in this or another process) is reloaded or
rebuilt, so keyword results always match what Chroma and the database hold.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.store import IndexStore
from assistant.tokens import tokenize
from assistant.types import Where

_FILTER_FIELDS = ("source", "audience", "doc_id", "org")
FORMAT = 2  # bump when tokenization changes: older snapshots on disk are rebuilt, not misread


class KeywordSearch(Protocol):
    """The keyword index seam: this in-process bm25s index, or the database's (index/database.py)."""

    def search(self, query: str, k: int, where: Where | None = None) -> list[tuple[str, float]]: ...

    def ensure_fresh(self) -> None: ...

    def rebuild(self) -> None: ...

    def __len__(self) -> int: ...


class KeywordIndex:
    def __init__(self, path: Path, store: IndexStore) -> None:
        self.path = path
        self.store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._bm25: object | None = None
        self._ids: list[str] = []
        self._fields: dict[str, np.ndarray] = {}

    # -- freshness ---------------------------------------------------------------------------
    def ensure_fresh(self) -> None:
        generation = self.store.generation()
        if generation == self._generation:
            return
        with self._lock:
            if generation == self._generation:
                return
            if not self._load(generation):
                self._build(generation)

    def rebuild(self) -> None:
        with self._lock:
            self._build(self.store.generation())

    def _current_dir(self) -> Path | None:
        try:
            name = (self.path / "CURRENT").read_text().strip()
        except OSError:
            return None
        return self.path / name

    def _load(self, generation: int) -> bool:
        folder = self._current_dir()
        if folder is None or not (folder / "rows.json").exists():
            return False
        rows = json.loads((folder / "rows.json").read_text())
        if rows.get("generation") != generation or rows.get("format") != FORMAT:
            return False
        self._set(rows, self._load_bm25(folder) if rows["ids"] else None, generation)
        return True

    @staticmethod
    def _load_bm25(folder: Path) -> object:
        import bm25s

        return bm25s.BM25.load(str(folder), mmap=False, show_progress=False)

    def _build(self, generation: int) -> None:
        import bm25s

        ids: list[str] = []
        fields: dict[str, list[str]] = {f: [] for f in _FILTER_FIELDS}
        tokens: list[list[str]] = []
        batch_text: list[str] = []

        def flush() -> None:
            tokens.extend(tokenize(batch_text))
            batch_text.clear()

        for chunk_id, text, values in self.store.iter_keyword_rows():
            ids.append(chunk_id)
            for f in _FILTER_FIELDS:
                fields[f].append(values[f])
            batch_text.append(text)
            if len(batch_text) >= 2000:
                flush()
        flush()
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
        rows = {"generation": generation, "format": FORMAT, "ids": ids, **fields}
        self._save(rows, bm25)
        self._set(rows, bm25, generation)

    def _save(self, rows: dict[str, object], bm25: object | None) -> None:
        # Write a new folder, then switch CURRENT to it: readers never see a half-written index.
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"gen-{rows['generation']}-{os.getpid()}-{threading.get_ident()}"
        folder = self.path / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        if bm25 is not None:
            bm25.save(str(folder), show_progress=False)  # type: ignore[attr-defined]
        (folder / "rows.json").write_text(json.dumps(rows))
        tmp = self.path / f"CURRENT.{name}"
        tmp.write_text(name)
        os.replace(tmp, self.path / "CURRENT")
        for old in self.path.glob("gen-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _set(self, rows: dict[str, object], bm25: object | None, generation: int) -> None:
        self._ids = list(rows["ids"])  # type: ignore[call-overload]
        self._fields = {f: np.asarray(rows[f], dtype=object) for f in _FILTER_FIELDS}
        self._bm25 = bm25
        self._generation = generation

    # -- search ------------------------------------------------------------------------------
    def search(self, query: str, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score); the filter is a weight mask inside BM25, so k stays full."""
        self.ensure_fresh()
        bm25, ids = self._bm25, self._ids
        if bm25 is None or not ids:
            return []
        mask = self._mask(where)
        if mask is not None and not mask.any():
            return []
        q = tokenize([query])
        if not q[0]:
            return []
        k = min(k, len(ids))
        docs, scores = bm25.retrieve(  # type: ignore[attr-defined]
            q, k=k, show_progress=False, n_threads=0,  # 0: in this thread (1 makes a thread pool per query)
            weight_mask=None if mask is None else mask.astype(np.float32),
        )
        return [(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _mask(self, where: Where | None) -> np.ndarray | None:
        if not where:
            return None
        mask = np.ones(len(self._ids), dtype=bool)
        for key, value in where.items():
            if key == "$or":
                alternatives = [self._mask(w) for w in value]
                mask &= np.logical_or.reduce([a if a is not None else np.ones_like(mask) for a in alternatives])
                continue
            if key not in self._fields:
                raise ValueError(f"keyword index cannot filter on {key!r}")
            values = [value] if isinstance(value, str) else list(value)
            mask &= np.isin(self._fields[key], values)
        return mask

    def __len__(self) -> int:
        self.ensure_fresh()
        return len(self._ids)
