"""Log-in throttling and token expiry.

Failed log-ins are counted in Redis per user name and per client address; over the limit the
token endpoint answers 429 ``auth.throttled`` with Retry-After, for every process of the
system. An expired, forged or orphaned token is a 401 whose code says which.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hotline.core import db
from hotline.core.auth import create_access_token
from hotline.core.models import User
from hotline.core.redis import get_redis, reset_clients
from hotline.core.settings import get_settings

PASSWORD = "right-password-1"
TOKEN_URL = "/api/v1/auth/token"


def login(client: TestClient, username: str, password: str):
    return client.post(TOKEN_URL, data={"username": username, "password": password})


def assert_throttled(response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "auth.throttled"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= get_settings().login_failure_window_minutes * 60
    assert response.json()["error"]["details"]["retry_after"] == retry_after
    return retry_after


# -- throttling --------------------------------------------------------------------------------


def test_five_failures_for_one_user_name_throttle_it(client, make_user):
    make_user("amy", "agent", password=PASSWORD)
    make_user("bob", "agent", password=PASSWORD)
    for _ in range(5):
        response = login(client, "amy", "wrong-password")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "auth.bad_credentials"
    # Even the right password waits now: a throttled guess must learn nothing.
    assert_throttled(login(client, "amy", PASSWORD))
    # Other people on the same address are not affected by amy's count.
    assert login(client, "bob", PASSWORD).status_code == 200


def test_a_successful_log_in_resets_the_count(client, make_user):
    make_user("amy", "agent", password=PASSWORD)
    for _ in range(4):
        assert login(client, "amy", "typo").status_code == 401
    assert login(client, "amy", PASSWORD).status_code == 200
    for _ in range(5):
        assert login(client, "amy", "typo").status_code == 401
    assert_throttled(login(client, "amy", "typo"))


def test_unknown_user_names_are_throttled_alike(client, database):
    """A 429 for real names only would tell a guesser which names exist."""
    for _ in range(5):
        assert login(client, "ghost", "guess").status_code == 401
    assert_throttled(login(client, "ghost", "guess"))


def test_one_address_trying_many_names_is_throttled(app, make_user, settings_env):
    settings_env(login_max_failures_per_address="6")
    make_user("amy", "agent", password=PASSWORD)
    # Not entered: logging in needs no lifespan, and one app runs one lifespan at a time.
    sprayer = TestClient(app, client=("203.0.113.7", 40000))
    office = TestClient(app, client=("198.51.100.20", 40000))
    for number in range(6):
        assert login(sprayer, f"user{number}", "123456").status_code == 401
    assert_throttled(login(sprayer, "amy", PASSWORD))
    # The limit is the address's, not amy's: from her own desk she logs in.
    assert login(office, "amy", PASSWORD).status_code == 200


def test_limits_and_window_come_from_the_settings(client, make_user, settings_env):
    settings_env(login_max_failures="2", login_failure_window_minutes="1")
    make_user("amy", "agent", password=PASSWORD)
    assert login(client, "amy", "typo").status_code == 401
    assert login(client, "amy", "typo").status_code == 401
    assert assert_throttled(login(client, "amy", "typo")) <= 60
    keys = get_redis().keys("login:fail:user:*")
    assert len(keys) == 1 and 0 < get_redis().ttl(keys[0]) <= 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_count_holds_across_api_processes(client, make_user):
    """Failures through this process and through a separate ``hotline serve`` add up."""
    make_user("amy", "agent", password=PASSWORD)
    port = _free_port()
    env = {**os.environ, "HOTLINE_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hotline serve did not come up within 60 s"
            time.sleep(0.1)
        for _ in range(3):
            assert login(client, "amy", "typo").status_code == 401
        other = httpx.Client(base_url=base, timeout=30)
        for _ in range(2):
            assert (
                other.post(TOKEN_URL, data={"username": "amy", "password": "x"}).status_code == 401
            )
        assert_throttled(other.post(TOKEN_URL, data={"username": "amy", "password": PASSWORD}))
        assert_throttled(login(client, "amy", PASSWORD))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_log_in_still_works_while_redis_is_down(client, make_user, settings_env):
    """The throttle is skipped, not the log-in: a Redis outage must not lock out the hotline."""
    make_user("amy", "agent", password=PASSWORD)
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings_env(redis_url=f"redis://127.0.0.1:{closed}/0")
    reset_clients()
    assert login(client, "amy", PASSWORD).status_code == 200
    for _ in range(6):
        assert login(client, "amy", "typo").status_code == 401


# -- token expiry and bad tokens ---------------------------------------------------------------


GUARDED = [
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/tickets"),
    ("GET", "/api/v1/kpi/wall"),
    ("POST", "/api/v1/routing/preview"),
    ("GET", "/api/v1/open311/keys"),
]


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_an_expired_token_is_refused_with_its_own_code(client, make_user, method, path):
    make_user("root", "admin")
    expired = create_access_token("root", minutes=-1)
    response = client.request(method, path, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "auth.token_expired"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    fresh = create_access_token("root")
    ok = client.request(method, path, headers={"Authorization": f"Bearer {fresh}"})
    assert ok.status_code not in (401, 403), ok.text


def test_forged_garbage_and_orphaned_tokens(client, make_user):
    make_user("amy", "agent")

    def code(token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get("/api/v1/auth/me", headers=headers)
        return response.status_code, response.json()["error"]["code"]

    forged = jwt.encode({"sub": "amy", "exp": int(time.time()) + 600}, "not-our-key-" * 4, "HS256")
    assert code(forged) == (401, "auth.invalid_token")
    assert code("not.a.jwt") == (401, "auth.invalid_token")
    assert code(None) == (401, "auth.unauthenticated")
    valid = create_access_token("amy")
    with db.transaction() as session:
        session.query(User).filter(User.username == "amy").update({"is_active": False})
    assert code(valid) == (401, "auth.invalid_token")


def test_token_lifetime_follows_the_setting(settings_env):
    settings_env(access_token_minutes="90")
    claims = jwt.decode(create_access_token("amy"), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 90 * 60
    assert abs(claims["iat"] - time.time()) < 60


def test_an_expired_token_closes_the_websocket_with_its_code(client, make_user):
    make_user("amy", "agent")
    expired = create_access_token("amy", minutes=-1)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws?token={expired}"),
    ):
        pass
    assert refused.value.code == 4401
    assert refused.value.reason == "auth.token_expired"
