"""The pluggable SMS sender: the development outbox, and the production HTTP gateway (a real
HTTP server on this machine standing in for the operator's gateway)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic import ValidationError

from hotline.core import sms
from hotline.core.settings import Settings


@pytest.fixture
def gateway():
    received: list[dict] = []
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"auth": self.headers["Authorization"], "body": json.loads(body), "path": self.path}
            )
            self.send_response(answer["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/send", received, answer
    server.shutdown()
    server.server_close()


def test_the_http_sender_posts_to_the_gateway_named_by_the_settings(settings_env, gateway):
    url, received, answer = gateway
    settings_env(sms_sender="http", sms_gateway_url=url, sms_gateway_token="gw-secret")
    sender = sms.sender()
    assert isinstance(sender, sms.HttpSender)
    sender.send("13812345678", "【珠海12345】您的验证码是123456")
    assert received == [
        {
            "auth": "Bearer gw-secret",
            "body": {"phone": "13812345678", "text": "【珠海12345】您的验证码是123456"},
            "path": "/send",
        }
    ]
    answer["status"] = 500
    with pytest.raises(sms.SmsUnavailable):
        sender.send("13812345678", "again")


def test_an_unreachable_gateway_is_a_clean_refusal(settings_env):
    settings_env(sms_sender="http", sms_gateway_url="http://127.0.0.1:9/unreachable")
    with pytest.raises(sms.SmsUnavailable) as refused:
        sms.sender().send("13812345678", "x")
    assert refused.value.status_code == 503 and refused.value.code == "sms.unavailable"


def test_the_outbox_keeps_messages_apart_by_phone(tmp_path):
    sender = sms.OutboxSender(tmp_path / "outbox.jsonl")
    sender.send("13800000001", "one")
    sender.send("13800000002", "two")
    sender.send("13800000001", "three")
    assert sms.read_outbox(tmp_path / "outbox.jsonl", "13800000001") == ["one", "three"]


def test_production_refuses_the_development_outbox():
    with pytest.raises(ValidationError, match="HOTLINE_SMS_SENDER=outbox"):
        Settings(env="production", secret_key="s" * 48, cti_token="c" * 32, _env_file=None)


def test_production_with_the_http_sender_needs_its_gateway():
    with pytest.raises(ValidationError, match="HOTLINE_SMS_GATEWAY_URL"):
        Settings(
            env="production",
            secret_key="s" * 48,
            cti_token="c" * 32,
            sms_sender="http",
            _env_file=None,
        )
