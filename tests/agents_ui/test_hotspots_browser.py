"""Hot spots in the browser: a dispatcher sees an incident appear live on the desk, merges
it (并单), the department answers the parent once and every caller's ticket gets the reply;
the wall shows the hot spot too. axe-core: no serious or critical violation."""

from __future__ import annotations

import os
from pathlib import Path

from tests.agents_ui.browsing import (
    assert_not_reloaded,
    axe_violations,
    expect,
    mark_no_reload,
    open_page,
    wait_live,
)

SHOTS = Path(os.environ.get("HOTLINE_SHOTS_DIR", "/tmp/shots-hotspots"))
# Five callers about one phone shop on 昌盛路 (SC-01 at 拱北 → 香洲区市场监督管理局, user xz).
SHOP = [
    "昌盛路那家手机店卖翻新机，买了三天就坏了不给退",
    "拱北昌盛路的手机店拒绝退货，说是人为损坏",
    "在昌盛路手机店买的手机是翻新的，要求退款",
    "昌盛路有个手机店专门卖翻新机骗人，老板还不给退",
    "来电人称在昌盛路手机店买到翻新手机，商家拒绝退换",
]
REPLY = "已责令昌盛路该手机店为购买翻新机的市民办理退款。"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def post(server, username: str, path: str, body: dict | None = None) -> dict:
    response = server.http.post(path, json=body or {}, headers=server.headers(username))
    assert response.status_code == 200, response.text
    return response.json()


def test_dispatcher_merges_an_incident_and_the_reply_reaches_every_caller(
    server, browser, axe_script
):
    desk = open_page(browser, server, "disp", bypass_csp=True)
    wall = open_page(browser, server, "sup", bypass_csp=True)
    for page in (desk, wall):
        wait_live(page)
        mark_no_reload(page)
    numbers = [
        server.create_ticket(
            content=text,
            address="香洲区拱北昌盛路",
            matter_code="SC-01",
            caller_phone=f"1390000200{i}",
            caller_name="市民",
        )["number"]
        for i, text in enumerate(SHOP)
    ]
    panel = desk.get_by_test_id("desk-hotspots")
    card = panel.locator("li[data-kind=incident]")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("聚集事件")
    expect(card).to_contain_text(numbers[4])
    assert_not_reloaded(desk)
    assert axe_violations(desk, axe_script) == []
    shot(desk, "desk-hotspot")
    line = wall.get_by_test_id("wall-hotspots").locator("li[data-kind=incident]")
    expect(line).to_contain_text("5 件")  # live on the wall too
    assert_not_reloaded(wall)
    assert axe_violations(wall, axe_script) == []
    shot(wall, "wall-hotspot")

    card.get_by_role("button", name="并单").click()
    expect(card).to_contain_text(f"已并单到 {numbers[0]}")
    expect(card.get_by_role("button", name="取消并单")).to_be_visible()
    assert axe_violations(desk, axe_script) == []
    shot(desk, "desk-merged")

    inbox = [t["number"] for t in server.get("xz", "/api/v1/tickets")]
    assert numbers[0] in inbox and not set(numbers[1:]) & set(inbox)
    post(server, "xz", f"/api/v1/tickets/{numbers[0]}/accept")
    post(server, "xz", f"/api/v1/tickets/{numbers[0]}/reply", {"reply": REPLY})
    for number in numbers:
        ticket = server.get("disp", f"/api/v1/tickets/{number}")
        assert (ticket["status"], ticket["reply"]) == ("replied", REPLY)

    wall_panel = wall.get_by_test_id("wall-hotspots")
    expect(wall_panel).to_contain_text("暂无热点诉求")  # merged: no longer open
    assert_not_reloaded(wall)
    desk.context.close()
    wall.context.close()
