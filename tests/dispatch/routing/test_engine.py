"""The six routing steps of matters.yaml, one by one, and the engine's throughput."""

from __future__ import annotations

import dataclasses
import time
from datetime import date

import pytest

from dispatch.routing.engine import RoutingDecision, UnknownMatterError, route
from dispatch.routing.resolver import LocationResolver
from dispatch.routing.ruleset import RuleSet

TODAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def decide(ruleset: RuleSet, resolver: LocationResolver):
    def _decide(
        matter: str,
        address: str = "",
        text: str = "",
        on: date = TODAY,
        **flags: bool,
    ) -> RoutingDecision:
        decision = route(
            ruleset,
            resolver,
            matter_code=matter,
            text=text,
            address=address,
            received_on=on,
            **flags,
        )
        _check_shape(decision)
        return decision

    return _decide


def _check_shape(decision: RoutingDecision) -> None:
    """Invariants every decision keeps, whatever the route."""
    steps = decision.explanation
    assert steps[0].step == 1 and steps[0].code == "matter.rule"
    assert [s.step for s in steps] == sorted(s.step for s in steps)
    assert all(s.message for s in steps)
    if decision.department.code == "DESK":
        assert decision.reason_code is not None and decision.reason_code.startswith("desk.")
        assert steps[-1].step == 6 and steps[-1].code == decision.reason_code
        assert decision.candidates == decision.location.ambiguous
    else:
        assert decision.reason_code is None and decision.candidates == ()
        assert steps[-1].step in (2, 3, 4, 5)


def _codes(decision: RoutingDecision) -> list[str]:
    return [s.code for s in decision.explanation]


# -- step 1: matter and rule version -------------------------------------------------------------


def test_old_rule_version_sends_market_matters_to_the_city(decide) -> None:
    decision = decide("SC-01", "珠海市香洲区拱北街道夏湾路", on=date(2017, 12, 31))
    assert decision.department.code == "C-MARKET"
    assert decision.rule_version == "SC-01/v1"
    assert decision.level == "city"
    assert "level.city" in _codes(decision)


def test_current_rule_version_sends_market_matters_to_the_area(decide) -> None:
    decision = decide("SC-01", "珠海市香洲区拱北街道夏湾路", on=date(2018, 1, 1))
    assert decision.department.code == "XZ-MARKET"
    assert decision.rule_version == "SC-01/v2"
    assert decision.level == "area"
    assert decision.matter.code == "SC-01"


def test_unknown_matter_raises(decide) -> None:
    with pytest.raises(UnknownMatterError) as raised:
        decide("NO-SUCH", "拱北")
    assert raised.value.matter_code == "NO-SUCH"


# -- step 2: escalation --------------------------------------------------------------------------


def test_major_request_goes_to_the_city_department(decide) -> None:
    decision = decide("SC-01", "拱北", major=True)
    assert decision.department.code == "C-MARKET"
    assert decision.escalated
    assert decision.level == "area"  # the rule's level; escalation is recorded separately
    assert "escalation.major" in _codes(decision)


def test_caller_flagged_multi_area_goes_to_the_city_department(decide) -> None:
    decision = decide("ZJ-02", "井岸镇", multi_area=True)
    assert decision.department.code == "C-HOUSING"
    assert "escalation.multi_area" in _codes(decision)


@pytest.mark.parametrize("address", ["拱北至井岸", "香洲区和斗门区交界", "唐家湾与拱北之间"])
def test_location_spanning_areas_escalates(decide, address: str) -> None:
    decision = decide("SC-02", address)
    assert decision.location.multi_area
    assert decision.department.code == "C-MARKET"
    codes = _codes(decision)
    assert "escalation.multi_area" in codes and "location.multi_area" in codes


def test_towns_in_one_area_do_not_escalate(decide) -> None:
    decision = decide("SC-01", "拱北吉大交界")
    assert not decision.escalated
    assert decision.department.code == "DESK" and decision.reason_code == "desk.ambiguous"


@pytest.mark.parametrize("matter", ["HB-03", "QT-01", "MZ-01"])
def test_escalation_without_a_city_department_goes_to_the_desk(decide, matter: str) -> None:
    decision = decide(matter, "拱北", major=True)
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.no_department"
    assert decision.escalated


def test_escalation_without_city_department_keeps_candidates(decide) -> None:
    decision = decide("HB-03", "拱北至井岸")
    assert decision.reason_code == "desk.no_department"
    assert [t.code for t in decision.candidates] == ["440402005", "440403107"]


# -- step 3: level city --------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["拱北", "坦洲镇", "东澳村", "", "斗门区"])
def test_city_level_ignores_the_location(decide, address: str) -> None:
    decision = decide("JT-01", address)
    assert decision.department.code == "C-TRANSPORT"
    assert _codes(decision)[-1] == "level.city"


# -- step 4: level area --------------------------------------------------------------------------


def test_functional_area_running_the_town_takes_it(decide) -> None:
    decision = decide("SC-01", "唐家湾")
    assert decision.department.code == "GX-MARKET"
    assert _codes(decision)[-1] == "area.functional"


def test_hengqin_housing_goes_to_the_hengqin_building_bureau(decide) -> None:
    assert decide("ZJ-01", "横琴").department.code == "HQ-BUILD"
    assert decide("ZJ-01", "横琴镇").department.code == "HQ-BUILD"
    assert decide("ZJ-03", "长隆海洋王国").department.code == "HQ-BUILD"


def test_functional_area_without_the_type_falls_back_to_the_district(decide) -> None:
    decision = decide("SC-01", "桂山镇")
    assert decision.department.code == "XZ-MARKET"
    assert _codes(decision)[-2:] == ["area.functional_lacks", "area.district"]


def test_neither_functional_area_nor_district_falls_back_to_the_city(decide) -> None:
    # 唐家湾: 高新区 and 香洲区 both lack a 交通运输 department
    decision = decide("JT-03", "唐家湾")
    assert decision.department.code == "C-TRANSPORT"
    assert _codes(decision)[-2:] == ["area.functional_lacks", "area.city_fallback"]


def test_town_without_functional_area_goes_to_its_district(decide) -> None:
    decision = decide("JT-03", "井岸镇")
    assert decision.department.code == "DM-TRANSPORT"
    assert _codes(decision)[-1] == "area.district"


def test_area_named_without_a_town_takes_its_own_department(decide) -> None:
    decision = decide("SC-01", "斗门区")
    assert decision.department.code == "DM-MARKET"
    assert _codes(decision)[-1] == "area.district"
    decision = decide("ZJ-01", "万山区")
    assert decision.department.code == "WS-ENFORCE"
    assert _codes(decision)[-1] == "area.functional"


def test_area_named_without_a_town_then_the_city(decide) -> None:
    # 万山区 has no market department; its towns' district is not consulted without a town
    decision = decide("SC-01", "万山区")
    assert decision.department.code == "C-MARKET"
    assert _codes(decision)[-1] == "area.city_fallback"


def test_area_only_place_routes_to_its_area(decide) -> None:
    assert decide("SC-01", "凤凰北路").department.code == "XZ-MARKET"
    assert decide("SC-01", "香洲区高新区金唐路").department.code == "GX-MARKET"


def test_area_level_fallback_matter_goes_to_the_area_government(decide) -> None:
    assert decide("QT-01", "拱北").department.code == "XZ-GOV"
    assert decide("QT-01", "横琴镇").department.code == "HQ-GOV"


def test_missing_city_department_in_area_fallback_goes_to_the_desk(ruleset: RuleSet) -> None:
    without_city_market = dataclasses.replace(
        ruleset, departments=tuple(d for d in ruleset.departments if d.code != "C-MARKET")
    )
    decision = route(
        without_city_market,
        LocationResolver(without_city_market),
        matter_code="SC-01",
        text="",
        address="万山区",
        received_on=TODAY,
    )
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.no_department"


# -- step 5: level town --------------------------------------------------------------------------


def test_town_level_goes_to_the_town_office(decide) -> None:
    decision = decide("HB-03", "拱北口岸")
    assert decision.department.code == "T-440402005"
    assert decision.department.name == "拱北街道办事处"
    assert _codes(decision)[-1] == "town.office"
    assert decide("CG-01", "井岸镇").department.name == "井岸镇人民政府"


def test_town_level_with_only_an_area_goes_to_the_area_government(decide) -> None:
    decision = decide("HB-03", "香洲区")
    assert decision.department.code == "XZ-GOV"
    assert _codes(decision)[-1] == "town.area_gov"
    assert decide("MZ-01", "横琴新区").department.code == "HQ-GOV"
    assert decide("YJ-01", "凤凰北路").department.code == "XZ-GOV"


def test_town_level_conflict_is_settled_by_the_town(decide) -> None:
    decision = decide("HB-03", "斗门区拱北街道")
    assert decision.department.code == "T-440402005"
    assert "location.conflict" in _codes(decision)


def test_town_office_missing_goes_to_the_desk(ruleset: RuleSet) -> None:
    without_office = dataclasses.replace(
        ruleset, departments=tuple(d for d in ruleset.departments if d.code != "T-440402005")
    )
    decision = route(
        without_office,
        LocationResolver(without_office),
        matter_code="HB-03",
        text="",
        address="拱北",
        received_on=TODAY,
    )
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.no_department"


# -- step 6: the desk ----------------------------------------------------------------------------


@pytest.mark.parametrize("matter", ["SC-01", "HB-03"])
def test_ambiguous_place_goes_to_the_desk_with_candidates(decide, matter: str) -> None:
    decision = decide(matter, "东澳村")
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.ambiguous"
    assert [t.code for t in decision.candidates] == ["440402106", "440403105"]


@pytest.mark.parametrize("address", ["中山市坦洲镇", "贵州万山区", "贵州省铜仁市万山区"])
def test_outside_zhuhai_goes_to_the_desk(decide, address: str) -> None:
    decision = decide("SC-01", address)
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.outside"
    assert decision.candidates == ()


def test_nothing_resolvable_goes_to_the_desk(decide) -> None:
    for matter in ("SC-01", "HB-03"):
        decision = decide(matter, "某某小区", "我要反映一个问题")
        assert decision.department.code == "DESK"
        assert decision.reason_code == "desk.unresolved"


# -- dates, names and the text -------------------------------------------------------------------


def test_meixi_moves_from_qianshan_to_fengshan(decide) -> None:
    before = decide("HB-03", "梅溪牌坊", on=date(2020, 6, 21))
    assert before.department.code == "T-440402003"
    assert "location.dated" in _codes(before)
    after = decide("HB-03", "梅溪牌坊", on=date(2020, 6, 22))
    assert after.department.code == "T-440402009"


def test_fenghuang_north_road_is_xiangzhou_not_fenghuang_county(decide) -> None:
    assert decide("SC-01", "凤凰北路").department.code == "XZ-MARKET"
    assert decide("SC-01", "湖南湘西凤凰县").reason_code == "desk.outside"


def test_longest_name_wins_in_routing(decide) -> None:
    decision = decide("SC-01", "唐家湾古镇")
    assert decision.location.matched == ("唐家湾古镇",)
    assert decision.department.code == "GX-MARKET"


def test_location_from_the_text(decide) -> None:
    decision = decide("HB-03", "", "楼下广场舞很吵，在井岸镇")
    assert decision.department.code == "T-440403107"
    assert decision.location.source == "text"
    assert "location.from_text" in _codes(decision)


def test_explanation_names_the_rule_and_department(decide) -> None:
    decision = decide("SC-01", "唐家湾")
    first, last = decision.explanation[0], decision.explanation[-1]
    assert "SC-01/v2" in first.message and "区级" in first.message
    assert decision.department.name in last.message


# -- throughput ----------------------------------------------------------------------------------


def test_at_least_20000_decisions_per_second(ruleset: RuleSet, resolver: LocationResolver) -> None:
    cases = [
        ("SC-01", "珠海市香洲区拱北街道夏湾路12号", "买的手机有质量问题，商家拒绝退货退款"),
        ("HB-03", "", "楼下广场舞每天晚上噪音很大，地点在斗门区井岸镇"),
        ("JT-01", "香洲区", "出租车拒载"),
        ("SC-01", "东澳村", "在村口小卖部买到过期食品"),
        ("ZJ-01", "横琴", "物业费上涨不公示"),
        ("SC-02", "中山市坦洲镇", "食物中毒"),
    ] * 200
    best = 0.0
    for _ in range(3):  # best of three, so a busy machine does not fail the test
        started = time.perf_counter()
        for matter, address, text in cases:
            route(
                ruleset,
                resolver,
                matter_code=matter,
                text=text,
                address=address,
                received_on=TODAY,
            )
        best = max(best, len(cases) / (time.perf_counter() - started))
    assert best >= 20_000, f"{best:,.0f} decisions/s"
