"""Routing through the database: preview API, admin changes with dated versions, the CLI."""

from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dispatch.routing import service
from hotline.core import db
from hotline.core.models import AuditEntry


@pytest.fixture(autouse=True)
def reference_data(database):
    with db.transaction() as session:
        service.seed_reference(session)


@pytest.fixture
def agent(make_user):
    return make_user("agent1", "agent")


@pytest.fixture
def admin(make_user):
    return make_user("root", "admin")


def preview(client, headers, **body):
    response = client.post("/api/v1/routing/preview", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_preview_answers_the_documented_shape(client, agent):
    result = preview(
        client,
        agent,
        text="在金鼎的商家卖过期食品",
        address="香洲区唐家湾镇",
        matter_code="SC-02",
        received_at="2024-03-05T10:00:00+08:00",
    )
    assert result["matter"] == {"code": "SC-02", "name": "食品安全举报"}
    assert result["level"] == "area"
    assert result["location"]["town"] == {"code": "440402100", "name": "唐家湾镇"}
    assert result["location"]["area"]["code"] == "GX"
    assert result["location"]["outside"] is False and result["location"]["ambiguous"] == []
    assert result["department"]["code"] == "GX-MARKET"
    assert result["rule_version"] == "SC-02/v2"
    assert result["needs_confirmation"] is False
    assert [s["step"] for s in result["explanation"]][0] == 1
    assert all(s["code"] and s["message"] for s in result["explanation"])
    assert result["suggestions"][0]["code"] == "SC-02"


def test_without_a_matter_the_best_suggestion_routes_and_asks_for_confirmation(client, agent):
    result = preview(client, agent, text="小区物业乱收物业费", address="斗门区井岸镇")
    assert result["needs_confirmation"] is True
    assert result["matter"]["code"] == "ZJ-01"
    assert result["department"]["code"] == "DM-HOUSING"


def test_unknown_matter_is_a_422_with_a_stable_code(client, agent):
    response = client.post(
        "/api/v1/routing/preview",
        json={"text": "x", "address": "", "matter_code": "NOPE"},
        headers=agent,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "routing.unknown_matter"


def test_seeded_places_file_routes_from_the_database(client, agent):
    # places.yaml reaches the engine through the places table, candidate towns included
    road = preview(client, agent, text="油烟扰民", address="井岸镇白蕉路8号", matter_code="HB-02")
    assert road["department"]["code"] == "T-440403107"
    across = preview(client, agent, text="商家不退款", address="情侣路", matter_code="SC-01")
    assert across["reason_code"] == "desk.ambiguous"
    assert {c["name"] for c in across["candidates"]} == {
        "拱北街道",
        "吉大街道",
        "香湾街道",
        "唐家湾镇",
    }
    landmark = preview(client, agent, text="在长隆门口买东西被宰", address="", matter_code="SC-01")
    assert landmark["department"]["code"] == "HQ-COMMERCE"


def test_only_hotline_staff_may_preview(client, make_user):
    department = make_user("xz", "department", departments=("XZ-MARKET",))
    response = client.post("/api/v1/routing/preview", json={"text": "x"}, headers=department)
    assert response.status_code == 403
    assert client.post("/api/v1/routing/preview", json={"text": "x"}).status_code == 401


def test_desk_cases_carry_reason_and_candidates(client, agent):
    result = preview(client, agent, text="东澳村有工厂偷排", address="", matter_code="HB-01")
    assert result["department"]["code"] == "DESK"
    assert result["reason_code"] == "desk.ambiguous"
    assert {c["code"] for c in result["candidates"]} == {"440402106", "440403105"}
    outside = preview(client, agent, text="", address="中山市坦洲镇", matter_code="HB-01")
    assert outside["department"]["code"] == "DESK" and outside["location"]["outside"] is True


def test_ambiguous_place_offers_the_rule_chosen_department_per_candidate_town(client, agent):
    # HB-01 is a district-level matter: in 万山镇 (run by the 万山 functional area) and in
    # 乾务镇 (斗门区) the rules choose different departments, neither of them the town office.
    result = preview(client, agent, text="东澳村有工厂偷排", address="", matter_code="HB-01")
    assert result["department"]["code"] == "DESK"
    choices = {c["town"]["name"]: c for c in result["by_town"]}
    assert set(choices) == {"万山镇", "乾务镇"}
    for town, choice in choices.items():
        department = choice["department"]["code"]
        assert department != "DESK" and not department.startswith("T-"), (town, department)
        assert choice["explanation"][0]["code"] == "matter.rule"
        assert any(step["code"] == "location.fixed" for step in choice["explanation"])
    assert choices["万山镇"]["department"] != choices["乾务镇"]["department"]
    # A town-level matter at the same place: each town's own office.
    town_level = preview(client, agent, text="东澳村烧烤油烟", address="", matter_code="HB-02")
    assert {c["department"]["code"] for c in town_level["by_town"]} == {
        "T-440402106",
        "T-440403105",
    }
    placed = preview(client, agent, text="", address="斗门区井岸镇", matter_code="HB-01")
    assert placed["by_town"] == []


def test_the_terminal_numbers_the_reasons_one_two_three(client, agent):
    from dispatch.routing.service import format_decision

    result = preview(client, agent, text="东澳村有工厂偷排", address="", matter_code="HB-01")
    text = format_decision(result)
    reasons = text.split("理由:\n", 1)[1].splitlines()[: len(result["explanation"])]
    assert len(reasons) == len(result["explanation"]) >= 3
    for n, (line, step) in enumerate(zip(reasons, result["explanation"], strict=True), start=1):
        assert line.startswith(f"  {n}. {step['message']}"), line
        assert line.endswith(f"[第{step['step']}步 {step['code']}]"), line
    assert "若在万山镇: 万山区综合执法局 (WS-ENFORCE)" in text


def test_rule_change_applies_from_its_effective_date_and_is_audited(client, agent, admin):
    body = {"text": "公交司机不停站", "address": "斗门区井岸镇", "matter_code": "JT-02"}
    before = preview(client, agent, **body, received_at="2027-01-31T09:00:00+08:00")
    assert before["department"]["code"] == "C-TRANSPORT" and before["rule_version"] == "JT-02/v1"

    change = client.post(
        "/api/v1/routing/matters/JT-02/rules",
        json={
            "level": "area",
            "type": "transport",
            "effective_from": "2027-02-01",
            "note": "公交投诉下放各区",
        },
        headers=admin,
    )
    assert change.status_code == 201, change.text
    assert change.json()["version"] == 2

    still_old = preview(client, agent, **body, received_at="2027-01-31T23:59:00+08:00")
    assert still_old["department"]["code"] == "C-TRANSPORT"
    assert still_old["rule_version"] == "JT-02/v1"
    new = preview(client, agent, **body, received_at="2027-02-01T00:01:00+08:00")
    assert new["department"]["code"] == "DM-TRANSPORT" and new["rule_version"] == "JT-02/v2"

    rules = client.get("/api/v1/routing/matters/JT-02/rules", headers=agent).json()
    assert [(r["version"], r["valid_until"]) for r in rules] == [(1, "2027-01-31"), (2, None)]
    audit = client.get("/api/v1/routing/audit", headers=admin).json()
    assert audit[0]["action"] == "routing.rule_changed" and audit[0]["actor"] == "root"
    assert audit[0]["detail"]["previous"]["level"] == "city"


def test_rule_change_refusals(client, agent, admin):
    url = "/api/v1/routing/matters/SC-01/rules"
    too_early = client.post(
        url, json={"level": "city", "type": "market", "effective_from": "2017-06-01"}, headers=admin
    )
    assert too_early.status_code == 400
    assert too_early.json()["error"]["code"] == "routing.bad_effective_date"
    bad_type = client.post(
        url, json={"level": "city", "type": "magic", "effective_from": "2030-01-01"}, headers=admin
    )
    assert bad_type.json()["error"]["code"] == "routing.unknown_type"
    forbidden = client.post(
        url, json={"level": "city", "type": "market", "effective_from": "2030-01-01"}, headers=agent
    )
    assert forbidden.status_code == 403


def test_deactivating_a_department_reroutes_at_once_and_is_audited(client, agent, admin):
    body = {"text": "商家拒绝退款", "address": "唐家湾镇", "matter_code": "SC-01"}
    assert preview(client, agent, **body)["department"]["code"] == "GX-MARKET"
    response = client.put(
        "/api/v1/routing/departments/GX-MARKET",
        json={
            "name": "珠海市市场监督管理局高新分局",
            "level": "area",
            "area": "GX",
            "types": ["market"],
            "active": False,
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    # The functional area has no market unit any more: the town's district takes it.
    assert preview(client, agent, **body)["department"]["code"] == "XZ-MARKET"
    with db.transaction() as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "routing.department_saved")
        )
        assert entry.entity_id == "GX-MARKET" and entry.detail["before"]["active"] is True


def test_departments_name_their_types_in_chinese(client, agent):
    listed = client.get("/api/v1/routing/departments", headers=agent).json()
    market = next(d for d in listed if d["code"] == "XZ-MARKET")
    assert market["types"] == ["market"]
    assert market["type_names"] == ["市场监督管理 (工商、质监、食品药品)"]


def test_a_change_that_breaks_the_rules_is_refused(client, admin):
    response = client.put(
        "/api/v1/routing/departments/XZ-MARKET2",
        json={"name": "重复", "level": "area", "area": "XZ", "types": ["market"]},
        headers=admin,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "routing.inconsistent"


def test_a_new_place_name_routes_after_the_change(client, agent, admin):
    body = {"text": "饭店油烟扰民", "address": "香洲区海韵城", "matter_code": "HB-02"}
    assert preview(client, agent, **body)["location"]["town"] is None
    response = client.put(
        "/api/v1/routing/places/海韵城", json={"town": "440402006"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert preview(client, agent, **body)["department"]["code"] == "T-440402006"


def test_agents_final_choices_teach_the_suggester(client, agent, small_models):
    # The classifier learns people's choices when it is retrained (nightly or on request), so
    # that a rollback can undo what it learnt.
    from dispatch.routing import training

    text = "楼下麻将馆通宵营业"
    before = [s["code"] for s in preview(client, agent, text=text, address="")["suggestions"]]
    with db.transaction() as session:
        for _ in range(5):
            service.record_choice(session, text=text, matter_code="GA-02")
        training.train_version(session, actor="test")
    after = preview(client, agent, text=text, address="")["suggestions"]
    assert after and after[0]["code"] == "GA-02"
    assert before[:1] != ["GA-02"]


def test_seed_is_idempotent_and_keeps_admin_changes():
    with db.transaction() as session:
        service.change_matter_rule(
            session,
            actor="root",
            matter_code="JT-01",
            level="area",
            type="transport",
            effective_from=date(2030, 1, 1),
        )
    with db.transaction() as session:
        assert "already loaded" in service.seed_reference(session)
        routing = service.current_routing(session)
        assert routing.ruleset.matter("JT-01").current.level == "area"


def test_cli_route_prints_the_decision_and_explanation():
    from hotline.cli import app

    result = CliRunner().invoke(
        app,
        [
            "route",
            "--address",
            "梅溪牌坊",
            "--text",
            "烧烤油烟扰民",
            "--matter",
            "HB-02",
            "--date",
            "2019-05-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "T-440402003" in result.output  # 前山街道 before 凤山街道 existed
    assert "[第5步 town.office]" in result.output  # the step beside the code (README)
    later = CliRunner().invoke(
        app, ["route", "--address", "梅溪牌坊", "--matter", "HB-02", "--date", "2021-01-01"]
    )
    assert "T-440402009" in later.output
    bad = CliRunner().invoke(app, ["route", "--address", "x", "--matter", "NOPE"])
    assert bad.exit_code == 2 and "unknown matter" in bad.output
