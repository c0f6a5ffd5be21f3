"""The oversight page (效能监察) in chromium: a supervisor opens last month's report, drills into a
department and a figure, exports the workbook; the printable monthly report; who may open it.

Tickets are made through the API with receipt times back in the month before this one and
taken through the lifecycle (the admin acts for every department), so the page shows what
the real lifecycle leaves."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from tests.agents_ui.browsing import Page, axe_violations, expect, open_page, wait_ready

ZHUHAI = ZoneInfo("Asia/Shanghai")
SHOTS = Path("/tmp/shots-reports")
ADDRESSES = [
    "香洲区拱北夏湾",
    "香洲区唐家湾镇金鼎",
    "香洲区吉大景山公园",
    "斗门区白藤街道",
    "金湾区三灶镇",
]
MATTERS = ["SC-01", "SC-05", "GA-01", "JT-01", "CG-01", "HB-01", "ZJ-01", "SW-01"]


def audit(page: Page, axe_script: Path) -> list[str]:
    """axe-core on a page that keeps its strict policy (no bypass_csp: a script or style the
    policy blocks would show here too): the script goes in through the DevTools protocol."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(axe_script.read_text())
    return axe_violations(page, axe_script)


def watch_console(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def last_month() -> tuple[str, datetime]:
    """The month before this one (YYYY-MM), and a moment in it at most 25 days ago (the API
    takes receipt times up to 30 days back), so that the tickets fall into that month."""
    now = datetime.now(ZHUHAI)
    first_of_this = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_before = first_of_this - timedelta(days=1)
    moment = max(now - timedelta(days=25), month_before.replace(day=1, hour=9))
    if moment >= first_of_this:  # early in a month: 25 days back may still be this month
        moment = first_of_this - timedelta(hours=3)
    return month_before.strftime("%Y-%m"), moment


@pytest.fixture(scope="module")
def month(server) -> str:
    name, moment = last_month()
    rng = random.Random(21)
    for i in range(36):
        received = (moment + timedelta(minutes=2 * i)).astimezone(UTC)
        ticket = server.create_ticket(
            "agent1",
            content=f"市民反映问题第{i}号，请处理",
            address=rng.choice(ADDRESSES),
            matter_code=rng.choice(MATTERS),
            caller_phone=f"138{i:08d}",
            received_at=received.isoformat(),
        )
        number = ticket["number"]
        if ticket["status"] != "dispatched":
            continue

        def act(action: str, as_: str = "admin", number: str = number, **body) -> None:
            response = server.http.post(
                f"/api/v1/tickets/{number}/{action}", json=body, headers=server.headers(as_)
            )
            assert response.status_code == 200, response.text

        fate = i % 6
        if fate == 5:
            act("return", reason="不属本部门职责")
            continue
        if fate == 4:
            continue  # never accepted
        act("accept")
        if fate == 3:
            continue  # being handled
        act("reply", reply="已处理并答复市民")
        verdict = ["satisfied", "basically_satisfied", "unsatisfied"][i % 3]
        act("visit", "agent1", satisfaction=verdict)
    return name


def test_a_supervisor_compares_drills_down_and_exports(browser, server, axe_script, month):
    SHOTS.mkdir(exist_ok=True)
    page = open_page(browser, server, "sup", accept_downloads=True)
    page.goto(f"{server.url}/reports?month={month}")
    wait_ready(page)
    api = server.get("sup", "/api/v1/oversight/departments", month=month)
    assert api["rows"], "the generated month has departments"
    table = page.get_by_test_id("department-table")
    expect(table.locator("tbody tr")).to_have_count(len(api["rows"]))
    best = api["rows"][0]
    first_row = table.locator("tbody tr").first
    expect(first_row).to_have_attribute("data-department", best["key"])
    expect(first_row.locator("td.score")).to_have_text(f"{best['score']:.2f}")
    expect(page.get_by_test_id("weights-line")).to_contain_text("按时办结率×30%")
    expect(page.locator("#trend-month-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("matter-area-table")).to_be_visible()
    page.screenshot(path=str(SHOTS / "reports.png"), full_page=True)
    assert audit(page, axe_script) == []

    # Into a department: its trend and the tickets it received.
    first_row.get_by_test_id("department-link").click()
    drill = page.get_by_test_id("drill")
    expect(drill).to_be_visible()
    expect(page.get_by_test_id("drill-total")).to_contain_text(
        f"共 {best['counts']['received']} 件"
    )
    numbers = drill.get_by_test_id("drill-list").locator("li")
    expect(numbers).to_have_count(best["counts"]["received"])
    expected = server.get(
        "sup",
        "/api/v1/oversight/drill",
        month=month,
        figure="received",
        department=best["key"],
    )
    assert numbers.evaluate_all("els => els.map(e => e.dataset.number)") == [
        i["number"] for i in expected["items"]
    ]
    numbers.first.get_by_role("button").click()
    expect(numbers.first.locator(".ticket-facts")).to_contain_text(best["key"])
    page.screenshot(path=str(SHOTS / "reports-drill.png"), full_page=True)
    assert audit(page, axe_script) == []

    # A figure: the visits a department's citizens were satisfied with.
    rated = next(r for r in api["rows"] if r["counts"]["satisfied"])
    page.locator(f'button[data-figure="satisfied"][data-department="{rated["key"]}"]').click()
    expect(page.get_by_test_id("drill-total")).to_contain_text(
        f"共 {rated['counts']['satisfied']} 次回访"
    )

    # The workbook: downloaded as the browser does, holding the page's numbers.
    with page.expect_download() as download_info:
        page.get_by_test_id("export-xlsx").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    sheet = book["部门排名"]
    first = [c.value for c in sheet[3]]
    assert first[1] == best["key"] and first[3] == best["score"]
    assert first[6] == best["counts"]["received"]
    page.context.close()


def test_the_printable_monthly_report(browser, server, axe_script, month):
    page = open_page(browser, server, "sup")
    page.goto(f"{server.url}/reports/print?month={month}")
    wait_ready(page)
    expect(page.locator("#print-title")).to_contain_text("效能监察月报")
    expect(page.locator("#print-departments table tbody tr").first).to_be_visible()
    expect(page.locator(".print-chart canvas")).to_have_count(2)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi: as on paper
    expect(page.locator("#print-button")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "report-print.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    (SHOTS / "report-print.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")
    assert audit(page, axe_script) == []
    page.context.close()


@pytest.mark.parametrize("user", ["xz", "agent1", "disp"])
def test_other_roles_are_refused(browser, server, user):
    page = open_page(browser, server, user)
    page.goto(f"{server.url}/reports")
    expect(page.get_by_role("heading", name="无权访问")).to_be_visible()
    expect(page.get_by_role("link", name="效能监察")).to_have_count(0)
    response = server.http.get("/api/v1/oversight/departments", headers=server.headers(user))
    assert response.status_code == 403
    page.context.close()
