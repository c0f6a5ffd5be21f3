"""The citizens' portal (/m) in a real browser: chromium as a 360×640 touch phone against a real
`hotline serve`. A citizen submits with a photo, verifies the phone with the code the
development SMS sender wrote to the outbox, follows the ticket while the department accepts and
replies through the API, rates it unsatisfied and sees it reopened (重办); another citizen's
link and lookup show nothing of it; a knowledge article's link reads with JavaScript off.
Every page: axe-core without serious or critical findings, and a screenshot to look at, in
/tmp/shots-portal (PORTAL_SCREENSHOTS=docs/screenshots refreshes the README's pictures)."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from hotline.core import sms
from tests.agents_ui.browsing import REPO, axe_violations, expect, wait_ready

pytestmark = pytest.mark.slow

PHONE = "13812345678"
OTHER = "13987654321"
CONTENT = "在拱北一家商场买的电饭煲用了两天就坏了，商家拒绝退款，请帮忙协调退款"
SHOTS = REPO / os.environ.get("PORTAL_SCREENSHOTS", "/tmp/shots-portal")
GPS_IFD = 0x8825


def phone_context(browser, **options):
    # bypass_csp: only so that axe-core can be injected; the pages' own scripts obey it.
    options.setdefault("bypass_csp", True)
    return browser.new_context(
        viewport={"width": 360, "height": 640},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        **options,
    )


def code_for(server, phone: str, seen: int) -> str:
    """The newest code the development sender wrote for ``phone``, once there are more than
    ``seen`` messages (the server writes the outbox; waited for, not slept on)."""
    path = server.data_dir / sms.OUTBOX_FILE
    deadline = time.monotonic() + 10
    while True:
        texts = sms.read_outbox(path, phone)
        if len(texts) > seen:
            return re.search(r"验证码是(\d{6})", texts[-1]).group(1)
        assert time.monotonic() < deadline, f"no code texted to {phone}"
        time.sleep(0.05)


def texts_to(server, phone: str) -> int:
    return len(sms.read_outbox(server.data_dir / sms.OUTBOX_FILE, phone))


def photo_file(tmp_path: Path) -> Path:
    image = Image.new("RGB", (800, 600), "#c0552b")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[GPS_IFD] = {1: "N", 2: (22.0, 13.0, 5.0), 3: "E", 4: (113.0, 32.0, 40.0)}
    path = tmp_path / "broken-cooker.jpg"
    image.save(path, "JPEG", exif=exif)
    return path


def check_page(page, axe_script, name: str) -> None:
    assert axe_violations(page, axe_script) == [], name
    # Made for a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the README shows each page from its top
    page.screenshot(path=str(SHOTS / f"portal-{name}.png"))


def verify_phone(page, server, phone: str) -> None:
    seen = texts_to(server, phone)
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("button", name="获取验证码").tap()
    page.get_by_label("短信验证码").fill(code_for(server, phone, seen))


def test_a_citizen_submits_follows_and_rates_from_a_phone(browser, server, axe_script, tmp_path):
    context = phone_context(browser)
    page = context.new_page()
    page.goto(f"{server.url}/m")
    wait_ready(page)
    check_page(page, axe_script, "home")
    # Installable: the manifest is linked and the service worker takes the portal's scope.
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{server.url}/m"

    page.get_by_role("link", name="登记诉求").first.tap()
    page.wait_for_url(re.compile(r"/m/submit$"))
    wait_ready(page)
    page.get_by_label("您要反映什么？").fill(CONTENT)
    # The console's understanding suggests the matter; the citizen confirms one.
    matters = page.get_by_test_id("portal-matters")
    expect(matters.locator("input[type=radio]").first).to_be_visible()
    sc01 = matters.locator('input[value="SC-01"]')
    if sc01.count():
        sc01.check()
    else:  # not among the suggestions: the hotline decides, the desk dispatches
        matters.get_by_label("都不是，由热线判断").check()
    page.get_by_label("区", exact=True).select_option(label="香洲区")
    page.get_by_label("镇（街道）").select_option(label="拱北街道")
    page.get_by_label("详细地址").fill("夏湾路88号")
    page.locator("#photos").set_input_files(str(photo_file(tmp_path)))
    expect(page.locator("#photo-previews img")).to_have_count(1)
    page.get_by_label("称呼").fill("陈先生")
    verify_phone(page, server, PHONE)
    check_page(page, axe_script, "submit")
    page.get_by_role("button", name="提交诉求").tap()

    done = page.get_by_test_id("portal-submitted")
    expect(done).to_be_visible()
    number = page.locator("#ticket-number").inner_text()
    assert re.fullmatch(r"ZH\d{14}", number)
    link = page.locator("#tracking-link").get_attribute("href")
    assert re.fullmatch(r"/m/t/[A-Za-z0-9_-]{32,}", link)
    expect(page.get_by_test_id("portal-tracking-url")).to_have_text(server.url + link)
    check_page(page, axe_script, "submitted")

    # An ordinary ticket of channel app, its photo without the place it was taken.
    ticket = server.get("agent1", f"/api/v1/tickets/{number}")
    assert ticket["channel"] == "app" and ticket["caller_phone"] == PHONE
    if ticket["status"] == "pending_dispatch":  # the citizen left the matter to the hotline
        dispatched = server.http.post(
            f"/api/v1/tickets/{number}/dispatch",
            json={"department": "XZ-MARKET", "matter_code": "SC-01"},
            headers=server.headers("disp"),
        )
        assert dispatched.status_code == 200, dispatched.text
    assert server.get("agent1", f"/api/v1/tickets/{number}")["lead_department"] == "XZ-MARKET"
    submitted = next(e for e in ticket["trail"] if e["action"] == "portal_submitted")
    (photo_id,) = submitted["detail"]["photos"]
    photo = server.http.get(f"/api/v1/portal/photos/{photo_id}", headers=server.headers("xz"))
    assert photo.status_code == 200
    exif = Image.open(io.BytesIO(photo.content)).getexif()
    assert not exif.get_ifd(GPS_IFD) and 0x010F not in exif

    # Following it: the page refreshes itself as the department works.
    page.locator("#tracking-link").tap()
    page.wait_for_url(re.compile(r"/m/t/"))
    wait_ready(page)
    status = page.get_by_test_id("portal-status")
    expect(status).to_have_text("已派单，等待承办单位签收")
    expect(page.get_by_test_id("portal-timeline")).to_contain_text("已派至香洲区市场监督管理局办理")

    def department(action: str, **body) -> None:
        answer = server.http.post(
            f"/api/v1/tickets/{number}/{action}", json=body, headers=server.headers("xz")
        )
        assert answer.status_code == 200, answer.text

    department("accept")
    expect(status).to_have_text("承办单位办理中", timeout=20_000)
    department("reply", reply="经协调，商家同意退款，请于三日内到店办理。")
    expect(page.get_by_test_id("portal-reply")).to_have_text(
        "经协调，商家同意退款，请于三日内到店办理。", timeout=20_000
    )
    rate = page.get_by_test_id("portal-rate-form")
    expect(rate).to_be_visible()
    check_page(page, axe_script, "ticket")

    rate.get_by_label("不满意").check()
    rate.get_by_label("未解决").check()
    rate.get_by_role("button", name="提交评价").tap()
    expect(status).to_have_text("承办单位办理中")
    expect(page.get_by_test_id("portal-timeline")).to_contain_text("您的评价：不满意")
    expect(page.get_by_test_id("portal-timeline")).to_contain_text("重办")
    expect(rate).to_be_hidden()

    ticket = server.get("agent1", f"/api/v1/tickets/{number}")
    assert ticket["status"] == "accepted" and ticket["reopen_count"] == 1
    assert ticket["satisfaction"] == "unsatisfied" and ticket["visit_source"] == "app"
    context.close()

    # Another citizen: neither the number with their own phone nor a guessed link shows it.
    other = phone_context(browser).new_page()
    other.goto(f"{server.url}/m/track")
    wait_ready(other)
    other.get_by_label("工单号").fill(number)
    verify_phone(other, server, OTHER)
    check_page(other, axe_script, "track")
    other.get_by_role("button", name="查询").tap()
    expect(other.get_by_role("alert")).to_contain_text("没有查到")
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    other.goto(server.url + forged)
    wait_ready(other)
    expect(other.locator("#ticket-error")).to_contain_text("链接无效")
    body = other.locator("body").inner_text()
    assert number not in body and "电饭煲" not in body and "陈" not in body
    other.context.close()


def test_a_knowledge_article_link_reads_without_javascript(browser, server, axe_script):
    context = phone_context(browser)
    page = context.new_page()
    page.goto(f"{server.url}/m/kb?q=社保卡")
    wait_ready(page)
    results = page.get_by_test_id("portal-kb-results")
    expect(results.locator("li").first).to_be_visible()
    check_page(page, axe_script, "kb")
    href = results.locator("a").first.get_attribute("href")
    title = results.locator("a").first.inner_text()
    page.goto(server.url + href)
    wait_ready(page)
    check_page(page, axe_script, "kb-article")
    context.close()

    # A shared link, opened where scripts do not run: the whole article is in the HTML.
    no_js = phone_context(browser, java_script_enabled=False)
    page = no_js.new_page()
    page.goto(server.url + href)
    article = page.get_by_test_id("portal-kb-article")
    expect(article.get_by_role("heading", level=1)).to_have_text(title)
    assert len(article.inner_text()) > 100
    assert page.locator("body").get_attribute("data-ready") is None, "no script ran"
    page.goto(f"{server.url}/m/kb?q=社保卡")  # the search form works without scripts too
    expect(page.get_by_test_id("portal-kb-results").locator("li").first).to_be_visible()
    no_js.close()


def test_the_wall_shows_requests_by_channel(browser, server):
    from tests.agents_ui.browsing import open_page

    server.create_ticket(
        content="楼下餐馆油烟太大", address="香洲区拱北", caller_phone="13700000001"
    )
    phone = "13700000002"
    seen = texts_to(server, phone)
    assert server.http.post("/api/v1/portal/codes", json={"phone": phone}).status_code == 202
    verified = server.http.post(
        "/api/v1/portal/codes/verify", json={"phone": phone, "code": code_for(server, phone, seen)}
    ).json()
    created = server.http.post(
        "/api/v1/portal/requests",
        data={"content": "小区门口路灯坏了一个星期", "area_code": "XZ", "address": "拱北"},
        headers={"X-Phone-Token": verified["phone_token"]},
    )
    assert created.status_code == 201, created.text
    wall = open_page(browser, server, "sup")
    channels = wall.get_by_test_id("wall-channels")
    expect(channels.locator('li[data-channel="app"]')).to_contain_text("件")
    expect(channels.locator('li[data-channel="phone"]')).to_contain_text("件")
    expect(wall.locator("#channel-share")).not_to_have_text("—")
    channels.screenshot(path="/tmp/shots-portal/wall-channels.png")  # for a person to look at
    wall.context.close()
