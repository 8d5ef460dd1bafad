"""The project's one keyword tokenizer: bm25s's word pattern, English stopwords and the Snowball
English stemmer. Every keyword index (bm25s in the process, FTS in the database) indexes and
queries these tokens, so the two rank the same words."""

from __future__ import annotations

import re

# "ABC-7" tokenizes to "abc" and a dropped one-character "7"; a joined "abc7" token keeps ticket
# keys (and names like IL-6) findable as one word.
_KEY = re.compile(r"\b([A-Za-z][A-Za-z0-9]*)-(\d+)\b")


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s
    import Stemmer

    texts = [_KEY.sub(lambda m: f"{m.group(0)} {m.group(1)}{m.group(2)}", t) for t in texts]
    return bm25s.tokenize(  # type: ignore[no-any-return]
        texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )
