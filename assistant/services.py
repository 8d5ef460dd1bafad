"""Builds the index's parts once from settings; the CLI and the API lifespan share this."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from assistant.answering.confidence import load_model
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.types import Answerer
from assistant.chat import Assistant
from assistant.conversations import Conversations
from assistant.db import create_engine
from assistant.embeddings import Embedder, load_embedder
from assistant.errors import ConfigError
from assistant.escalation import LocalQueue, TicketQueue
from assistant.index.keyword import KeywordIndex
from assistant.index.vector import ChromaIndex
from assistant.keys import Keys

if TYPE_CHECKING:
    from assistant.jira_client import JiraClient
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
    def store(self) -> IndexStore:
        if not self.settings.database_url:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return IndexStore(create_engine(self.settings.sqlalchemy_url))

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
    def keywords(self) -> KeywordIndex:
        return KeywordIndex(self.settings.keyword_path, self.store)

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
        s = self.settings
        if s.escalation != "jira":
            return LocalQueue(self.store.engine)
        from assistant.jira_queue import JiraQueue

        if not s.jira_project and not s.jsm_service_desk_id:
            raise ConfigError("ANSWERDESK_ESCALATION=jira needs ANSWERDESK_JIRA_PROJECT (or a JSM service desk: "
                              "ANSWERDESK_JSM_SERVICE_DESK_ID and ANSWERDESK_JSM_REQUEST_TYPE_ID).")
        self.jira_client()  # fail at start on missing credentials, not at the first escalation
        return JiraQueue(self.store.engine, self.jira_client, s.jira_project or "",
                         f"{s.public_url.rstrip('/')}/v1/conversations" if s.public_url else None,
                         timeout=s.jira_timeout, settle=s.jira_search_settle, status_refresh=s.jira_status_refresh)

    def jira_client(self) -> JiraClient:
        from assistant.jira_client import JiraClient, JsmTarget

        s = self.settings
        jsm = (JsmTarget(s.jsm_service_desk_id, s.jsm_request_type_id)
               if s.jsm_service_desk_id and s.jsm_request_type_id else None)
        return JiraClient(s.jira_url or "", s.jira_user, s.jira_token.get_secret_value() if s.jira_token else None,
                          s.jira_cloud, s.jira_issue_type, jsm, s.jira_internal_role, s.jira_timeout)

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
            priorities=s.escalation_priorities, sla_labels=s.sla_labels, handoff=s.handoff_options,
            confidence_model=load_model(s.confidence_model),
        )
