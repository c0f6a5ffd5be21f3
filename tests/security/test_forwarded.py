"""X-Forwarded-For is believed only from configured proxies (issue 17, item 9).

uvicorn believes it from 127.0.0.1 by default, so any local client could pick the address that
log-in throttling counts by (a new one per guess: never throttled). ``hotline serve`` passes
``HOTLINE_FORWARDED_ALLOW_IPS`` (default: none) to uvicorn; these tests run it for real.
"""

from __future__ import annotations

import httpx
import pytest

from hotline.core.redis import get_redis

TOKEN_URL = "/api/v1/auth/token"


def _fail_logins(base: str, count: int) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(count):
            response = client.post(
                TOKEN_URL,
                data={"username": f"guess-{i}", "password": "wrong"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            statuses.append(response.status_code)
    return statuses


def _counted_addresses() -> set[str]:
    return {k.decode().rsplit(":", 1)[1] for k in get_redis().keys("login:fail:addr:*")}


@pytest.mark.slow
def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(serve):
    base = serve(login_max_failures_per_address="3")
    assert _fail_logins(base, 5) == [401, 401, 401, 429, 429]
    assert _counted_addresses() == {"127.0.0.1"}


@pytest.mark.slow
def test_the_header_counts_when_the_peer_is_a_configured_proxy(serve):
    base = serve(login_max_failures_per_address="3", forwarded_allow_ips='["127.0.0.1"]')
    assert _fail_logins(base, 5) == [401] * 5
    assert _counted_addresses() == {f"203.0.113.{i}" for i in range(1, 6)}


def test_no_proxy_is_trusted_by_default(settings_env):
    from hotline.cli import proxy_trust_options

    settings_env()
    assert proxy_trust_options() == {"proxy_headers": False}
    settings_env(forwarded_allow_ips='["10.0.0.5","10.0.0.6"]')
    assert proxy_trust_options() == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.5,10.0.0.6",
    }
