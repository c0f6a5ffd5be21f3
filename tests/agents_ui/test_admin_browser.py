"""The administrators' page (/admin) in chromium, as the admin: accounts, the holiday calendar,
a draft of routing rules replayed on past tickets, and every view checked with axe-core.

What the page does is checked where it takes effect: a disabled account cannot log in and its
token is refused; a holiday moves the deadline of the next ticket (read from the ticket API);
the replay names the very tickets a draft would send elsewhere; a published draft is a new
rule version in the rules API.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.agents_ui.browsing import PASSWORD, axe_violations, expect, open_page

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("HOTLINE_SHOTS_DIR", "/tmp/shots-admin"))
VIEWS = ["overview", "users", "departments", "calendar", "prompts", "open311", "rules", "audit"]
GONGBEI = "香洲区拱北夏湾"  # SC-01 here goes to 香洲区市场监督管理局 (XZ-MARKET)


def show(page, view: str, suffix: str = ""):
    page.evaluate(f"location.hash = '{view}{suffix}'")
    section = page.get_by_test_id(f"view-{view}")
    expect(section).to_be_visible()
    if view != "overview":
        expect(section).to_have_attribute("data-ready", "true")
    return section


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def market_ticket(server, content: str = "商家拒绝退款，要求处理") -> dict:
    return server.create_ticket(
        content=content, address=GONGBEI, matter_code="SC-01", caller_phone="13812340000"
    )


def test_an_admin_creates_a_user_then_disables_it_and_the_user_can_no_longer_act(browser, server):
    page = open_page(browser, server, "admin")
    users = show(page, "users")
    form = page.get_by_test_id("user-create-form")

    # The API's rules, checked on the page before anything is sent.
    form.get_by_label("用户名").fill("clerk1")
    form.get_by_label("初始密码").fill(PASSWORD)
    form.get_by_label("承办部门").check()
    form.get_by_role("button", name="创建用户").click()
    expect(form.get_by_role("alert")).to_contain_text("必须选择所属部门")
    form.get_by_label("承办部门").uncheck()

    form.get_by_label("姓名").fill("新 话务员")
    form.get_by_label("话务员").check()
    form.get_by_role("button", name="创建用户").click()
    row = users.locator('tr[data-username="clerk1"]')
    expect(row).to_contain_text("话务员")
    expect(row).to_contain_text("启用")

    # A taken name: the server's refusal (409 auth.user_exists) is shown as it comes.
    form.get_by_label("用户名").fill("clerk1")
    form.get_by_label("初始密码").fill(PASSWORD)
    form.get_by_label("话务员").check()
    form.get_by_role("button", name="创建用户").click()
    expect(form.get_by_role("alert")).to_contain_text("exists")

    # A password reset: the old password stops working, the new one works.
    row.get_by_role("button", name="重置密码 clerk1").click()
    dialog = page.locator("#admin-dialog")
    dialog.get_by_label("新密码").fill("short")
    dialog.get_by_role("button", name="重置密码").click()
    expect(dialog.get_by_role("alert")).to_contain_text("至少 8 个字符")
    dialog.get_by_label("新密码").fill("pw-reset-4321")
    dialog.get_by_role("button", name="重置密码").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#announcer")).to_contain_text("已重置 clerk1 的密码")
    old = server.http.post("/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD})
    assert old.status_code == 401
    token = server.http.post(
        "/api/v1/auth/token", data={"username": "clerk1", "password": "pw-reset-4321"}
    ).json()["access_token"]
    row.get_by_role("button", name="重置密码 clerk1").click()
    dialog.get_by_label("新密码").fill(PASSWORD)
    dialog.get_by_role("button", name="重置密码").click()
    expect(dialog).to_be_hidden()
    # ... and the reset ended the session it had.
    assert (
        server.http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )

    # The new user works, in the API and on their own page.
    token = server.http.post(
        "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
    ).json()["access_token"]
    me = server.http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["roles"] == ["agent"]
    clerk = open_page(browser, server, "clerk1")
    assert clerk.url.endswith("/console")
    expect(clerk.locator("#live-status")).to_have_attribute("data-state", "online")

    row.get_by_role("button", name="停用 clerk1").click()
    expect(dialog).to_contain_text("停用账号 clerk1")
    dialog.get_by_role("button", name="停用").click()
    expect(row).to_contain_text("已停用")
    expect(row.get_by_role("button", name="启用 clerk1")).to_be_visible()

    # The token is dead at once, the log-in is refused, and the open page is sent away.
    refused = server.http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401, refused.text
    login = server.http.post(
        "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
    )
    assert login.status_code == 401 and login.json()["error"]["code"] == "auth.bad_credentials"
    expect(clerk).to_have_url(re.compile(r"/login"))

    audit = show(page, "audit")
    audit.get_by_label("操作人").fill("admin")
    audit.get_by_label("操作", exact=True).select_option("user.")
    audit.get_by_role("button", name="筛选").click()
    table = audit.get_by_test_id("audit-table")
    expect(table).to_contain_text("user.disabled")
    expect(table).to_contain_text("user.created")
    clerk.context.close()
    page.context.close()


def test_a_holiday_set_on_the_calendar_moves_the_next_tickets_deadline(browser, server):
    before = market_ticket(server)
    deadline_day = before["accept_deadline"][:10]

    page = open_page(browser, server, "admin")
    calendar = show(page, "calendar", f"/{deadline_day[:7]}")
    day = calendar.locator(f'button[data-day="{deadline_day}"]')
    expect(day).to_have_class(re.compile(r"\bday-work\b"))
    day.click()
    detail = calendar.get_by_test_id("day-detail")
    detail.get_by_label("备注").fill("台风停工")
    detail.get_by_role("button", name="设为休息日").click()
    expect(day).to_have_class(re.compile(r"\bday-off\b.*\bday-override\b"))
    expect(detail.get_by_test_id("day-status")).to_contain_text("休息日")
    shoot(page, "calendar-override")

    status = server.get("agent1", f"/api/v1/calendar/{deadline_day}")
    assert status["working"] is False and status["source"] == "override"
    after = market_ticket(server, "商家拒绝退货退款")
    assert after["accept_deadline"][:10] > deadline_day, (before, after)
    ticket = server.get("admin", f"/api/v1/tickets/{after['number']}")
    assert ticket["accept_deadline"] == after["accept_deadline"]
    # ... while the deadline given before the override stays as it was.
    assert (
        server.get("admin", f"/api/v1/tickets/{before['number']}")["accept_deadline"]
        == (before["accept_deadline"])
    )

    # Undone: the day is an ordinary working day again, and so are the next deadlines.
    day.click()
    detail.get_by_role("button", name="取消调整").click()
    expect(day).not_to_have_class(re.compile(r"\bday-override\b"))
    assert server.get("agent1", f"/api/v1/calendar/{deadline_day}")["working"] is True
    assert market_ticket(server)["accept_deadline"] == before["accept_deadline"]
    page.context.close()


def test_a_draft_rule_is_replayed_on_past_tickets_and_then_published(browser, server):
    moved = [market_ticket(server, f"商家拒绝退款 第{n}次") for n in range(2)]
    stays = server.create_ticket(
        content="出租车司机在机场拒载", address="珠海机场", matter_code="JT-01"
    )

    page = open_page(browser, server, "admin")
    rules = show(page, "rules")
    rules.get_by_label("查找事项").fill("SC-01")
    rules.get_by_role("button", name="加入草稿 SC-01").click()
    draft = rules.get_by_test_id("draft-panel")
    draft.get_by_label("SC-01 层级").select_option("city")
    draft.get_by_role("button", name="试算（回放历史工单）").click()

    result = draft.get_by_test_id("replay-result")
    listed = result.get_by_test_id("moved-tickets")
    for ticket in moved:
        expect(listed.locator(f'tr[data-number="{ticket["number"]}"]')).to_contain_text(
            "香洲区市场监督管理局"
        )
    expect(listed.locator(f'tr[data-number="{stays["number"]}"]')).to_have_count(0)
    expect(result).to_contain_text("将改派其他部门")
    shoot(page, "rules-replay")

    tomorrow = date.fromisoformat(draft.get_by_label("生效日期").input_value())
    assert tomorrow > date.today() - timedelta(days=1)
    draft.get_by_label("说明").fill("试点：消费纠纷改由市局承办")
    draft.get_by_role("button", name="发布").click()
    page.locator("#admin-dialog").get_by_role("button", name="发布").click()
    expect(result).to_contain_text("已发布：SC-01")

    versions = server.get("admin", "/api/v1/routing/matters/SC-01/rules")
    assert versions[-1]["level"] == "city"
    assert versions[-1]["valid_from"] == tomorrow.isoformat()
    assert versions[-1]["created_by"] == "admin"
    # Published from tomorrow: today's tickets still go to the district.
    assert market_ticket(server)["lead_department"] == "XZ-MARKET"
    page.context.close()


def test_every_admin_view_is_accessible(browser, server, axe_script):
    page = open_page(browser, server, "admin", bypass_csp=True)  # to inject axe-core
    problems = {}
    for view in VIEWS:
        section = show(page, view)
        if view == "calendar":
            section.locator("button.day").nth(10).click()
        if view == "open311":
            section.get_by_label("客户端名称").fill("市民APP")
            section.get_by_role("button", name="签发密钥").click()
            expect(section.get_by_test_id("new-key")).to_contain_text("只显示这一次")
        if view == "rules":
            section.get_by_label("查找事项").fill("噪音")
        problems[view] = axe_violations(page, axe_script)
        shoot(page, f"admin-{view}")
    # A dialog open over the page, too.
    users = show(page, "users")
    users.get_by_role("button", name="编辑 admin").click()
    expect(page.locator("#admin-dialog")).to_be_visible()
    problems["user-dialog"] = axe_violations(page, axe_script)
    shoot(page, "admin-user-dialog")
    assert problems == {name: [] for name in problems}, problems
    page.context.close()


def test_the_page_is_for_admins_only(browser, server):
    page = open_page(browser, server, "sup")
    page.goto(f"{server.url}/admin#users")
    expect(page.locator("main h1")).to_have_text("无权访问")
    refused = server.http.get("/api/v1/admin/users", headers=server.headers("sup"))
    assert refused.status_code == 403
    page.context.close()
