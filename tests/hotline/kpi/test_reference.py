"""The API and the wall against the reference calculator (reference.py) on random streams.

Streams stamp whole seconds (so a call's events often share an instant) and include
same-second transfers and re-entries, transfers while waiting, transfers repeated under new
ids, answers stamped a little before their offers, ends that never come, and overflows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from hotline.calls import queue_log
from hotline.calls import service as calls_service
from hotline.calls.models import CallEvent, CallOffer, KpiBucket
from hotline.core import db
from hotline.kpi import service as kpi_service
from tests.hotline.kpi import reference
from tests.hotline.kpi.test_kpi_truth import EXTENSIONS, QL_DAY, QUEUES, queue_log_day

TZ = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)
CTI = {"X-CTI-Token": "development-cti-token"}
OTHER = {"general": "social_security", "social_security": "h12315", "h12315": "general"}


@st.composite
def one_call(draw, call_id: str) -> list[dict]:
    t = BASE + timedelta(seconds=draw(st.integers(0, 5 * 3600)))
    events: list[dict] = []

    def add(kind: str, moment: datetime, **fields) -> None:
        events.append(
            {
                "event_id": f"{call_id}-{len(events)}",
                "call_id": call_id,
                "type": kind,
                "at": moment.isoformat(),
                **fields,
            }
        )

    def later(low: int = 0, high: int = 40) -> timedelta:
        return timedelta(seconds=draw(st.integers(low, high)))

    queue = draw(st.sampled_from(sorted(OTHER)))
    add("offered", t, queue=queue)
    if draw(st.integers(0, 4)) == 0:  # overflow
        t += later(1, 60)
        queue = OTHER[queue]
        add("offered", t, queue=queue)
    if draw(st.integers(0, 4)) == 0:  # transferred while waiting
        t += later(1, 30)
        queue = OTHER[queue]
        add("transferred", t, queue=queue)
        if draw(st.booleans()):
            add("offered", t + later(0, 2), queue=queue)
    ending = draw(st.sampled_from(["answered", "answered", "answered", "abandoned", "hung_up"]))
    if draw(st.integers(0, 5)) == 0:
        ending = "nothing"  # the end never comes
    if ending == "answered":
        t += later()
        skewed = draw(st.integers(0, 5)) == 0 and len(events) == 1
        answer_at = events[0]["at"] if skewed else t.isoformat()
        if skewed:  # stamped by another node, a little before the offer
            answer_at = (datetime.fromisoformat(answer_at) - timedelta(seconds=1.5)).isoformat()
            events[0]["at"] = datetime.fromisoformat(events[0]["at"]).isoformat()
        events.append(
            {
                "event_id": f"{call_id}-{len(events)}",
                "call_id": call_id,
                "type": "answered",
                "at": answer_at,
                "agent": "agent1",
            }
        )
        if draw(st.booleans()):  # answered, then transferred to a new leg
            t += later(1, 200)
            target = OTHER[queue]
            add("transferred", t, queue=target)
            if draw(st.booleans()):
                add(
                    "transferred",
                    t + timedelta(seconds=draw(st.sampled_from([0, 1]))),
                    queue=target,
                )  # the same transfer again under a new id
            if draw(st.booleans()):
                add("offered", t + later(0, 1), queue=target)  # the re-entry
            t += later(0, 30)
            if draw(st.integers(0, 5)):
                add("answered", t, agent="agent2")
        if draw(st.integers(0, 5)):
            add("ended", t + later(1, 300))
    elif ending == "abandoned":
        add("abandoned", t + later(), reason=draw(st.sampled_from(["timeout", "caller"])))
        add("ended", t + later(40, 41))
    elif ending == "hung_up":
        add("ended", t + later())
    return events


@st.composite
def streams(draw) -> list[dict]:
    count = draw(st.integers(1, 12))
    events = [e for n in range(count) for e in draw(one_call(f"r{n}"))]
    return draw(st.permutations(events))


@pytest.fixture
def staff(make_user):
    with db.transaction() as session:
        calls_service.seed_queues(session)
    return make_user("sup", "supervisor")


def _empty_calls() -> None:
    with db.transaction() as session:
        for table in (CallEvent, CallOffer, KpiBucket):
            session.execute(delete(table))
    kpi_service.forget_wall_snapshot()


WINDOWS = [
    (BASE - timedelta(hours=9), BASE + timedelta(hours=15)),  # whole hours: the buckets
    (BASE + timedelta(minutes=17), BASE + timedelta(hours=3, minutes=41)),  # ragged edges
]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=streams(), batch=st.integers(1, 9))
def test_the_api_and_the_wall_equal_the_reference(client, staff, stream, batch):
    _empty_calls()
    for start in range(0, len(stream), batch):
        response = client.post(
            "/api/v1/calls/events", json=stream[start : start + batch], headers=CTI
        )
        assert response.status_code == 200 and response.json()["rejected"] == 0
    rules = reference.Rules()
    real_now = datetime.now(UTC)
    for start, end in WINDOWS:
        for queue in (None, "general", "h12315"):
            params = {"start": start.isoformat(), "end": end.isoformat()}
            if queue:
                params["queue"] = queue
            got = client.get("/api/v1/kpi/answer-rate", params=params, headers=staff).json()
            want = reference.as_api(reference.figures(stream, start, end, real_now, rules, queue))
            assert {k: got[k] for k in want} == want, (start, end, queue)
    # The wall at a moment three hours after the stream began: some callers still waiting,
    # some past the threshold, some lost.
    now = BASE + timedelta(hours=3)
    with db.transaction() as session:
        wall = kpi_service.wall(session, now=now)
    local_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for name, start in {
        "today": local_midnight,
        "last_hour": now - timedelta(hours=1),
    }.items():
        want = reference.figures(stream, start, now + timedelta(microseconds=1), now, rules)
        got = wall["rolling"][name]
        assert {k: got[k] for k in reference.as_api(want)} == reference.as_api(want), name
    today = reference.figures(stream, local_midnight, now + timedelta(microseconds=1), now, rules)
    assert wall["lost_calls"] == today["lost"] + today["lost_talking"]
    assert wall["waiting"] == sum(
        1
        for r in _all_requests(stream, rules)
        # the wall's synthetic "now" lies inside the stream: later offers wait too (at 0 s)
        if r.phase() == "waiting" and (now - r.entered).total_seconds() < rules.lost_waiting
    )


def _all_requests(stream, rules):
    by_call: dict[str, list[dict]] = {}
    for event in stream:
        by_call.setdefault(event["call_id"], []).append(event)
    return [r for events in by_call.values() for r in reference.requests_of_call(events, rules)]


def test_a_queue_log_day_with_same_second_transfers_equals_the_reference(client, staff, tmp_path):
    lines, _expected = queue_log_day(seed=7, calls=300)
    path = tmp_path / "queue_log"
    path.write_text("\n".join(lines) + "\n")
    queue_map = queue_log.parse_mapping(",".join(f"{o}={t}" for t, o in QUEUES.items()))
    transfer_map = queue_log.parse_mapping(",".join(f"{o}={e}" for e, o in EXTENSIONS.items()))
    report = queue_log.import_file(path, batch=250, queue_map=queue_map, transfer_map=transfer_map)
    assert report.rejected == 0
    events, problems = queue_log.parse_queue_log(
        lines, queue_map=queue_map, transfer_map=transfer_map
    )
    assert not problems
    rules = reference.Rules()
    now = datetime.now(UTC)
    hours = [QL_DAY[0] + timedelta(hours=h) for h in range(25)]
    mismatches = []
    for start, end in [QL_DAY, *zip(hours, hours[1:], strict=False)]:
        for queue in (None, *QUEUES.values()):
            params = {"start": start.isoformat(), "end": end.isoformat()}
            if queue:
                params["queue"] = queue
            got = client.get("/api/v1/kpi/answer-rate", params=params, headers=staff).json()
            want = reference.as_api(reference.figures(events, start, end, now, rules, queue))
            if {k: got[k] for k in want} != want:
                mismatches.append((start, queue, got, want))
    assert mismatches == []
    day = reference.figures(events, *QL_DAY, now, rules)
    assert day["offered"] > 300
