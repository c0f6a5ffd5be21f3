"""The matter catalogue (事项目录) as a tree: category -> subcategory -> matter.

The 53 sample matters keep their codes and rules; the matters grown from the public issue
taxonomy (dispatch/reference/issue_taxonomy.csv) each reach a department by the routing rules;
the tree is served to hotline staff; a catalogue seeded before the tree is placed in it.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date

import pytest
import yaml
from sqlalchemy import select, update

from dispatch.routing import models as m
from dispatch.routing import service
from dispatch.routing.classifier import load_corpus
from dispatch.routing.engine import route
from dispatch.routing.resolver import LocationResolver
from dispatch.routing.ruleset import default_reference_dir
from dispatch.routing.suggest import MatterSuggester, ModelSuggester
from hotline.core import db

# The sample catalogue before the tree: code -> (kind, type, level, urgent), written out so
# that a change to any of them is a visible decision, not a side effect of growing the tree.
ORIGINAL = {
    "SC-01": ("投诉", "market", "area", False),
    "SC-02": ("举报", "market", "area", False),
    "SC-03": ("举报", "market", "area", False),
    "SC-04": ("举报", "market", "area", False),
    "SC-05": ("求助", "market", "area", True),
    "SC-06": ("投诉", "market", "area", False),
    "SC-07": ("咨询", "market", "city", False),
    "JT-01": ("投诉", "transport", "city", False),
    "JT-02": ("投诉", "transport", "city", False),
    "JT-03": ("求助", "transport", "area", False),
    "JJ-01": ("咨询", "traffic_police", "city", False),
    "JJ-02": ("投诉", "traffic_police", "city", False),
    "CR-01": ("咨询", "exit_entry", "city", False),
    "GA-01": ("咨询", "police", "area", False),
    "GA-02": ("投诉", "police", "area", False),
    "GA-03": ("咨询", "police", "area", False),
    "ZJ-01": ("投诉", "housing", "area", False),
    "ZJ-02": ("投诉", "housing", "area", False),
    "ZJ-03": ("投诉", "housing", "area", False),
    "ZJ-04": ("咨询", "town", "town", False),
    "HB-01": ("举报", "ecoenv", "area", False),
    "HB-02": ("投诉", "town", "town", False),
    "HB-03": ("投诉", "town", "town", False),
    "CG-01": ("投诉", "urban", "town", False),
    "CG-02": ("举报", "urban", "town", False),
    "CG-03": ("投诉", "urban", "town", False),
    "CG-04": ("求助", "urban", "area", False),
    "CG-05": ("求助", "urban", "area", True),
    "SW-01": ("投诉", "water", "area", False),
    "SW-02": ("求助", "water", "area", True),
    "GS-01": ("求助", "water_supply", "city", False),
    "GD-01": ("求助", "power", "city", False),
    "RQ-01": ("求助", "gas", "city", True),
    "RS-01": ("投诉", "hrss", "area", False),
    "RS-02": ("咨询", "hrss", "city", False),
    "RS-03": ("咨询", "hrss", "city", False),
    "RS-04": ("咨询", "hrss", "city", False),
    "YB-01": ("咨询", "medins", "city", False),
    "GJ-01": ("咨询", "housing_fund", "city", False),
    "WJ-01": ("投诉", "health", "area", False),
    "WJ-02": ("投诉", "health", "city", False),
    "JY-01": ("咨询", "education", "area", False),
    "JY-02": ("投诉", "education", "area", False),
    "MZ-01": ("求助", "town", "town", False),
    "MZ-02": ("咨询", "civil", "area", False),
    "MZ-03": ("咨询", "civil", "area", False),
    "CJ-01": ("咨询", "disabled", "area", False),
    "SS-01": ("咨询", "tax", "city", False),
    "YJ-01": ("求助", "town", "town", True),
    "YJ-02": ("举报", "emergency", "area", False),
    "WH-01": ("投诉", "culture", "city", False),
    "ZR-01": ("咨询", "natres", "city", False),
    "QT-01": ("求助", "area_gov", "area", False),
}

# Real emergencies only (gas leak, people trapped, flooding, collapse risk, wide outages).
URGENT = {
    "SC-05", "CG-05", "SW-02", "RQ-01", "YJ-01",  # the sample's
    "ZJ-09", "ZJ-13", "HB-09", "CG-16", "SW-06", "GS-04", "GD-03", "GD-04", "YJ-04", "YJ-05",
    "YJ-07",
}  # fmt: skip

GONGBEI = "香洲区拱北夏湾"


@pytest.fixture(scope="module")
def catalogue_rows():
    path = default_reference_dir() / "matters.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["matters"]


def test_the_sample_matters_keep_their_codes_and_rules(ruleset):
    kept = {
        code: (
            ruleset.matter(code).kind,
            ruleset.matter(code).current.type,
            ruleset.matter(code).current.level,
            ruleset.matter(code).urgent,
        )
        for code in ORIGINAL
    }
    assert kept == ORIGINAL
    # SC-* kept their dated history: before 2018 the city department handled them.
    assert ruleset.matter("SC-01").rule_on(date(2017, 6, 1)).level == "city"


def test_the_catalogue_holds_hundreds_of_matters_with_suggestions_among_them(ruleset):
    kinds = Counter(matter.kind for matter in ruleset.matters)
    assert len(ruleset.matters) >= 250
    assert set(kinds) == {"咨询", "求助", "投诉", "举报", "建议"}
    assert kinds["建议"] >= 10


def test_every_matter_sits_in_exactly_one_node_of_the_tree(ruleset):
    parents: dict[str, set[str]] = defaultdict(set)
    for matter in ruleset.matters:
        assert matter.category and matter.subcategory, matter.code
        parents[matter.subcategory].add(matter.category)
    # A subcategory under two categories would make one name two nodes.
    assert {sub: cats for sub, cats in parents.items() if len(cats) > 1} == {}
    assert len({matter.code for matter in ruleset.matters}) == len(ruleset.matters)


def test_codes_follow_the_prefix_and_number_scheme(ruleset):
    for matter in ruleset.matters:
        prefix, _, number = matter.code.partition("-")
        assert prefix.isalpha() and prefix.isupper() and len(prefix) == 2, matter.code
        assert len(number) == 2 and number.isdigit(), matter.code


def test_each_taxonomy_leaf_named_is_in_the_shipped_taxonomy(catalogue_rows):
    path = default_reference_dir() / "issue_taxonomy.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        leaves = {"/".join(row) for row in csv.reader(handle)}
    named = {row["code"]: row["taxonomy"] for row in catalogue_rows if "taxonomy" in row}
    assert len(named) >= 140
    assert {code: leaf for code, leaf in named.items() if leaf not in leaves} == {}


def test_every_matter_reaches_a_department_by_the_rules(ruleset):
    """A city matter needs a city department of its type; an area matter falls back to the
    city department, so its type needs one too unless it is the area government's (兜底); a
    town matter goes to the town office whatever its type (CG-01: urban, handled by the town).
    Routed for real from a known town: nothing lands on the desk."""
    resolver = LocationResolver(ruleset)
    for matter in ruleset.matters:
        rule = matter.current
        if rule.type == "area_gov":
            assert rule.level == "area", matter.code  # no city department is 兜底
        elif rule.level != "town":
            assert ruleset.city_department(rule.type) is not None, matter.code
        decision = route(
            ruleset,
            resolver,
            matter_code=matter.code,
            text="",
            address=GONGBEI,
            received_on=date(2026, 12, 1),
        )
        assert decision.department.code != "DESK", (matter.code, decision.reason_code)
        if rule.level == "town":
            assert decision.department.level == "town", matter.code
        else:
            assert rule.type in decision.department.types, matter.code


def test_only_real_emergencies_are_urgent(ruleset):
    assert {matter.code for matter in ruleset.matters if matter.urgent} == URGENT


def test_the_catch_all_stays_the_catch_all_among_other_area_government_matters(ruleset):
    area_gov = [m.code for m in ruleset.matters if m.current.type == "area_gov"]
    assert len(area_gov) > 1 and min(area_gov) != "QT-01"  # code order would pick another
    assert service._catch_all(ruleset) == "QT-01"


def test_matters_the_model_never_saw_are_suggested_by_their_keywords(ruleset):
    class SampleOnlyModel:
        """Knows only the sample matters, like the classifier trained on the shipped corpus."""

        classes = tuple(sorted(ORIGINAL))

        def rank(self, text):
            best = "GD-01" if "停电" in text else "QT-01"
            rest = [code for code in self.classes if code != best]
            return [(best, 0.5)] + [(code, 0.5 / len(rest)) for code in rest]

    seen = {example.matter_code for example in load_corpus()}
    assert seen <= set(ORIGINAL)  # the corpus covers the sample matters only
    suggester = ModelSuggester(
        ruleset,
        SampleOnlyModel(),
        MatterSuggester(ruleset),
        confidence_threshold=0.35,
        urgent_threshold=0.08,
        catch_all="QT-01",
    )
    outage = suggester.understand("我们片区大面积停电三个小时了").suggestions
    # the model's own first three stay first; the unseen urgent matter follows, flagged
    assert outage[0].code == "GD-01" and "GD-03" in [s.code for s in outage[3:]]
    assert {s.code: s.urgent for s in outage}["GD-03"] is True
    advice = [s.code for s in suggester.understand("建议增开公交线路到横琴口岸").suggestions]
    assert "YY-03" in advice and len(advice) <= 5
    # A text with nothing of an unseen matter in it gets the model's list, unchanged.
    plain = suggester.understand("隔壁工地夜间施工打桩")
    assert [s.code for s in plain.suggestions] == [
        code for code, _ in SampleOnlyModel().rank("隔壁工地夜间施工打桩")[:5]
    ]


# -- through the database --------------------------------------------------------------------


@pytest.fixture
def seeded(database):
    with db.transaction() as session:
        service.seed_reference(session)


def test_the_tree_api_nests_every_matter_once_with_counts(client, make_user, seeded):
    headers = make_user("agent1", "agent")
    tree = client.get("/api/v1/routing/matters/tree", headers=headers)
    assert tree.status_code == 200, tree.text
    body = tree.json()
    listed = client.get("/api/v1/routing/matters", headers=headers).json()
    codes = [
        leaf["code"]
        for category in body["categories"]
        for sub in category["subcategories"]
        for leaf in sub["matters"]
    ]
    assert sorted(codes) == sorted(item["code"] for item in listed)
    assert body["count"] == len(codes) == len(listed)
    for category in body["categories"]:
        assert category["count"] == sum(sub["count"] for sub in category["subcategories"])
        for sub in category["subcategories"]:
            assert sub["count"] == len(sub["matters"]) > 0
    by_code = {item["code"]: item for item in listed}
    sample = by_code["SC-01"]
    assert (sample["category"], sample["subcategory"]) == ("市场监管", "消费维权")


def test_the_tree_api_filters_by_kind_and_refuses_an_unknown_kind(client, make_user, seeded):
    headers = make_user("agent1", "agent")
    body = client.get(
        "/api/v1/routing/matters/tree", params={"kind": "建议"}, headers=headers
    ).json()
    leaves = [leaf for c in body["categories"] for s in c["subcategories"] for leaf in s["matters"]]
    assert body["count"] == len(leaves) >= 10
    assert {leaf["kind"] for leaf in leaves} == {"建议"}
    wrong = client.get("/api/v1/routing/matters/tree", params={"kind": "闲聊"}, headers=headers)
    assert wrong.status_code == 422
    assert "error" in wrong.json()


def test_a_catalogue_seeded_before_the_tree_is_placed_in_it_by_the_next_seed(seeded):
    with db.transaction() as session:
        session.execute(update(m.Matter).values(subcategory=""))
        session.execute(
            update(m.Matter).where(m.Matter.code == "SC-02").values(subcategory="食品安全")
        )
    with db.transaction() as session:
        service.seed_reference(session)
    with db.transaction() as session:
        placed = dict(session.execute(select(m.Matter.code, m.Matter.subcategory)).all())
        routing = service.current_routing(session)
    assert placed["SC-01"] == "消费维权"
    assert placed["SC-02"] == "食品安全"  # set by somebody else: kept
    assert all(placed.values())
    assert routing.ruleset.matter("YY-01").subcategory == "城市建设"
    assert service._catch_all(routing.ruleset) == "QT-01"
