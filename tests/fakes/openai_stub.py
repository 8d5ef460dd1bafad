"""A local OpenAI-compatible server for tests: /v1/chat/completions, plain and streamed (SSE),
spoken to by the real openai SDK through LangChain's ChatOpenAI.

It answers from the sources in the prompt like a well-behaved model would (quoting the first
sentence of each of the first two sources, with [n]), and misbehaves on request through the
model name: stub-phantom (cites [7]), stub-unsupported (adds an invented claim),
stub-garbage (no citations at all), stub-slow (answers after 5 s), stub-500 (server error).
Every request body is recorded for assertions about the prompt.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.servers import AsgiServer

SOURCE = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.S)
INVENTED = "The product also ships a quantum teleporter that syncs tickets to Mars nightly"


def first_sentence(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    sentence = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))[0]
    return sentence.rstrip(".") + "."


def compose(model: str, messages: list[dict[str, Any]]) -> str:
    last = str(messages[-1]["content"])
    if "Standalone question:" in last:  # the follow-up rewriter's prompt
        convo = re.search(r"Conversation:\n(.*?)\n\nLast message: (.*?)\n", last, re.S)
        assert convo is not None
        first_user = re.search(r"^user: (.*)$", convo.group(1), re.M)
        return f"{first_user.group(1) if first_user else ''} {convo.group(2)}".strip()
    if 'Reply with one line "Score: X"' in last:  # the eval judge's prompts
        return "Score: 1" if "ANSWER: " in last and "[1]" in last else "Score: 0.25"
    sources = SOURCE.findall(last)
    if model == "stub-garbage" or not sources:
        return "Lorem ipsum dolor sit amet, as everyone knows."
    parts = [f"{first_sentence(text)[:-1]} [{n}]." for n, text in sources[:2]]
    if model == "stub-phantom":
        parts[0] = parts[0][:-1] + " [7]."
    if model == "stub-unsupported":
        parts.append(f"{INVENTED} [1].")
    return " ".join(parts)


class OpenAIStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.completions)
        self.port = 0
        # stub-slow sleeps 5 s: stop() must not wait for an answer its client gave up on.
        self._server = AsgiServer(self.app, name="OpenAI stub", lifespan="off", graceful_stop=1)

    async def completions(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append(body)
        model = body.get("model", "")
        if model == "stub-500":
            return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}}, status_code=500)
        if model == "stub-slow":
            await asyncio.sleep(5)  # the client's timeout fires first
        text = compose(model, body["messages"])
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        if body.get("stream"):
            return StreamingResponse(self._chunks(cid, created, model, text), media_type="text/event-stream")
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    @staticmethod
    def _chunks(cid: str, created: int, model: str, text: str) -> Iterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for piece in re.findall(r"\S+\s*", text):  # word by word, like a real model
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"

    def start(self) -> str:
        """The base URL the openai client wants (ending in /v1)."""
        url = self._server.start()
        self.port = self._server.port
        return f"{url}/v1"

    def stop(self) -> None:
        self._server.stop()
