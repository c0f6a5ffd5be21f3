"""The oversight API: figures the lifecycle leaves, roles, and the XLSX and CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from dispatch.oversight import service
from dispatch.oversight.synthetic import generate
from hotline.core import db

ZHUHAI = ZoneInfo("Asia/Shanghai")
MARKET = "XZ-MARKET"
GX_MARKET = "GX-MARKET"
ROUTES = [
    "/api/v1/oversight/departments",
    "/api/v1/oversight/trends",
    "/api/v1/oversight/matters-by-area",
    "/api/v1/oversight/drill?figure=received",
    "/api/v1/oversight/export.xlsx",
    "/api/v1/oversight/export.csv",
]


def zhuhai(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZHUHAI)


@pytest.fixture
def oversight_clock(clock, monkeypatch):
    monkeypatch.setattr(service, "utcnow", clock._now)
    return clock


def get(desk, path: str, as_: str = "supervisor", **params):
    response = desk.client.get(path, params=params, headers=desk.headers[as_])
    assert response.status_code == 200, response.text
    return response


def test_the_lifecycle_leaves_what_the_oversight_counts(desk, oversight_clock):
    clock = oversight_clock
    clock.set(zhuhai(2026, 11, 2, 9, 0))
    satisfied = desk.create()["number"]
    returned = desk.create()["number"]
    extended = desk.create()["number"]
    clock.set(zhuhai(2026, 11, 2, 10, 0))
    desk.act(satisfied, "accept", "market")
    desk.act(extended, "accept", "market")
    desk.act(returned, "return", "market", reason="属高新区")
    desk.act(returned, "dispatch", "dispatcher", department=GX_MARKET)
    desk.act(extended, "request-extension", "market", reason="需现场核查", working_days=3)
    desk.act(extended, "decide-extension", "supervisor", approve=True)
    clock.set(zhuhai(2026, 11, 3, 15, 0))
    desk.act(satisfied, "reply", "market", reply="已退款")
    desk.act(satisfied, "visit", "agent", satisfaction="satisfied")
    desk.act(extended, "reply", "market", reply="已核查")
    desk.act(extended, "visit", "agent", satisfaction="unsatisfied")  # 重办
    desk.act(extended, "reply", "market", reply="再次核查，已退款")
    desk.act(extended, "visit", "supervisor", satisfaction="basically_satisfied")
    clock.set(zhuhai(2026, 11, 20, 12, 0))  # GX-MARKET never accepted: overdue now

    answer = get(desk, "/api/v1/oversight/departments", month="2026-11", with_sources="true").json()
    rows = {r["key"]: r for r in answer["rows"]}
    assert set(rows) == {MARKET, GX_MARKET}
    market = rows[MARKET]["counts"]
    assert market == {
        **dict.fromkeys(service.COUNTS, 0),
        "received": 2,
        "accepted": 2,
        "accepted_on_time": 2,
        "finished": 2,
        "finished_on_time": 2,
        "returned": 1,
        "extended": 1,
        "reopened": 1,
        "visits": 3,
        "satisfied": 1,
        "basically_satisfied": 1,
        "unsatisfied": 1,
    }
    assert rows[MARKET]["satisfaction_by_source"] == {
        "hotline": {"satisfied": 1, "basically_satisfied": 1, "unsatisfied": 1}
    }
    assert rows[GX_MARKET]["counts"]["received"] == 1
    assert rows[GX_MARKET]["counts"]["overdue_now"] == 1
    assert rows[MARKET]["rank"] == 1 and rows[GX_MARKET]["rank"] == 2
    assert rows[MARKET]["previous"] is None and rows[MARKET]["change"]["score"] is None
    drill = get(
        desk, "/api/v1/oversight/drill", month="2026-11", figure="unsatisfied", department=MARKET
    ).json()
    assert drill["total"] == 1 and drill["label"] == "不满意"
    assert [(i["number"], i["satisfaction"], i["source"]) for i in drill["items"]] == [
        (extended, "unsatisfied", "hotline")
    ]
    returns = get(
        desk, "/api/v1/oversight/drill", month="2026-11", figure="returned", department=MARKET
    ).json()
    assert [i["number"] for i in returns["items"]] == [returned]
    assert "caller_phone" not in returns["items"][0]


@pytest.mark.parametrize("role", ["agent", "dispatcher", "market", "xz_gov"])
def test_only_supervisors_and_admins_see_the_oversight(desk, role):
    for path in ROUTES:
        response = desk.client.get(path, headers=desk.headers[role])
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "auth.forbidden"
    for path in ROUTES:
        assert desk.client.get(path).status_code == 401
        for allowed in ("supervisor", "admin"):
            assert desk.client.get(path, headers=desk.headers[allowed]).status_code == 200, path


def test_refusals(desk):
    url = "/api/v1/oversight/departments"
    for params, status, code in [
        ({"start": "2026-11-30", "end": "2026-11-01"}, 400, "oversight.bad_range"),
        ({"start": "2026-11-01"}, 400, "oversight.bad_range"),
        ({"start": "2025-01-01", "end": "2026-11-01"}, 400, "oversight.bad_range"),
        ({"month": "2026-13"}, 400, "oversight.bad_month"),
        ({"month": "2026-11", "area": "MOON"}, 400, "oversight.unknown_area"),
    ]:
        response = desk.client.get(url, params=params, headers=desk.headers["supervisor"])
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == code
    bad_figure = desk.client.get(
        "/api/v1/oversight/drill",
        params={"figure": "happiness"},
        headers=desk.headers["supervisor"],
    )
    assert bad_figure.status_code == 400
    assert bad_figure.json()["error"]["code"] == "oversight.unknown_figure"
    assert (
        desk.client.get(
            url, params={"month": "11/2026"}, headers=desk.headers["supervisor"]
        ).status_code
        == 422
    )


@pytest.fixture
def generated(desk, monkeypatch):
    now = zhuhai(2026, 11, 20, 12, 0)
    monkeypatch.setattr(service, "utcnow", lambda: now)
    with db.transaction() as session:
        generate(
            session,
            tickets=1500,
            start=zhuhai(2026, 9, 1),
            end=zhuhai(2026, 12, 1),
            now=now,
            departments=10,
        )


def test_the_workbook_holds_the_apis_numbers(desk, generated):
    params = {"month": "2026-11"}
    response = get(desk, "/api/v1/oversight/export.xlsx", **params)
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "attachment" in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [
        "部门排名",
        "趋势（按周）",
        "趋势（按月）",
        "事项×区域",
        "满意度按来源",
        "评分权重",
    ]
    report = get(desk, "/api/v1/oversight/departments", **params).json()
    sheet = book["部门排名"]
    headers = [c.value for c in sheet[2]]
    assert headers[:7] == ["排名", "部门编码", "部门", "综合得分", "得分变化", "排名变化", "受理量"]
    assert sheet["K3"].number_format == "0.0%"
    lines = [
        dict(zip(headers, (c.value for c in row), strict=True))
        for row in sheet.iter_rows(min_row=3)
    ]
    assert len(lines) == len(report["rows"]) > 5
    for line, r in zip(lines, report["rows"], strict=True):
        assert line["部门编码"] == r["key"] and line["排名"] == r["rank"]
        assert line["综合得分"] == r["score"] and line["得分变化"] == r["change"]["score"]
        for header, name in [
            ("受理量", "received"),
            ("按时签收", "accepted_on_time"),
            ("按时办结", "finished_on_time"),
            ("退回", "returned"),
            ("延期", "extended"),
            ("重办", "reopened"),
            ("当前超期", "overdue_now"),
            ("满意", "satisfied"),
            ("基本满意", "basically_satisfied"),
            ("不满意", "unsatisfied"),
        ]:
            assert line[header] == r["counts"][name], header
        assert line["满意率"] == r["rates"]["satisfaction"]
        assert line["按时办结率"] == r["rates"]["finish_on_time"]

    months = get(desk, "/api/v1/oversight/trends", unit="month", **params).json()
    trend = [[c.value for c in row] for row in book["趋势（按月）"].iter_rows(min_row=3)]
    assert [row[3] for row in trend] == [p["counts"]["received"] for p in months["points"]]
    assert [row[-1] for row in trend] == [p["score"] for p in months["points"]]

    matrix = get(desk, "/api/v1/oversight/matters-by-area", **params).json()
    cells = [[c.value for c in row] for row in book["事项×区域"].iter_rows(min_row=3)]
    assert cells[-1][1] == "合计" and cells[-1][-1] == matrix["total"] > 0
    assert [row[0] for row in cells[:-1]] == [r["key"] for r in matrix["rows"]]
    assert [row[-1] for row in cells[:-1]] == [r["total"] for r in matrix["rows"]]
    weights = {row[0].value: row[1].value for row in book["评分权重"].iter_rows(min_row=3)}
    assert weights["按时办结率"] == report["weights"]["finish_on_time"]


def test_a_table_as_csv(desk, generated):
    response = get(desk, "/api/v1/oversight/export.csv", month="2026-11", table="departments")
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    report = get(desk, "/api/v1/oversight/departments", month="2026-11").json()
    assert [(r["部门编码"], int(r["受理量"]), r["满意率"]) for r in rows] == [
        (
            r["key"],
            r["counts"]["received"],
            f"{r['rates']['satisfaction'] * 100:.1f}%"
            if r["rates"]["satisfaction"] is not None
            else "",
        )
        for r in report["rows"]
    ]
    matrix = get(desk, "/api/v1/oversight/export.csv", month="2026-11", table="matters_by_area")
    assert matrix.content.decode("utf-8").splitlines()[0].startswith("\ufeff事项编码,事项,")
