"""A screen for every role (issue 20): the department inbox, the desk's per-town offers, the
console's call link and the wall's TV mode, in chromium against a real server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.agents_ui.browsing import (
    PASSWORD,
    axe_violations,
    expect,
    inbox_card,
    open_page,
    wait_live,
    wait_ready,
)

SHOTS = Path(os.environ.get("HOTLINE_TEST_SHOTS", "/tmp/shots-dept"))
CALLER = "13800137001"
MASKED_CALLER = "138****7001"


def shot(page, name: str) -> None:
    """Keep a picture of what was checked, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def market_ticket(server, content: str, **fields) -> dict:
    ticket = server.create_ticket(
        content=content,
        address=fields.pop("address", "香洲区拱北夏湾路"),
        matter_code=fields.pop("matter_code", "SC-01"),
        caller_phone=fields.pop("caller_phone", CALLER),
        caller_name=fields.pop("caller_name", "李四"),
        **fields,
    )
    assert ticket["lead_department"] == "XZ-MARKET", ticket
    return ticket


@pytest.fixture(scope="module")
def busy_inbox(server) -> list[dict]:
    """A morning's work for 香洲区市场监督管理局: fourteen open tickets, a few accepted."""
    shops = ["手机店", "超市", "美容院", "健身房", "水果摊", "餐馆", "药店"]
    tickets = [
        market_ticket(server, f"夏湾{shops[n % len(shops)]}第{n + 1}次拒绝退款，要求市场监管处理")
        for n in range(14)
    ]
    for ticket in tickets[:3]:
        answer = server.http.post(
            f"/api/v1/tickets/{ticket['number']}/accept", json={}, headers=server.headers("xz")
        )
        assert answer.status_code == 200, answer.text
    return tickets


def test_a_department_replies_sees_it_confirmed_and_finds_the_ticket_again(
    browser, server, busy_inbox, axe_script
):
    ticket = market_ticket(
        server, f"拱北超市卖过期牛奶拒绝退款，市民留电话{CALLER}", caller_name="王小明"
    )
    number = ticket["number"]
    assert server.http.post(
        f"/api/v1/tickets/{number}/accept", json={}, headers=server.headers("xz")
    ).is_success
    page = open_page(browser, server, "xz", bypass_csp=True)  # axe is injected below

    card = inbox_card(page, number)
    expect(card).to_have_attribute("data-status", "accepted")
    card.get_by_role("button", name="回复办理结果").click()
    dialog = page.locator("#action-dialog")
    dialog.get_by_label("办理结果").fill("已责令超市下架过期牛奶并退款，市民已收到退款")
    dialog.get_by_role("button", name="提交回复").click()

    # Seen, not only announced: a confirmation on screen that says where the ticket went.
    notice = page.get_by_test_id("inbox-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"已回复：工单 {number}")
    expect(notice).to_contain_text("已回复")
    expect(card).to_have_count(0)  # it left the to-do list …
    shot(page, "inbox-replied-notice")
    assert axe_violations(page, axe_script) == []

    # … and is found again: the replied tab, searched by its number.
    page.get_by_role("tab", name="已回复").click()
    expect(page.get_by_role("tab", name="已回复")).to_have_attribute("aria-selected", "true")
    page.get_by_label("搜索工单号或内容").fill(number[-6:])
    page.get_by_role("button", name="搜索", exact=True).click()
    found = inbox_card(page, number)
    expect(found).to_be_visible()
    expect(page.get_by_test_id("inbox-list").locator("li.ticket-row")).to_have_count(1)
    expect(found).to_have_attribute("data-status", "replied")

    # Its page: the whole content (masked for the department), deadlines, reply and trail.
    found.get_by_role("button", name=number).click()
    detail = page.get_by_test_id("ticket-detail")
    expect(detail.get_by_test_id("detail-reply")).to_have_text(
        "已责令超市下架过期牛奶并退款，市民已收到退款"
    )
    expect(detail.get_by_test_id("detail-content")).to_contain_text(MASKED_CALLER)
    expect(detail).to_contain_text("办结时限")
    expect(detail).to_contain_text("签收时限")
    trail = detail.get_by_test_id("ticket-trail").locator("li")
    expect(trail).to_have_count(3)
    expect(trail.nth(0)).to_contain_text("受理")
    expect(trail.nth(1)).to_contain_text("签收")
    expect(trail.nth(2)).to_contain_text("回复办理结果")
    html = page.content()
    assert CALLER not in html and "王小明" not in html
    assert re.search(rf"ticket={number}", page.url)
    shot(page, "inbox-replied-tab")
    violations = axe_violations(page, axe_script)
    assert violations == [], "\n".join(violations)

    # Searching by text finds it too; the caller's phone finds nothing for a department.
    page.get_by_label("搜索工单号或内容").fill("过期牛奶")
    page.get_by_role("button", name="搜索", exact=True).click()
    expect(inbox_card(page, number)).to_be_visible()
    page.get_by_label("搜索工单号或内容").fill(CALLER)
    page.get_by_role("button", name="搜索", exact=True).click()
    expect(page.get_by_test_id("inbox-list")).to_contain_text("没有找到")

    # The ticket page is an address: reopening it shows the same tab, search and ticket.
    page.reload()
    wait_ready(page)
    expect(page.get_by_role("tab", name="已回复")).to_have_attribute("aria-selected", "true")
    page.context.close()


def test_the_compact_list_shows_ten_and_more_tickets_at_1440x900(browser, server, busy_inbox):
    page = open_page(browser, server, "xz")
    rows = page.get_by_test_id("inbox-list").locator("li.ticket-row")
    expect(rows.nth(11)).to_be_attached()
    assert page.viewport_size == {"width": 1440, "height": 900}
    visible = page.evaluate(
        """() => [...document.querySelectorAll('#inbox-list li.ticket-row')].filter((row) => {
            const box = row.getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
        }).length"""
    )
    assert visible >= 10, visible
    # Each tab lists what it says.
    page.get_by_role("tab", name="办理中").click()
    expect(rows).to_have_count(3)
    for n in range(3):
        expect(rows.nth(n)).to_have_attribute("data-status", "accepted")
    page.get_by_role("tab", name="待签收").click()
    expect(rows.first).to_have_attribute("data-status", "dispatched")
    assert rows.count() >= 11
    shot(page, "inbox-compact")
    page.context.close()


def test_co_handled_tickets_have_their_own_tab(browser, server):
    shared = server.create_ticket(
        content="拱北夏湾菜市场周边流动摊贩卖过期食品",
        address="香洲区拱北夏湾",
        matter_code="CG-01",
        co_departments=["XZ-MARKET"],
    )
    assert shared["lead_department"] != "XZ-MARKET"
    page = open_page(browser, server, "xz")
    page.get_by_role("tab", name="协办").click()
    row = inbox_card(page, shared["number"])
    expect(row).to_be_visible()
    expect(row.locator(".badge", has_text="协办")).to_be_visible()
    expect(row.get_by_role("button", name="签收")).to_have_count(0)  # the lead accepts
    page.context.close()


def test_the_desk_offers_the_rule_chosen_department_in_each_candidate_town(
    browser, server, axe_script
):
    # 东澳村 is in 万山镇 and in 乾务镇; HB-01 (企业排污) is district-level: not a town office.
    ticket = server.create_ticket(content="东澳村有工厂夜里偷排废水", matter_code="HB-01")
    assert ticket["lead_department"] == "DESK"
    page = open_page(browser, server, "disp", bypass_csp=True)
    card = page.get_by_test_id("desk-list").locator(f'li[data-number="{ticket["number"]}"]')
    card.get_by_role("button", name="预览系统建议").click()
    choices = card.locator(".town-choices button")
    expect(choices).to_have_count(2)
    wanshan = card.get_by_role("button", name=re.compile("若在万山镇"))
    qianwu = card.get_by_role("button", name=re.compile("若在乾务镇"))
    expect(wanshan).to_contain_text("万山区综合执法局（WS-ENFORCE）")
    expect(qianwu).to_contain_text("珠海市生态环境局斗门分局（DM-ECOENV）")
    for button in (wanshan, qianwu):
        assert "（T-" not in button.inner_text()  # no town office for a district-level matter
    shot(page, "desk-by-town")
    violations = axe_violations(page, axe_script)
    assert violations == [], "\n".join(violations)

    qianwu.click()
    expect(card.get_by_label("主办部门")).to_have_value("DM-ECOENV")
    card.get_by_role("button", name="派单", exact=True).click()
    notice = page.get_by_test_id("desk-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"已派单：{ticket['number']}")
    assert server.get("disp", f"/api/v1/tickets/{ticket['number']}")["lead_department"] == (
        "DM-ECOENV"
    )
    page.context.close()


def test_the_console_keeps_the_call_linked_after_a_ticket_until_the_call_ends(browser, server):
    page = open_page(browser, server, "agent2")
    wait_live(page)
    caller = "13900137002"
    call_id = server.answered_call(agent="agent2", caller=caller)
    panel = page.get_by_test_id("incoming-call")
    expect(panel).to_have_attribute("data-call-id", call_id)
    form = page.get_by_test_id("ticket-form")
    numbers = []
    for content in ("夏湾一家手机店拒绝退货", "同一条街的超市卖过期牛奶"):
        form.get_by_label("诉求内容").fill(content)
        form.get_by_label("事发地址").fill("香洲区拱北夏湾路")
        form.get_by_label("事项", exact=True).select_option("SC-01")
        form.get_by_role("button", name=re.compile("^提交")).click()
        result = page.locator("#ticket-result")
        expect(result).to_have_attribute("data-number", re.compile(r"^ZH\d{14}$"))
        expect(result).not_to_have_attribute("data-number", numbers[-1] if numbers else "-")
        numbers.append(result.get_attribute("data-number"))
        # Still on the call: the panel keeps it, the next ticket will be linked to it too.
        expect(panel).to_have_attribute("data-call-id", call_id)
        expect(page.locator("#call-link")).to_be_visible()
        expect(page.locator("#call-link")).to_contain_text(call_id)
        expect(form.get_by_label("来电号码")).to_have_value(caller)
        expect(page.get_by_test_id("call-tickets")).to_contain_text(numbers[-1])
    for number in numbers:
        assert server.get("agent2", f"/api/v1/tickets/{number}")["call_id"] == call_id
    shot(page, "console-call-linked")

    from datetime import UTC, datetime

    from tests.agents_ui.browsing import call_event

    server.call_events([call_event(call_id, "ended", datetime.now(UTC))])
    expect(panel).to_have_attribute("data-call-id", "")
    expect(page.locator("#call-link")).to_be_hidden()
    expect(page.locator("#call-summary")).to_contain_text(f"通话 {call_id} 已结束")
    expect(page.locator("#call-summary")).to_contain_text(numbers[0])
    page.context.close()


TV_SIZES = [(1366, 768), (1440, 900), (1920, 1080), (3840, 2160)]

_OVERFLOW = """() => {
    const w = window.innerWidth, h = window.innerHeight;
    const root = document.scrollingElement;
    const name = (el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
    const bad = [];
    if (root.scrollWidth > w || root.scrollHeight > h) {
        bad.push(`page ${root.scrollWidth}x${root.scrollHeight}`);
    }
    for (const el of document.querySelectorAll('body *')) {
        if (el.scrollWidth > w || el.scrollHeight > h) {
            bad.push(`${name(el)} scrolls ${el.scrollWidth}x${el.scrollHeight}`);
        }
        const box = el.getBoundingClientRect();
        if (box.width && (box.right > w + 0.5 || box.bottom > h + 0.5)) {
            const style = getComputedStyle(el);
            if (style.visibility !== 'hidden' && !el.closest('.visually-hidden')) {
                bad.push(`${name(el)} ends at ${box.right}x${box.bottom}`);
            }
        }
    }
    return {bad, scrolls: root.scrollWidth > root.clientWidth
                          || root.scrollHeight > root.clientHeight};
}"""


@pytest.mark.parametrize(("width", "height"), TV_SIZES, ids=[f"{w}x{h}" for w, h in TV_SIZES])
def test_the_wall_tv_mode_fits_the_screen(browser, server, busy_inbox, width, height, axe_script):
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        bypass_csp=True,
    )
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.get_by_label("用户名").fill("sup")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/wall$"))
    page.goto(f"{server.url}/wall?tv=1")
    wait_ready(page)
    expect(page.locator("#rate-chart canvas").first).to_be_attached()
    expect(page.locator("#updated-at")).not_to_have_text("—")
    # The chart settles on its box's size on the next frame.
    page.wait_for_function(
        """() => { const box = document.querySelector('#rate-chart');
                   const root = box.querySelector('.uplot');
                   return root && root.offsetHeight <= box.clientHeight; }"""
    )
    found = page.evaluate(_OVERFLOW)
    assert found["bad"] == [], found["bad"][:10]
    assert not found["scrolls"]
    page.mouse.wheel(0, 2000)
    page.keyboard.press("End")
    assert page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
    big = page.locator("#rate-15m").bounding_box()
    assert big["height"] > height * 0.05  # readable from across the room at every size
    shot(page, f"wall-tv-{width}x{height}")
    if (width, height) == (1366, 768):
        violations = axe_violations(page, axe_script)
        assert violations == [], "\n".join(violations)
    context.close()
