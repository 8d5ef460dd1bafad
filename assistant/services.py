"""Builds the index's parts once from settings; the CLI and the API lifespan share this."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.engine import Engine

from assistant.answering.confidence import load_model
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.types import Answerer
from assistant.chat import Assistant
from assistant.conversations import Conversations
from assistant.db import create_engine
from assistant.embedders import load_embedder
from assistant.embeddings import Embedder
from assistant.escalation.agent import AgentAssist
from assistant.escalation.assist_posts import AssistPoster
from assistant.escalation.factory import build_jira_client, build_queue, jira_client_factory
from assistant.escalation.handoff import Routing
from assistant.escalation.jira_client import JiraClient
from assistant.escalation.jira_queue import JiraQueue
from assistant.escalation.queue import TicketQueue
from assistant.index.database import DatabaseKeywordIndex
from assistant.index.keyword import KeywordIndex, KeywordSearch
from assistant.index.vector import ChromaIndex
from assistant.keys import Keys
from assistant.replies.factory import build_outbox
from assistant.replies.outbox import ReplyOutbox
from assistant.retrieval import Fusion, Retriever
from assistant.settings import Settings
from assistant.store import IndexStore


class Services:
    """Lazily built: `answerdesk status` needs the database, not torch or Chroma."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        if embedder is not None:
            self.__dict__["embedder"] = embedder

    @cached_property
    def engine(self) -> Engine:
        if not self.settings.database_url:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return create_engine(self.settings.sqlalchemy_url)

    @cached_property
    def store(self) -> IndexStore:
        # Upgrades the schema, or refuses one that is behind (ANSWERDESK_AUTO_MIGRATE; assistant/schema.py).
        return IndexStore(self.engine, migrate=self.settings.migrate_on_start,
                          keyword_index=self.settings.keyword_index == "database")

    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(self.settings)

    @cached_property
    def vectors(self) -> ChromaIndex:
        s = self.settings
        return ChromaIndex.open(
            s.chroma_url, s.chroma_path, s.chroma_collection, self.embedder.name, self.embedder.dimension,
            timeout=s.chroma_timeout,
        )

    @cached_property
    def keywords(self) -> KeywordSearch:
        if self.settings.keyword_index == "bm25s":
            return KeywordIndex(self.settings.keyword_path, self.store)
        return DatabaseKeywordIndex(self.store)

    @cached_property
    def retriever(self) -> Retriever:
        s = self.settings
        return Retriever(
            self.embedder, self.vectors, self.keywords, self.store, s.retrieval_candidates,
            Fusion(dense=s.fusion_dense_weight),
        )

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.store.engine)

    # -- answering -------------------------------------------------------------------------
    @cached_property
    def conversations(self) -> Conversations:
        from assistant.redact import redact

        return Conversations(self.store.engine, redact if self.settings.redact_pii else None)

    @cached_property
    def queue(self) -> TicketQueue:
        queue = build_queue(self.settings, self.store.engine)
        if isinstance(queue, JiraQueue) and self.settings.assist_on_new_tickets:
            queue.assist = self.assist_poster  # suggested reply on each new ticket, once
        return queue

    @cached_property
    def assist_poster(self) -> AssistPoster:
        return AssistPoster(self.store.engine, lambda: self.agent_assist)

    def post_assist(self, ticket_key: str) -> bool:
        """Post agent assist's suggested reply on a ticket as an internal comment, once ever (the Jira
        `issue_created` webhook calls this for tickets made in Jira). True when posted by this call."""
        return self.assist_poster.post(ticket_key)

    @cached_property
    def replies(self) -> ReplyOutbox:
        """Answers from Jira back to the asker (assistant/replies)."""
        return build_outbox(self.settings, self.store.engine)

    @cached_property
    def routing(self) -> Routing:
        return Routing.from_settings(self.settings)

    def jira_client(self) -> JiraClient:
        return build_jira_client(self.settings)

    @cached_property
    def agent_assist(self) -> AgentAssist:
        return AgentAssist(self.assistant, self.store, self.retriever, jira_client_factory(self.settings))

    @cached_property
    def extractive(self) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(self.embedder, stored=self.store.sentence_vectors)

    @cached_property
    def answerer(self) -> Answerer:
        if self.settings.answerer == "openai":
            from assistant.answering.llm import OpenAIAnswerer

            return OpenAIAnswerer(self.settings)
        return self.extractive

    @cached_property
    def assistant(self) -> Assistant:
        s = self.settings
        rewriter = None
        if s.answerer == "openai":
            from assistant.answering.llm import chat_model, load_prompt
            from assistant.answering.rewrite import LLMRewriter

            rewriter = LLMRewriter(chat_model(s, streaming=False), load_prompt(s.prompts_dir, "rewrite.md"))
        return Assistant(
            self.retriever, self.answerer, self.extractive, self.queue, self.conversations, self.embedder,
            threshold=s.confidence_threshold, k=s.retrieval_k, history_turns=s.history_turns, rewriter=rewriter,
            routing=self.routing,
            confidence_model=load_model(s.confidence_model),
        )
