"""What the browser tests share: a real `hotline serve` with users, Playwright helpers, axe.

The fixtures that use these are in conftest.py; every browser test module gets its own server
(module scope), so modules never depend on each other's data."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the test extras are not installed
    sync_playwright = None

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_PREFIX = REPO / ".cache" / "npm"
AXE_SCRIPT = AXE_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
MISSING = "missing system dependency"
CTI_TOKEN = "development-cti-token"
PASSWORD = "pw-12345678"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# user name -> (roles, departments)
USERS = {
    "agent1": (["agent"], []),
    "agent2": (["agent"], []),
    "xz": (["department"], ["XZ-MARKET"]),  # 香洲区市场监督管理局
    "gb": (["department"], ["T-440402005"]),  # 拱北街道办事处
    "sup": (["supervisor"], []),
    "disp": (["dispatcher"], []),
    "editor": (["editor"], []),
    "editor2": (["editor"], []),  # the second pair of eyes on the knowledge base
    "admin": (["admin"], []),
}
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


if sync_playwright is not None:
    expect.set_options(timeout=10_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None  # the server's HOTLINE_DATA_DIR (its SMS outbox, its logs)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            response = self.http.post(
                "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
            )
            response.raise_for_status()
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def get(self, username: str, path: str, **params) -> dict | list:
        response = self.http.get(path, params=params, headers=self.headers(username))
        response.raise_for_status()
        return response.json()

    def create_ticket(self, username: str = "agent1", **fields) -> dict:
        body = {"channel": "phone", **fields}
        response = self.http.post("/api/v1/tickets", json=body, headers=self.headers(username))
        assert response.status_code == 201, response.text
        return response.json()

    def call_events(self, events: list[dict]) -> None:
        response = self.http.post(
            "/api/v1/calls/events", json=events, headers={"X-CTI-Token": CTI_TOKEN}
        )
        response.raise_for_status()
        assert response.json()["accepted"] == len(events), response.text

    def answered_call(self, *, agent: str, caller: str, wait_seconds: float = 4) -> str:
        """A call offered to the general queue and answered by ``agent`` (a screen pop)."""
        call_id = f"call-{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        offered = now - timedelta(seconds=wait_seconds + 1)
        self.call_events(
            [
                call_event(call_id, "offered", offered, queue="general", caller=caller),
                call_event(
                    call_id, "answered", now - timedelta(seconds=1), agent=agent, caller=caller
                ),
            ]
        )
        return call_id


def call_event(call_id: str, type_: str, at: datetime, **fields) -> dict:
    return {"event_id": f"{call_id}-{type_}", "type": type_, "call_id": call_id,
            "at": at.isoformat(), **fields}  # fmt: skip


def fresh_server_env(data_dir: Path) -> dict[str, str]:
    """A fresh installation: no database or Redis configured, an empty data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(data_dir)
    env["HOTLINE_LOG_LEVEL"] = "WARNING"
    return env


# `hotline seed`, then `hotline user create` for every user, run by the real command-line app
# in one process: a process per command would import the whole application eight times.
_PREPARE = """
import json, sys
from typer.testing import CliRunner
from hotline.cli import app
runner = CliRunner()
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    if result.exit_code != 0:
        sys.exit(f"hotline {' '.join(args)} failed: {result.output}")
"""


def prepare_users(env: dict[str, str]) -> None:
    commands = [["seed"]]
    for name, (roles, departments) in USERS.items():
        args = ["user", "create", name, "--password", PASSWORD]
        args += [a for role in roles for a in ("--role", role)]
        args += [a for code in departments for a in ("--department", code)]
        commands.append(args)
    result = subprocess.run(
        [sys.executable, "-c", _PREPARE, json.dumps(commands)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def open_page(browser: Browser, server: Server, username: str, **context_options) -> Page:
    """A new browser context (a new person at a new screen), logged in as ``username``."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        **context_options,
    )
    page = context.new_page()
    page.goto(f"{server.url}/login")
    form = page.get_by_test_id("login-form")
    form.get_by_label("用户名").fill(username)
    form.get_by_label("密码").fill(PASSWORD)
    form.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/(console|wall|desk|inbox|kb|admin)$"))
    wait_ready(page)
    return page


def wait_ready(page: Page) -> None:
    """The page has drawn its data and listens for input (its script sets data-ready)."""
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def wait_live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "online")


def mark_no_reload(page: Page) -> None:
    """A marker that a reload would wipe: proves an update came live, not from a reload."""
    page.evaluate("window.__noReload = 'still here'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload") == "still here"


def inbox_card(page: Page, number: str):
    return page.get_by_test_id("inbox-list").locator(f'li[data-number="{number}"]')


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def axe_violations(page: Page, axe_script: Path) -> list[str]:
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(path=str(axe_script))
    report = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in report["violations"]
        if v["impact"] in ("serious", "critical")
    ]
