"""Who goes first and how much: the priority queue (order in which queued requests start, and no
starvation), 429 with Retry-After per plan, concurrent-stream limits, and limits shared by two API
instances through Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.keys import Identity
from assistant.services import Services
from assistant.settings import Settings
from assistant.traffic import Limits, PrioritySlots, RateLimited
from tests.servers import serve

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_priority_queue_serves_paid_first_without_starving_the_community() -> None:
    async def scenario() -> list[str]:
        slots = PrioritySlots(limit=1, share=4)
        await slots.acquire(1, "holder")
        waiting = [asyncio.create_task(slots.acquire(1, f"c{i}")) for i in range(1, 4)]
        await asyncio.sleep(0)
        waiting += [asyncio.create_task(slots.acquire(0, f"p{i}")) for i in range(1, 6)]
        await asyncio.sleep(0)
        assert slots.waiting == 8
        for _ in range(9):
            slots.release()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)
        return slots.started

    # Three priority starts, then the longest-waiting community request, and so on.
    assert asyncio.run(scenario()) == ["holder", "p1", "p2", "p3", "c1", "p4", "p5", "c2", "c3"]


def test_cancelled_waiter_gives_its_turn_away() -> None:
    async def scenario() -> list[str]:
        slots = PrioritySlots(limit=1)
        await slots.acquire(1, "holder")
        gone = asyncio.create_task(slots.acquire(0, "gone"))
        stays = asyncio.create_task(slots.acquire(1, "stays"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        slots.release()
        await stays
        return slots.started

    assert asyncio.run(scenario()) == ["holder", "stays"]


@pytest.fixture
def served(docs_services: Services) -> Iterator[tuple[str, Any]]:
    settings = docs_services.settings.model_copy(update={"max_concurrent_answers": 1, "rate_limits": {},
                                                         "stream_limits": {}})
    app = create_app(settings=settings, services=docs_services)
    with serve(app, name="the API") as url:
        yield url, app


def test_paid_requests_jump_the_queue_under_load(served: tuple[str, Any], docs_services: Services,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, app = served
    slots: PrioritySlots = app.state.traffic.slots
    paid, _ = docs_services.keys.create("customer", "p", "acme", "paid")
    codes: list[int] = []
    # The answer holding the only slot waits for the gate, so the queue is full before anyone moves on.
    gate = threading.Event()
    respond = docs_services.assistant.respond

    def gated(*args: Any, **kwargs: Any) -> Any:
        gate.wait(60)
        return respond(*args, **kwargs)

    monkeypatch.setattr(docs_services.assistant, "respond", gated)

    def ask(headers: dict[str, str], q: str) -> None:
        codes.append(httpx.post(f"{url}/v1/chat", json={"question": q}, headers=headers, timeout=120).status_code)

    community = [threading.Thread(target=ask, args=({}, f"How do I install answerdesk, take {i}?")) for i in range(6)]
    for t in community:
        t.start()
    deadline = time.monotonic() + 60
    while slots.waiting < 5 and time.monotonic() < deadline:  # one answering, five queued
        time.sleep(0.01)
    paying = [threading.Thread(target=ask, args=({"Authorization": f"Bearer {paid}"}, f"Configure the database {i}"))
              for i in range(2)]
    for t in paying:
        t.start()
    while slots.waiting < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slots.waiting == 7
    gate.set()
    for t in community + paying:
        t.join(120)
    assert codes == [200] * 8
    order = slots.started[-8:]
    # The two paid requests arrived last but start right after the one already running.
    assert order[1:3] == ["paid", "paid"], order


def test_rate_limit_429_with_retry_after(docs_services: Services) -> None:
    settings = docs_services.settings.model_copy(update={"rate_limits": {"community": 3, "free": 5}})
    with TestClient(create_app(settings=settings, services=docs_services)) as c:
        codes = [c.post("/v1/chat", json={"question": "How do I install answerdesk?"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.post("/v1/chat", json={"question": "How do I install answerdesk?"})
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        assert "community" in r.json()["detail"]
        key, _ = docs_services.keys.create("customer", "f", "initech", "free")  # counted per key, not per IP
        assert c.post("/v1/chat", json={"question": "hi there"}, headers={"X-API-Key": key}).status_code == 200


def test_concurrent_stream_limit() -> None:
    limits = Limits({}, {"community": 1})
    who = Identity("community", client=f"10.0.0.{uuid.uuid4().int % 250}")
    token = limits.open_stream(who)
    with pytest.raises(RateLimited) as exc:
        limits.open_stream(who)
    assert exc.value.retry_after >= 1
    limits.close_stream(token)
    limits.close_stream(limits.open_stream(who))


@pytest.fixture(scope="module")
def redis_available() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}); shared-limit test skipped")
    return REDIS_URL


def test_limits_are_shared_across_instances_through_redis(docs_services: Services, redis_available: str) -> None:
    key, _ = docs_services.keys.create("customer", "shared", f"org-{uuid.uuid4().hex[:6]}", "free")
    hdr = {"Authorization": f"Bearer {key}"}

    def instance(redis_url: str) -> TestClient:
        s: Settings = docs_services.settings.model_copy(update={"rate_limits": {"free": 3}, "redis_url": redis_url})
        return TestClient(create_app(settings=s, services=docs_services))

    with instance(redis_available) as a, instance(redis_available) as b:
        codes = [c.post("/v1/chat", json={"question": "hi"}, headers=hdr).status_code for c in (a, b, a, b)]
    assert codes == [200, 200, 200, 429]  # one budget for both processes
    key2, _ = docs_services.keys.create("customer", "local", f"org-{uuid.uuid4().hex[:6]}", "free")
    with instance("") as a, instance("") as b:  # without Redis each process counts alone
        codes = [c.post("/v1/chat", json={"question": "hi"}, headers={"X-API-Key": key2}).status_code
                 for c in (a, b, a, b)]
    assert codes == [200, 200, 200, 200]


def test_behind_a_trusted_proxy_each_visitor_has_their_own_budget(docs_services: Services) -> None:
    """Every request arrives from the proxy's address: without trusting it, all visitors share one bucket;
    trusted, the forwarded client counts, and only the address the trusted proxy itself appended (what a
    visitor puts in X-Forwarded-For is not believed)."""
    def client(trusted: list[str], peer: str = "10.1.2.3") -> TestClient:
        s = docs_services.settings.model_copy(update={"rate_limits": {"community": 2}, "trusted_proxies": trusted})
        return TestClient(create_app(settings=s, services=docs_services), client=(peer, 40000))

    def codes(c: TestClient, forwarded: list[str]) -> list[int]:
        return [c.post("/v1/chat", json={"question": "hi"}, headers={"X-Forwarded-For": f}).status_code
                for f in forwarded]

    with client([]) as c:  # not trusted: X-Forwarded-For is ignored, the proxy is the one client
        assert codes(c, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [200, 200, 429]
    with client(["10.1.0.0/16"]) as c:
        assert codes(c, ["203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.1"]) == [200, 200, 200, 429]
        # A visitor's own X-Forwarded-For entry comes first; the proxy appends the address it saw.
        assert codes(c, ["198.51.100.9, 203.0.113.2", "198.51.100.10, 203.0.113.2"]) == [200, 429]
        assert codes(c, ["not-an-address", "also-not"]) == [200, 200]  # garbage counts as the proxy itself
        assert codes(c, ["garbage"]) == [429]
    with client(["10.1.0.0/16"], peer="192.0.2.50") as c:  # a direct caller is not a proxy: its header is ignored
        assert codes(c, ["203.0.113.7", "203.0.113.8", "203.0.113.9"]) == [200, 200, 429]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR network"):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8, proxy.local")  # type: ignore[call-arg]
    assert Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 172.18.0.1").trusted_proxies == [  # type: ignore[call-arg]
        "10.0.0.0/8", "172.18.0.1"]


def test_bookkeeping_does_not_grow_with_every_request_or_client() -> None:
    async def many() -> PrioritySlots:
        slots = PrioritySlots(limit=2)
        for i in range(5000):
            await slots.acquire(1, f"r{i}")
            slots.release()
        return slots

    slots = asyncio.run(many())
    assert 0 < len(slots.started) <= 2000 and slots.started[-1] == "r4999"
    limits = Limits({}, {"community": 2})
    for i in range(500):
        limits.close_stream(limits.open_stream(Identity("community", client=f"10.9.{i // 250}.{i % 250}")))
    assert limits._local == {}
