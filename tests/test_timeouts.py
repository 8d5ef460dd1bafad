"""Bounded waits: a Chroma server that is stopped or paused (SIGSTOP) gives prompt 503s and a prompt
not-ready /readyz instead of hanging every request, and a request that cannot get an answer slot
in time gets 503 with Retry-After. Each test starts its own `chroma run`, never the shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.errors import RetrievalError
from assistant.services import Services
from assistant.traffic import PrioritySlots, SlotTimeout
from tests.conftest import fresh_services, index_docs, start_chroma, stop_chroma

T = TypeVar("T")
CHROMA_TIMEOUT = 2.0


def within(seconds: float, call: Callable[[], T]) -> tuple[T, float]:
    """call()'s result and how long it took; fails the test (instead of hanging it) after `seconds`."""
    pool = ThreadPoolExecutor(1)
    started = time.monotonic()
    try:
        return pool.submit(call).result(seconds), time.monotonic() - started
    except FutureTimeout:
        pytest.fail(f"no answer within {seconds} s: the request hangs")
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    proc, url = start_chroma(tmp_path)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot be terminated cleanly
            stop_chroma(proc)


def served(tmp_path: Path, url: str, embedder: SentenceTransformerEmbedder) -> tuple[Services, Any]:
    svc = fresh_services(tmp_path, embedder, chroma_url=url, chroma_timeout=CHROMA_TIMEOUT, rate_limits={})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "install.md").write_text("# Installing\n\nRun the MSI installer and reboot the spooler service.\n")
    index_docs(svc, docs)
    return svc, create_app(services=svc)


def ask(client: TestClient) -> httpx.Response:
    return client.post("/v1/chat", json={"question": "How do I install it?"})


def test_a_paused_chroma_server_gives_prompt_503s_and_not_ready(
        chroma: tuple[Any, str], tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    proc, url = chroma
    svc, app = served(tmp_path, url, embedder)
    with TestClient(app) as client:
        admin = {"X-API-Key": svc.keys.create("admin", "ops")[0]}  # the cause is shown to admins only
        assert client.get("/readyz").status_code == 200 and ask(client).status_code == 200
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            ready, took = within(10, lambda: client.get("/readyz", headers=admin))
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable" and took < 4
            assert "did not answer within 2 s" in ready.json()["checks"]["index"]
            answer, took = within(20, lambda: ask(client))
            assert answer.status_code == 503 and answer.headers["retry-after"] and took < 3 * CHROMA_TIMEOUT + 2
            # First contact with a paused server is bounded too (HttpClient() itself sends requests).
            fresh = Services(svc.settings, embedder=embedder)
            with pytest.raises(RetrievalError, match="did not answer within 2 s"):
                within(10, lambda: fresh.vectors)
        finally:  # before the client closes: it waits for a request still hanging
            os.kill(proc.pid, signal.SIGCONT)
        assert client.get("/readyz").status_code == 200 and ask(client).status_code == 200


def test_a_stopped_chroma_server_gives_prompt_503s_and_not_ready(
        chroma: tuple[Any, str], tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    proc, url = chroma
    svc, app = served(tmp_path, url, embedder)
    with TestClient(app) as client:
        admin = {"X-API-Key": svc.keys.create("admin", "ops")[0]}  # the cause is shown to admins only
        stop_chroma(proc)
        ready, took = within(10, lambda: client.get("/readyz", headers=admin))
        assert ready.status_code == 503 and "Cannot reach Chroma" in ready.json()["checks"]["index"] and took < 4
        answer, took = within(20, lambda: ask(client))
        assert answer.status_code == 503 and answer.headers["retry-after"] and took < 4


def test_a_waiter_that_times_out_leaves_the_queue() -> None:
    async def scenario() -> list[str]:
        slots = PrioritySlots(limit=1, wait=0.1)
        await slots.acquire(1, "holder")
        with pytest.raises(SlotTimeout, match="no answer slot became free within 0.1 s"):
            await slots.acquire(0, "impatient")
        assert slots.waiting == 0
        later = asyncio.create_task(slots.acquire(1, "later", wait=5))
        await asyncio.sleep(0)
        slots.release()
        await later
        return slots.started

    assert asyncio.run(scenario()) == ["holder", "later"]


def test_no_free_answer_slot_is_a_503_with_retry_after(services: Services) -> None:
    settings = services.settings.model_copy(update={"max_concurrent_answers": 1, "answer_slot_wait": 0.5,
                                                    "rate_limits": {}})
    app = create_app(settings=settings, services=services)
    slots = app.state.traffic.slots
    with TestClient(app) as client:
        slots.active = 1  # every slot busy with a long answer
        try:
            answer, took = within(10, lambda: ask(client))
        finally:  # frees a request still waiting, so the client can close
            client.portal.call(slots.release)  # type: ignore[union-attr]
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["detail"].startswith("The assistant is busy: no answer slot became free within 0.5 s")
        assert slots.waiting == 0 and took < 3
