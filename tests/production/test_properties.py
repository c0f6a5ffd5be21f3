"""Properties of the two parsers that take the least trusted input: the address resolver
(whatever citizens say) and the call-event intake (whatever the telephony system sends).

Resolver, on the shipped gazetteer: it is total on any text; noise that names no place
changes nothing it decides; a longer name beats every name it contains; an address that
names a place outside Zhuhai never resolves inside the city.

Call events, through the real HTTP intake: a call's requests and the KPI figures do not
depend on the order, the repetition or the batching of its events; a malformed event is
refused in its own result, never with a 5xx, and never stops the valid ones.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dispatch.routing.resolver import _NAME_SUFFIXES as ROAD_AND_COMPOUND_WORDS
from dispatch.routing.resolver import LocationResolver, ResolvedLocation
from dispatch.routing.ruleset import load_reference
from hotline.calls import service as calls_service
from hotline.calls.models import CallOffer
from hotline.core import db
from hotline.kpi import service as kpi_service

RULESET = load_reference()
RESOLVER = LocationResolver(RULESET)
TODAY = date(2025, 6, 1)
DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ZHUHAI_NAMES = sorted(
    {RULESET.city_name, RULESET.city_name.removesuffix("市")}
    | {n for a in RULESET.areas for n in (a.name, *a.aliases)}
    | {n for t in RULESET.towns for n in (t.name, *t.aliases)}
    | {p.name for p in RULESET.places}
)
OUTSIDE_NAMES = sorted(RULESET.not_zhuhai)
ALL_NAMES = sorted(set(ZHUHAI_NAMES) | set(OUTSIDE_NAMES))
# What people write around the names: numbers, letters, punctuation and address words, some
# of which also occur inside names (路, 区, 湾 ...).
NOISE_ALPHABET = "0123456789-#（）() ,，。号路街巷弄栋单元室楼层附近门口对面旁边小区大厦花园湾区山"
noise = st.text(alphabet=NOISE_ALPHABET, max_size=8)


def names_in(text: str) -> set[str]:
    return {name for name in ALL_NAMES if name in text}


def decision(location: ResolvedLocation) -> tuple:
    """Everything the engine routes by."""
    return (
        location.town.code if location.town else None,
        location.area.code if location.area else None,
        tuple(t.code for t in location.ambiguous),
        location.outside,
        location.multi_area,
        location.source,
    )


@PROPERTY
@given(address=st.one_of(st.none(), st.text(max_size=300)), text=st.text(max_size=300), on=DAYS)
def test_the_resolver_never_fails_on_any_text(address, text, on):
    location = RESOLVER.resolve(address, text, on)
    assert isinstance(location, ResolvedLocation)
    assert (location.source is None) == (not location.found)


@PROPERTY
@given(
    parts=st.lists(st.sampled_from(ZHUHAI_NAMES), min_size=1, max_size=3),
    before=noise,
    between=st.lists(noise, min_size=2, max_size=2),
    after=noise,
    on=DAYS,
)
def test_noise_that_names_no_place_changes_nothing(parts, before, between, after, on):
    # The names apart (a space is in no name), then the same names in people's noise.
    plain = " ".join(parts)
    noisy = before + parts[0]
    for separator, part in zip(between, parts[1:], strict=False):
        noisy += separator + part
    noisy += after
    # Noise that names a place itself (or makes one with a neighbour) is not noise.
    assume(names_in(noisy) == names_in(plain) and all(n in plain for n in names_in(noisy)))
    assume(not any(len(names_in(p)) > 1 for p in parts))
    # A town's name right before 路, 花园, 大厦 … is part of a road's or compound's name (白蕉路
    # lies in 井岸镇), not the town: such "noise" names another place.
    assume(not any(part + word in noisy for part in parts for word in ROAD_AND_COMPOUND_WORDS))
    reference = RESOLVER.resolve(plain, "", on)
    assert decision(RESOLVER.resolve(noisy, "", on)) == decision(reference)
    if reference.town is not None:
        # ... and the same noise in the request's text does not move a resolved town either.
        assert RESOLVER.resolve(plain, noisy + "噪音很大", on).town == reference.town


def _exists_on(name: str, on: date) -> bool:
    """Whether the name means a place on that day (a town before its creation does not)."""
    towns = [t for t in RULESET.towns if name in (t.name, *t.aliases)]
    if towns:
        return any(t.is_valid_on(on) for t in towns)
    return True


LONGER_AND_CONTAINED = sorted(
    (long, short) for long, short in itertools.permutations(ALL_NAMES, 2) if short in long
)


def test_the_gazetteer_has_names_inside_names():
    assert len(LONGER_AND_CONTAINED) >= 20, LONGER_AND_CONTAINED
    assert not names_in("去附近12号在 那里")  # the wrappers used below name nothing


@pytest.mark.parametrize(("long", "short"), LONGER_AND_CONTAINED)
def test_a_longer_name_beats_every_name_it_contains(long, short):
    for on in (date(2019, 1, 1), TODAY):
        if not _exists_on(long, on):
            continue
        for address in (long, f"{long}12号", f"去{long}附近", f"在 {long} 那里"):
            matched = RESOLVER.resolve(address, "", on).matched
            assert long in matched and short not in matched, (address, on, matched)


@PROPERTY
@given(
    outside=st.sampled_from(OUTSIDE_NAMES),
    zhuhai=st.lists(st.sampled_from(ZHUHAI_NAMES), max_size=3),
    fillers=st.lists(noise, min_size=4, max_size=4),
    position=st.integers(min_value=0, max_value=3),
    text=st.one_of(st.just(""), st.sampled_from(ZHUHAI_NAMES)),
    on=DAYS,
)
def test_an_address_naming_an_outside_place_never_resolves_inside_zhuhai(
    outside, zhuhai, fillers, position, text, on
):
    parts = list(zhuhai)
    parts.insert(min(position, len(parts)), outside)
    # Spaces keep the names apart: a Zhuhai name overlapping the outside one from the left
    # would take its characters (leftmost-longest), and then the address does not name it.
    address = "".join(f" {filler} {part}" for filler, part in zip(fillers, parts, strict=False))
    location = RESOLVER.resolve(address, text, on)
    assert outside in location.matched, (address, location.matched)
    assert location.outside
    assert location.town is None and location.area is None and not location.ambiguous
    assert not location.multi_area


# -- call events through the intake API -------------------------------------------------------

BASE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@st.composite
def call_streams(draw) -> list[dict[str, Any]]:
    """The events of one plausible call, without ids: IVR, offer, maybe an overflow, then an
    answer (maybe a transfer and a second answer), an abandon, or nothing before the end."""
    t = BASE + timedelta(seconds=draw(st.integers(0, 7200)))
    gap = st.integers(0, 90)
    events: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "at": t.isoformat(), **fields})

    caller = draw(st.sampled_from(["13800001111", "13900002222", None]))
    if draw(st.booleans()):
        add("ivr_entered", caller=caller)
        t += timedelta(seconds=draw(gap))
        add("ivr_selected", option=draw(st.sampled_from(["1", "2", "0"])))
    queue = draw(st.sampled_from(["general", "social_security"]))
    add("offered", queue=queue, caller=caller)
    if draw(st.booleans()):
        t += timedelta(seconds=draw(gap))
        add("offered", queue="general" if queue != "general" else "social_security")
    t += timedelta(seconds=draw(gap))
    outcome = draw(st.sampled_from(["answered", "abandoned", "hung_up"]))
    if outcome == "answered":
        add("answered", agent=draw(st.sampled_from(["agent", "supervisor"])))
        if draw(st.booleans()):
            t += timedelta(seconds=draw(gap))
            add("transferred", queue="social_security")
            t += timedelta(seconds=draw(gap))
            if draw(st.booleans()):
                add("answered", agent="agent")
    elif outcome == "abandoned":
        add("abandoned", reason=draw(st.sampled_from(["timeout", "caller", None])))
    t += timedelta(seconds=draw(gap))
    add("ended")
    return events


def _with_ids(stream: list[dict[str, Any]], call_id: str) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in event.items() if v is not None},
            "event_id": f"{call_id}-{n}",
            "call_id": call_id,
        }
        for n, event in enumerate(stream)
    ]


def _buckets() -> dict[tuple[str, datetime], dict[str, float]]:
    with db.transaction() as session:
        return kpi_service.bucket_sums(session)


def _delta(before: dict, after: dict) -> dict:
    keys = set(before) | set(after)
    out = {}
    for key in keys:
        old, new = before.get(key, {}), after.get(key, {})
        diff = {c: round((new.get(c) or 0) - (old.get(c) or 0), 6) for c in set(old) | set(new)}
        if any(diff.values()):
            out[key] = diff
    return out


def _requests(client, call_id: str, staff: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=staff)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


def _post(client, events: list[dict[str, Any]], cti: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/calls/events", json=events, headers=cti)
    assert response.status_code == 200, response.text
    return response.json()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=call_streams(), data=st.data())
def test_order_repetition_and_batching_of_events_do_not_change_the_figures(world, stream, data):
    client, cti, staff = world.client, world.cti, world.headers["supervisor"]
    first, second = f"c-{uuid.uuid4().hex[:12]}", f"c-{uuid.uuid4().hex[:12]}"

    before = _buckets()
    assert _post(client, _with_ids(stream, first), cti)["accepted"] == len(stream)
    middle = _buckets()

    shuffled = data.draw(st.permutations(_with_ids(stream, second)), label="order")
    repeats = data.draw(st.lists(st.sampled_from(shuffled), max_size=4), label="repeats")
    sent = data.draw(st.permutations(shuffled + repeats), label="sent")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=3)))
    batches = [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if a < b]
    report = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for batch in batches:
        answer = _post(client, batch, cti)
        for name in report:
            report[name] += answer[name]
    after = _buckets()

    assert report == {"accepted": len(stream), "duplicates": len(repeats), "rejected": 0}
    assert _delta(middle, after) == _delta(before, middle)
    assert _requests(client, second, staff) == _requests(client, first, staff)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=call_streams())
def test_the_database_sums_a_request_as_python_counts_it(world, stream):
    # The wall sums recent requests in SQL, the buckets in Python: one request, one count.
    call_id = f"c-{uuid.uuid4().hex[:12]}"
    assert _post(world.client, _with_ids(stream, call_id), world.cti)["accepted"] == len(stream)
    columns = calls_service.bucket_contribution_columns()
    with db.transaction() as session:
        offers = session.execute(
            select(CallOffer, *[columns[f].label(f) for f in columns]).where(
                CallOffer.call_id == call_id
            )
        ).all()
        assert offers, "the stream produced no request"
        for offer, *in_sql in offers:
            _key, in_python = calls_service.bucket_contribution(offer)
            assert dict(zip(columns, in_sql, strict=True)) == pytest.approx(in_python)


@st.composite
def malformed_events(draw) -> Any:
    """Something that is not a valid event: garbage, or a valid event with one thing wrong."""
    valid = {
        "event_id": f"bad-{uuid.uuid4().hex[:12]}",
        "type": "offered",
        "call_id": "bad-call",
        "queue": "general",
        "at": "2026-11-02T09:00:00+08:00",
    }
    breakage = draw(
        st.sampled_from(["garbage", "missing", "type", "naive", "queue", "agent", "value", "edge"])
    )
    if breakage == "garbage":
        value = draw(json_values)
        assume(not isinstance(value, dict) or "event_id" not in value)
        return value
    if breakage == "missing":
        valid.pop(draw(st.sampled_from(["event_id", "type", "call_id", "at"])))
    elif breakage == "type":
        valid["type"] = draw(
            st.text(max_size=12).filter(lambda t: t not in calls_service.EVENT_TYPES)
        )
    elif breakage == "naive":
        valid["at"] = "2026-11-02T09:00:00"
    elif breakage == "queue":
        valid["queue"] = draw(st.sampled_from(["nonexistent", "", None]))
    elif breakage == "agent":
        valid.update(type="answered", agent=None)
    elif breakage == "edge":
        valid["at"] = draw(
            st.sampled_from(["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])
        )
    else:
        field = draw(st.sampled_from(["event_id", "call_id", "at", "queue"]))
        # For `at`, a number is wrong too: the intake wants ISO 8601 text, not a Unix time.
        wrong = json_values.filter(lambda v: not isinstance(v, str)) | st.text(min_size=65)
        valid[field] = draw(wrong)
    return valid


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    good=call_streams(),
    bad=st.lists(malformed_events(), min_size=1, max_size=5),
    data=st.data(),
)
def test_a_malformed_event_is_refused_on_its_own(world, good, bad, data):
    call_id = f"mix-{uuid.uuid4().hex[:12]}"
    valid = _with_ids(good, call_id)
    mixed = data.draw(st.permutations(valid + bad), label="mixed")
    response = world.client.post("/api/v1/calls/events", json=mixed, headers=world.cti)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(mixed)))
    for event, result in zip(mixed, body["results"], strict=True):
        is_good = event in valid
        assert result["status"] == ("accepted" if is_good else "rejected"), (event, result)
        if not is_good:
            assert result["error"], result
    assert body["accepted"] == len(valid) and body["rejected"] == len(bad)
    # The good ones were not held back by the bad: the call is there, fully derived.
    expected = calls_service.derive_offers(
        [calls_service.CallEventIn.model_validate(e) for e in valid]
    )
    assert len(_requests(world.client, call_id, world.headers["agent"])) == len(expected)
