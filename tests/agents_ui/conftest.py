"""Browser fixtures: one real server and one chromium per test module (see browsing.py)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agents_ui.browsing import (
    AXE_PREFIX,
    AXE_SCRIPT,
    CHROMIUM,
    LAUNCH_ARGS,
    MISSING,
    REPO,
    Browser,
    Server,
    free_port,
    fresh_server_env,
    prepare_users,
    sync_playwright,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("pages") / "data"
    env = fresh_server_env(data_dir)
    prepare_users(env)

    port = free_port()
    log = open(data_dir / "serve.log", "w")  # noqa: SIM115 - closed after the server stops
    process = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, timeout=30)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (data_dir / "serve.log").read_text()
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hotline serve did not become healthy"
            time.sleep(0.1)
        yield Server(url=url, http=http, data_dir=data_dir)
    finally:
        http.close()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        from hotline.core.redis import stop_embedded_redis

        stop_embedded_redis(data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip(f"{MISSING}: the playwright package (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"{MISSING}: {CHROMIUM} (bash scripts/system-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe-core from the npm registry, installed into .cache/npm on first use."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"{MISSING}: npm, to install axe-core")
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_PREFIX), "axe-core@4"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not AXE_SCRIPT.exists():
            pytest.skip(f"{MISSING}: axe-core could not be installed: {result.stderr[-500:]}")
    return AXE_SCRIPT
