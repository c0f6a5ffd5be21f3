"""The 15-second answer rate over crafted event streams, against values computed by hand.

Nine calls on 2026-11-27 between 10:00 and 10:10 (Asia/Shanghai):

  c1 general  answered after 10 s, talk 180 s            within
  c2 general  answered after exactly 15 s, talk 60 s     within (15 s counts)
  c3 general  answered after 16 s, talk 120 s            late
  c4 general  abandoned after 5 s                        abandon (short if the limit is 10 s)
  c5 general  timed out after 60 s                       abandon
  c6 general  answered after 3 s, talk 57 s, then transferred to social_security, answered
              there after 20 s, talk 220 s               within + late: a transfer is a new request
  c7 general  answered after 8 s, talk 60 s — sent out of order and twice
  c8 social_security, overflowed to general after 30 s, answered after 40 s (no end yet)
                                                          late, counted when answered
  c9 general  caller hung up after 20 s                   abandon

Requests 10; within 4 (c1 c2 c6a c7); answered 7; abandoned 3; rate 0.4.
ASA = (10+15+16+3+20+8+40)/7 = 16.0 s; handle = (180+60+120+57+220+60)/6 = 116.17 s.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.calls import service as calls_service
from hotline.core import db
from hotline.core.settings import get_settings
from tests.hotline.kpi.api import post_events as post
from tests.hotline.kpi.api import rate

TZ = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 27, 10, 0, 0, tzinfo=TZ)


def at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def ev(event_id, call_id, type_, seconds, **extra):
    return {"event_id": event_id, "call_id": call_id, "type": type_, "at": at(seconds), **extra}


def crafted_stream() -> list[dict]:
    return [
        ev("c1-o", "c1", "offered", 0, queue="general", caller="13800000001"),
        ev("c1-a", "c1", "answered", 10, agent="agent1"),
        ev("c1-e", "c1", "ended", 190),
        ev("c2-o", "c2", "offered", 60, queue="general", caller="13800000002"),
        ev("c2-a", "c2", "answered", 75, agent="agent2"),
        ev("c2-e", "c2", "ended", 135),
        ev("c3-o", "c3", "offered", 120, queue="general"),
        ev("c3-a", "c3", "answered", 136, agent="agent1"),
        ev("c3-e", "c3", "ended", 256),
        ev("c4-o", "c4", "offered", 180, queue="general"),
        ev("c4-x", "c4", "abandoned", 185),
        ev("c5-o", "c5", "offered", 240, queue="general"),
        ev("c5-x", "c5", "abandoned", 300, reason="timeout"),
        ev("c6-o", "c6", "offered", 300, queue="general", caller="13800000006"),
        ev("c6-a", "c6", "answered", 303, agent="agent1"),
        ev("c6-t", "c6", "transferred", 360, queue="social_security"),
        ev("c6-a2", "c6", "answered", 380, agent="agent2"),
        ev("c6-e", "c6", "ended", 600),
        # c7 out of order, and repeated below
        ev("c7-e", "c7", "ended", 488),
        ev("c7-a", "c7", "answered", 428, agent="agent2"),
        ev("c7-o", "c7", "offered", 420, queue="general"),
        ev("c8-o", "c8", "offered", 480, queue="social_security"),
        ev("c8-o2", "c8", "offered", 510, queue="general"),
        ev("c8-a", "c8", "answered", 520, agent="agent1"),
        ev("c9-o", "c9", "offered", 540, queue="general"),
        ev("c9-e", "c9", "ended", 560),
        ev("c7-a", "c7", "answered", 428, agent="agent2"),  # a repeat
    ]


@pytest.fixture
def queues(database):
    with db.transaction() as session:
        calls_service.seed_queues(session)


@pytest.fixture
def supervisor(make_user, queues):
    return make_user("sup", "supervisor")


DAY = (datetime(2026, 11, 27, tzinfo=TZ), datetime(2026, 11, 28, tzinfo=TZ))
EDGE = (BASE, BASE + timedelta(minutes=30))


def test_hand_computed_figures_for_the_crafted_stream(client, supervisor):
    report = post(client, crafted_stream())
    assert report["accepted"] == 26 and report["duplicates"] == 1 and report["rejected"] == 0
    for start, end in (DAY, EDGE):  # whole hours from buckets, and a window read call by call
        figures = rate(client, supervisor, start, end)
        assert figures["offered"] == 10
        assert figures["answered"] == 7
        assert figures["answered_within_threshold"] == 4
        assert figures["abandoned"] == 3
        assert figures["rate"] == 0.4
        assert figures["threshold_seconds"] == 15
        assert figures["average_speed_of_answer_seconds"] == 16.0
        assert figures["average_handle_seconds"] == 116.17
        assert figures["abandon_rate"] == 0.3


def test_per_queue_figures_follow_transfers_and_overflow(client, supervisor):
    post(client, crafted_stream())
    social = rate(client, supervisor, *DAY, queue="social_security")
    assert (social["offered"], social["answered_within_threshold"]) == (1, 0)  # c6's 2nd leg
    general = rate(client, supervisor, *DAY, queue="general")
    assert (general["offered"], general["answered_within_threshold"]) == (9, 4)


def test_sending_everything_again_changes_nothing(client, supervisor):
    post(client, crafted_stream())
    again = post(client, crafted_stream())
    assert again["accepted"] == 0 and again["duplicates"] == 27
    assert rate(client, supervisor, *DAY)["rate"] == 0.4


def test_a_late_event_corrects_the_figures(client, supervisor):
    stream = [e for e in crafted_stream() if e["event_id"] != "c9-e"]
    post(client, stream)
    # c9 still waiting, offered long ago: lost (its end never came), left out of the rate and
    # counted apart; then its end arrives late and it counts as the abandon it was.
    before = rate(client, supervisor, *DAY)
    assert before["offered"] == 9 and before["abandoned"] == 2 and before["lost"] == 1
    post(client, [ev("c9-e", "c9", "ended", 560)])
    after = rate(client, supervisor, *DAY)
    assert after["abandoned"] == 3 and after["rate"] == 0.4 and after["lost"] == 0


def test_any_arrival_order_gives_the_same_figures(client, supervisor):
    import random

    stream = crafted_stream()
    random.Random(7).shuffle(stream)
    for chunk in range(0, len(stream), 4):
        post(client, stream[chunk : chunk + 4])
    figures = rate(client, supervisor, *DAY)
    assert (figures["offered"], figures["answered_within_threshold"]) == (10, 4)
    assert figures["average_handle_seconds"] == 116.17


def test_short_abandons_leave_the_denominator(client, supervisor, monkeypatch):
    monkeypatch.setenv("HOTLINE_SHORT_ABANDON_SECONDS", "10")
    get_settings.cache_clear()
    try:
        post(client, crafted_stream())
        for window in (DAY, EDGE):
            figures = rate(client, supervisor, *window)
            assert figures["offered"] == 9 and figures["short_abandoned"] == 1
            assert figures["abandoned"] == 2
            assert figures["rate"] == round(4 / 9, 6)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_every_figure_traces_to_its_calls(client, supervisor):
    post(client, crafted_stream())
    params = {"start": DAY[0].isoformat(), "end": DAY[1].isoformat()}
    behind = client.get("/api/v1/kpi/answer-rate/calls", params=params, headers=supervisor).json()
    assert behind["total"] == 10
    counted = {}
    for row in behind["calls"]:
        counted[row["counted_as"]] = counted.get(row["counted_as"], 0) + 1
    assert counted == {"answered_within": 4, "answered_late": 3, "abandoned": 3}
    within = client.get(
        "/api/v1/kpi/answer-rate/calls",
        params={**params, "category": "answered_within"},
        headers=supervisor,
    ).json()
    assert sorted((r["call_id"], r["seq"]) for r in within["calls"]) == [
        ("c1", 0),
        ("c2", 0),
        ("c6", 0),
        ("c7", 0),
    ]


CATEGORIES = [
    "answered_within",
    "answered_late",
    "abandoned",
    "short_abandon",
    "unanswered",
    "waiting",
    "lost",
]


def test_each_category_filter_gives_exactly_the_calls_counted_so(client, supervisor, monkeypatch):
    """The filter runs in SQL; how each call counts is decided in Python: they must agree."""
    monkeypatch.setenv("HOTLINE_SHORT_ABANDON_SECONDS", "10")  # c4 becomes a short abandon
    get_settings.cache_clear()
    try:
        now = datetime.now(TZ)
        post(client, [e for e in crafted_stream() if e["event_id"] != "c9-e"])  # unanswered
        post(client, [ev("w-o", "w", "offered", (now - BASE).total_seconds(), queue="general")])
        missed = (now - BASE).total_seconds() - 60  # waited past 15 s, not yet lost
        post(client, [ev("u-o", "u", "offered", missed, queue="general")])
        window = {"start": DAY[0].isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}
        every = client.get("/api/v1/kpi/answer-rate/calls", params=window, headers=supervisor)
        every = every.json()
        counted: dict[str, set] = {c: set() for c in CATEGORIES}
        for row in every["calls"]:
            counted[row["counted_as"]].add((row["call_id"], row["seq"]))
        assert all(counted.values()), f"the stream must cover every category: {counted}"
        for category in CATEGORIES:
            page = client.get(
                "/api/v1/kpi/answer-rate/calls",
                params={**window, "category": category},
                headers=supervisor,
            ).json()
            assert page["total"] == len(counted[category]), category
            assert {(r["call_id"], r["seq"]) for r in page["calls"]} == counted[category]
            assert {r["counted_as"] for r in page["calls"]} == {category}
        assert every["total"] == sum(len(v) for v in counted.values()) == 12
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_calls_behind_are_paged_by_the_database(client, supervisor):
    post(client, crafted_stream())
    window = {"start": DAY[0].isoformat(), "end": DAY[1].isoformat()}
    pages = [
        client.get(
            "/api/v1/kpi/answer-rate/calls",
            params={**window, "limit": 4, "offset": offset},
            headers=supervisor,
        ).json()
        for offset in (0, 4, 8)
    ]
    assert [p["total"] for p in pages] == [10, 10, 10]
    assert [len(p["calls"]) for p in pages] == [4, 4, 2]
    offered = [r["offered_at"] for p in pages for r in p["calls"]]
    assert offered == sorted(offered)


def test_bad_events_are_reported_one_by_one_and_never_stop_the_good(client, supervisor):
    report = post(
        client,
        [
            ev("g1", "g", "offered", 0, queue="general"),
            {"event_id": "b1", "call_id": "b", "type": "offered", "at": "2026-11-27T10:00:00"},
            ev("b2", "b", "offered", 0, queue="nowhere"),
            ev("b3", "b", "answered", 0),
            {"event_id": "b4", "type": "exploded", "call_id": "b", "at": at(0)},
            "not even an object",
            ev("g2", "g", "answered", 5, agent="agent1"),
        ],
    )
    assert [r["status"] for r in report["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    messages = [r.get("error", "") for r in report["results"]]
    assert "time zone" in messages[1] and "unknown queue" in messages[2]
    assert "agent" in messages[3]
    assert rate(client, supervisor, *EDGE)["answered_within_threshold"] == 1


def test_events_need_the_cti_token(client, queues):
    response = client.post("/api/v1/calls/events", json=[], headers={"X-CTI-Token": "wrong"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "calls.bad_cti_token"


def test_answering_pops_the_callers_history_on_the_agents_screen(client, supervisor):
    from dispatch.routing import service as routing_service
    from dispatch.tickets import service as ticket_service
    from hotline.core.events import events_after

    with db.transaction() as session:
        routing_service.seed_reference(session)
        ticket_service.create(
            session,
            actor="agent1",
            channel="phone",
            content="商家拒绝退款",
            address="拱北",
            matter_code="SC-01",
            caller_phone="13800000001",
        )
    post(client, crafted_stream()[:2])  # c1 offered and answered by agent1
    with db.transaction() as session:
        pops = [e for e in events_after(session, 0, topics=["agent.agent1"])]
    assert pops and pops[0]["type"] == "call.answered"
    assert pops[0]["data"]["caller"] == "13800000001"
    assert pops[0]["data"]["history"][0]["open"] is True
    agents = client.get("/api/v1/agents", headers=supervisor).json()
    assert {a["username"]: a["state"] for a in agents}["agent1"] == "on_call"


def test_live_queue_state_shows_who_waits(client, supervisor):
    now = datetime.now(TZ)
    post(
        client,
        [
            {
                "event_id": "w1",
                "call_id": "w1",
                "type": "offered",
                "queue": "general",
                "at": (now - timedelta(seconds=40)).isoformat(),
            },
            {
                "event_id": "w2",
                "call_id": "w2",
                "type": "offered",
                "queue": "general",
                "at": (now - timedelta(seconds=5)).isoformat(),
            },
        ],
    )
    general = next(
        q
        for q in client.get("/api/v1/calls/queues", headers=supervisor).json()
        if q["queue"] == "general"
    )
    assert general["waiting"] == 2
    assert 39 <= general["longest_wait_seconds"] < 60
    live = client.get("/api/v1/kpi/rolling", headers=supervisor).json()["last_15_minutes"]
    # w1 waited past 15 s unanswered: it counts, as a miss; w2 may still be answered in time.
    assert live["offered"] == 1 and live["waiting"] == 1 and live["rate"] == 0.0


def test_alert_raises_below_target_and_clears_with_hysteresis(client, supervisor, monkeypatch):
    from hotline.calls.models import AlertState
    from hotline.core.events import events_after

    monkeypatch.setenv("HOTLINE_ALERT_CHECK_SECONDS", "0")  # every batch re-evaluates it
    get_settings.cache_clear()

    now = datetime.now(TZ)

    def calls(prefix, n, wait):
        events = []
        for i in range(n):
            start = now - timedelta(minutes=10) + timedelta(seconds=i)
            events += [
                {
                    "event_id": f"{prefix}{i}o",
                    "call_id": f"{prefix}{i}",
                    "type": "offered",
                    "queue": "general",
                    "at": start.isoformat(),
                },
                {
                    "event_id": f"{prefix}{i}a",
                    "call_id": f"{prefix}{i}",
                    "type": "answered",
                    "agent": "agent1",
                    "at": (start + timedelta(seconds=wait)).isoformat(),
                },
            ]
        return events

    post(client, calls("slow", 10, 30) + calls("fast", 10, 5))  # 50 %: below 90 %
    with db.transaction() as session:
        assert session.get(AlertState, "answer_rate_15m").active is True
    post(client, calls("more", 80, 5))  # 90/100 = 90 %: at target, not 2 points above it
    with db.transaction() as session:
        assert session.get(AlertState, "answer_rate_15m").active is True
    post(client, calls("lots", 30, 5))  # 120/130 = 92.3 %: cleared
    with db.transaction() as session:
        state = session.get(AlertState, "answer_rate_15m")
        assert state.active is False
        kinds = [e["type"] for e in events_after(session, 0, topics=["kpi.alerts"])]
    assert kinds == ["kpi.answer_rate_low", "kpi.answer_rate_recovered"]
    monkeypatch.undo()
    get_settings.cache_clear()


def test_call_events_re_evaluate_the_alert_at_most_every_few_seconds(monkeypatch):
    from hotline.kpi import service as kpi_service

    monkeypatch.setenv("HOTLINE_ALERT_CHECK_SECONDS", "3600")
    get_settings.cache_clear()
    monkeypatch.setattr(kpi_service, "_alert_checked_at", -float("inf"))
    try:
        assert [kpi_service.alert_check_due() for _ in range(3)] == [True, False, False]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_rebuilt_buckets_equal_the_incremental_ones(client, supervisor):
    from hotline.kpi import service as kpi_service

    stream = crafted_stream()
    for chunk in range(0, len(stream), 3):
        post(client, stream[chunk : chunk + 3])

    def snapshot():
        with db.transaction() as session:
            return sorted(
                (
                    queue,
                    hour,
                    b["offered"],
                    b["answered"],
                    b["answered_within"],
                    b["abandoned"],
                    round(b["wait_sum"], 3),
                    round(b["talk_sum"], 3),
                    b["talk_count"],
                )
                for (queue, hour), b in kpi_service.bucket_sums(session).items()
                if b["offered"]
            )

    incremental = snapshot()
    with db.transaction() as session:
        assert kpi_service.rebuild_buckets(session) == 10
    assert snapshot() == incremental


@pytest.mark.parametrize("minutes_later", [3, 12, 47, 64, 125, 60 * 26])
def test_the_walls_windows_equal_their_answer_rates_one_by_one(client, supervisor, minutes_later):
    """rolling() reads the requests once for all four windows; each must still come out as
    answer_rate gives it alone, whether the stream is in the unsettled tail or the buckets."""
    from hotline.kpi import service as kpi_service

    post(client, crafted_stream())
    now = (BASE + timedelta(minutes=minutes_later)).astimezone(TZ)
    with db.transaction() as session:
        together = kpi_service.rolling(session, now=now)
        local_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "last_15_minutes": now - timedelta(minutes=15),
            "last_hour": now - timedelta(hours=1),
            "today": local_midnight,
            "quarter": local_midnight.replace(month=10, day=1),
        }
        end = now + timedelta(microseconds=1)
        alone = {
            name: kpi_service.answer_rate(session, start, end, now=now)
            for name, start in starts.items()
        }
    assert together == alone
    assert together["quarter"]["offered"] > 0  # the stream is inside the windows compared


def test_the_wall_snapshot_is_shared_until_an_event_arrives(client, supervisor):
    post(client, crafted_stream()[:3])
    first = client.get("/api/v1/kpi/wall", headers=supervisor).json()
    again = client.get("/api/v1/kpi/wall", headers=supervisor).json()
    assert again == first
    # A new call is an event: the next snapshot is computed afresh and shows it waiting.
    now = datetime.now(TZ)
    post(client, [ev("fresh-o", "fresh", "offered", (now - BASE).total_seconds(), queue="general")])
    after = client.get("/api/v1/kpi/wall", headers=supervisor).json()
    assert after["waiting"] == first["waiting"] + 1


def test_the_edges_read_are_the_windows_edges_joined_where_they_overlap():
    from hotline.kpi.service import _merged

    at = [datetime(2026, 11, 2, h, tzinfo=UTC) for h in range(8)]
    ranges = [(at[5], at[7]), (at[0], at[1]), (at[6], at[7]), (at[1], at[2]), (at[4], at[5])]
    assert _merged(ranges) == [(at[0], at[2]), (at[4], at[7])]
    assert _merged([]) == []


def test_an_intake_writes_its_bucket_rows_only_at_commit_and_reads_its_own(queues):
    """The bucket upsert locks its row until the commit: it is the transaction's last write,
    yet figures read inside the same transaction already count its own events."""
    from sqlalchemy import func, select

    from hotline.calls.models import KpiBucket
    from hotline.kpi import service as kpi_service

    with db.transaction() as session:
        assert calls_service.ingest(session, crafted_stream()[:3]).accepted == 3
        assert calls_service._STAGED_BUCKETS in session.info
        # Not written yet, not even to this transaction's own view of the table.
        assert session.scalar(select(func.count()).select_from(KpiBucket)) == 0
        seen_inside = {k: v["offered"] for k, v in kpi_service.bucket_sums(session).items()}
    with db.transaction() as session:
        after = {k: v["offered"] for k, v in kpi_service.bucket_sums(session).items()}
    assert list(seen_inside.values()) == [1] and after == seen_inside

    with db.transaction() as session:
        calls_service.ingest(session, crafted_stream()[3:5])
        session.rollback()
    with db.transaction() as session:
        # Nothing staged survives a rollback.
        assert {k: v["offered"] for k, v in kpi_service.bucket_sums(session).items()} == after
