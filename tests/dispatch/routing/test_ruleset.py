"""Loading the reference YAML into a RuleSet, and the RuleSet's consistency checks."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dispatch.routing.ruleset import (
    Department,
    MatterRuleVersion,
    RuleSet,
    RuleSetError,
    UnknownMatterError,
    default_reference_dir,
    load_reference,
    rule_version_label,
    town_office_code,
    town_office_name,
)


@pytest.fixture
def reference_copy(tmp_path: Path) -> Path:
    """A writable copy of the reference directory, for tests that alter the YAML."""
    target = tmp_path / "reference"
    shutil.copytree(default_reference_dir(), target)
    return target


def _edit_yaml(path: Path, edit) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


# -- loading -------------------------------------------------------------------------------------


def test_loads_every_section_of_the_reference(ruleset: RuleSet) -> None:
    assert len(ruleset.areas) == 8
    assert len(ruleset.towns) == 25
    # gazetteer.yaml's own places, then those of places.yaml (roads, landmarks, compounds …)
    assert len(load_reference(places_file=False).places) == 62
    assert len(ruleset.places) > 300
    assert len(ruleset.matters) >= 250  # the 53 sample matters and the tree grown from them
    assert ruleset.city_code == "440400"
    assert ruleset.city_name == "珠海市"
    assert ruleset.not_zhuhai == ("坦洲", "贵州万山", "铜仁", "湘西", "凤凰县", "新乡")
    assert ruleset.department_types["area_gov"].startswith("区政府")


def test_default_directory_is_the_package_reference(ruleset: RuleSet) -> None:
    explicit = load_reference(Path(__file__).parents[3] / "dispatch" / "reference")
    assert explicit.towns == ruleset.towns
    assert explicit.departments == ruleset.departments


def test_areas_and_towns_keep_kind_codes_and_aliases(ruleset: RuleSet) -> None:
    xz = ruleset.area_by_code["XZ"]
    assert (xz.name, xz.kind, xz.adcode, xz.aliases) == ("香洲区", "district", "440402", ("香洲",))
    hq = ruleset.area_by_code["HQ"]
    assert hq.kind == "functional" and hq.adcode is None
    tangjiawan = ruleset.town_by_code["440402100"]
    assert tangjiawan.district == "XZ" and tangjiawan.run_by == "GX"
    assert tangjiawan.aliases == ("唐家湾", "唐家")
    assert tangjiawan.governing_area == "GX"
    assert ruleset.town_by_code["440402005"].governing_area == "XZ"


def test_town_validity_follows_valid_from(ruleset: RuleSet) -> None:
    fengshan = ruleset.town_by_code["440402009"]
    assert fengshan.valid_from == date(2020, 6, 22) and fengshan.valid_until is None
    assert not fengshan.is_valid_on(date(2020, 6, 21))
    assert fengshan.is_valid_on(date(2020, 6, 22))
    assert fengshan not in ruleset.towns_on(date(2019, 1, 1))
    assert fengshan in ruleset.towns_on(date(2021, 1, 1))


def test_dated_place_lies_in_the_old_town_before_the_boundary(ruleset: RuleSet) -> None:
    meixi = next(p for p in ruleset.places if p.name == "梅溪")
    assert meixi.town == "440402009"
    assert meixi.town_before == ((date(2020, 6, 22), "440402003"),)
    assert meixi.town_on(date(2020, 6, 21)) == "440402003"
    assert meixi.town_on(date(2020, 6, 22)) == "440402009"


def test_area_only_and_ambiguous_places(ruleset: RuleSet) -> None:
    places = {p.name: p for p in ruleset.places}
    assert places["凤凰北路"].area == "XZ" and places["凤凰北路"].town is None
    assert places["东澳村"].ambiguous == ("440402106", "440403105")
    assert places["东澳村"].town_on(date(2024, 1, 1)) is None


def test_before_keys_generalise_to_any_date(reference_copy: Path) -> None:
    def add_place(doc: dict) -> None:
        doc["places"].append(
            {
                "name": "测试村",
                "town": "440402009",
                "before_2020_06_22": "440402003",
                "before_2015_01_01": "440402002",
            }
        )

    _edit_yaml(reference_copy / "gazetteer.yaml", add_place)
    place = next(p for p in load_reference(reference_copy).places if p.name == "测试村")
    assert place.town_before == (
        (date(2015, 1, 1), "440402002"),
        (date(2020, 6, 22), "440402003"),
    )
    assert place.town_on(date(2014, 12, 31)) == "440402002"
    assert place.town_on(date(2015, 1, 1)) == "440402003"
    assert place.town_on(date(2020, 6, 22)) == "440402009"


def test_unknown_place_key_is_refused(reference_copy: Path) -> None:
    def add_typo(doc: dict) -> None:
        doc["places"].append({"name": "测试村", "town": "440402009", "befor_2020": "440402003"})

    _edit_yaml(reference_copy / "gazetteer.yaml", add_typo)
    with pytest.raises(RuleSetError, match="befor_2020"):
        load_reference(reference_copy)


# -- matters and rule versions -------------------------------------------------------------------


def test_history_becomes_older_versions(ruleset: RuleSet) -> None:
    sc01 = ruleset.matter("SC-01")
    assert sc01.versions == (
        MatterRuleVersion(1, "city", "market", None, date(2017, 12, 31)),
        MatterRuleVersion(2, "area", "market", date(2018, 1, 1), None),
    )
    assert sc01.rule_on(date(2017, 12, 31)).version == 1
    assert sc01.rule_on(date(2018, 1, 1)).version == 2
    assert sc01.rule_on(date(1990, 1, 1)).level == "city"
    assert sc01.current.level == "area"
    assert sc01.urgent is False
    assert "退货" in sc01.keywords


def test_matter_without_history_has_one_open_version(ruleset: RuleSet) -> None:
    jt01 = ruleset.matter("JT-01")
    assert jt01.versions == (MatterRuleVersion(1, "city", "transport", None, None),)
    assert jt01.rule_on(date(2000, 1, 1)) is jt01.versions[0]
    assert ruleset.matter("SC-05").urgent is True
    assert ruleset.matter("QT-01").keywords == ()


def test_several_history_entries_are_ordered_and_may_change_type(reference_copy: Path) -> None:
    def add_history(doc: dict) -> None:
        matter = next(m for m in doc["matters"] if m["code"] == "JT-01")
        # deliberately out of order: the loader sorts by `until`
        matter["history"] = [
            {"until": "2019-06-30", "level": "area"},
            {"until": "2010-12-31", "level": "city", "type": "bus"},
        ]

    _edit_yaml(reference_copy / "matters.yaml", add_history)
    jt01 = load_reference(reference_copy).matter("JT-01")
    assert jt01.versions == (
        MatterRuleVersion(1, "city", "bus", None, date(2010, 12, 31)),
        MatterRuleVersion(2, "area", "transport", date(2011, 1, 1), date(2019, 6, 30)),
        MatterRuleVersion(3, "city", "transport", date(2019, 7, 1), None),
    )
    assert jt01.rule_on(date(2010, 12, 31)).version == 1
    assert jt01.rule_on(date(2011, 1, 1)).version == 2
    assert jt01.rule_on(date(2019, 7, 1)).version == 3


def test_rule_version_label() -> None:
    assert rule_version_label("SC-01", 2) == "SC-01/v2"


def test_unknown_matter_raises(ruleset: RuleSet) -> None:
    with pytest.raises(UnknownMatterError) as raised:
        ruleset.matter("XX-99")
    assert raised.value.matter_code == "XX-99"
    assert isinstance(raised.value, LookupError)


# -- departments ---------------------------------------------------------------------------------


def test_town_offices_are_generated_for_every_town(ruleset: RuleSet) -> None:
    offices = [d for d in ruleset.departments if d.level == "town"]
    assert len(offices) == len(ruleset.towns)
    gongbei = ruleset.department("T-440402005")
    assert gongbei == Department(
        "T-440402005", "拱北街道办事处", "town", area="XZ", town="440402005", types=("town",)
    )
    hengqin = ruleset.town_office("440402104")
    assert hengqin is not None
    assert (hengqin.code, hengqin.name, hengqin.area) == ("T-440402104", "横琴镇人民政府", "HQ")
    assert town_office_code("440403107") == "T-440403107"


def test_town_office_name_rules() -> None:
    assert town_office_name("拱北街道") == "拱北街道办事处"
    assert town_office_name("井岸镇") == "井岸镇人民政府"
    with pytest.raises(RuleSetError):
        town_office_name("某某乡")


def test_desk_and_lookups(ruleset: RuleSet) -> None:
    assert ruleset.desk == Department("DESK", "珠海12345热线派单组", "desk")
    assert ruleset.department("DESK") is ruleset.desk
    assert ruleset.city_department("market").code == "C-MARKET"
    assert ruleset.city_department("town") is None
    assert ruleset.city_department("area_gov") is None
    assert ruleset.area_department("HQ", "housing").code == "HQ-BUILD"
    assert ruleset.area_department("HQ", "water").code == "HQ-BUILD"
    assert ruleset.area_department("WS", "market") is None
    assert ruleset.area_department("XZ", "area_gov").code == "XZ-GOV"
    xz_market = ruleset.department("XZ-MARKET")
    assert (xz_market.level, xz_market.area, xz_market.types) == ("area", "XZ", ("market",))


def test_area_contains_district_and_running_area(ruleset: RuleSet) -> None:
    guishan = ruleset.town_by_code["440402105"]
    assert ruleset.area_contains("XZ", guishan)
    assert ruleset.area_contains("WS", guishan)
    assert not ruleset.area_contains("DM", guishan)
    assert not ruleset.area_contains("GX", guishan)


# -- consistency checks (a RuleSet built from DB rows gets the same protection) -----------------


def test_duplicate_codes_are_refused(ruleset: RuleSet) -> None:
    with pytest.raises(RuleSetError, match="duplicate town"):
        dataclasses.replace(ruleset, towns=(*ruleset.towns, ruleset.towns[0]))


def test_unknown_district_is_refused(ruleset: RuleSet) -> None:
    broken = dataclasses.replace(ruleset.towns[0], district="ZZ")
    with pytest.raises(RuleSetError, match="district"):
        dataclasses.replace(ruleset, towns=(broken, *ruleset.towns[1:]))


def test_run_by_must_be_a_functional_area(ruleset: RuleSet) -> None:
    broken = dataclasses.replace(ruleset.towns[0], run_by="DM")
    with pytest.raises(RuleSetError, match="run_by"):
        dataclasses.replace(ruleset, towns=(broken, *ruleset.towns[1:]))


def test_place_referring_to_unknown_town_is_refused(ruleset: RuleSet) -> None:
    broken = dataclasses.replace(ruleset.places[0], town="000")
    with pytest.raises(RuleSetError, match="unknown town"):
        dataclasses.replace(ruleset, places=(broken, *ruleset.places[1:]))


def test_exactly_one_desk_is_required(ruleset: RuleSet) -> None:
    without_desk = tuple(d for d in ruleset.departments if d.level != "desk")
    with pytest.raises(RuleSetError, match="desk"):
        dataclasses.replace(ruleset, departments=without_desk)


def test_two_departments_for_one_area_and_type_are_refused(ruleset: RuleSet) -> None:
    extra = Department("XZ-MARKET2", "重复", "area", area="XZ", types=("market",))
    with pytest.raises(RuleSetError, match="claim"):
        dataclasses.replace(ruleset, departments=(*ruleset.departments, extra))


def test_gap_between_rule_versions_is_refused(ruleset: RuleSet) -> None:
    sc01 = ruleset.matter("SC-01")
    old, new = sc01.versions
    gap = dataclasses.replace(
        sc01, versions=(old, dataclasses.replace(new, valid_from=date(2018, 2, 1)))
    )
    matters = tuple(gap if m.code == "SC-01" else m for m in ruleset.matters)
    with pytest.raises(RuleSetError, match="gaps"):
        dataclasses.replace(ruleset, matters=matters)


def test_matter_with_unknown_type_is_refused(ruleset: RuleSet) -> None:
    jt01 = ruleset.matter("JT-01")
    broken = dataclasses.replace(jt01, versions=(dataclasses.replace(jt01.versions[0], type="x"),))
    matters = tuple(broken if m.code == "JT-01" else m for m in ruleset.matters)
    with pytest.raises(RuleSetError, match="unknown type"):
        dataclasses.replace(ruleset, matters=matters)
