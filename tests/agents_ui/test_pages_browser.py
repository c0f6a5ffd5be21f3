"""The pages in a real browser: Debian's chromium driven by Playwright against `hotline serve`.

One server per module (a fresh data dir, `hotline seed`, users from `hotline user create`);
each test opens its own browser contexts, so logins and websocket state never leak between
tests. Tests pick their own callers, contents and departments, so they do not depend on each
other's data. Under CI=true a missing browser, Playwright or axe-core fails the run (the skip
reason says "missing system dependency").
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.agents_ui.browsing import (
    PASSWORD,
    XSS,
    assert_not_reloaded,
    axe_violations,
    call_event,
    expect,
    inbox_card,
    mark_no_reload,
    open_page,
    pct,
    wait_live,
    wait_ready,
)

pytestmark = pytest.mark.slow


# -- the flows ------------------------------------------------------------------------------------


def test_each_role_lands_on_its_page(browser, server):
    landings = {
        "agent1": "/console",
        "sup": "/wall",
        "disp": "/desk",
        "xz": "/inbox",
        "editor": "/kb",
        "admin": "/admin",
    }
    for username, path in landings.items():
        page = open_page(browser, server, username)
        assert page.url == f"{server.url}{path}", username
        expect(page.locator("#app-header")).to_contain_text(username)
        page.context.close()


def test_a_wrong_password_is_refused_on_the_page(browser, server):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server.url}/login")
    wait_ready(page)
    page.get_by_label("用户名").fill("agent1")
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码不正确")
    assert page.url.endswith("/login")
    context.close()


def test_agent_takes_a_call_and_files_a_ticket_that_reaches_the_inbox_live(browser, server):
    caller = "13900000001"
    earlier = server.create_ticket(
        content="出租车司机在机场拒载", address="珠海机场", matter_code="JT-01", caller_phone=caller
    )
    agent = open_page(browser, server, "agent1")
    department = open_page(browser, server, "xz")
    wait_live(agent)
    wait_live(department)
    mark_no_reload(department)

    states = agent.get_by_test_id("agent-state")
    states.get_by_role("button", name=re.compile("就绪")).click()
    expect(states.locator("#state-current")).to_have_text("就绪")
    mine = [a for a in server.get("sup", "/api/v1/agents") if a["username"] == "agent1"]
    assert mine[0]["state"] == "ready"

    call_id = server.answered_call(agent="agent1", caller=caller)
    incoming = agent.get_by_test_id("incoming-call")
    expect(incoming).to_contain_text(caller)
    expect(incoming).to_have_attribute("data-call-id", call_id)
    expect(agent.locator("#call-summary")).to_have_attribute("aria-live", "assertive")
    expect(agent.get_by_test_id("caller-history")).to_contain_text(earlier["number"])
    expect(agent.get_by_test_id("caller-history")).to_contain_text("出租车司机在机场拒载")
    expect(states.locator("#state-current")).to_have_text("通话中")
    form = agent.get_by_test_id("ticket-form")
    expect(form.get_by_label("来电号码")).to_have_value(caller)

    form.get_by_label("诉求内容").fill("在夏湾路一家手机店买的手机三天就坏了，商家拒绝退货退款")
    form.get_by_label("事发地址").fill("香洲区拱北夏湾路")
    suggestion = form.locator('#matter-suggestions button[data-code="SC-01"]')
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(form.get_by_label("事项", exact=True)).to_have_value("SC-01")
    preview = agent.get_by_test_id("routing-preview")
    expect(preview.locator(".preview-department")).to_have_text("香洲区市场监督管理局")
    expect(preview.locator(".explanation li")).not_to_have_count(0)

    form.get_by_label("诉求内容").press("Control+Enter")
    result = agent.locator("#ticket-result")
    expect(result).to_have_attribute("data-number", re.compile(r"^ZH\d{14}$"))
    number = result.get_attribute("data-number")
    expect(result).to_contain_text("香洲区市场监督管理局")

    card = inbox_card(department, number)
    expect(card).to_be_visible()
    expect(card).to_contain_text("手机三天就坏了")
    expect(card.locator(".badge-new")).to_have_text("新")
    expect(department.locator("#announcer")).to_contain_text(f"新工单 {number}")
    assert_not_reloaded(department)

    card.get_by_role("button", name="签收").click()
    expect(card).to_have_attribute("data-status", "accepted")
    expect(card.get_by_role("button", name="回复办理结果")).to_be_visible()
    ticket = server.get("xz", f"/api/v1/tickets/{number}")
    assert ticket["status"] == "accepted" and ticket["call_id"] == call_id
    # The agent's "my recent tickets" follows the department's action live too.
    mine = agent.locator(f'#my-tickets li[data-number="{number}"]')
    expect(mine).to_contain_text("办理中")
    for page in (agent, department):
        page.context.close()


def test_department_returns_replies_and_asks_for_an_extension(browser, server):
    to_return = server.create_ticket(
        content="拱北夏湾街边流动摊贩占道经营，早上堵路",
        address="香洲区拱北夏湾",
        matter_code="CG-01",
    )
    to_reply = server.create_ticket(
        content="楼下烧烤店油烟很大，每天熏到晚上十二点",
        address="香洲区拱北情侣南路",
        matter_code="HB-02",
    )
    assert to_return["lead_department"] == to_reply["lead_department"] == "T-440402005"
    page = open_page(browser, server, "gb")

    card = inbox_card(page, to_return["number"])
    card.get_by_role("button", name="退回").click()
    dialog = page.locator("#action-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="确认退回").click()
    expect(dialog.get_by_role("alert")).to_contain_text("退回理由")  # a reason is required
    dialog.get_by_label("退回理由").fill("占道经营由城管执法负责，不属本街道")
    dialog.get_by_role("button", name="确认退回").click()
    expect(card).to_have_count(0)
    returned = server.get("disp", f"/api/v1/tickets/{to_return['number']}")
    assert returned["status"] == "pending_dispatch" and returned["return_count"] == 1

    card = inbox_card(page, to_reply["number"])
    card.get_by_role("button", name="签收").click()
    expect(card).to_have_attribute("data-status", "accepted")
    card.get_by_role("button", name="申请延期").click()
    dialog.get_by_label("延长工作日数").fill("3")
    dialog.get_by_label("延期理由").fill("需要环保部门联合检测")
    dialog.get_by_role("button", name="提交申请").click()
    expect(page.locator("#announcer")).to_contain_text("已提交延期申请")
    card.get_by_role("button", name="回复办理结果").click()
    dialog.get_by_label("办理结果").fill("已上门责令安装油烟净化器，商户已整改")
    dialog.get_by_role("button", name="提交回复").click()
    expect(card).to_have_count(0)  # a replied ticket leaves the inbox
    replied = server.get("gb", f"/api/v1/tickets/{to_reply['number']}")
    assert replied["status"] == "replied" and replied["reply"].startswith("已上门")
    page.context.close()


def test_deadline_states_are_shown_in_words_not_colour_alone(browser, server):
    page = open_page(browser, server, "xz")
    expect(page.get_by_test_id("inbox-list")).to_have_attribute("aria-busy", "false")
    # Each state's badge carries its words; the inbox shows the words beside the colour.
    badges = page.evaluate(
        """async () => {
            const { deadlineBadge } = await import('/static/js/dom.js');
            return ['ok', 'due_soon', 'overdue'].map((s) => deadlineBadge(s).textContent);
        }"""
    )
    assert badges == ["时限内", "⚠ 即将超期", "✖ 已超期"]
    page.context.close()


def test_dispatcher_routes_a_desk_ticket_by_hand(browser, server):
    ticket = server.create_ticket(content="东澳村有工厂偷排污水，河水发黑", matter_code="HB-01")
    assert ticket["status"] == "pending_dispatch"
    desk = open_page(browser, server, "disp")
    department = open_page(browser, server, "xz")
    wait_live(department)
    card = desk.get_by_test_id("desk-list").locator(f'li[data-number="{ticket["number"]}"]')
    expect(card).to_contain_text("东澳村有工厂偷排污水")
    expect(card.locator("details.routing-why")).to_contain_text("派单")
    card.get_by_role("button", name="预览系统建议").click()
    expect(card.locator(".desk-preview")).to_contain_text("系统建议")
    card.get_by_label("主办部门").select_option("XZ-MARKET")
    card.get_by_label("审定（部门不得再退回）").check()
    card.get_by_role("button", name="派单").click()
    expect(card).to_have_count(0)
    dispatched = server.get("disp", f"/api/v1/tickets/{ticket['number']}")
    assert dispatched["status"] == "dispatched" and dispatched["lead_department"] == "XZ-MARKET"
    expect(inbox_card(department, ticket["number"])).to_be_visible()
    for page in (desk, department):
        page.context.close()


def test_the_wall_rate_moves_with_call_events_without_a_reload(browser, server):
    page = open_page(browser, server, "sup")
    wait_live(page)
    mark_no_reload(page)
    tile = page.get_by_test_id("wall-rate-15s")
    seen = {tile.locator("#rate-15m").inner_text()}
    # The wall says which queue an overflowed call counts in (the API's basis).
    assert server.get("sup", "/api/v1/kpi/wall")["basis"] == "answering_queue"
    expect(page.get_by_test_id("wall-rate-basis")).to_have_text("溢出/转接计入接听队列")

    now = datetime.now(UTC)
    abandoned = f"call-{uuid.uuid4().hex[:12]}"
    server.call_events(
        [
            call_event(abandoned, "offered", now - timedelta(seconds=40), queue="general"),
            call_event(abandoned, "abandoned", now - timedelta(seconds=5)),
        ]
    )
    expected = server.get("sup", "/api/v1/kpi/wall")["rolling"]["last_15_minutes"]
    expect(tile.locator("#rate-15m-offered")).to_have_text(str(expected["offered"]))
    expect(tile.locator("#rate-15m")).to_have_text(pct(expected["rate"]))
    seen.add(pct(expected["rate"]))

    server.answered_call(agent="agent2", caller="13900000009", wait_seconds=3)
    expected = server.get("sup", "/api/v1/kpi/wall")["rolling"]["last_15_minutes"]
    expect(tile.locator("#rate-15m-offered")).to_have_text(str(expected["offered"]))
    expect(tile.locator("#rate-15m")).to_have_text(pct(expected["rate"]))
    seen.add(pct(expected["rate"]))
    assert len(seen) >= 2, f"the rate never moved: {seen}"
    expect(tile).to_contain_text("目标 90.0%")

    # A caller left waiting shows on the waiting tile.
    waiting = f"call-{uuid.uuid4().hex[:12]}"
    server.call_events([call_event(waiting, "offered", datetime.now(UTC), queue="general")])
    expect(page.get_by_test_id("wall-waiting").locator("#waiting-count")).not_to_have_text("0")
    expect(page.get_by_test_id("wall-agents")).to_contain_text("通话中")
    # A caller whose end never came is lost after two hours: not waiting, counted apart.
    lost = f"call-{uuid.uuid4().hex[:12]}"
    before = server.get("sup", "/api/v1/kpi/wall")["lost_calls"]
    offered = datetime.now(UTC) - timedelta(hours=3)
    server.call_events([call_event(lost, "offered", offered, queue="general")])
    lost_calls = server.get("sup", "/api/v1/kpi/wall")["lost_calls"]
    tz = ZoneInfo("Asia/Shanghai")  # the site's day, as the wall counts it
    is_today = offered.astimezone(tz).date() == datetime.now(tz).date()
    assert lost_calls == before + (1 if is_today else 0)
    expect(page.get_by_test_id("wall-waiting").locator("#lost-calls")).to_have_text(str(lost_calls))
    assert_not_reloaded(page)

    page.get_by_role("button", name=re.compile("全屏显示")).click()
    expect(page.locator("body")).to_have_class(re.compile(r"\btv\b"))
    page.context.close()


def test_a_dropped_connection_resumes_without_losing_an_event(browser, server):
    page = open_page(browser, server, "gb")
    wait_live(page)
    mark_no_reload(page)
    socket_state = "({connects: __hotlineSocket.connects, received: __hotlineSocket.received})"
    before = page.evaluate(socket_state)

    # Offline: events published now must come from the gateway's replay after reconnecting.
    page.evaluate("window.__hotlineSocket.disconnect()")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    missed = [
        server.create_ticket(
            content=f"拱北情侣南路第{i}家烧烤店油烟扰民",
            address="香洲区拱北情侣南路",
            matter_code="HB-02",
        )["number"]
        for i in range(3)
    ]
    for number in missed:
        expect(inbox_card(page, number)).to_have_count(0)
    assert page.evaluate(socket_state)["received"] == before["received"]

    page.evaluate("window.__hotlineSocket.reconnect()")
    wait_live(page)
    for number in missed:
        expect(inbox_card(page, number).locator(".badge-new")).to_have_text("新")
        expect(page.locator("#announcer")).to_contain_text(f"新工单 {number}")
    assert re.search(r"last_id=\d+", page.evaluate("__hotlineSocket.url"))

    # A drop the client did not ask for: it reconnects by itself (with backoff) and resumes.
    page.evaluate("window.__hotlineSocket.close()")
    late = [
        server.create_ticket(
            content=f"拱北夏湾第{i}个流动摊贩占道", address="香洲区拱北夏湾", matter_code="CG-01"
        )["number"]
        for i in range(2)
    ]
    for number in late:
        expect(inbox_card(page, number).locator(".badge-new")).to_have_text("新")
    after = page.evaluate(socket_state)
    assert after["connects"] == before["connects"] + 2
    assert after["received"] >= before["received"] + 5
    assert_not_reloaded(page)
    page.context.close()


def test_resync_reloads_the_snapshot(browser, server):
    """Told to resync, the page reloads its data (here: a ticket whose event never came)."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    gateway: dict = {}

    def relay(ws):
        upstream = ws.connect_to_server()
        gateway["page"] = ws
        ws.on_message(upstream.send)
        # Pass everything on but events: as if the gateway had dropped them.
        upstream.on_message(lambda m: None if json.loads(m)["type"] == "event" else ws.send(m))

    page.route_web_socket(re.compile(r"/ws\?"), relay)
    page.goto(f"{server.url}/login")
    page.get_by_label("用户名").fill("gb")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    wait_ready(page)
    wait_live(page)
    mark_no_reload(page)
    number = server.create_ticket(
        content="情侣南路大排档油烟直排", address="香洲区拱北情侣南路", matter_code="HB-02"
    )["number"]
    expect(inbox_card(page, number)).to_have_count(0)
    gateway["page"].send(json.dumps({"type": "resync", "reason": "too_far_behind"}))
    expect(inbox_card(page, number)).to_be_visible()
    assert_not_reloaded(page)
    context.close()


def test_user_text_is_shown_as_text_never_run(browser, server):
    caller = "13900000002"
    ticket = server.create_ticket(
        username="agent2",
        content=XSS,
        # Not part of the content: departments see the caller's name masked wherever it occurs.
        caller_name='<img src=x onerror="window.__xss=4">张',
        address="香洲区拱北夏湾路",
        matter_code="SC-01",
        caller_phone=caller,
    )
    # No Content-Security-Policy here: escaping alone must keep the script from running.
    department = open_page(browser, server, "xz", bypass_csp=True)
    card = inbox_card(department, ticket["number"])
    expect(card.locator(".ticket-content")).to_have_text(XSS)
    assert card.locator("img, script").count() == 0
    assert department.evaluate("typeof window.__xss") == "undefined"

    agent = open_page(browser, server, "agent2", bypass_csp=True)
    wait_live(agent)
    server.answered_call(agent="agent2", caller=caller)
    history = agent.get_by_test_id("caller-history")
    expect(history).to_contain_text(XSS)
    assert history.locator("img, script").count() == 0

    # The knowledge base's snippet keeps its <mark> highlighting and nothing else.
    snippet = (
        "<mark>社保卡</mark>挂失&lt;b&gt;请拨12333" + XSS + '<b onclick="window.__xss=3">粗</b>'
    )
    agent.route(
        "**/api/v1/kb/search?*",
        lambda route: route.fulfill(
            json=[
                {
                    "key": "kb-1",
                    "title": XSS,
                    "snippet": snippet,
                    "score": 3.2,
                    "category": "社会保障",
                }
            ]
        ),
    )
    agent.get_by_test_id("kb-search").fill("社保卡挂失")
    results = agent.get_by_test_id("kb-results")
    expect(results.locator("mark")).to_have_text("社保卡")
    expect(results.locator(".kb-snippet")).to_contain_text("挂失<b>请拨12333<script>")
    expect(results.locator(".kb-title")).to_have_text(XSS)
    assert results.locator("img, script, b").count() == 0
    for page in (department, agent):
        assert page.evaluate("typeof window.__xss") == "undefined"
        page.context.close()


def test_knowledge_base_pane_reports_errors_and_degrades_on_404(browser, server):
    page = open_page(browser, server, "agent1")
    flags: list[dict] = []
    search_answers = {"status": 404}

    def search(route):
        if search_answers["status"] == 404:
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "Not Found"}})
        else:
            route.fulfill(
                json=[
                    {
                        "key": "sb-017",
                        "title": "社保卡挂失与补办",
                        "snippet": "<mark>社保卡</mark>遗失可拨打12333挂失",
                        "score": 5.0,
                        "category": "社会保障",
                    }
                ]
            )

    def flag(route):
        flags.append(route.request.post_data_json)
        route.fulfill(status=201, json={"id": 1, "status": "open"})

    page.route("**/api/v1/kb/search?*", search)
    page.route("**/api/v1/kb/articles/*/flags", flag)

    page.keyboard.press("Alt+S")
    kb_search = page.get_by_test_id("kb-search")
    expect(kb_search).to_be_focused()
    kb_search.fill("社保卡")
    expect(page.locator("#kb-status")).to_contain_text("知识库服务暂未开通")
    expect(page.get_by_test_id("kb-results").locator("li")).to_have_count(0)

    search_answers["status"] = 200
    kb_search.press("Enter")
    result = page.get_by_test_id("kb-results").locator("li")
    expect(result).to_have_count(1)
    result.get_by_role("button", name="报告错误").click()
    result.get_by_label("内容过时").check()
    result.get_by_label("说明").fill("挂失电话已改为12345转社保")
    result.get_by_role("button", name="提交报告").click()
    expect(result).to_contain_text("已提交")
    # The search that found the article is the caller's question, for the editor.
    note = "挂失电话已改为12345转社保"
    assert flags == [{"kind": "outdated", "note": note, "question": "社保卡"}]
    page.context.close()


def test_console_keyboard_shortcuts(browser, server):
    page = open_page(browser, server, "agent1")
    expect(page.get_by_role("heading", name="快捷键")).to_be_visible()
    page.keyboard.press("Alt+2")
    expect(page.locator("#state-current")).to_have_text("小休")
    mine = [a for a in server.get("sup", "/api/v1/agents") if a["username"] == "agent1"]
    assert mine[0]["state"] == "break"
    page.keyboard.press("Alt+3")
    expect(page.locator("#state-current")).to_have_text("话后整理")
    page.keyboard.press("Alt+1")
    expect(page.locator("#state-current")).to_have_text("就绪")
    content = page.get_by_label("诉求内容")
    content.fill("电梯困人")
    page.keyboard.press("Alt+N")
    expect(content).to_be_focused()
    expect(content).to_have_value("")
    content.fill("拱北昌盛路电梯困人十分钟了")
    page.get_by_label("事发地址").fill("香洲区拱北昌盛路")
    page.keyboard.press("Alt+P")
    expect(page.get_by_test_id("routing-preview")).to_contain_text("电梯")
    # Ctrl+Enter on an empty form explains instead of submitting.
    page.keyboard.press("Alt+N")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#ticket-error")).to_contain_text("请填写诉求内容")
    page.context.close()


# -- what the system understood (issue 18) ------------------------------------------------------


def test_console_shows_the_understood_matter_as_the_agent_types(browser, server):
    caller = "13900000018"
    server.create_ticket(content="电梯又坏了", address="香洲区拱北昌盛路", matter_code="SC-05",
                         caller_phone=caller)  # fmt: skip
    page = open_page(browser, server, "agent1")
    wait_live(page)
    server.answered_call(agent="agent1", caller=caller)
    expect(page.get_by_test_id("caller-history").locator("li.history-item")).not_to_have_count(0)
    content = page.get_by_label("诉求内容")
    content.press_sequentially("升降机困住人了")

    first = page.locator("#matter-suggestions button").first
    expect(first).to_have_attribute("data-code", "SC-05")
    expect(first.locator(".urgent-marker")).to_have_text(re.compile("紧急"))
    expect(first).to_contain_text(re.compile(r"\d+%"))
    expect(first).to_have_accessible_name(re.compile(r"电梯.*紧急.*置信度 \d+%"))
    expect(page.locator("#suggest-note")).to_be_hidden()

    # The shortcut takes the first suggestion while the agent is still in the content box.
    expect(page.locator(".shortcuts")).to_contain_text("Alt+M")
    content.press("Alt+M")
    expect(page.get_by_label("事项", exact=True)).to_have_value("SC-05")
    expect(first).to_have_attribute("aria-pressed", "true")
    expect(content).to_be_focused()

    page.get_by_label("事发地址").fill("香洲区拱北昌盛路")
    preview = page.get_by_test_id("routing-preview")
    expect(preview.locator(".preview-department")).to_have_text("香洲区市场监督管理局")
    expect(page.locator("#address-hint")).to_be_hidden()
    # Issue 20: where it goes is seen without scrolling, a call and its history on screen.
    expect(preview.locator(".preview-target")).to_be_in_viewport(ratio=1)
    expect(page.locator("#matter-suggestions")).to_be_in_viewport(ratio=1)
    page.context.close()


def test_unsure_text_asks_the_agent_to_choose_and_offers_the_catch_all(browser, server):
    page = open_page(browser, server, "agent1")
    page.get_by_label("诉求内容").press_sequentially("那个东西又坏了")
    expect(page.locator("#suggest-note")).to_be_visible()
    expect(page.locator("#suggest-note")).to_contain_text("不确定：请选择事项")
    catch_all = page.locator('#matter-suggestions button[data-code="QT-01"]')
    expect(catch_all).to_be_visible()
    expect(page.locator("#matter-suggestions button")).not_to_have_count(0)
    catch_all.click()
    expect(page.get_by_label("事项", exact=True)).to_have_value("QT-01")
    # A clear text takes the note away again.
    page.get_by_label("诉求内容").fill("燃气好像漏了，闻到很大的煤气味")
    expect(page.locator("#suggest-note")).to_be_hidden()
    expect(page.locator("#matter-suggestions button").first).to_have_attribute("data-code", "RQ-01")
    page.context.close()


def test_a_request_without_a_place_asks_for_it_and_may_still_go_to_the_desk(browser, server):
    page = open_page(browser, server, "agent1")
    page.get_by_label("诉求内容").fill("升降机困住人了")
    address = page.get_by_label("事发地址")
    address.fill("幸福小区3栋")
    hint = page.locator("#address-hint")
    expect(hint).to_be_visible()
    expect(hint).to_have_text("未识别地点：请询问来电人事发地点")
    expect(address).to_have_attribute("aria-describedby", re.compile("address-hint"))
    expect(page.get_by_test_id("routing-preview")).to_contain_text("派单组")
    # The agent may still submit: the dispatch desk routes it by hand.
    address.press("Control+Enter")
    result = page.locator("#ticket-result")
    expect(result).to_contain_text("派单组")
    expect(hint).to_be_hidden()
    # A known place takes the question away.
    page.get_by_label("诉求内容").fill("升降机困住人了")
    address.fill("幸福小区3栋")
    expect(hint).to_be_visible()
    address.fill("香洲区拱北昌盛路")
    expect(hint).to_be_hidden()
    page.context.close()


# -- accessibility --------------------------------------------------------------------------------

AXE_PAGES = [
    ("login", None, "/login"),
    ("console", "agent1", "/console"),
    ("wall", "sup", "/wall"),
    ("desk", "disp", "/desk"),
    ("inbox", "xz", "/inbox"),
    ("kb", "editor", "/kb"),
    ("admin", "admin", "/admin"),
]


@pytest.mark.parametrize(("name", "username", "path"), AXE_PAGES, ids=[p[0] for p in AXE_PAGES])
def test_axe_finds_no_serious_violations(browser, server, axe_script, name, username, path):
    if name == "inbox":
        server.create_ticket(
            content="商家拒绝退货", address="香洲区拱北夏湾路", matter_code="SC-01"
        )
    elif name == "desk":
        server.create_ticket(content="东澳村工厂偷排", matter_code="HB-01")
    if username is None:
        context = browser.new_context(locale="zh-CN", bypass_csp=True)
        page = context.new_page()
        page.goto(f"{server.url}{path}")
        wait_ready(page)
    else:
        page = open_page(browser, server, username, bypass_csp=True)
    if name == "console":
        # Audit the busy console: a call on screen, suggestions and the routing preview.
        wait_live(page)
        server.create_ticket(content="消费纠纷", matter_code="SC-01", caller_phone="13900000003")
        server.answered_call(agent="agent1", caller="13900000003")
        expect(page.get_by_test_id("caller-history").locator("li.history-item")).not_to_have_count(
            0
        )
        page.get_by_label("诉求内容").fill("商家拒绝退货")
        page.get_by_label("事发地址").fill("香洲区拱北夏湾路")
        page.keyboard.press("Alt+P")
        expect(page.get_by_test_id("routing-preview").locator(".explanation")).to_be_visible()
        expect(page.locator("#matter-suggestions button").first).to_be_visible()
    elif name in ("inbox", "desk"):
        expect(page.locator(".ticket-card").first).to_be_visible()
    elif name == "wall":
        expect(page.locator("#updated-at")).not_to_have_text("—")
    violations = axe_violations(page, axe_script)
    assert violations == [], "\n".join(violations)
    if name == "console":
        # The urgent marker, the low-confidence note and the question for the place too.
        page.get_by_label("事发地址").fill("幸福小区3栋")
        page.get_by_label("诉求内容").fill("升降机困住人了")
        expect(page.locator("#matter-suggestions .urgent-marker").first).to_be_visible()
        expect(page.locator("#address-hint")).to_be_visible()
        violations = axe_violations(page, axe_script)
        assert violations == [], "\n".join(violations)
        page.get_by_label("诉求内容").fill("那个东西又坏了")
        expect(page.locator("#suggest-note")).to_be_visible()
        violations = axe_violations(page, axe_script)
        assert violations == [], "\n".join(violations)
    if name == "inbox":
        # The action dialog is part of the page too.
        page.get_by_role("button", name="退回").first.click()
        expect(page.locator("#action-dialog")).to_be_visible()
        violations = axe_violations(page, axe_script)
        assert violations == [], "\n".join(violations)
    page.context.close()


# -- the API documentation, offline --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "drawn"),
    [("/docs", ".swagger-ui .opblock-tag"), ("/redoc", ".api-content h1")],
)
def test_the_api_documentation_renders_with_no_internet(browser, server, path, drawn):
    """Government intranets have no internet: every request off this machine fails here."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    outside: list[str] = []

    def local_only(route) -> None:
        host = httpx.URL(route.request.url).host
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    try:
        page.goto(f"{server.url}{path}")
        expect(page.locator(drawn).first).to_be_visible(timeout=20_000)
        expect(page.get_by_text("12345 热线 hotline & ticket dispatch").first).to_be_visible()
        assert outside == [], outside
    finally:
        context.close()


# Draws a character on a canvas in the page's own font and compares the pixels with those of a
# code point no font has (U+10FFFD, private use): identical pixels mean the character came out
# as the "missing glyph" box.
_DRAWN_AS_MISSING_GLYPH = """(text) => {
  const font = getComputedStyle(document.body).font;
  const pixels = (t) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const ctx = canvas.getContext("2d");
    ctx.font = font.replace(/\\d+px/, "40px");
    ctx.fillText(t, 4, 48);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
  };
  const missing = pixels("\\u{10FFFD}");
  return Array.from(text).filter((ch) => ch.trim() && pixels(ch) === missing);
}"""


def test_chinese_is_drawn_with_real_glyphs(browser, server):
    """Without a CJK font (fonts-noto-cjk) chromium draws Chinese as empty boxes: every page
    and every screenshot would be unreadable."""
    page = open_page(browser, server, "agent1")
    try:
        heading = page.locator("h1").first.inner_text()
        assert re.search(r"[\u4e00-\u9fff]", heading), heading
        assert page.evaluate(_DRAWN_AS_MISSING_GLYPH, heading + "话务台工单知识库") == []
    finally:
        page.context.close()
