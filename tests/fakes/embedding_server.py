"""A local embedding server that behaves like text-embeddings-inference's OpenAI-compatible route:
POST /v1/embeddings serves the bundled all-MiniLM-L6-v2 over real HTTP.

Like TEI it serves one model whatever the request's `model` says, names it by its hub id in the
answer, has no /v1/models route, and refuses more than `max_batch` texts per request (413, TEI's
`--max-client-batch-size`, 32 by default). Unlike TEI's default it returns the raw, unnormalised
pooled vectors, so a client that forgets to normalise is caught. Every request is recorded.

Run it on its own for benchmarks: `python -m tests.fakes.embedding_server --port 8089`.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class EmbeddingRequest(BaseModel):
    input: str | list[str]
    model: str | None = None
    encoding_format: str = "float"


class EmbeddingServer:
    def __init__(self, model: Any, max_batch: int = 32, model_id: str = MODEL_ID, max_words: int | None = None) -> None:
        # model: a loaded sentence_transformers.SentenceTransformer. max_words: refuse longer inputs, as TEI
        # does without --auto-truncate (words stand in for its tokens).
        self.model, self.max_batch, self.model_id, self.max_words = model, max_batch, model_id, max_words
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # one encode at a time, as one model instance on one device
        self.app = FastAPI()
        self.app.post("/v1/embeddings")(self.embeddings)

    def embeddings(self, body: EmbeddingRequest) -> JSONResponse:
        texts = [body.input] if isinstance(body.input, str) else body.input
        self.requests.append({"model": body.model, "texts": len(texts), "encoding_format": body.encoding_format})
        if len(texts) > self.max_batch:
            return JSONResponse({"error": f"batch size {len(texts)} > maximum allowed batch size {self.max_batch}",
                                 "error_type": "validation"}, status_code=413)
        if self.max_words and any(len(t.split()) > self.max_words for t in texts):
            return JSONResponse({"error": f"Input validation error: inputs must have less than {self.max_words} "
                                 "tokens", "error_type": "validation"}, status_code=413)
        if body.encoding_format != "float":
            return JSONResponse({"error": "only float is served here", "error_type": "validation"}, status_code=422)
        with self._lock:
            vectors = self.model.encode(texts, batch_size=self.max_batch, normalize_embeddings=False,
                                        convert_to_numpy=True, show_progress_bar=False)
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse({
            "object": "list",
            "data": [{"object": "embedding", "embedding": v.tolist(), "index": i} for i, v in enumerate(vectors)],
            "model": self.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


def load_bundled_model() -> Any:
    from sentence_transformers import SentenceTransformer

    from assistant.settings import bundled_model_path

    return SentenceTransformer(bundled_model_path(), device="cpu")


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--max-batch", type=int, default=32)
    args = parser.parse_args()
    server = EmbeddingServer(load_bundled_model(), max_batch=args.max_batch)
    uvicorn.run(server.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
