"""Fixtures for the security tests: settings changed for one test, real ``hotline serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(database) -> Iterator[Callable[..., str]]:
    """``serve(**settings)`` starts ``hotline serve`` (a real uvicorn) on the test's database
    and Redis with extra HOTLINE_* settings, waits for /healthz and returns its base URL."""
    servers: list[subprocess.Popen] = []

    def start(**settings: str) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "HOTLINE_LOG_LEVEL": "WARNING",
            **{f"HOTLINE_{k.upper()}": v for k, v in settings.items()},
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "hotline", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hotline serve did not come up within 60 s"
            time.sleep(0.1)  # polling interval of the wait above, not a timing assumption

    yield start
    for server in servers:
        server.send_signal(signal.SIGINT)
    for server in servers:
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
