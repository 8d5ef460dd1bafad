"""Citation checks after generation, for every answerer.

1. Every [n] must name a source that was given: others are removed (also mid-stream, by
   MarkerFilter, so a phantom [7] never reaches the user) and counted.
2. Every sentence that cites is checked against its sources: the share of its content words
   found in the cited text, or failing that its embedding similarity to the closest source
   sentence. Unsupported sentences are reported and lower the confidence. Code blocks, and
   lists and tables copied word for word from a source, are quotes, not claims.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assistant.answering.text import coverage, quoted_block, split_sentences, strip_markers, terms
from assistant.answering.types import Source
from assistant.embeddings import Embedder

MARKER = re.compile(r"\[(\d{1,3})\]")
LEXICAL_SUPPORT = 0.6  # share of a sentence's content words found in its source
SEMANTIC_SUPPORT = 0.6  # cosine to the closest source sentence (MiniLM: paraphrases ~0.6-0.9, contradictions ~0.45)
# Sentence vectors already at hand for some sources (the extractive answerer's, stored at ingest):
# source number -> {sentence text: vector}. Sources it leaves out are embedded here.
KnownVectors = Callable[[list[Source]], dict[int, dict[str, np.ndarray]]]


class MarkerFilter:
    """Streams text through, dropping [n] markers that name no given source.

    Text that might be the start of a marker ("[", "[1") is held back until it is decided."""

    def __init__(self, valid: set[int]) -> None:
        self.valid = valid
        self.removed = 0
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta
        self._held = ""
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch != "[":
                out.append(ch)
                i += 1
                continue
            m = re.match(r"\[(\d{0,3})(\]?)", text[i:])
            assert m is not None
            if not m.group(2):
                if i + len(m.group(0)) == len(text) and len(m.group(1)) < 3:
                    self._held = text[i:]  # may still become a marker
                    break
                out.append(ch)
                i += 1
                continue
            if m.group(1) and int(m.group(1)) in self.valid:
                out.append(m.group(0))
            elif m.group(1):
                self.removed += 1
                if out and out[-1] == " ":
                    out.pop()
            else:
                out.append(m.group(0))
            i += len(m.group(0))
        # Trailing spaces wait for the next piece: if it starts with a dropped marker, the
        # space before that marker goes too ("then [7]." -> "then.").
        result = "".join(out)
        stripped = result.rstrip(" ")
        if len(stripped) < len(result):
            self._held = result[len(stripped):] + self._held
            result = stripped
        return result

    def finish(self) -> str:
        held, self._held = self._held, ""
        return held


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    support: float
    supported: bool


@dataclass
class Verification:
    text: str
    cited: list[int]  # source numbers in order of first citation
    removed_markers: int
    sentences: list[SentenceCheck] = field(default_factory=list)

    @property
    def unsupported(self) -> list[str]:
        return [s.text for s in self.sentences if not s.supported]

    @property
    def support_ratio(self) -> float:
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else 0.0


def remove_invalid_markers(text: str, valid: set[int]) -> tuple[str, int]:
    f = MarkerFilter(valid)
    out = f.feed(text) + f.finish()
    return out, f.removed


def verify(text: str, sources: list[Source], embedder: Embedder | None = None,
           known: KnownVectors | None = None) -> Verification:
    by_n = {s.n: s for s in sources}
    clean, removed = remove_invalid_markers(text, set(by_n))
    cited: list[int] = []
    checks: list[SentenceCheck] = []
    pending_semantic: list[tuple[SentenceCheck, str, list[int]]] = []
    source_words: dict[int, set[str]] = {}
    for block in clean.split("\n\n"):
        if block.lstrip().startswith(("```", "~~~")):
            continue  # code is quoted, not claimed
        if quoted_block(block, [s.text for s in sources]):
            continue  # so is a list or table copied from a source (introduced by a cited sentence)
        for sentence in split_sentences(block):
            ns = [int(n) for n in MARKER.findall(sentence)]
            for n in ns:
                if n not in cited:
                    cited.append(n)
            plain = strip_markers(sentence)
            words = terms(plain)
            if len(words) < 3 and not ns:
                continue  # "Here is how:" claims nothing
            if not ns:
                checks.append(SentenceCheck(plain, [], 0.0, False))
                continue
            for n in ns:  # each source is tokenized once, however many sentences cite it
                if n not in source_words:
                    source_words[n] = terms(by_n[n].hit.chunk.search_text)
            source_terms = set().union(*(source_words[n] for n in ns))
            lexical = coverage(words, source_terms) if words else 1.0
            check = SentenceCheck(plain, ns, lexical, lexical >= LEXICAL_SUPPORT)
            checks.append(check)
            if not check.supported:
                pending_semantic.append((check, plain, ns))
    if pending_semantic and embedder is not None:
        cited_sources = [by_n[n] for n in sorted({n for _, _, ns in pending_semantic for n in ns})]
        _semantic_support(pending_semantic, by_n, embedder, known(cited_sources) if known else {})
    return Verification(clean.strip(), cited, removed, checks)


def _semantic_support(pending: list[tuple[SentenceCheck, str, list[int]]], by_n: dict[int, Source],
                      embedder: Embedder, known: dict[int, dict[str, np.ndarray]]) -> None:
    """Paraphrases fail the word test; give them a second chance by meaning. Sentence vectors
    already known are used as they are; everything else is embedded in two batches."""
    claims = list(dict.fromkeys(p for _, p, _ in pending))
    claim_vec = dict(zip(claims, embedder.embed(claims, kind="query"), strict=True))
    cited = sorted({n for _, _, ns in pending for n in ns})
    # Every sentence of each cited source counts (an LLM may paraphrase a table row or a long
    # sentence the extractive answerer would never quote); vectors already known are reused, the
    # rest embedded once, in one batch, whatever cites them.
    sentences = {n: split_sentences(by_n[n].text) or [by_n[n].text] for n in cited}
    missing = list(dict.fromkeys(s for n in cited for s in sentences[n] if s not in known.get(n, {})))
    fresh = dict(zip(missing, embedder.embed(missing, kind="document"), strict=True)) if missing else {}
    rows: dict[int, np.ndarray] = {}
    for n in cited:
        mine = known.get(n, {})
        rows[n] = np.vstack([mine[s] if s in mine else fresh[s] for s in sentences[n]])
    for check, _plain, ns in pending:
        vec = claim_vec[_plain]
        best = float(max(np.max(rows[n] @ vec) for n in ns))
        check.support = max(check.support, best)
        check.supported = best >= SEMANTIC_SUPPORT
