"""Who goes first and how much: a priority queue in front of answering, and rate limits per plan.

Priority: at most `limit` answers run at once. Waiting requests are served by priority (agents,
admins and paid customers first), but every `share`-th start goes to the longest-waiting ordinary
request when one is waiting, so the community is slowed under load, never starved.

Rate limits: requests per minute (a moving window, from the `limits` library) and concurrent
streams, per API key or per client IP for the community. With ANSWERDESK_REDIS_URL the counters
live in Redis and hold across every API process; otherwise in this process."""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from assistant.keys import Identity

STARTED_KEPT = 1000


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    label: str = field(compare=False, default="")


class SlotTimeout(TimeoutError):
    """No answer slot became free in time: the API answers 503 with Retry-After."""

    def __init__(self, wait: float, retry_after: int = 5) -> None:
        super().__init__(f"The assistant is busy: no answer slot became free within {wait:g} s. "
                         f"Try again in {retry_after} s.")
        self.retry_after = retry_after


class PrioritySlots:
    def __init__(self, limit: int, share: int = 4, wait: float | None = None) -> None:
        self.limit = limit
        self.share = share
        self.wait = wait  # seconds a request may queue (None: no bound), so a stuck answerer cannot pile up waiters
        self.active = 0
        self._heap: list[_Waiter] = []
        self._seq = 0
        self._priority_streak = 0
        # Labels of the most recent starts, in order, for tests and benchmarks: bounded, as a server runs for months.
        self.started: list[str] = []

    async def acquire(self, priority: int, label: str = "", wait: float | None = None) -> None:
        """Wait for a slot; SlotTimeout after `wait` seconds (default: the queue's own bound)."""
        if self.active < self.limit and not self._heap:
            self.active += 1
            self._started(label)
            return
        self._seq += 1
        waiter = _Waiter(priority, self._seq, asyncio.get_running_loop().create_future(), label)
        heapq.heappush(self._heap, waiter)
        bound = self.wait if wait is None else wait
        try:
            async with asyncio.timeout(bound):
                await waiter.future
        except (asyncio.CancelledError, TimeoutError) as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # granted just as the client went away: pass the slot on
            elif waiter in self._heap:
                self._heap.remove(waiter)
                heapq.heapify(self._heap)
            if isinstance(exc, TimeoutError):
                raise SlotTimeout(bound or 0.0) from None  # only a bound wait times out
            raise

    def release(self) -> None:
        self.active -= 1
        while self.active < self.limit and self._heap:
            waiter = self._next()
            if waiter.future.cancelled():
                continue
            self.active += 1
            self._started(waiter.label)
            waiter.future.set_result(None)

    def _started(self, label: str) -> None:
        self.started.append(label)
        if len(self.started) > 2 * STARTED_KEPT:
            del self.started[:-STARTED_KEPT]

    def _next(self) -> _Waiter:
        ordinary = [w for w in self._heap if w.priority > 0]
        if ordinary and self._priority_streak >= self.share - 1:
            chosen = min(ordinary, key=lambda w: w.seq)  # the longest-waiting ordinary request
            self._heap.remove(chosen)
            heapq.heapify(self._heap)
        else:
            chosen = heapq.heappop(self._heap)
        self._priority_streak = self._priority_streak + 1 if chosen.priority == 0 else 0
        return chosen

    @property
    def waiting(self) -> int:
        return len(self._heap)


class SlotGate:
    """The same priority queue for work that runs in threads (the Slack bot): a slot is acquired and
    released on the event loop that owns the queue, so the queue itself stays single-threaded."""

    def __init__(self, slots: PrioritySlots, loop: asyncio.AbstractEventLoop, wait: float = 300.0) -> None:
        self.slots, self.loop, self.wait = slots, loop, wait

    @contextmanager
    def __call__(self, identity: Identity, label: str) -> Iterator[None]:
        granted = asyncio.run_coroutine_threadsafe(self.slots.acquire(identity.priority, label, self.wait),
                                                   self.loop)
        granted.result()  # acquire() bounds the wait itself: SlotTimeout (a TimeoutError) after self.wait
        try:
            yield
        finally:
            self.loop.call_soon_threadsafe(self.slots.release)


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


# The concurrent-stream counter in Redis, each change one atomic script: a count never exists without
# its expiry (a crashed process must not hold streams forever), and never goes below zero (a close
# after the key expired would otherwise leave -1 and let one stream too many in).
OPEN_STREAM = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < 0 then n = 0 end
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], n + 1, 'EX', ARGV[2])
return 1
"""
CLOSE_STREAM = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) return 0 end
return redis.call('DECR', KEYS[1])
"""
STREAM_TTL = 600


class Limits:
    def __init__(self, per_minute: dict[str, int], streams: dict[str, int], redis_url: str = "") -> None:
        self.per_minute = per_minute
        self.streams = streams
        self.storage: Any = storage_from_string(redis_url) if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)
            self._open_script = self._redis.register_script(OPEN_STREAM)
            self._close_script = self._redis.register_script(CLOSE_STREAM)
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()

    def _limit(self, table: dict[str, int], identity: Identity) -> int | None:
        value = table.get(identity.plan, table.get("default"))
        return None if value is None or value <= 0 else value

    def hit(self, identity: Identity) -> None:
        """Count one request; RateLimited when over the plan's requests per minute."""
        n = self._limit(self.per_minute, identity)
        if n is None:
            return
        item = parse(f"{n}/minute")
        if not self.limiter.hit(item, "answerdesk", identity.subject):
            reset = self.limiter.get_window_stats(item, "answerdesk", identity.subject).reset_time
            raise RateLimited(f"Rate limit of {n} requests per minute reached for your plan ({identity.plan})",
                              math.ceil(reset - time.time()))

    def open_stream(self, identity: Identity) -> str | None:
        """Reserve a concurrent stream; returns the token to close it with (None when unlimited)."""
        n = self._limit(self.streams, identity)
        if n is None:
            return None
        key = f"answerdesk:streams:{identity.subject}"
        if self._redis is not None:
            if not self._open_script(keys=[key], args=[n, STREAM_TTL]):
                raise RateLimited(f"At most {n} concurrent streams for your plan ({identity.plan})", 5)
            return key
        with self._lock:
            if self._local.get(key, 0) >= n:
                raise RateLimited(f"At most {n} concurrent streams for your plan ({identity.plan})", 5)
            self._local[key] = self._local.get(key, 0) + 1
        return key

    def close_stream(self, token: str | None) -> None:
        if token is None:
            return
        if self._redis is not None:
            self._close_script(keys=[token])
            return
        with self._lock:
            left = self._local.get(token, 0) - 1
            if left > 0:
                self._local[token] = left
            else:  # one entry per client ever seen would grow without end
                self._local.pop(token, None)
