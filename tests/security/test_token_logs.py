"""Security issue 17, item 4: access tokens stay out of the logs.

Clients send the websocket token as a subprotocol (``bearer.<token>`` beside ``hotline.v1``),
not in the URL; an old client's ``?token=`` still works, and every log line blanks its value,
which is checked against the log of a real ``hotline serve`` (uvicorn) process.
"""

from __future__ import annotations

import json
import logging
import os

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from hotline.core.redaction import REDACTED, RedactTokens
from tests.production.cluster import Api, free_port, stop_all, subprotocols, wait_for


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def test_the_socket_takes_its_token_as_a_subprotocol(client, make_user):
    token = bearer(make_user("amy", "agent"))
    with client.websocket_connect("/ws?last_id=0", subprotocols=subprotocols(token)) as ws:
        assert ws.accepted_subprotocol == "hotline.v1"
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["user"] == "amy"


def test_a_bad_subprotocol_token_is_refused_even_with_a_good_query_token(client, make_user):
    token = bearer(make_user("amy", "agent"))
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws?token={token}", subprotocols=subprotocols("forged")),
    ):
        pass
    assert refused.value.code == 4401


def test_the_filter_blanks_tokens_in_messages_and_arguments():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/ws?last_id=3&token=eyJ.secret.sig&topics=kpi.", "1.1", 101),
        None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert record.args[2] == f"/ws?last_id=3&token={REDACTED}&topics=kpi."
    record = logging.LogRecord(
        "app", logging.WARNING, __file__, 1, "GET /x?access_token=abc.def&y=1", None, None
    )
    RedactTokens().filter(record)
    assert record.getMessage() == f"GET /x?access_token={REDACTED}&y=1"


@pytest.fixture
def server(database, tmp_path):
    """A real ``hotline serve`` on the test's database and Redis, logging at INFO."""
    env = {**os.environ, "HOTLINE_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    api = Api("api", free_port(), env, tmp_path / "api.log")
    try:

        def healthy() -> bool:
            assert api.running(), api.log_tail()
            return api.health().status_code == 200

        wait_for(healthy, timeout=90, what="hotline serve /healthz", interval=0.2)
        yield api
    finally:
        stop_all([api])


def test_no_token_reaches_a_real_servers_log(server, make_user):
    token = bearer(make_user("amy", "agent"))
    garbage = "not-a-token-but-secret-" + "q" * 20
    # The current way: the token in Sec-WebSocket-Protocol.
    with connect(f"{server.ws_url}?last_id=0", subprotocols=subprotocols(token)) as ws:
        assert ws.subprotocol == "hotline.v1"
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    # Old clients: in the query string, accepted (and refused when wrong) but never logged.
    with connect(f"{server.ws_url}?token={token}&last_id=0") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    with pytest.raises(InvalidStatus), connect(f"{server.ws_url}?token={garbage}"):
        pass
    assert httpx.get(f"{server.base_url}/api/v1/auth/me?access_token={token}").status_code == 401

    def log_text() -> str:
        return server.log_path.read_text(errors="replace")

    # The lines are there (the log is captured), their secrets are not.
    wait_for(
        lambda: (
            log_text().count(f"token={REDACTED}") >= 3
            and f"/api/v1/auth/me?access_token={REDACTED}" in log_text()
        ),
        timeout=20,
        what="the redacted request lines in the server's log",
    )
    text = log_text()
    assert '"WebSocket /ws?last_id=0"' in text  # the subprotocol client's line
    assert token not in text
    assert garbage not in text
    for part in token.split("."):
        assert part not in text
