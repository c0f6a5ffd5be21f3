"""Hot spots through the API: found as tickets arrive, merged (并单), answered once for all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatch.hotspots import service as hotspot_service
from hotline.core import db
from hotline.core.models import AuditEntry

# Five callers about one shop on 昌盛路 in 拱北 (SC-01 → 香洲区市场监督管理局), each in
# their own words.
SHOP = [
    "昌盛路那家手机店卖翻新机，买了三天就坏了不给退",
    "拱北昌盛路的手机店拒绝退货，说是人为损坏",
    "在昌盛路手机店买的手机是翻新的，要求退款",
    "昌盛路有个手机店专门卖翻新机骗人，老板还不给退",
    "来电人称在昌盛路手机店买到翻新手机，商家拒绝退换",
]


def file_incident(desk) -> list[str]:
    hotspot_service.forget_cache()
    return [
        desk.create(content=text, address="香洲区拱北昌盛路", caller_phone=f"1380000100{i}")[
            "number"
        ]
        for i, text in enumerate(SHOP)
    ]


def hotspots(desk, as_="dispatcher", expect=200, **params):
    response = desk.client.get("/api/v1/hotspots", params=params, headers=desk.headers[as_])
    assert response.status_code == expect, response.text
    return response.json()


def post(desk, path, as_="dispatcher", expect=200, **body):
    response = desk.client.post(path, json=body, headers=desk.headers[as_])
    assert response.status_code == expect, response.text
    return response.json()


def test_an_incident_is_listed_with_its_tickets_and_a_chinese_summary(desk):
    numbers = file_incident(desk)
    [spot] = hotspots(desk)
    assert spot["kind"] == "incident"
    assert spot["ticket_numbers"] == numbers
    assert (spot["matter_code"], spot["town_code"]) == ("SC-01", "440402005")
    assert spot["place_name"] == "拱北街道"
    assert "拱北" in spot["summary"] and "5件" in spot["summary"]
    assert hotspots(desk, as_="agent") == [spot]
    assert hotspots(desk, since="2099-01-01T00:00:00+08:00") == []
    assert hotspots(desk, as_="market", expect=403)["error"]["code"] == "auth.forbidden"


def test_merge_answers_every_caller_through_the_parent(desk):
    numbers = file_incident(desk)
    [spot] = hotspots(desk)
    post(desk, f"/api/v1/hotspots/{spot['id']}/merge", as_="agent", expect=403)
    merged = post(desk, f"/api/v1/hotspots/{spot['id']}/merge")
    parent, children = numbers[0], numbers[1:]
    assert (merged["status"], merged["parent"]) == ("merged", parent)
    # The department sees the parent once, not five tickets.
    inbox = desk.numbers("market")
    assert parent in inbox and not set(children) & set(inbox)
    assert desk.get(children[0])["parent"] == parent
    refused = desk.attempt(children[0], "accept", "market")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "ticket.merged")
    seen = desk.get(parent, as_="market")
    assert seen["children"] == children
    assert "13800001000" not in str(seen)  # the caller's phone stays masked

    desk.act(parent, "accept", "market")
    desk.act(parent, "reply", "market", reply="已责令该手机店为购买翻新机的市民退款。")
    for number in children:
        child = desk.get(number)
        assert child["status"] == "replied"
        assert child["reply"] == "已责令该手机店为购买翻新机的市民退款。"
        assert [a["action"] for a in child["trail"]][-2:] == ["merge", "follow_parent"]
    with db.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "hotspot")
        ).all()
    assert actions == ["hotspot.merged"]


def test_unmerge_puts_each_ticket_back_in_the_inbox(desk):
    numbers = file_incident(desk)
    [spot] = hotspots(desk)
    post(desk, f"/api/v1/hotspots/{spot['id']}/merge", parent=numbers[2])
    assert desk.numbers("market").count(numbers[2]) == 1
    post(desk, f"/api/v1/hotspots/{spot['id']}/merge", expect=409)
    back = post(desk, f"/api/v1/hotspots/{spot['id']}/unmerge")
    assert back["status"] == "open" and back["parent"] is None
    assert set(numbers) <= set(desk.numbers("market"))
    assert all(desk.get(n)["parent"] is None for n in numbers)
    assert desk.get(numbers[0])["due_at"] is not None
    dismissed = post(desk, f"/api/v1/hotspots/{spot['id']}/dismiss", note="同一商家，已另案处理")
    assert dismissed["status"] == "dismissed"
    assert hotspots(desk) == []
    with db.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "hotspot").order_by(AuditEntry.id)
        ).all()
    assert actions == ["hotspot.merged", "hotspot.unmerged", "hotspot.dismissed"]


def test_a_merged_child_is_never_marked_overdue_for_its_own_deadline(desk):
    from dispatch.tickets import jobs
    from dispatch.tickets.models import Ticket

    numbers = file_incident(desk)
    [spot] = hotspots(desk)
    post(desk, f"/api/v1/hotspots/{spot['id']}/merge")
    with db.transaction() as session:
        child = session.scalar(select(Ticket).where(Ticket.number == numbers[1]))
        child_id, deadline = child.id, child.accept_deadline.isoformat()
    # The department is held to the parent's deadline; the child's check finds no clock.
    assert jobs.deadline_passed(child_id, "accept", deadline) == "not running"
    assert desk.get(numbers[1])["overdue"] is False


# Six different water problems across 拱北 within the hour: no incident, but a surge of the
# matter in the town against a baseline of a few a month.
WATER = [
    ("桂花南路小区停水两天了也没有通知", "香洲区拱北桂花南路"),
    ("莲花路自来水有一股漂白粉味道", "香洲区拱北莲花路"),
    ("侨光路这边水压很低，楼上根本没水", "香洲区拱北侨光路"),
    ("联安路新房子要开通自来水怎么申请", "香洲区拱北联安路"),
    ("粤海东路的水费怎么突然贵了这么多", "香洲区拱北粤海东路"),
    ("港昌路水表走得特别快，怀疑有问题", "香洲区拱北港昌路"),
]


def test_a_surge_of_one_matter_in_a_town_against_its_own_baseline(desk):
    from datetime import timedelta

    from dispatch.hotspots.service import expected_count
    from hotline.core.db import utcnow

    hotspot_service.forget_cache()
    now = utcnow()
    # History: two such requests in 拱北 in the last four weeks.
    for days in (3, 10):
        desk.create(
            content="水管漏水",
            address="香洲区拱北",
            matter_code="GS-01",
            received_at=now - timedelta(days=days),
        )
    hotspot_service.forget_cache()
    with db.transaction() as session:
        usual = expected_count(session, "GS-01", ("town", "440402005"), now)
    assert 0 < usual < 0.01  # 2 in 28 days, spread over the day
    numbers = [
        desk.create(content=text, address=address, matter_code="GS-01")["number"]
        for text, address in WATER
    ]
    [spot] = hotspots(desk)
    assert spot["kind"] == "surge"
    assert spot["ticket_numbers"] == numbers[: len(spot["ticket_numbers"])]
    assert len(spot["ticket_numbers"]) == 6  # opened at the 5th, the 6th joined
    assert "突增" in spot["summary"] and spot["expected"] == pytest.approx(usual, abs=1e-4)
