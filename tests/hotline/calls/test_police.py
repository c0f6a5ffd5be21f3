"""12345–110 linkage over HTTP: the editable lists, an agent's handover, 110's transfers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatch.routing import service as routing_service
from dispatch.tickets.models import Ticket
from hotline.calls import police, police_router
from hotline.calls import service as calls_service
from hotline.calls.models import PoliceHandover
from hotline.core import auth, db
from hotline.core.events import events_after
from hotline.core.models import AuditEntry

CTI = {"X-CTI-Token": "development-cti-token"}
NOISE = {
    "police_ref": "110-20261127-0042",
    "content": "楼上装修噪音扰民，晚上十一点还在施工",
    "address": "香洲区拱北夏湾",
    "caller_name": "陈女士",
    "caller_phone": "13800001111",
}


@pytest.fixture
def app(app):
    """The conftest app, with the 110 routes mounted if the composition root has not yet."""
    if not any(getattr(r, "original_router", None) is police_router.router for r in app.routes):
        app.include_router(police_router.router)
    return app


@pytest.fixture
def people(database, make_user, monkeypatch):
    # argon2 costs half a second a user; these tests use tokens, never passwords.
    monkeypatch.setattr(auth, "hash_password", lambda password: f"not-hashed:{len(password)}")
    with db.transaction() as session:
        routing_service.seed_reference(session)
        calls_service.seed_queues(session)
    return {
        "agent": make_user("agent1", "agent"),
        "supervisor": make_user("zhang", "supervisor"),
        "department": make_user("xz", "department", departments=("XZ-MARKET",)),
        "admin": make_user("root", "admin"),
    }


def answered_call(call_id: str = "c-110") -> str:
    start = datetime.now(UTC) - timedelta(minutes=2)
    with db.transaction() as session:
        result = calls_service.ingest(
            session,
            [
                {
                    "event_id": f"{call_id}-o",
                    "type": "offered",
                    "call_id": call_id,
                    "at": start,
                    "queue": "general",
                    "caller": "13900002222",
                },
                {
                    "event_id": f"{call_id}-a",
                    "type": "answered",
                    "call_id": call_id,
                    "at": start + timedelta(seconds=6),
                    "agent": "agent1",
                },
            ],
        )
    assert result.accepted == 2
    return call_id


def names(items: list[dict]) -> list[str]:
    return [item["name"] for item in items]


# -------------------------------------------------------------------------------- the lists


def test_lists_start_from_the_defaults_and_seeding_is_idempotent(client, people):
    before = client.get("/api/v1/police-link/matters", headers=people["agent"])
    assert before.status_code == 200
    assert "交通事故" in names(before.json()["to_110"])
    assert "噪音扰民" in names(before.json()["from_110"])
    with db.transaction() as session:
        assert police.seed_police_matters(session) == "110 linkage matters: 11 added"
        assert police.seed_police_matters(session) == "110 linkage matters: already loaded"
    after = client.get("/api/v1/police-link/matters", headers=people["agent"]).json()
    assert after == before.json()
    assert (
        client.get("/api/v1/police-link/matters", headers=people["department"]).status_code == 403
    )


def test_a_supervisor_replaces_one_direction_audited(client, people):
    new_list = [
        {"name": "交通事故", "keywords": ["车祸", "撞车", "车祸"]},
        {"name": "燃气泄漏爆炸", "keywords": ["爆炸", "煤气味很重"]},
    ]
    response = client.put(
        "/api/v1/police-link/matters",
        json={"direction": "to_110", "matters": new_list},
        headers=people["supervisor"],
    )

    assert response.status_code == 200, response.text
    assert response.json()["to_110"] == [
        {"name": "交通事故", "keywords": ["车祸", "撞车"]},
        {"name": "燃气泄漏爆炸", "keywords": ["爆炸", "煤气味很重"]},
    ]
    assert names(response.json()["from_110"]) == names(
        [{"name": n} for n, _ in police.DEFAULT_MATTERS["from_110"]]
    )
    with db.transaction() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "police_link_matters"))
    assert (entry.actor, entry.action, entry.entity_id) == (
        "zhang",
        "police.matters_replaced",
        "to_110",
    )
    assert "火灾" in names(entry.detail["previous"])
    assert names(entry.detail["matters"]) == ["交通事故", "燃气泄漏爆炸"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"direction": "to_110", "matters": []}, 422, "validation_error"),
        ({"direction": "to_120", "matters": [{"name": "x"}]}, 422, "validation_error"),
        (
            {"direction": "from_110", "matters": [{"name": "噪音"}, {"name": " 噪音 "}]},
            422,
            "police.duplicate_matter",
        ),
        (
            {"direction": "from_110", "matters": [{"name": "噪音", "keywords": ["x" * 33]}]},
            422,
            "police.bad_keywords",
        ),
    ],
)
def test_bad_lists_are_refused_and_change_nothing(client, people, body, status, code):
    response = client.put("/api/v1/police-link/matters", json=body, headers=people["supervisor"])
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    lists = client.get("/api/v1/police-link/matters", headers=people["agent"]).json()
    assert len(lists["from_110"]) == len(police.DEFAULT_MATTERS["from_110"])


def test_only_supervisors_edit_the_lists(client, people):
    response = client.put(
        "/api/v1/police-link/matters",
        json={"direction": "to_110", "matters": [{"name": "火灾"}]},
        headers=people["agent"],
    )
    assert response.status_code == 403


# --------------------------------------------------------------------------- handover


def test_an_agent_hands_a_call_to_110_on_record_and_on_the_bus(client, people):
    call_id = answered_call()
    response = client.post(
        f"/api/v1/calls/{call_id}/handover-110",
        json={"matter": "交通事故", "note": "情侣南路两车相撞，有人受伤"},
        headers=people["agent"],
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["call_id"], body["matter"], body["agent"]) == (call_id, "交通事故", "agent1")
    with db.transaction() as session:
        row = session.scalar(select(PoliceHandover))
        published = events_after(session, 0, topics=["calls.police"])
    assert (row.call_id, row.note) == (call_id, "情侣南路两车相撞，有人受伤")
    assert [(e["topic"], e["type"]) for e in published] == [("calls.police", "call.handover_110")]
    assert published[0]["data"]["id"] == row.id and published[0]["data"]["matter"] == "交通事故"

    again = client.post(
        f"/api/v1/calls/{call_id}/handover-110", json={"matter": "火灾"}, headers=people["agent"]
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "police.already_handed_over"


def test_handover_refusals(client, people):
    call_id = answered_call()
    unknown_matter = client.post(
        f"/api/v1/calls/{call_id}/handover-110",
        json={"matter": "噪音扰民"},
        headers=people["agent"],
    )
    assert unknown_matter.status_code == 422
    assert unknown_matter.json()["error"]["code"] == "police.unknown_matter"
    assert "交通事故" in unknown_matter.json()["error"]["message"]
    unknown_call = client.post(
        "/api/v1/calls/no-such-call/handover-110", json={"matter": "火灾"}, headers=people["agent"]
    )
    assert unknown_call.status_code == 404
    not_an_agent = client.post(
        f"/api/v1/calls/{call_id}/handover-110",
        json={"matter": "火灾"},
        headers=people["supervisor"],
    )
    assert not_an_agent.status_code == 403
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PoliceHandover)) == 0


def test_an_edited_list_decides_what_may_be_handed_over(client, people):
    call_id = answered_call()
    client.put(
        "/api/v1/police-link/matters",
        json={"direction": "to_110", "matters": [{"name": "燃气泄漏爆炸"}]},
        headers=people["supervisor"],
    )
    refused = client.post(
        f"/api/v1/calls/{call_id}/handover-110", json={"matter": "火灾"}, headers=people["agent"]
    )
    assert refused.status_code == 422
    accepted = client.post(
        f"/api/v1/calls/{call_id}/handover-110",
        json={"matter": "燃气泄漏爆炸"},
        headers=people["agent"],
    )
    assert accepted.status_code == 201


# --------------------------------------------------------------------------- from 110


def test_a_transfer_from_110_becomes_a_ticket_of_channel_110_once(client, people):
    response = client.post("/api/v1/police-link/from-110", json=NOISE, headers=CTI)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["police_ref"] == NOISE["police_ref"] and created["repeated"] is False
    assert created["listed_matter"] == "噪音扰民"
    ticket = client.get(f"/api/v1/tickets/{created['number']}", headers=people["admin"]).json()
    assert ticket["channel"] == "110"
    assert ticket["content"] == f"【110转办 {NOISE['police_ref']}】{NOISE['content']}"
    assert ticket["caller_phone"] == NOISE["caller_phone"]
    assert ticket["trail"][0]["actor"] == "110"
    assert ticket["lead_department"] == created["department"]

    retry = client.post("/api/v1/police-link/from-110", json=NOISE, headers=CTI)
    assert retry.status_code == 200
    assert retry.json()["number"] == created["number"] and retry.json()["repeated"] is True
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_transfer_with_a_matter_code_is_routed_by_it(client, people):
    body = {
        **NOISE,
        "police_ref": "110-20261127-0043",
        "content": "商家拒绝退款，与店主发生争执",
        "matter_code": "SC-01",
    }
    response = client.post("/api/v1/police-link/from-110", json=body, headers=CTI)
    assert response.status_code == 201, response.text
    assert response.json()["department"] == "XZ-MARKET"  # 消费纠纷 at 拱北: 香洲区市场监管局
    assert response.json()["listed_matter"] == "消费纠纷"


def test_only_the_110_system_may_transfer(client, people):
    url = "/api/v1/police-link/from-110"
    assert client.post(url, json=NOISE).status_code == 401
    assert client.post(url, json=NOISE, headers={"X-CTI-Token": "wrong"}).status_code == 401
    assert client.post(url, json=NOISE, headers=people["agent"]).status_code == 401
    bad_phone = client.post(url, json={**NOISE, "caller_phone": "call me"}, headers=CTI)
    assert bad_phone.status_code == 422
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
