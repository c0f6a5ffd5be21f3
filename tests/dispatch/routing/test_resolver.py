"""Resolving where a request happened from its address and text."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.routing.resolver import LocationResolver, ResolvedLocation
from dispatch.routing.ruleset import RuleSet, load_reference

TODAY = date(2024, 5, 1)
BEFORE_FENGSHAN = date(2020, 6, 21)
FENGSHAN_CREATED = date(2020, 6, 22)

GONGBEI, JIDA, QIANSHAN, FENGSHAN = "440402005", "440402004", "440402003", "440402009"
TANGJIAWAN, HENGQIN, GUISHAN, WANSHAN = "440402100", "440402104", "440402105", "440402106"
JINGAN, QIANWU, PINGSHA = "440403107", "440403105", "440404104"


def _codes(location: ResolvedLocation) -> tuple[str, ...]:
    return tuple(t.code for t in location.ambiguous)


def _note_codes(location: ResolvedLocation) -> list[str]:
    return [code for code, _ in location.notes]


# -- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "matched"),
    [
        ("唐家湾古镇东门", ("唐家湾古镇",)),
        ("唐家湾镇金鼎路", ("唐家湾镇", "金鼎")),
        ("唐家湾大道", ("唐家湾",)),
        ("唐家市场", ("唐家",)),
    ],
)
def test_longest_name_wins(resolver: LocationResolver, address: str, matched: tuple) -> None:
    location = resolver.resolve(address, "", TODAY)
    assert location.matched == matched
    assert location.town is not None and location.town.code == TANGJIAWAN


def test_leftmost_match_wins_over_a_longer_overlapping_one(resolver: LocationResolver) -> None:
    # 贵州万山 starts before 万山区 and takes the characters they share
    location = resolver.resolve("贵州万山区", "", TODAY)
    assert location.matched == ("贵州万山",)
    assert location.outside


def test_town_name_and_area_are_recognised(resolver: LocationResolver) -> None:
    location = resolver.resolve("珠海市香洲区拱北街道夏湾路12号", "", TODAY)
    assert location.town.code == GONGBEI
    assert location.area.code == "XZ"
    assert location.source == "address"
    assert location.matched == ("珠海市", "香洲区", "拱北街道", "夏湾")
    assert not location.ambiguous and not location.outside and not location.multi_area


def test_town_area_is_the_area_that_runs_it(resolver: LocationResolver) -> None:
    assert resolver.resolve("桂山镇", "", TODAY).area.code == "WS"
    assert resolver.resolve("横琴镇", "", TODAY).area.code == "HQ"
    assert resolver.resolve("井岸镇", "", TODAY).area.code == "DM"


def test_place_gives_its_town(resolver: LocationResolver) -> None:
    location = resolver.resolve("拱北口岸出境大厅", "", TODAY)
    assert location.town.code == GONGBEI
    assert ("location.town", "识别为拱北街道（拱北口岸）") in location.notes


# -- outside Zhuhai ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["贵州省铜仁市万山区", "贵州万山区", "湖南湘西凤凰县", "中山市坦洲镇", "河南新乡"],
)
def test_not_zhuhai_names_make_the_location_outside(
    resolver: LocationResolver, address: str
) -> None:
    location = resolver.resolve(address, "", TODAY)
    assert location.outside
    assert location.town is None and location.area is None and location.ambiguous == ()
    assert location.source == "address"
    assert "location.outside" in _note_codes(location)


def test_fenghuang_road_is_in_xiangzhou(resolver: LocationResolver) -> None:
    location = resolver.resolve("凤凰北路88号", "", TODAY)
    assert not location.outside
    assert location.town is None
    assert location.area.code == "XZ"
    assert "location.area_only" in _note_codes(location)


# -- dates ---------------------------------------------------------------------------------------


def test_fengshan_exists_only_from_its_creation(resolver: LocationResolver) -> None:
    before = resolver.resolve("凤山街道", "", BEFORE_FENGSHAN)
    assert before.town is None and before.matched == () and before.source is None
    assert resolver.resolve("凤山", "", BEFORE_FENGSHAN).matched == ()
    after = resolver.resolve("凤山街道", "", FENGSHAN_CREATED)
    assert after.town.code == FENGSHAN


@pytest.mark.parametrize("place", ["梅溪", "界涌", "梅溪牌坊"])
def test_dated_places_move_to_fengshan(resolver: LocationResolver, place: str) -> None:
    before = resolver.resolve(f"{place}社区", "", BEFORE_FENGSHAN)
    assert before.town.code == QIANSHAN
    assert "location.dated" in _note_codes(before)
    after = resolver.resolve(f"{place}社区", "", FENGSHAN_CREATED)
    assert after.town.code == FENGSHAN
    assert "location.dated" not in _note_codes(after)


# -- ambiguity -----------------------------------------------------------------------------------


def test_ambiguous_place_gives_candidates(resolver: LocationResolver) -> None:
    location = resolver.resolve("东澳村3号", "", TODAY)
    assert location.town is None
    assert _codes(location) == (WANSHAN, QIANWU)
    assert location.source == "address"
    assert not location.multi_area
    assert "location.ambiguous" in _note_codes(location)


@pytest.mark.parametrize(
    ("address", "town"),
    [
        ("斗门区东澳村", QIANWU),
        ("万山区东澳村", WANSHAN),
        ("香洲区东澳村", WANSHAN),  # 万山镇 is coded under 香洲区
        ("乾务镇东澳村", QIANWU),
        ("平沙镇大海环", PINGSHA),
        ("高栏港区大海环", PINGSHA),
        ("斗门夏村", QIANWU),
    ],
)
def test_town_or_area_in_the_same_source_narrows_an_ambiguous_place(
    resolver: LocationResolver, address: str, town: str
) -> None:
    location = resolver.resolve(address, "", TODAY)
    assert location.town is not None and location.town.code == town
    assert location.ambiguous == ()
    assert "location.narrowed" in _note_codes(location)


def test_area_containing_no_candidate_does_not_narrow(resolver: LocationResolver) -> None:
    location = resolver.resolve("金湾区东澳村", "", TODAY)
    assert location.town is None
    assert _codes(location) == (WANSHAN, QIANWU)


def test_area_containing_every_candidate_does_not_narrow(resolver: LocationResolver) -> None:
    location = resolver.resolve("香洲区斗门区东澳村", "", TODAY)
    assert location.town is None and _codes(location) == (WANSHAN, QIANWU)


def test_ambiguity_in_the_text_does_not_use_the_address_area(resolver: LocationResolver) -> None:
    # narrowing needs the same source; the address area stands on its own
    location = resolver.resolve("斗门区", "我在东澳村", TODAY)
    assert location.town is None and location.ambiguous == ()
    assert location.area.code == "DM"
    assert "location.text_ignored" in _note_codes(location)


def test_two_towns_in_one_source_are_not_guessed(resolver: LocationResolver) -> None:
    location = resolver.resolve("拱北吉大交界", "", TODAY)
    assert location.town is None
    assert _codes(location) == (JIDA, GONGBEI)
    assert not location.multi_area
    assert location.area is None
    assert "location.multiple_towns" in _note_codes(location)


def test_towns_in_different_areas_span_several_areas(resolver: LocationResolver) -> None:
    location = resolver.resolve("拱北至井岸", "", TODAY)
    assert _codes(location) == (GONGBEI, JINGAN)
    assert location.multi_area


def test_towns_run_by_different_areas_span_several_areas(resolver: LocationResolver) -> None:
    # both coded under 香洲区, but 唐家湾 is run by 高新区
    location = resolver.resolve("拱北和唐家湾", "", TODAY)
    assert location.multi_area and _codes(location) == (GONGBEI, TANGJIAWAN)


def test_named_area_containing_all_candidates_is_kept(resolver: LocationResolver) -> None:
    location = resolver.resolve("香洲区拱北吉大", "", TODAY)
    assert location.area.code == "XZ" and _codes(location) == (JIDA, GONGBEI)


# -- areas and conflicts -------------------------------------------------------------------------


def test_area_alone(resolver: LocationResolver) -> None:
    location = resolver.resolve("横琴", "", TODAY)
    assert location.town is None and location.area.code == "HQ"
    assert resolver.resolve("万山区", "", TODAY).area.code == "WS"


def test_two_areas_span_several_areas(resolver: LocationResolver) -> None:
    location = resolver.resolve("香洲区与斗门区交界处", "", TODAY)
    assert location.multi_area
    assert location.area is None and location.town is None
    assert location.source == "address"
    assert "location.multi_area" in _note_codes(location)


def test_district_with_a_functional_area_inside_keeps_the_functional_area(
    resolver: LocationResolver,
) -> None:
    location = resolver.resolve("珠海市香洲区高新区金唐路", "", TODAY)
    assert not location.multi_area
    assert location.area.code == "GX"
    assert resolver.resolve("金湾区高栏港区", "", TODAY).area.code == "GL"


def test_conflicting_area_is_settled_by_the_town(resolver: LocationResolver) -> None:
    location = resolver.resolve("斗门区拱北街道", "", TODAY)
    assert location.town.code == GONGBEI
    assert not location.multi_area
    assert "location.conflict" in _note_codes(location)


def test_consistent_area_and_town_give_no_conflict(resolver: LocationResolver) -> None:
    for address in ("香洲区唐家湾镇", "高新区唐家湾镇", "万山区桂山镇"):
        location = resolver.resolve(address, "", TODAY)
        assert location.town is not None
        assert "location.conflict" not in _note_codes(location)


# -- address first, then text --------------------------------------------------------------------


def test_text_is_used_when_the_address_has_nothing(resolver: LocationResolver) -> None:
    location = resolver.resolve("某某小区3栋", "事发地点在拱北口岸附近", TODAY)
    assert location.town.code == GONGBEI
    assert location.source == "text"
    assert "location.from_text" in _note_codes(location)


def test_city_only_address_falls_through_to_the_text(resolver: LocationResolver) -> None:
    location = resolver.resolve("珠海市", "在井岸镇", TODAY)
    assert location.town.code == JINGAN and location.source == "text"
    assert location.matched == ("珠海市", "井岸镇")


def test_text_town_inside_the_address_area_is_used(resolver: LocationResolver) -> None:
    location = resolver.resolve("香洲区", "在唐家湾古镇买的", TODAY)
    assert location.town.code == TANGJIAWAN
    assert location.source == "text"


def test_text_town_outside_the_address_area_is_ignored(resolver: LocationResolver) -> None:
    location = resolver.resolve("斗门区", "我住拱北", TODAY)
    assert location.town is None
    assert location.area.code == "DM"
    assert location.source == "address"
    assert "location.text_ignored" in _note_codes(location)


def test_outside_name_in_the_text_does_not_override_the_address_area(
    resolver: LocationResolver,
) -> None:
    location = resolver.resolve("香洲区", "东西是在坦洲买的", TODAY)
    assert not location.outside and location.area.code == "XZ"


def test_outside_name_in_the_text_counts_when_the_address_has_nothing(
    resolver: LocationResolver,
) -> None:
    location = resolver.resolve("", "我在坦洲镇", TODAY)
    assert location.outside and location.source == "text"


def test_text_is_not_read_when_the_address_gives_a_town(resolver: LocationResolver) -> None:
    location = resolver.resolve("井岸镇", "以前住拱北", TODAY)
    assert location.town.code == JINGAN
    assert location.matched == ("井岸镇",)


def test_text_is_not_read_when_the_address_is_ambiguous(resolver: LocationResolver) -> None:
    location = resolver.resolve("东澳村", "乾务镇", TODAY)
    assert location.town is None and _codes(location) == (WANSHAN, QIANWU)


def test_nothing_found(resolver: LocationResolver) -> None:
    location = resolver.resolve("", "", TODAY)
    assert location == ResolvedLocation(notes=(("location.none", "未识别到地点"),))
    assert not location.found
    none_given = resolver.resolve(None, None, TODAY)
    assert none_given.source is None


# -- property: arbitrary input never breaks the resolver -----------------------------------------


def _all_names(ruleset: RuleSet) -> list[str]:
    names = [ruleset.city_name, *ruleset.not_zhuhai]
    names += [n for a in ruleset.areas for n in (a.name, *a.aliases)]
    names += [n for t in ruleset.towns for n in (t.name, *t.aliases)]
    names += [p.name for p in ruleset.places]
    return names


_RULESET = load_reference()
_NAMES = _all_names(_RULESET)
_fragments = st.lists(st.one_of(st.sampled_from(_NAMES), st.text(max_size=6)), max_size=8).map(
    "".join
)


# The root conftest has autouse function-scoped DB fixtures; this pure test does not use them.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=_fragments,
    text=_fragments,
    on=st.dates(min_value=date(2010, 1, 1), max_value=date(2035, 12, 31)),
)
def test_resolver_is_total_and_consistent(address: str, text: str, on: date) -> None:
    resolver = _PROPERTY_RESOLVER
    location = resolver.resolve(address, text, on)
    assert location.source in (None, "address", "text")
    assert (location.source is None) == (not location.found)
    if location.outside:
        assert location.town is None and location.area is None
        assert location.ambiguous == () and not location.multi_area
    if location.town is not None:
        assert location.town.is_valid_on(on)
        assert location.ambiguous == () and not location.multi_area and not location.outside
        assert location.area is not None
        assert _RULESET.area_contains(location.area.code, location.town)
    if location.ambiguous:
        codes = _codes(location)
        assert len(codes) >= 2 and list(codes) == sorted(set(codes))
        assert all(t.is_valid_on(on) for t in location.ambiguous)
    if location.multi_area:
        assert location.town is None
    for name in location.matched:
        assert name in _NAMES and (name in address or name in text)
    for code, message in location.notes:
        assert code.startswith("location.") and isinstance(message, str) and message


_PROPERTY_RESOLVER = LocationResolver(_RULESET)
