"""The detector's decisions, pure: no database. Requests are written by hand, in the varied
words callers use, not by the benchmark's generator."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from dispatch.hotspots import detector as d
from dispatch.routing.ruleset import load_reference

T0 = datetime(2026, 6, 3, 9, 0)
TOWN = "440402005"  # 拱北

# Five callers about one burst main on 昌盛路, and ordinary requests of the same matter
# elsewhere in the town.
BURST = [
    "昌盛路这边水管爆了，整条街都是水，家里也停水了",
    "市民来电反映，拱北昌盛路路口自来水管破裂，水冒得很高",
    "我们昌盛路停水了，听说是水管爆了，什么时候能修好",
    "昌盛路那里爆水管，马路都淹了，请尽快派人抢修",
    "来电人称昌盛路水管破裂停水，要求尽快恢复供水",
]
ELSEWHERE = [
    "桂花南路小区停水两天了也没有通知",
    "莲花路自来水有一股漂白粉味道",
    "侨光路这边水压很低，楼上根本没水",
    "联安路新房子要开通自来水怎么申请",
    "粤海东路的水费怎么突然贵了这么多",
]


@pytest.fixture(scope="module")
def model() -> d.TextModel:
    ruleset = load_reference()
    texts = [t for t, _ in d.corpus_texts()] + ELSEWHERE * 3
    return d.TextModel.from_texts(texts, d.admin_names(ruleset), d.place_names(ruleset))


def request(key: int, text: str, minutes: float, matter: str = "GS-01") -> d.Request:
    return d.Request(key, T0 + timedelta(minutes=minutes), matter, TOWN, "XZ", text)


def test_one_burst_main_in_five_wordings_is_one_incident(model):
    detector = d.Detector(model, lambda *_: 0.05)
    outcomes = [detector.observe(request(i, text, 6 * i)) for i, text in enumerate(BURST)]
    assert outcomes[:4] == [None] * 4 or all(o is None or o.kind == "incident" for o in outcomes)
    spot, found_at = detector.detections[0]
    assert (spot.kind, spot.members) == ("incident", {0, 1, 2, 3, 4})
    assert found_at == T0 + timedelta(minutes=24)  # at the fifth call


def test_the_same_matter_at_other_places_is_no_incident(model):
    detector = d.Detector(model, lambda *_: 5.0)  # a busy cell: no surge either
    for i, text in enumerate(ELSEWHERE):
        detector.observe(request(i, text, 5 * i))
    assert detector.detections == []
    assert not d.linked(model, request(1, ELSEWHERE[0], 0), request(2, ELSEWHERE[1], 1))


def test_requests_an_hour_apart_or_in_another_town_do_not_join(model):
    far = [request(i, text, 20 * i) for i, text in enumerate(BURST)]
    detector = d.Detector(model, lambda *_: 5.0)
    for r in far:
        detector.observe(r)
    assert [s.kind for s, _ in detector.detections] == []
    other_town = d.Request(9, T0, "GS-01", "440402004", "XZ", BURST[0])
    assert not d.linked(model, other_town, request(1, BURST[1], 1))


def test_a_wrongly_picked_matter_still_joins_when_the_words_and_place_agree(model):
    a = request(1, BURST[0], 0)
    b = request(2, BURST[2], 1, matter="SW-02")
    assert d.linked(model, a, b)


@pytest.mark.parametrize(
    ("count", "expected"), [(0, 1.0), (1, 0.5), (5, 0.3), (12, 2.0), (30, 25.0)]
)
def test_poisson_tail_matches_the_definition(count, expected):
    exact = 1 - sum(math.exp(-expected) * expected**k / math.factorial(k) for k in range(count))
    assert d.poisson_tail(count, expected) == pytest.approx(max(exact, 0.0), abs=1e-12)


def test_surge_needs_five_requests_and_a_small_tail():
    assert not d.is_surge(4, 0.001)  # too few, however unusual
    assert d.is_surge(5, 0.05)
    assert not d.is_surge(8, 3.0)  # a busy cell's ordinary hour
    assert d.is_surge(20, 3.0)


def test_a_surge_of_varied_requests_opens_once_and_then_grows(model):
    detector = d.Detector(model, lambda *_: 0.1)
    for i, text in enumerate(ELSEWHERE + ELSEWHERE[:3]):
        detector.observe(request(i, text, 4 * i))
    kinds = [s.kind for s, _ in detector.detections]
    assert kinds == ["surge"]
    assert detector.detections[0][0].members == set(range(8))


def test_the_expected_count_follows_the_hour_and_never_reaches_zero():
    assert d.expected_count(24.0, 1 / 24) == pytest.approx(1.0)
    assert d.expected_count(24.0, 2 / 24) == pytest.approx(2.0)
    assert d.expected_count(0.0, 1 / 24) > 0


def test_a_compound_no_gazetteer_knows_is_the_same_spot_by_its_address(model):
    a = d.Request(
        1, T0, "GS-01", TOWN, "XZ", "家里停水了 香洲区拱北翠景豪庭5栋", "香洲区拱北翠景豪庭5栋"
    )
    b = d.Request(
        2, T0, "GS-01", TOWN, "XZ", "没有水用，水龙头一滴都没有 翠景豪庭北门", "翠景豪庭北门"
    )
    c = d.Request(
        3, T0, "GS-01", TOWN, "XZ", "没有水用，水龙头一滴都没有 银湖花园北门", "银湖花园北门"
    )
    assert d.same_address(model, a, b) and not d.same_address(model, b, c)
