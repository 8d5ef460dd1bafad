"""The project's one keyword tokenizer: bm25s's word pattern, English stopwords and the Snowball
English stemmer. Every keyword index (bm25s in the process, FTS in the database) indexes and
queries these tokens, so the two rank the same words.

The steps are bm25s.tokenize's own (lowercase, `\\b\\w\\w+\\b`, drop its English stopwords, then
stem), done here without its per-call set-up: bm25s rebuilds the stopword set per text and makes
progress bars even when they are off, which cost more than the search itself for a short query
(tests/test_retrieval.py checks the tokens are bm25s's)."""

from __future__ import annotations

import re
import threading
from functools import cache

# "ABC-7" tokenizes to "abc" and a dropped one-character "7"; a joined "abc7" token keeps ticket
# keys (and names like IL-6) findable as one word.
_KEY = re.compile(r"\b([A-Za-z][A-Za-z0-9]*)-(\d+)\b")
_WORD = re.compile(r"(?u)\b\w\w+\b")
_local = threading.local()  # a PyStemmer object is not safe to share between threads


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def _stemmer():  # type: ignore[no-untyped-def]
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: list[str]) -> list[list[str]]:
    stop = _stopwords()
    stem = _stemmer().stemWords
    out = []
    for text in texts:
        text = _KEY.sub(lambda m: f"{m.group(0)} {m.group(1)}{m.group(2)}", text)
        out.append(stem([w for w in _WORD.findall(text.lower()) if w not in stop]))
    return out
