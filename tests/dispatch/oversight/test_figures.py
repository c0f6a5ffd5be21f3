"""The oversight figures (效能监察) against a straightforward count of generated tickets.

A few thousand tickets over four months are written with ``synthetic.generate``; the test
then counts, with plain loops over the generated rows, what each figure promises in the
service's docstring, and compares: per department, per area, per source of follow-ups, the
previous period, the trends, the matter × area table and every drill-down.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.oversight import service
from dispatch.oversight.synthetic import History, generate
from hotline.core import db

ZHUHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=ZHUHAI)
NOVEMBER = service.Period(date(2026, 11, 1), date(2026, 11, 30))
OPEN = {"pending_dispatch", "dispatched", "accepted", "replied", "visited"}


@pytest.fixture
def history(reference) -> History:
    with db.transaction() as session:
        return generate(
            session,
            tickets=4000,
            start=datetime(2026, 8, 1, tzinfo=ZHUHAI),
            end=datetime(2026, 12, 1, tzinfo=ZHUHAI),
            now=NOW,
            departments=12,
            batch=700,
        )


def in_period(ticket, p: service.Period, area=None, matter=None) -> bool:
    local = ticket["received_at"].astimezone(ZHUHAI).date()
    if not p.first <= local <= p.last:
        return False
    if area == service.NO_AREA and ticket["area_code"] is not None:
        return False
    if area and area != service.NO_AREA and ticket["area_code"] != area:
        return False
    return not matter or ticket["matter_code"] == matter


def reference_counts(h: History, p: service.Period, area=None, source=None) -> dict:
    """Each figure per department, counted the plain way; the desk is no department."""
    counts: dict[str, Counter] = defaultdict(Counter)
    cohort = {t["id"]: t for t in h.tickets if in_period(t, p, area)}
    for t in cohort.values():
        c = counts[t["lead_department"]]
        c["received"] += 1
        c["accepted"] += t["accepted_on_time"] is not None
        c["accepted_on_time"] += t["accepted_on_time"] is True
        c["finished"] += t["finished_on_time"] is not None
        c["finished_on_time"] += t["finished_on_time"] is True
        c["reopened"] += t["reopen_count"] > 0
        c["overdue_now"] += t["status"] in OPEN and t["due_at"] is not None and t["due_at"] < NOW
    returned = {
        (r["department_code"], r["ticket_id"]) for r in h.returns if r["ticket_id"] in cohort
    }
    for department, _ in returned:
        counts[department]["returned"] += 1
    extended = {
        (e["department_code"], e["ticket_id"])
        for e in h.extensions
        if e["ticket_id"] in cohort and e["status"] == "approved"
    }
    for department, _ in extended:
        counts[department]["extended"] += 1
    for f in h.follow_ups:
        if f["ticket_id"] in cohort and (source is None or f["source"] == source):
            counts[f["department_code"]]["visits"] += 1
            counts[f["department_code"]][f["satisfaction"]] += 1
    counts.pop("DESK", None)
    return {k: {name: c[name] for name in service.COUNTS} for k, c in counts.items()}


def report(p=NOVEMBER, **kwargs) -> dict:
    with db.transaction() as session:
        return service.departments_report(session, the_period=p, now=NOW, **kwargs)


def test_the_generated_history_has_every_kind_of_case(history):
    assert len(history.tickets) == 4000
    statuses = Counter(t["status"] for t in history.tickets)
    assert set(statuses) == OPEN | {"closed"}
    assert {f["source"] for f in history.follow_ups} == {"hotline", "app"}
    assert {e["status"] for e in history.extensions} >= {"approved", "rejected"}
    assert any(t["reopen_count"] for t in history.tickets) and history.returns


@pytest.mark.parametrize("area", [None, "XZ", service.NO_AREA])
def test_department_figures_match_the_reference_count(history, area):
    expected = reference_counts(history, NOVEMBER, area)
    answer = report(area=area)
    assert {r["key"]: r["counts"] for r in answer["rows"]} == expected
    for name in service.COUNTS:
        assert answer["totals"]["counts"][name] == sum(c[name] for c in expected.values())


def test_satisfaction_of_one_source_is_counted_apart(history):
    expected = reference_counts(history, NOVEMBER, source="app")
    answer = report(source="app")
    got = {r["key"]: r["counts"] for r in answer["rows"]}
    assert got == expected
    everything = {r["key"]: r for r in report(with_sources=True)["rows"]}
    for code, r in everything.items():
        by_source = r["satisfaction_by_source"]
        for verdict in ("satisfied", "basically_satisfied", "unsatisfied"):
            assert sum(v[verdict] for v in by_source.values()) == r["counts"][verdict]
        assert by_source.get("app", {}).get("satisfied", 0) == expected[code]["satisfied"]


def expected_score(c: dict, weights: dict) -> float | None:
    parts = {
        "accept_on_time": (c["accepted_on_time"], c["accepted"], False),
        "finish_on_time": (c["finished_on_time"], c["finished"], False),
        "satisfaction": (c["satisfied"] + c["basically_satisfied"], c["visits"], False),
        "returns": (c["returned"], c["received"] + c["returned"], True),
        "reopens": (c["reopened"], c["received"], True),
        "overdue": (c["overdue_now"], c["received"], True),
    }
    total = weighted = 0.0
    for name, (part, whole, inverted) in parts.items():
        if whole and weights[name] > 0:
            rate = part / whole
            total += weights[name]
            weighted += weights[name] * (1 - rate if inverted else rate)
    return round(100 * weighted / total, 2) if total else None


def test_scores_ranks_and_the_change_from_the_previous_period(history):
    answer = report()
    weights = answer["weights"]
    assert weights == {
        "accept_on_time": 15,
        "finish_on_time": 30,
        "satisfaction": 30,
        "returns": 10,
        "reopens": 10,
        "overdue": 5,
    }
    october = reference_counts(history, service.Period(date(2026, 10, 1), date(2026, 10, 31)))
    previous_scores = {k: expected_score(c, weights) for k, c in october.items()}
    previous_ranks = {
        k: 1 + sum(1 for s in previous_scores.values() if s is not None and v is not None and s > v)
        for k, v in previous_scores.items()
    }
    assert answer["previous_period"] == {
        "first": "2026-10-01",
        "last": "2026-10-31",
        "label": "2026年10月",
    }
    scores = [r["score"] for r in answer["rows"]]
    assert scores == sorted(scores, reverse=True)
    for position, r in enumerate(answer["rows"], start=1):
        assert r["score"] == expected_score(r["counts"], weights)
        assert r["rank"] == 1 + sum(1 for s in scores if s > r["score"]) <= position
        assert r["previous"]["score"] == previous_scores[r["key"]]
        assert r["previous"]["rank"] == previous_ranks[r["key"]]
        assert r["change"]["score"] == round(r["score"] - previous_scores[r["key"]], 2)
        assert r["change"]["rank"] == previous_ranks[r["key"]] - r["rank"]
        assert r["change"]["received"] == r["counts"]["received"] - october[r["key"]]["received"]


def test_the_weights_come_from_the_settings(history, settings_env):
    settings_env(oversight_score_weights='{"satisfaction": 1}')
    for r in report()["rows"]:
        c = r["counts"]
        share = (c["satisfied"] + c["basically_satisfied"]) / c["visits"] if c["visits"] else None
        assert r["score"] == (round(100 * share, 2) if share is not None else None)
    settings_env(oversight_score_weights='{"speed": 1}')
    with pytest.raises(Exception, match="HOTLINE_OVERSIGHT_SCORE_WEIGHTS"):
        report()


def test_monthly_and_weekly_trends_match_the_reference(history):
    with db.transaction() as session:
        months = service.trends(session, unit="month", the_period=NOVEMBER, now=NOW)
        weeks = service.trends(session, unit="week", the_period=NOVEMBER, now=NOW)
        one = service.trends(session, unit="month", the_period=NOVEMBER, department="DESK", now=NOW)
    assert len(months["points"]) == 12 and months["points"][-1]["first"] == "2026-11-01"
    assert months["points"][0]["first"] == "2025-12-01"
    for point in months["points"] + weeks["points"]:
        p = service.Period(date.fromisoformat(point["first"]), date.fromisoformat(point["last"]))
        expected = reference_counts(history, p)
        for name in service.COUNTS:
            assert point["counts"][name] == sum(c[name] for c in expected.values()), (p, name)
    assert weeks["points"][-1]["first"] == "2026-11-30"  # the Monday of the week of 30 Nov
    assert len(weeks["points"]) == 13
    november_at_desk = sum(
        1 for t in history.tickets if in_period(t, NOVEMBER) and t["lead_department"] == "DESK"
    )
    assert one["points"][-1]["counts"]["received"] == november_at_desk > 0


def test_the_matter_by_area_table_counts_every_request(history):
    with db.transaction() as session:
        matrix = service.matters_by_area(session, the_period=NOVEMBER)
    expected = Counter(
        (t["matter_code"], t["area_code"] or service.NO_AREA)
        for t in history.tickets
        if in_period(t, NOVEMBER)
    )
    got = Counter()
    for r in matrix["rows"]:
        assert r["total"] == sum(r["cells"].values())
        for area, n in r["cells"].items():
            if n:
                got[(r["key"], area)] = n
    assert got == expected
    assert matrix["total"] == sum(expected.values())
    totals = [r["total"] for r in matrix["rows"]]
    assert totals == sorted(totals, reverse=True)
    assert matrix["columns"][-1] == {"key": service.NO_AREA, "name": "未定位"}


def drilled(figure: str, **filters) -> service.Drill:
    with db.transaction() as session:
        return service.drill(
            session,
            figure=figure,
            filters=service.Filters(NOVEMBER, **filters),
            now=NOW,
            all_departments=filters.pop("all_departments", False),
        )


@pytest.mark.parametrize("figure", list(service.FIGURES))
def test_every_figure_drills_down_to_the_rows_it_counts(history, figure):
    answer = report()
    department = max(answer["rows"], key=lambda r: r["counts"][figure])
    result = drilled(figure, department=department["key"])
    assert result.total == department["counts"][figure] > 0
    assert len(result.items) == result.total
    by_number = {t["number"]: t for t in history.tickets}
    for item in result.items:
        ticket = by_number[item["number"]]
        assert in_period(ticket, NOVEMBER)
        if service.FIGURES[figure].source in (service.TICKETS, service.FOLLOW_UPS):
            owner = item.get("department_code", ticket["lead_department"])
            assert owner == department["key"]
    if figure == "received":
        expected = {
            t["number"]
            for t in history.tickets
            if in_period(t, NOVEMBER) and t["lead_department"] == department["key"]
        }
        assert {i["number"] for i in result.items} == expected


def test_a_matter_by_area_cell_drills_down_to_its_tickets(history):
    with db.transaction() as session:
        matrix = service.matters_by_area(session, the_period=NOVEMBER)
        top = matrix["rows"][0]
        area = max(top["cells"], key=top["cells"].get)
        result = service.drill(
            session,
            figure="received",
            filters=service.Filters(NOVEMBER, area=area, matter=top["key"]),
            all_departments=True,
            now=NOW,
        )
    assert result.total == top["cells"][area] == len(result.items)
    assert {i["matter_code"] for i in result.items} == {top["key"]}


def test_periods():
    assert service.period(month="2026-01").previous() == service.Period(
        date(2025, 12, 1), date(2025, 12, 31)
    )
    quarter = service.Period(date(2026, 7, 1), date(2026, 9, 30))
    assert quarter.previous() == service.Period(date(2026, 4, 1), date(2026, 6, 30))
    ten_days = service.Period(date(2026, 3, 5), date(2026, 3, 14))
    assert ten_days.previous() == service.Period(date(2026, 2, 23), date(2026, 3, 4))
    assert NOVEMBER.start == datetime(2026, 11, 1, tzinfo=ZHUHAI)
    assert NOVEMBER.end == datetime(2026, 12, 1, tzinfo=ZHUHAI)


@pytest.mark.parametrize("figure", ["returned", "extended", "visits", "overdue_now"])
def test_a_figure_of_all_departments_drills_down_to_its_total(history, figure):
    """A ticket two departments returned is in each one's count: the city's drill-down lists
    it once per department, as the totals and the trends count it."""
    total = report()["totals"]["counts"][figure]
    result = drilled(figure)
    assert result.total == total == len(result.items) > 0
