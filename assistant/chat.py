"""The chat flow: rewrite -> retrieve -> answer (streamed) -> verify -> confidence -> escalate -> store.

`stream()` yields events ("delta", "reset", "citations", "done"); `respond()` runs the same
flow and returns the final `ChatResult` (the "done" event's data), so streaming and plain answers never differ.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from assistant.answering.citations import MarkerFilter, Verification, verify
from assistant.answering.confidence import Confidence, Model, assess
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.rewrite import rule_rewrite
from assistant.answering.types import Answerer, Source, Turn
from assistant.conversations import Conversations
from assistant.embeddings import Embedder
from assistant.errors import GenerationError
from assistant.escalation.handoff import Routing
from assistant.escalation.queue import EscalationRequest, TicketQueue, escalation_sources
from assistant.keys import Identity
from assistant.results import ChatResult, Checks, Citation, DraftAnswer
from assistant.retrieval import Retriever
from assistant.settings import DEFAULT_CONFIDENCE_THRESHOLD
from assistant.types import Where

WANTS_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect me|put me through)\b.{0,30}\b(human|person|someone|agent|support|somebody)\b"
    r"|\b(human|real person|live agent|support agent)\s*(please|now)?\s*[.!?]*$",
    re.I,
)
SNIPPET_CHARS = 300

Rewriter = Callable[[str, str | None, list[Turn]], str]


@dataclass
class Draft:
    answerer: Answerer
    checked: Verification
    flags: list[str]
    removed: int


@dataclass
class Event:
    kind: str  # delta | reset | citations | done
    data: Any


def not_sure_note(reference: str, found_anything: bool) -> str:
    lead = "I'm not sure this answers your question" if found_anything else "I couldn't find this in the documentation"
    return f"{lead}, so I've passed it to the support team (reference {reference})."


class Assistant:
    def __init__(
        self,
        retriever: Retriever,
        answerer: Answerer,
        fallback: ExtractiveAnswerer,
        queue: TicketQueue,
        conversations: Conversations,
        embedder: Embedder,
        threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        k: int = 5,
        history_turns: int = 6,
        rewriter: Rewriter | None = None,
        routing: Routing | None = None,
        confidence_model: Model | None = None,
    ) -> None:
        self.confidence_model = confidence_model
        self.routing = routing or Routing()  # priority, SLA label and handoff options by who asked
        self.retriever = retriever
        self.answerer = answerer
        self.fallback = fallback
        self.queue = queue
        self.conversations = conversations
        self.embedder = embedder
        self.threshold = threshold
        self.k = k
        self.history_turns = history_turns
        self.rewriter = rewriter or (lambda q, prev, _h: rule_rewrite(q, prev))

    def respond(self, question: str, conversation_id: str | None = None, where: Where | None = None,
                identity: Identity | None = None, origin: Callable[[], str] | None = None) -> ChatResult:
        done = None
        for event in self.stream(question, conversation_id, where, identity, origin):
            if event.kind == "done":
                done = event.data
        assert isinstance(done, ChatResult)
        return done

    def stream(self, question: str, conversation_id: str | None = None, where: Where | None = None,
               identity: Identity | None = None, origin: Callable[[], str] | None = None) -> Iterator[Event]:
        """identity None is the local operator (CLI): no owner, no restriction beyond `where`.
        origin: where the question was asked (e.g. a Slack thread's link), asked for only when the
        answer is escalated, and recorded with the escalation so an agent can go there."""
        started, first_ms = time.perf_counter(), None
        question = self.conversations.scrub(question.strip())  # nothing downstream sees the raw text
        new = conversation_id is None
        conversation_id = self.conversations.ensure(
            conversation_id, owner=identity.owner if identity else None, staff=identity is None or identity.staff)
        # The support team's replies (role "support") are not the assistant's turns. A conversation
        # started just now has none: no read for it.
        past = [m for m in self.conversations.messages(conversation_id, self.history_turns * 2 + 10)
                if m.role in ("user", "assistant")][-self.history_turns * 2:] if self.history_turns and not new else []
        history = [Turn(m.role, m.content) for m in past]
        previous_query = next((m.search_query for m in reversed(past) if m.role == "user"), None)
        search_query = self.rewriter(question, previous_query, history)
        hits = self.retriever.search(search_query, k=self.k, where=where)
        sources = [Source(n, hit) for n, hit in enumerate(hits, 1)]

        produced = self._produce(question, sources, history)
        while True:
            try:
                event = next(produced)
            except StopIteration as stop:
                answer_draft: Draft = stop.value
                break
            if first_ms is None and event.kind == "delta":
                first_ms = int((time.perf_counter() - started) * 1000)
            yield event
        checked, flags = answer_draft.checked, answer_draft.flags
        answerer = answer_draft.answerer
        removed = answer_draft.removed

        confidence = self._assess(search_query, sources, checked)
        wants_human = bool(WANTS_HUMAN.search(question))
        escalate = wants_human or confidence.score < self.threshold
        citations = self._citations(checked, sources)
        answer = checked.text
        escalation_id = None
        if escalate:
            flags.append("human_requested" if wants_human else "low_confidence")
            ref = self.queue.open(EscalationRequest(
                conversation_id=conversation_id,
                question=question,
                transcript=[{"role": t.role, "content": t.content} for t in history]
                + [{"role": "user", "content": question}],
                draft_answer=checked.text,
                sources=escalation_sources([c.to_dict() for c in citations]),
                confidence=confidence.score,
                reasons=(["user_requested"] if wants_human else []) + confidence.reasons
                + ([origin()] if origin else []),
                requested_by_user=wants_human,
                # A signed-in user's verified address; whether to write to it is theirs to say (notify).
                contact_email=identity.email if identity else None,
                contact_verified=bool(identity and identity.email),
                **self.routing.fields(identity),
            ))
            escalation_id = ref.id
            note = not_sure_note(ref.id, bool(citations)) if not wants_human else (
                f"I've passed your request to the support team (reference {ref.id}).")
            joiner = "\n\n" if answer else ""
            yield Event("delta", joiner + note)
            answer = f"{answer}{joiner}{note}"

        yield Event("citations", citations)
        result = ChatResult(
            conversation_id=conversation_id,
            answer=answer,
            citations=citations,
            confidence=confidence.score,
            escalated=escalate,
            escalation_id=escalation_id,
            handoff=self.routing.options(identity) if escalate else [],
            answerer=answerer.name,
            flags=flags,
            search_query=search_query,
            checks=self._checks(checked, confidence, removed),
        )
        timings = {"latency_ms": int((time.perf_counter() - started) * 1000), "first_token_ms": first_ms}
        message_id = self.conversations.add_exchange(conversation_id, question, search_query, result, timings)
        yield Event("done", replace(result, message_id=message_id))

    def _produce(self, question: str, sources: list[Source], history: list[Turn]) -> Generator[Event, None, Draft]:
        """Generate (streaming "delta"/"reset" events), verify citations, fall back when the LLM fails
        or answers with no usable citation; returns the checked draft."""
        flags: list[str] = []
        answerer = self.answerer
        text = ""
        markers = MarkerFilter({s.n for s in sources})
        try:
            for delta in self._generate(answerer, question, sources, history, markers):
                text += delta
                yield Event("delta", delta)
        except GenerationError:
            flags.append("llm_fallback")
            if text:
                yield Event("reset", None)
            answerer, text = self.fallback, ""
            for delta in self._generate(answerer, question, sources, history, MarkerFilter(markers.valid)):
                text += delta
                yield Event("delta", delta)
        checked = verify(text, sources, self.embedder, self.fallback.known_vectors)
        if answerer is not self.fallback and (not checked.cited or not checked.text):
            # An answer with no usable citation is garbage for our purposes: quote the sources instead.
            flags.append("llm_fallback")
            yield Event("reset", None)
            answerer = self.fallback
            text = "".join(self._generate(answerer, question, sources, history, MarkerFilter(markers.valid)))
            yield Event("delta", text)
            checked = verify(text, sources, self.embedder, self.fallback.known_vectors)
        removed = checked.removed_markers + (markers.removed if answerer is self.answerer else 0)
        if removed:
            flags.append("invalid_citations_removed")
        if checked.unsupported:
            flags.append("unsupported_sentences")
        return Draft(answerer, checked, flags, removed)

    def draft(self, question: str, where: Where | None = None) -> DraftAnswer:
        """An answer with citations and confidence, nothing stored and nothing escalated: for agents."""
        hits = self.retriever.search(question, k=self.k, where=where)
        sources = [Source(n, hit) for n, hit in enumerate(hits, 1)]
        gen = self._produce(question, sources, [])
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            result: Draft = stop.value
        confidence = self._assess(question, sources, result.checked)
        return DraftAnswer(answer=result.checked.text, citations=self._citations(result.checked, sources),
                           confidence=confidence.score, answerer=result.answerer.name, flags=result.flags,
                           checks=self._checks(result.checked, confidence, result.removed))

    def _assess(self, query: str, sources: list[Source], checked: Verification) -> Confidence:
        """The confidence of any answerer's answer, from retrieval and the sources' sentences: the
        query vector is the one retrieval used (a cache hit) and the sentence vectors are the
        extractive answerer's, whichever answerer wrote the answer."""
        if not sources:
            return assess(query, sources, checked, self.confidence_model)
        qvec = self.embedder.embed([query], kind="query")[0]
        return assess(query, sources, checked, self.confidence_model, qvec, self.fallback.known_vectors(sources))

    @staticmethod
    def _generate(answerer: Answerer, question: str, sources: list[Source], history: list[Turn],
                  markers: MarkerFilter) -> Iterator[str]:
        """The answerer's text with phantom [n] markers dropped before anyone sees them."""
        for delta in answerer.stream(question, sources, history):
            out = markers.feed(delta)
            if out:
                yield out
        tail = markers.finish()
        if tail:
            yield tail

    @staticmethod
    def _citations(checked: Verification, sources: list[Source]) -> list[Citation]:
        by_n = {s.n: s for s in sources}
        out = []
        for n in sorted(checked.cited):
            s = by_n[n]
            out.append(Citation(
                n=n,
                title=s.title,
                url=s.hit.chunk.url,
                snippet=s.text[:SNIPPET_CHARS] + ("…" if len(s.text) > SNIPPET_CHARS else ""),
                source=s.hit.chunk.source,
                doc_id=s.hit.chunk.doc_id,
                score=round(s.hit.score, 6),
            ))
        return out

    @staticmethod
    def _checks(checked: Verification, confidence: Confidence, removed: int) -> Checks:
        return Checks(
            removed_citations=removed,
            sentences=len(checked.sentences),
            supported_sentences=sum(x.supported for x in checked.sentences),
            unsupported_sentences=checked.unsupported,
            signals=confidence.signals,
            reasons=confidence.reasons,
        )
