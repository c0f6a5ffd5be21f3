"""The `hotline` command: every subcommand has --help; serve and demo come up on their own."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from hotline.cli import app

runner = CliRunner()

SUBCOMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["demo"],
    ["seed"],
    ["db"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["db", "current"],
    ["user"],
    ["user", "create"],
    ["user", "password"],
    ["user", "disable"],
    ["user", "enable"],
    ["route"],
    ["route", "replay"],
    ["kpi", "rebuild"],
    ["jobs", "reschedule"],
    ["kb"],
    ["kb", "import"],
    ["kb", "export"],
    ["open311", "key", "create"],
    ["calls", "import-queue-log"],
    ["simulate"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "hotline")
def test_every_subcommand_has_help(words):
    result = runner.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_user_create_then_log_in(client):
    from dispatch.routing.models import Department
    from hotline.core import db

    with db.transaction() as session:  # the department must exist
        session.add(
            Department(code="XZ-MARKET", name="香洲区市场监督管理局", level="area", types=[])
        )
    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "li",
            "--role",
            "department",
            "--password",
            "long-password",
            "--department",
            "XZ-MARKET",
        ],
    )
    assert result.exit_code == 0, result.output
    token = client.post(
        "/api/v1/auth/token", data={"username": "li", "password": "long-password"}
    ).json()["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["roles"] == ["department"] and me["departments"] == ["XZ-MARKET"]


def test_user_create_refuses_unknown_role():
    result = runner.invoke(app, ["user", "create", "x", "--role", "wizard", "--password", "p" * 9])
    assert result.exit_code == 2
    assert "unknown role" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedded_env(tmp_path) -> dict[str, str]:
    """A fresh machine: no database or Redis configured, an empty data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(tmp_path / "data")
    env["HOTLINE_LOG_LEVEL"] = "WARNING"
    return env


def _wait_for(url: str, process: subprocess.Popen, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"process exited with {process.returncode}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s")


def _stop(process: subprocess.Popen) -> str:
    """Ctrl+C, as a person stops it; what still ran if it had to be killed (else "")."""
    process.send_signal(signal.SIGINT)
    try:
        # `hotline demo` gives each of its two groups of processes 15 s to end before it kills
        # them (about 7 s in all on a quiet machine); a loaded one may use both.
        process.wait(timeout=45)
        return ""
    except subprocess.TimeoutExpired:
        still = subprocess.run(
            ["ps", "-o", "pid,stat,etime,args", "--ppid", str(process.pid)],
            capture_output=True,
            text=True,
        ).stdout
        process.kill()
        process.wait()
        return f"killed after 45 s; its children then:\n{still}"


@pytest.mark.slow
def test_serve_on_an_empty_data_dir_is_healthy_within_20_seconds(tmp_path):
    port = _free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--port", str(port)], env=_embedded_env(tmp_path)
    )
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/healthz", process, timeout=20).json()
        assert time.monotonic() - started < 20
        assert body["database"]["ok"] and body["redis"]["ok"]
        assert (tmp_path / "data" / "hotline.db").exists()
        assert (tmp_path / "data" / "redis.sock").exists()
    finally:
        _stop(process)
        from hotline.core.redis import stop_embedded_redis

        stop_embedded_redis(tmp_path / "data")


@pytest.mark.slow
def test_demo_starts_everything_and_prints_logins(tmp_path):
    port = _free_port()
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline", "demo", "--port", str(port)],
            env=_embedded_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process, timeout=60)
        deadline = time.monotonic() + 240  # the simulator backfills two hours of calls first
        while "Ctrl+C" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        output = log_path.read_text()
        assert "agent1" in output and "demo12345" in output and f":{port}/wall" in output
        supervisor = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data={"username": "supervisor", "password": "demo12345"},
        ).json()["access_token"]
        wall = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/kpi/wall",
            headers={"Authorization": f"Bearer {supervisor}"},
        ).json()
        assert wall["rolling"]["last_hour"]["offered"] > 0  # simulated calls reached the wall
        token = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data={"username": "supervisor", "password": "demo12345"},
        )
        assert token.status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").json()["workers"]["count"]:
                break
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["workers"]["count"] >= 1
    finally:
        stuck = _stop(process)
    tail = "\n".join(
        line for line in log_path.read_text().splitlines()[-60:] if "cleaning" not in line
    )
    assert process.returncode == 0, f"{stuck}\n{tail}"
    assert not (tmp_path / "data" / "redis.sock").exists()


@pytest.mark.slow
def test_seed_and_user_create_leave_no_redis_server_behind(tmp_path):
    from tests.production.cluster import embedded_redis_servers

    env = _embedded_env(tmp_path)
    data_dir = tmp_path / "data"
    commands = [
        ["seed"],
        ["user", "create", "ops", "--role", "admin", "--password", "long-password-1"],
    ]
    try:
        for args in commands:
            done = subprocess.run(
                [sys.executable, "-m", "hotline", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert embedded_redis_servers(data_dir) == [], f"hotline {args[0]} left one running"
    finally:
        from hotline.core.redis import stop_embedded_redis

        stop_embedded_redis(data_dir)
