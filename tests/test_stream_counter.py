"""The concurrent-stream counter in the real Redis (issue 13): atomic, always with an expiry, never
below zero, so a close after the key expired cannot let a stream too many in."""

from __future__ import annotations

import uuid

import pytest

from assistant.keys import Identity
from assistant.traffic import Limits, RateLimited
from tests.test_traffic import redis_available  # noqa: F401 - the fixture


def test_a_close_after_expiry_does_not_free_an_extra_stream(redis_available: str) -> None:  # noqa: F811
    import redis

    r = redis.Redis.from_url(redis_available)
    limits = Limits({}, {"community": 1}, redis_available)
    who = Identity("community", client=f"10.9.{uuid.uuid4().int % 250}.1")
    token = limits.open_stream(who)
    assert token is not None and 0 < r.ttl(token) <= 600  # the count always carries its expiry
    r.delete(token)  # the key expired while the stream was open (a stream longer than the TTL)
    limits.close_stream(token)
    assert int(r.get(token) or 0) >= 0  # never negative
    first = limits.open_stream(who)
    with pytest.raises(RateLimited):
        limits.open_stream(who)  # the plan's one stream is in use: the late close freed nothing extra
    limits.close_stream(first)
    limits.close_stream(first)  # closed twice: still not negative
    assert int(r.get(token) or 0) == 0
    limits.close_stream(limits.open_stream(who))
