"""Rate limits for public routes (hotline.core.limits.hit) against a real Redis."""

from __future__ import annotations

import pytest

from hotline.core.limits import LimiterUnavailable, RateLimit, RateLimited, hit
from hotline.core.redis import get_redis


def test_each_limit_counts_in_its_own_window_and_says_which_was_met(database):
    client = get_redis()
    per_key = RateLimit("phone", 2, 60)
    everyone = RateLimit("global", 3, 60)
    hit(client, "t", "a", per_key, everyone)
    hit(client, "t", "a", per_key, everyone)
    with pytest.raises(RateLimited) as met:
        hit(client, "t", "a", per_key, everyone)
    assert met.value.details["scope"] == "phone" and met.value.status_code == 429
    assert 0 < int(met.value.headers["Retry-After"]) <= 60
    # Another key has its own per-key count, but the global one counted every attempt.
    with pytest.raises(RateLimited) as busy:
        hit(client, "t", "b", per_key, everyone)
    assert busy.value.details["scope"] == "global"


def test_a_limit_of_zero_is_off(database):
    for _ in range(5):
        hit(get_redis(), "t", "a", RateLimit("phone", 0, 60))


def test_without_redis_the_route_refuses_rather_than_runs_unlimited():
    import redis

    dead = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    with pytest.raises(LimiterUnavailable) as refused:
        hit(dead, "t", "a", RateLimit("phone", 5, 60))
    assert refused.value.status_code == 503
