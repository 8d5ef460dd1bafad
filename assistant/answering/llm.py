"""The `openai` answerer: LangChain's ChatOpenAI against any OpenAI-compatible server.

Sources are numbered [1]..[k] and fenced in <source> tags as untrusted data; the prompt
templates are files in prompts/ so they can be tuned without touching code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.answering.types import Source, Turn
from assistant.errors import ConfigError, GenerationError
from assistant.settings import Settings

_FENCE_TAG = re.compile(r"</?\s*source\b", re.I)


def load_prompt(prompts_dir: Path, name: str) -> str:
    path = prompts_dir / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Prompt template {path} is missing: check ANSWERDESK_PROMPTS_DIR") from exc


def fence_sources(sources: list[Source]) -> str:
    """Each source in its own tag; the text is escaped so a source cannot close its fence."""
    parts = []
    for s in sources:
        title = html.escape(s.title, quote=True)
        url = html.escape(s.hit.chunk.url, quote=True)
        body = _FENCE_TAG.sub(lambda m: "\u2039" + m.group(0)[1:], s.text)
        parts.append(f'<source n="{s.n}" title="{title}" url="{url}">\n{body}\n</source>')
    return "\n\n".join(parts)


def chat_model(settings: Settings, streaming: bool = True) -> Any:
    if settings.openai_api_key is None:
        raise ConfigError(
            "No OPENAI_API_KEY: set it (and OPENAI_BASE_URL for a local server), "
            "or use ANSWERDESK_ANSWERER=extractive to answer offline without an LLM."
        )
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.llm_model,
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        temperature=0,
        streaming=streaming,
    )


class OpenAIAnswerer:
    name = "openai"

    def __init__(self, settings: Settings, llm: Any | None = None) -> None:
        self.llm = llm if llm is not None else chat_model(settings)
        self.system = load_prompt(settings.prompts_dir, "answer_system.md")
        self.user = load_prompt(settings.prompts_dir, "answer_user.md")

    def messages(self, question: str, sources: list[Source], history: list[Turn]) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        out: list[Any] = [SystemMessage(self.system)]
        for turn in history:
            out.append(HumanMessage(turn.content) if turn.role == "user" else AIMessage(turn.content))
        out.append(HumanMessage(self.user.format(sources=fence_sources(sources), question=question)))
        return out

    def stream(self, question: str, sources: list[Source], history: list[Turn]) -> Iterator[str]:
        try:
            for chunk in self.llm.stream(self.messages(question, sources, history)):
                content = chunk.content
                if isinstance(content, list):  # some servers send content parts
                    content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
                if content:
                    yield str(content)
        except GenerationError:
            raise
        except Exception as exc:  # openai.APITimeoutError, APIStatusError, bad JSON...
            raise GenerationError(f"LLM call failed ({type(exc).__name__}): {exc}") from exc
