"""What-if replay: past tickets re-routed under draft rules, tallied per department."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from dispatch.routing import service as routing_service
from dispatch.tickets import service as ticket_service
from hotline.cli import app
from hotline.core import db

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def past_tickets(database):
    with db.transaction() as session:
        routing_service.seed_reference(session)
    cases = [
        ("商家拒绝退款", "唐家湾镇金鼎", "SC-01", datetime(2026, 3, 2, 10, tzinfo=TZ)),
        ("商家拒绝退款", "唐家湾镇会同村", "SC-01", datetime(2026, 3, 3, 10, tzinfo=TZ)),
        ("商家拒绝退款", "斗门区井岸镇", "SC-01", datetime(2026, 3, 4, 10, tzinfo=TZ)),
        ("公交不停站", "拱北", "JT-02", datetime(2026, 3, 5, 10, tzinfo=TZ)),
        ("商家拒绝退款", "唐家湾镇", "SC-01", datetime(2025, 12, 1, 10, tzinfo=TZ)),  # too early
    ]
    with db.transaction() as session:
        for content, address, matter, received_at in cases:
            ticket_service.create(
                session,
                actor="agent1",
                channel="phone",
                content=content,
                address=address,
                matter_code=matter,
                received_at=received_at,
            )


def test_replay_reports_per_department_what_would_move(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "matters:\n"
        "  - {code: SC-01, level: city, type: market}\n"
        "  - {code: JT-02, level: area, type: transport}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # JT-02 at area level stays with the city: 香洲区 (拱北) has no transport department.
    assert report["tickets"] == 4 and report["moved"] == 3
    moves = {(m["from"], m["to"]): m["tickets"] for m in report["moves"]}
    assert moves == {("GX-MARKET", "C-MARKET"): 2, ("DM-MARKET", "C-MARKET"): 1}
    assert report["per_department"]["GX-MARKET"] == {"before": 2, "after": 0, "lose": 2, "gain": 0}
    assert report["per_department"]["C-MARKET"]["gain"] == 3

    table = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert "GX-MARKET" in table.output and "GX-MARKET → C-MARKET: 2" in table.output


def test_deactivating_a_department_in_the_draft(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "departments:\n"
        "  - {code: GX-MARKET, name: x, level: area, area: GX, types: [market], active: false}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01", "--json"]
    )
    moves = {(m["from"], m["to"]): m["tickets"] for m in json.loads(result.output)["moves"]}
    assert moves == {("GX-MARKET", "XZ-MARKET"): 2}


def test_bad_drafts_are_clear_errors(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text("matters:\n  - {code: NOPE, level: city, type: market}\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert result.exit_code == 2 and "unknown matter" in result.output
    draft.write_text("tickets: []\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert result.exit_code == 2
    missing = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(tmp_path / "none.yaml"), "--since", "2026-01-01"]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output


# -- the same over HTTP: what the admins' page sends ----------------------------------------------


@pytest.fixture
def admin_api(past_tickets, client, make_user):
    return client, make_user("boss", "admin")


def test_the_replay_api_names_the_tickets_that_would_move(admin_api):
    client, admin = admin_api
    body = {
        "matters": [{"code": "SC-01", "level": "city", "type": "market"}],
        "since": "2026-03-01",
    }
    response = client.post("/api/v1/routing/draft/replay", json=body, headers=admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["tickets"], report["moved"], report["since"]) == (4, 3, "2026-03-01")
    assert {(t["from"], t["to"]) for t in report["moved_tickets"]} == {
        ("GX-MARKET", "C-MARKET"),
        ("DM-MARKET", "C-MARKET"),
    }
    assert len(report["moved_tickets"]) == 3
    assert all(t["number"] and t["matter_code"] == "SC-01" for t in report["moved_tickets"])
    assert report["names"]["C-MARKET"] == "珠海市市场监督管理局"
    # Nothing changed: the rule in force is the old one.
    rules = client.get("/api/v1/routing/matters/SC-01/rules", headers=admin).json()
    assert rules[-1]["level"] == "area"


def test_bad_drafts_over_http_are_clear_errors(admin_api, make_user):
    client, admin = admin_api

    def replay(matters, headers=admin):
        return client.post(
            "/api/v1/routing/draft/replay", json={"matters": matters}, headers=headers
        )

    unknown = replay([{"code": "XX-99", "level": "city", "type": "market"}])
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "replay.unknown_matter"
    twice = replay([{"code": "SC-01", "level": "city", "type": "market"}] * 2)
    assert twice.json()["error"]["code"] == "replay.duplicate_matter"
    level = replay([{"code": "SC-01", "level": "planet", "type": "market"}])
    assert level.status_code == 422 and level.json()["error"]["code"] == "validation_error"
    too_many = replay([{"code": "SC-01", "level": "city", "type": "market"}] * 501)
    assert too_many.status_code == 422
    dispatcher = make_user("disp", "dispatcher")
    refused = replay([], headers=dispatcher)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.forbidden"


def test_publishing_a_draft_opens_new_rule_versions_all_or_none(admin_api):
    client, admin = admin_api
    publish = "/api/v1/routing/draft/publish"
    half_bad = {
        "matters": [
            {"code": "SC-01", "level": "city", "type": "market"},
            {"code": "JT-02", "level": "area", "type": "no-such-type"},
        ],
        "effective_from": "2031-01-01",
    }
    refused = client.post(publish, json=half_bad, headers=admin)
    assert refused.status_code == 400, refused.text
    rules = client.get("/api/v1/routing/matters/SC-01/rules", headers=admin).json()
    assert rules[-1]["level"] == "area"  # the good half was not kept either

    good = {"matters": half_bad["matters"][:1], "effective_from": "2031-01-01", "note": "试点"}
    published = client.post(publish, json=good, headers=admin)
    assert published.status_code == 200, published.text
    assert published.json()[0]["level"] == "city"
    assert published.json()[0]["valid_from"] == "2031-01-01"
    rules = client.get("/api/v1/routing/matters/SC-01/rules", headers=admin).json()
    assert (rules[-1]["level"], rules[-1]["created_by"], rules[-1]["note"]) == (
        "city",
        "boss",
        "试点",
    )
    audit = client.get(
        "/api/v1/admin/audit", params={"action": "routing.rule_changed"}, headers=admin
    ).json()["entries"]
    assert [(e["actor"], e["entity_id"]) for e in audit] == [("boss", "SC-01")]
    empty = client.post(
        publish, json={"matters": [], "effective_from": "2031-02-01"}, headers=admin
    )
    assert empty.status_code == 422
