"""Two `answerdesk serve` processes as replicas behind a proxy: real processes, real uvicorn, real Redis.

Each replica embeds questions through the embedding server (tests/fakes/embedding_server.py), so
neither loads the model. With the proxy (here: 127.0.0.1, the test itself) in
ANSWERDESK_TRUSTED_PROXIES, each visitor named in X-Forwarded-For has their own community budget,
and that budget is shared by both replicas through Redis. A replica that does not trust the proxy
ignores the header: every visitor is the proxy, one bucket."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.fakes.embedding_server import EmbeddingServer, load_bundled_model
from tests.servers import START_TIMEOUT, AsgiServer
from tests.test_traffic import redis_available  # noqa: F401 - the fixture

QUESTION = {"question": "How do I set the database URL?"}


@pytest.fixture(scope="module")
def embedding_url() -> Iterator[str]:
    http = AsgiServer(EmbeddingServer(load_bundled_model()).app, name="embedding server")
    yield http.start() + "/v1"
    http.stop()


def start_replica(root: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = root / name
    data.mkdir()
    # Configured by `env` alone, not by the developer's own ANSWERDESK_* variables.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ANSWERDESK_")}
    full = {**inherited, "ANSWERDESK_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=data, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT * 2
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica {name} exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"replica {name} did not start")


@pytest.fixture
def replicas(tmp_path: Path, embedding_url: str, redis_available: str,  # noqa: F811
             request: pytest.FixtureRequest) -> Iterator[list[str]]:
    trusted: str = request.param
    env = {"ANSWERDESK_EMBEDDING_URL": embedding_url, "ANSWERDESK_REDIS_URL": redis_available,
           "ANSWERDESK_RATE_LIMITS": json.dumps({"community": 2}), "ANSWERDESK_TRUSTED_PROXIES": trusted}
    started: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name in ("replica-1", "replica-2"):
            proc, url = start_replica(tmp_path, name, env)
            started.append(proc)
            urls.append(url)
        yield urls
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(15)


def chat(url: str, visitor: str) -> int:
    r = httpx.post(f"{url}/v1/chat", json=QUESTION, headers={"X-Forwarded-For": visitor}, timeout=120)
    assert r.status_code in (200, 429), r.text
    if r.status_code == 429:
        assert int(r.headers["Retry-After"]) > 0
    return r.status_code


def visitors(n: int) -> list[str]:
    # Unique per run: Redis is shared with other test runs, and a minute's counts outlive one.
    base = f"198.51.{random.randrange(256)}"
    return [f"{base}.{random.randrange(1, 255)}" for _ in range(n)]


@pytest.mark.parametrize("replicas", ["127.0.0.1"], indirect=True)
def test_each_visitor_has_one_budget_across_replicas(replicas: list[str]) -> None:
    one, two = replicas
    alice, bob = visitors(2)
    while bob == alice:
        bob = visitors(1)[0]
    # Alice's 2 per minute, spent on two replicas: the third question is refused wherever it lands.
    assert [chat(one, alice), chat(two, alice), chat(one, alice), chat(two, alice)] == [200, 200, 429, 429]
    # Bob, behind the same proxy, is a different visitor with his own budget.
    assert [chat(two, bob), chat(one, bob)] == [200, 200]
    # A replica that embeds through the server answers with citations like one that loads the model.
    body: dict[str, Any] = httpx.post(f"{one}/v1/chat", json=QUESTION,
                                      headers={"X-Forwarded-For": visitors(1)[0]}, timeout=120).json()
    assert "answer" in body and "citations" in body


@pytest.mark.parametrize("replicas", [""], indirect=True)
def test_without_trusting_the_proxy_the_header_is_ignored(replicas: list[str]) -> None:
    one, two = replicas
    alice, bob = visitors(2)
    # Not trusted: X-Forwarded-For cannot pick a bucket; the proxy's own address counts, shared by replicas.
    # (uvicorn's own forwarded-header handling would trust 127.0.0.1 by default: `serve` turns it off.)
    carol = visitors(1)[0]
    codes = [chat(one, alice), chat(two, bob), chat(one, carol)]
    assert codes[2] == 429, codes  # three "visitors", one budget of 2
