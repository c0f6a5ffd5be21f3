"""Screenshots of every page in ``agents_ui.pages.PAGES``, each as its role, for the README.

    scripts/screenshots [--out docs/screenshots] [--only /inbox ...]

Starts `hotline serve` over a fresh data dir, loads the reference data and the demo data of
`hotline demo` (users of every role, a morning of tickets), adds a day's work for the
香洲区市场监督管理局 inbox (one ticket overdue, one due soon, some replied, one co-handled) and
an eight-hour day of calls for the wall. Then Debian's chromium (driven by Playwright) logs in
as each page's role and photographs it at 1440×900 (the wall also in its TV mode).

A page is found in PAGES by itself: ``ROLES`` says who opens it (no entry: the admin, who may
open every page; ``None``: nobody logged in), ``SCENES`` optionally puts it into an
interesting state first (a call on the console, a ticket open in the inbox). Until the
knowledge-base API is deployed (it answers 404), the console's knowledge-base pane is fed
from the shipped sample articles so the picture shows how results look.
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
from zoneinfo import ZoneInfo

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
from dispatch.tickets import deadlines, service
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
    ("夏湾一家健身房突然关门，会员费不退", "香洲区拱北夏湾路", "SC-01", "13800002005", 200),
    ("南屏一家药店卖的口罩是三无产品", "香洲区南屏", "SC-02", "13800002006", 190),
    ("前山一家手机店以旧换新时乱收费", "香洲区前山", "SC-01", "13800002007", 180),
    ("拱北一家奶茶店用过期原料", "香洲区拱北港昌路", "SC-02", "13800002008", 170),
    ("吉大一家装修公司收了定金不开工", "香洲区吉大", "SC-01", "13800002009", 160),
    ("翠微一家教育机构拒绝退还剩余课时费", "香洲区前山翠微", "SC-01", "13800002010", 140),
    ("湾仔一家海鲜酒楼结账时多收钱", "香洲区湾仔", "SC-01", "13800002011", 110),
    ("夏湾一家超市会员卡余额被清零", "香洲区拱北夏湾", "SC-01", "13800002012", 100),
]
later = [  # answered earlier this week: replied, closed
    ("拱北一家眼镜店验光收费不透明", "香洲区拱北", "reply"),
    ("夏湾一家家电卖场不给开发票", "香洲区拱北夏湾", "close"),
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
        # The 80 % point too: a restarted Redis gets the reminders asked for again from it.
        ticket.due_soon_at = deadlines.due_soon_at(ticket.received_at, ticket.due_at)
        for row in ticket.departments:
            row.due_at = ticket.accept_deadline
            row.due_soon_at = ticket.due_soon_at
# Accepted (办理中), replied (已回复) and closed (已办结) tickets, and one co-handled (协办).
from hotline.core.auth import Principal
market = Principal(user_id=0, username="xz_market", roles=frozenset({"department"}),
                   departments=frozenset({"XZ-MARKET"}))
agent = Principal(user_id=0, username="agent1", roles=frozenset({"agent"}), departments=frozenset())
with transaction() as s:
    for number in created[4:7]:
        service.act(s, market, number, "accept", {})
    for n, (content, address, step) in enumerate(later):
        ticket, _ = service.create(
            s, actor="agent1", channel="phone", content=content, address=address,
            matter_code="SC-01", caller_name="市民", caller_phone=f"1380000300{n}")
        service.act(s, market, ticket.number, "accept", {})
        service.act(s, market, ticket.number, "reply",
                    {"reply": "已约谈商家，商家已整改并向市民退还多收的费用。"})
        if step == "close":
            service.act(s, agent, ticket.number, "visit", {"satisfaction": "satisfied"})
            service.act(s, agent, ticket.number, "close", {})
    service.create(
        s, actor="agent1", channel="phone", content="拱北夏湾菜市场门口流动摊贩卖过期食品",
        address="香洲区拱北夏湾", matter_code="CG-01", caller_name="市民",
        caller_phone="13800004001", co_departments=["XZ-MARKET"])
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


# Who opens each page (a user of hotline.demo.DEMO_USERS); None: nobody logged in. A page of
# PAGES without an entry is opened by the admin, who may open every page. Add pages here.
ROLES: dict[str, str | None] = {
    "/": None,
    "/login": None,
    "/console": "agent1",
    "/wall": "supervisor",
    "/desk": "dispatcher",
    "/inbox": "xz_market",
    "/kb": "editor",
    "/admin": "admin",
    "/reports": "supervisor",
    "/reports/print": "supervisor",  # the printable report of the same page
    "/m": None,  # the citizens' portal
}
DEFAULT_ROLE = "admin"


def shot_name(path: str, template: str) -> str:
    """The template's name ("/" and "/login" are both login.html); a path for anything else."""
    return Path(template).stem if template.endswith(".html") else path.strip("/") or "index"


def new_page(browser, url: str, username: str | None):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    if username is not None:
        page.goto(f"{url}/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(lambda address: not address.rstrip("/").endswith("/login"))
        page.wait_for_selector("body[data-ready=true]")
    return page


def wait_drawn(page) -> None:
    """The page's script says it has drawn (data-ready); a page without a script is loaded."""
    page.wait_for_load_state("networkidle")
    if page.locator("script[type=module]").count():
        page.wait_for_selector("body[data-ready=true]")


def console_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """A call on the line with the caller's history, a ticket half written, KB results."""
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
    return [save(page, out, "console")]


def wall_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """The wall, and its TV mode at the same size."""
    page.wait_for_selector("#rate-chart canvas")
    page.wait_for_timeout(500)  # the chart draws on the next animation frame
    shots = [save(page, out, "wall")]
    page.goto(f"{url}/wall?tv=1")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_timeout(500)
    return [*shots, save(page, out, "wall-tv")]


def inbox_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """The compact list with a ticket's page open beside it."""
    page.locator(".ticket-row").first.wait_for()
    page.locator('.ticket-row[data-status="accepted"] .ticket-number').first.click()
    page.wait_for_selector("[data-testid=ticket-trail] li")
    return [save(page, out, "inbox")]


def desk_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """The desk's preview for a place that could be two towns: a department per town."""
    page.locator(".ticket-card").first.wait_for()
    card = page.locator(".ticket-card", has_text="东澳村")
    card = card if card.count() else page.locator(".ticket-card").first
    card.get_by_role("button", name="预览系统建议").click()
    card.locator(".desk-preview strong").first.wait_for()  # the answer, not "预览中…"
    return [save(page, out, "desk")]


def views(*hashes: str):
    """A scene for a page with one view per address hash (#users, #flags, …): each view."""

    def scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
        path = page.url.split("#")[0].removeprefix(url)
        shots = [save(page, out, path.strip("/"))]
        for hash_ in hashes:
            # A fresh load per view: a hash change alone keeps the last view's data-ready.
            page.goto("about:blank")
            page.goto(f"{url}{path}#{hash_}")
            page.wait_for_load_state("networkidle")
            page.wait_for_selector("body[data-ready=true]")
            shots.append(save(page, out, f"{path.strip('/')}-{hash_}"))
        return shots

    return scene


def kb_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """The editor's views with work in them: an agent's error report (纠错) on an article and a
    search that found nothing, and a new article submitted for review."""

    def headers(username: str) -> dict[str, str]:
        answer = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    agent, editor = headers("agent1"), headers("editor")
    hits = http.get("/api/v1/kb/search", params={"q": "社保卡"}, headers=agent).json()
    if hits:
        http.post(
            f"/api/v1/kb/articles/{hits[0]['key']}/flags",
            headers=agent,
            json={"kind": "outdated", "note": "补办地点已搬迁，文章里还是旧地址",
                  "question": "社保卡丢了去哪里补办"},
        ).raise_for_status()  # fmt: skip
    for question in ("无人机航拍要不要备案", "无人机航拍要不要备案", "宠物医院夜间急诊"):
        http.get("/api/v1/kb/search", params={"q": question}, headers=agent)
    for hit in hits[:3]:  # agents open articles during calls: the most-viewed list
        http.post(f"/api/v1/kb/articles/{hit['key']}/views", headers=agent)
    http.post(
        "/api/v1/kb/articles",
        headers=editor,
        json={"key": "KB-EV-CHARGING", "title": "电动自行车充电桩安装补贴",
              "body": "## 申请条件\n\n住宅小区业委会或物业可向所在区住建部门申请。",
              "category": "住房城建", "keywords": ["充电桩", "补贴"]},
    ).raise_for_status()  # fmt: skip
    http.post("/api/v1/kb/articles/KB-EV-CHARGING/submit", headers=editor).raise_for_status()
    return views("new", "review", "flags", "usage")(page, url, http, out)


def report_print_scene(page, url: str, http: httpx.Client, out: Path) -> list[Path]:
    """The monthly report of this month: the demo's tickets are today's, last month's is empty."""
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    page.goto(f"{url}/reports/print?month={month}")
    wait_drawn(page)
    return [save(page, out, "report-print")]


# Pages put into an interesting state before their picture; others are taken as they load.
SCENES = {
    "/console": console_scene,
    "/wall": wall_scene,
    "/inbox": inbox_scene,
    "/desk": desk_scene,
    "/kb": kb_scene,
    "/reports/print": report_print_scene,
    "/admin": views("users", "calendar", "rules", "audit"),
}


def save(page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=path)  # the viewport: 1440×900, as a person sees the screen
    return path


def photograph(url: str, http: httpx.Client, out: Path, only: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO))
    from agents_ui.pages import PAGES

    shots: list[Path] = []
    seen_templates: set[str] = set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for path, template in PAGES.items():
            if template in seen_templates or (only and path not in only):
                continue  # "/" and "/login" are one page
            seen_templates.add(template)
            page = new_page(browser, url, ROLES.get(path, DEFAULT_ROLE))
            page.goto(f"{url}{path}")
            wait_drawn(page)
            scene = SCENES.get(path)
            shots += (
                scene(page, url, http, out)
                if scene
                else [save(page, out, shot_name(path, template))]
            )
            page.context.close()
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--only", nargs="*", default=[], help="page paths, e.g. /inbox /desk")
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
                for shot in photograph(url, http, args.out, args.only):
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
