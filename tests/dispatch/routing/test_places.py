"""Places as citizens name them (places.yaml): roads, landmarks, compounds, villages."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dispatch.routing.engine import route
from dispatch.routing.resolver import LocationResolver, ResolvedLocation
from dispatch.routing.ruleset import (
    PLACES_FILE,
    RuleSet,
    RuleSetError,
    default_reference_dir,
    load_reference,
)

TODAY = date(2024, 5, 1)
BEFORE_FENGSHAN = date(2020, 6, 21)

GONGBEI, JIDA, XIANGWAN, QIANSHAN = "440402005", "440402004", "440402006", "440402003"
FENGSHAN, TANGJIAWAN, NANPING, HENGQIN = "440402009", "440402100", "440402102", "440402104"
WANZAI = "440402008"
DOUMEN, BAIJIAO, JINGAN = "440403103", "440403106", "440403107"
SANZAO, NANSHUI, HONGQI = "440404100", "440404101", "440404103"


def _town(location: ResolvedLocation) -> str | None:
    return location.town.code if location.town else None


def _candidates(location: ResolvedLocation) -> tuple[str, ...]:
    return tuple(t.code for t in location.ambiguous)


def _notes(location: ResolvedLocation) -> list[str]:
    return [code for code, _ in location.notes]


# -- the names people say ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "town"),
    [
        ("拱北关", GONGBEI),
        ("拱北口岸", GONGBEI),
        ("珠海站", GONGBEI),
        ("城轨珠海站", GONGBEI),
        ("九洲港", JIDA),
        ("九州港", JIDA),
        ("金湾机场", SANZAO),
        ("珠海机场", SANZAO),
        ("长隆", HENGQIN),
        ("华发新城", NANPING),
        ("粤海东路", GONGBEI),
        ("中大珠海校区", TANGJIAWAN),
        ("吉林大学珠海学院", SANZAO),  # 吉大 is a town too: the longer name wins
    ],
)
def test_landmarks_and_roads_give_their_town(
    resolver: LocationResolver, said: str, town: str
) -> None:
    location = resolver.resolve("", f"我在{said}这边", TODAY)
    assert _town(location) == town
    assert location.source == "text"


@pytest.mark.parametrize(
    "said", ["迎宾南路", "人民东路", "九洲大道", "港珠澳大桥", "海怡湾畔", "中大五院"]
)
def test_a_place_known_only_to_its_district_gives_the_district(
    resolver: LocationResolver, said: str
) -> None:
    location = resolver.resolve(f"{said}100号", "", TODAY)
    assert location.town is None and location.ambiguous == ()
    assert location.area is not None and location.area.code == "XZ"


def test_baseline_without_the_places_file_does_not_know_them() -> None:
    baseline = LocationResolver(load_reference(places_file=False))
    for said in ("长隆", "人民东路", "海怡湾畔"):
        assert not baseline.resolve(said, "", TODAY).found


# -- roads through several towns or districts ----------------------------------------------------


def test_a_road_crossing_areas_does_not_decide_by_itself(resolver: LocationResolver) -> None:
    location = resolver.resolve("情侣路", "", TODAY)
    assert location.town is None and location.area is None
    assert _candidates(location) == (JIDA, GONGBEI, XIANGWAN, TANGJIAWAN)
    assert not location.multi_area  # one road is one spot, not a request about several areas
    assert "location.ambiguous" in _notes(location)


def test_a_road_crossing_districts_is_narrowed_by_a_town(resolver: LocationResolver) -> None:
    alone = resolver.resolve("珠海大道", "", TODAY)
    assert _candidates(alone) == (NANPING, SANZAO, NANSHUI, HONGQI)
    assert alone.area is None and not alone.multi_area
    assert _town(resolver.resolve("南屏镇珠海大道", "", TODAY)) == NANPING
    assert _town(resolver.resolve("三灶珠海大道旁", "", TODAY)) == SANZAO


def test_a_road_crossing_districts_is_narrowed_by_an_area(resolver: LocationResolver) -> None:
    # 南水镇 is the one candidate the 高栏港区 runs
    assert _town(resolver.resolve("高栏港区珠海大道", "", TODAY)) == NANSHUI
    # 金湾区 keeps three candidates, run by two areas: still for a person to decide
    location = resolver.resolve("金湾区珠海大道", "", TODAY)
    assert _candidates(location) == (SANZAO, NANSHUI, HONGQI)
    assert location.area.code == "JW"


def test_a_road_crossing_districts_is_narrowed_by_another_place(
    resolver: LocationResolver,
) -> None:
    assert _town(resolver.resolve("珠海大道金湾机场出口", "", TODAY)) == SANZAO
    # two roads through several towns keep only the towns they share
    location = resolver.resolve("情侣路与情侣北路交界", "", TODAY)
    assert _candidates(location) == (XIANGWAN, TANGJIAWAN)


def test_a_road_between_two_areas_is_for_the_desk(resolver: LocationResolver) -> None:
    location = resolver.resolve("横琴大桥桥头", "", TODAY)  # 湾仔 (香洲区) and 横琴 (横琴新区)
    assert _candidates(location) == (WANZAI, HENGQIN) and location.area is None


# -- a town's name inside a road or compound name ------------------------------------------------


def test_town_name_in_a_road_name_is_part_of_the_road(resolver: LocationResolver) -> None:
    location = resolver.resolve("斗门区井岸镇白蕉路88号", "", TODAY)
    assert _town(location) == JINGAN
    assert location.ambiguous == ()
    assert location.matched == ("斗门区", "井岸镇", "白蕉路")
    # known road alone: the town it lies in, not the town it is named after
    assert _town(resolver.resolve("白蕉路", "", TODAY)) == JINGAN


def test_town_name_in_an_unknown_road_or_compound_yields_to_a_named_town(
    resolver: LocationResolver,
) -> None:
    for address in ("井岸镇白蕉大街3号", "井岸镇白蕉花园5栋"):
        location = resolver.resolve(address, "", TODAY)
        assert _town(location) == JINGAN, address
        assert "location.name_part" in _notes(location)


def test_town_name_in_an_unknown_road_alone_still_counts(resolver: LocationResolver) -> None:
    assert _town(resolver.resolve("白蕉大街3号", "", TODAY)) == BAIJIAO


def test_town_name_in_a_road_name_never_overrides_the_named_area(
    resolver: LocationResolver,
) -> None:
    location = resolver.resolve("金湾区拱北街12号", "", TODAY)
    assert location.town is None and location.area.code == "JW"
    assert "location.conflict" not in _notes(location)


def test_compound_named_after_another_town_goes_by_its_own_town(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(default_reference_dir(), reference)
    path = reference / PLACES_FILE
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    # a made-up compound: named after 前山, built in 南屏
    document["compounds"].append({"name": "前山花园", "town": "南屏"})
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    resolver = LocationResolver(load_reference(reference))
    location = resolver.resolve("前山花园5栋", "", TODAY)
    assert _town(location) == NANPING
    assert location.matched == ("前山花园",)


def test_compound_with_its_town(resolver: LocationResolver) -> None:
    assert _town(resolver.resolve("南屏镇华发新城6期", "", TODAY)) == NANPING


# -- villages and communities --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "town"),
    [("官塘村", TANGJIAWAN), ("上栅", TANGJIAWAN), ("南门村", DOUMEN), ("鱼林村", SANZAO)],
)
def test_villages(resolver: LocationResolver, said: str, town: str) -> None:
    assert _town(resolver.resolve("", f"{said}那边", TODAY)) == town


def test_community_moved_to_fengshan_is_dated(resolver: LocationResolver) -> None:
    assert _town(resolver.resolve("沥溪社区", "", TODAY)) == FENGSHAN
    before = resolver.resolve("沥溪社区", "", BEFORE_FENGSHAN)
    assert _town(before) == QIANSHAN and "location.dated" in _notes(before)


# -- routing -------------------------------------------------------------------------------------


def _route(ruleset: RuleSet, resolver: LocationResolver, matter: str, address: str, text: str):
    return route(
        ruleset,
        resolver,
        matter_code=matter,
        text=text,
        address=address,
        received_on=TODAY,
    )


def test_no_place_goes_to_the_desk(ruleset: RuleSet, resolver: LocationResolver) -> None:
    for matter in ("SC-01", "HB-03"):
        decision = _route(ruleset, resolver, matter, "", "买的衣服有质量问题商家不给退货")
        assert decision.department.code == "DESK"
        assert decision.reason_code == "desk.unresolved"


def test_a_road_of_one_district_is_enough_for_district_matters(
    ruleset: RuleSet, resolver: LocationResolver
) -> None:
    decision = _route(ruleset, resolver, "SC-01", "人民东路", "商家不给退货")
    assert decision.department.code == "XZ-MARKET"


def test_a_road_across_areas_goes_to_the_desk_with_candidates(
    ruleset: RuleSet, resolver: LocationResolver
) -> None:
    decision = _route(ruleset, resolver, "SC-01", "情侣路", "商家不给退货")
    assert decision.department.code == "DESK"
    assert decision.reason_code == "desk.ambiguous"
    assert [t.code for t in decision.candidates] == [JIDA, GONGBEI, XIANGWAN, TANGJIAWAN]


def test_a_landmark_routes_a_town_matter(ruleset: RuleSet, resolver: LocationResolver) -> None:
    decision = _route(ruleset, resolver, "HB-03", "", "长隆附近广场舞噪音扰民")
    assert decision.department.code == f"T-{HENGQIN}"


# -- the file itself -----------------------------------------------------------------------------


def test_aliases_are_places_of_their_own(ruleset: RuleSet) -> None:
    places = {p.name: p for p in ruleset.places}
    assert places["金湾机场"].town == places["珠海金湾机场"].town == SANZAO
    assert places["珠海大道"].ambiguous == (NANPING, HONGQI, SANZAO, NANSHUI)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "某路", "town": "不存在镇"}, "unknown town"),
        ({"name": "某路", "area": "不存在区"}, "unknown area"),
        ({"name": "某路", "town": "拱北", "where": "x"}, "unknown key"),
        ({"name": "拱北口岸", "town": "拱北"}, "listed twice"),
    ],
)
def test_inconsistent_places_file_is_refused(tmp_path: Path, entry: dict, message: str) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(default_reference_dir(), reference)
    path = reference / PLACES_FILE
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["roads"].append(entry)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RuleSetError, match=message):
        load_reference(reference)


# -- the evaluation set (bench/bench_places.py reports the same figures with the baseline) --------


def _bench_module():
    path = Path(__file__).parents[3] / "bench" / "bench_places.py"
    spec = importlib.util.spec_from_file_location("bench_places", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluation_set_meets_the_targets(ruleset: RuleSet, resolver: LocationResolver) -> None:
    bench = _bench_module()
    requests = bench.load_requests(ruleset)
    assert 60 <= len(requests) <= 100
    figures = bench.score(resolver.resolve, requests)
    assert figures["right"] >= 95.0 and figures["desk"] <= 3.0, figures
    without = bench.score(LocationResolver(load_reference(places_file=False)).resolve, requests)
    assert without["right"] < 90.0  # the set does test the places data
