"""Screenshots of the agent console, the KPI wall, the dispatch desk and the department inbox.

    python scripts/screenshots.py [--out docs/screenshots]

Starts `hotline serve` over a fresh data dir, loads the reference data and the demo data of
`hotline demo` (users of every role, a morning of tickets), adds a few more tickets for the
香洲区市场监督管理局 inbox with one of them overdue and one due soon, and an eight-hour day of
calls for the wall. Then Debian's chromium (driven by Playwright) logs in as each role and
photographs the page at 1440×900. Until the knowledge-base API is deployed (it answers 404),
the console's knowledge-base pane is fed from the shipped sample articles so the picture shows
how results look.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CTI = {"X-CTI-Token": "development-cti-token"}
PASSWORD = "demo12345"  # hotline.demo.DEMO_PASSWORD
VIEWPORT = {"width": 1440, "height": 900}

# Runs inside the data dir's environment: reference data, the demo data, more inbox tickets,
# and two of them moved along the clock (an overdue one and one due soon) for the highlights.
_PREPARE = """
from datetime import timedelta
from sqlalchemy import select
from typer.testing import CliRunner
from hotline.cli import app
from hotline import demo
from hotline.core.db import transaction, utcnow
from dispatch.tickets import service
from dispatch.tickets.models import Ticket

result = CliRunner().invoke(app, ["seed"])
assert result.exit_code == 0, result.output
with transaction() as s:
    demo.create_demo_users(s)
with transaction() as s:
    demo.create_demo_tickets(s)
more = [  # (content, address, matter, caller, received minutes ago)
    ("香洲区前山翠微一家超市卖的牛奶过了保质期", "香洲区前山翠微", "SC-02", "13800002001", 150),
    ("拱北一家美容院办卡后倒闭，预付款无法退回", "香洲区拱北港昌路", "SC-01", "13800002002", 120),
    ("吉大景山路的水果摊秤不准，一斤少二两", "香洲区吉大景山路", "SC-06", "13800002003", 45),
    ("湾仔海鲜街有餐馆没有营业执照", "香洲区湾仔", "SC-03", "13800002004", 20),
]
created = []
with transaction() as s:
    now = utcnow()
    for content, address, matter, phone, minutes in more:
        ticket, _ = service.create(
            s, actor="agent1", channel="phone", content=content, address=address,
            matter_code=matter, caller_name="市民", caller_phone=phone,
            received_at=now - timedelta(minutes=minutes))
        created.append(ticket.number)
with transaction() as s:
    now = utcnow()
    overdue, due_soon = (s.scalar(select(Ticket).where(Ticket.number == n)) for n in created[:2])
    # Dispatched when received; one is past its accept deadline, one past 80 % of its time.
    overdue.accept_deadline = now - timedelta(minutes=20)
    due_soon.accept_deadline = now + timedelta(minutes=20)
    for ticket in (overdue, due_soon):
        ticket.dispatched_at = ticket.received_at
        ticket.due_at = ticket.accept_deadline
        for row in ticket.departments:
            row.due_at = ticket.accept_deadline
"""


AGENTS = [f"a{n:03d}" for n in range(101, 115)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event(call_id: str, kind: str, at: datetime, **fields) -> dict:
    return {"event_id": f"{call_id}-{kind}", "type": kind, "call_id": call_id,
            "at": at.isoformat(), **fields}  # fmt: skip


def simulate_day(http: httpx.Client) -> None:
    """Eight hours of calls: busier mid-morning, a dip below target an hour before lunch,
    a few callers waiting now, agents in every state."""
    rng = random.Random(12345)
    now = datetime.now(UTC)
    events: list[dict] = []
    for minute in range(8 * 60, 0, -1):
        start = now - timedelta(minutes=minute)
        hours_ago = minute / 60
        busy = 3 if 2 < hours_ago < 5 else 2
        slow = 3 < hours_ago < 4  # an hour short of agents
        for n in range(rng.randint(busy - 1, busy + 1)):
            call_id = f"sim-{minute}-{n}"
            offered = start + timedelta(seconds=rng.uniform(0, 50))
            wait = rng.expovariate(1 / (14 if slow else 5))
            caller = f"138{rng.randint(10_000_000, 99_999_999)}"
            events.append(event(call_id, "offered", offered, queue="general", caller=caller))
            if wait > 70 and rng.random() < 0.7:
                events.append(event(call_id, "abandoned", offered + timedelta(seconds=wait)))
                continue
            answered = offered + timedelta(seconds=wait)
            events.append(event(call_id, "answered", answered, agent=rng.choice(AGENTS)))
            ended = answered + timedelta(seconds=rng.uniform(90, 300))
            if ended < now:
                events.append(event(call_id, "ended", ended))
    for n, wait in enumerate((48, 21, 9)):
        events.append(event(f"waiting-{n}", "offered", now - timedelta(seconds=wait),
                            queue="general", caller=f"1370000000{n}"))  # fmt: skip
    for batch in range(0, len(events), 2000):
        response = http.post("/api/v1/calls/events", json=events[batch : batch + 2000], headers=CTI)
        response.raise_for_status()
    states = ["on_call"] * 6 + ["ready"] * 3 + ["after_call_work"] * 2 + ["break"] * 2
    for agent, state in zip(AGENTS, states + ["logged_out"], strict=False):
        http.put(f"/api/v1/agents/{agent}/state", json={"state": state}, headers=CTI)


def kb_sample_results(query: str) -> list[dict]:
    """Search results from the shipped sample articles (used only while the KB API is 404)."""
    articles = [
        json.loads(line)
        for line in (REPO / "knowledgebase/reference/kb_sample.jsonl").read_text().splitlines()
    ]
    found = []
    for article in articles:
        if query in article["title"] + article["body"] + "".join(article["keywords"]):
            body = article["body"][:90].replace(query, f"<mark>{query}</mark>")
            found.append({"key": article["key"], "title": article["title"], "snippet": body + "…",
                          "score": 1.0, "category": article["category"]})  # fmt: skip
    return found[:3]


def log_in(browser, url: str, username: str):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("body[data-ready=true]")
    return page


def photograph(url: str, http: httpx.Client, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)

        page = log_in(browser, url, "agent1")
        if http.get("/api/v1/kb/search", params={"q": "社保卡"}).status_code == 404:
            page.route(
                "**/api/v1/kb/search?*",
                lambda route: route.fulfill(json=kb_sample_results("社保卡")),
            )
        page.get_by_role("button", name="就绪").click()
        page.wait_for_selector("#live-status[data-state=online]")
        now = datetime.now(UTC)
        http.post(
            "/api/v1/calls/events",
            headers=CTI,
            json=[
                event(
                    "shot-call",
                    "offered",
                    now - timedelta(seconds=7),
                    queue="general",
                    caller="13800001001",
                ),  # fmt: skip
                event("shot-call", "answered", now - timedelta(seconds=2), agent="agent1"),
            ],
        ).raise_for_status()
        page.wait_for_selector("#caller-history li.history-item")
        page.get_by_label("诉求内容").fill(
            "上周在夏湾同一家手机店换的新手机又坏了，商家还是拒绝退货，要求投诉"
        )
        page.get_by_label("事发地址").fill("香洲区拱北夏湾路")
        page.wait_for_selector("#matter-suggestions button")
        page.locator('#matter-suggestions button[data-code="SC-01"]').click()
        page.wait_for_selector("#routing-preview .explanation")
        page.get_by_test_id("kb-search").fill("社保卡")
        page.wait_for_selector("#kb-results li")
        page.locator("#ticket-content").focus()
        shots.append(out / "console.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.context.close()

        page = log_in(browser, url, "supervisor")
        page.wait_for_selector("#rate-chart canvas")
        page.wait_for_timeout(500)  # the chart draws on the next animation frame
        shots.append(out / "wall.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.goto(f"{url}/wall?tv=1")
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_timeout(500)
        shots.append(out / "wall-tv.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.context.close()

        page = log_in(browser, url, "xz_market")
        page.locator(".ticket-card").first.wait_for()
        shots.append(out / "inbox.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.context.close()

        page = log_in(browser, url, "dispatcher")
        page.locator(".ticket-card").first.wait_for()
        page.get_by_role("button", name="预览系统建议").first.click()
        page.wait_for_selector(".desk-preview p")
        shots.append(out / "desk.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.context.close()
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hotline-shots-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_LOG_LEVEL="WARNING")
        subprocess.run([sys.executable, "-c", _PREPARE], env=env, cwd=REPO, check=True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "hotline", "serve", "--port", str(port)], env=env, cwd=REPO
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("hotline serve did not start")
                    time.sleep(0.2)
                simulate_day(http)
                for shot in photograph(url, http, args.out):
                    print(shot.relative_to(REPO) if shot.is_relative_to(REPO) else shot)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            sys.path.insert(0, str(REPO))
            os.environ["HOTLINE_DATA_DIR"] = str(data_dir)
            from hotline.core.redis import stop_embedded_redis

            stop_embedded_redis(data_dir)


if __name__ == "__main__":
    main()
