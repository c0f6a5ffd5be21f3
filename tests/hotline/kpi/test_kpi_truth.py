"""The seven findings of the issue-19 audit, each as a plain case with its expected figures.

1. a queue_log day with blind transfers whose re-entry is stamped in the transfer's second
2. answered, then `transferred` and the second leg's `answered` at one instant
3. transferred while still waiting, answered later in the new queue
4. the same transfer sent again under a new event id
5. `answered` stamped 0.2 s before `offered` (two PBX nodes' clocks)
6. a call whose final event never arrives
7. the short-abandon (or answer threshold) setting changed without `hotline kpi rebuild`
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.calls import queue_log
from hotline.calls import service as calls_service
from hotline.core import db
from hotline.core.settings import get_settings
from tests.hotline.kpi.api import post_events, rate


def post(client, events):
    return post_events(client, events, all_accepted=True)


TZ = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 27, 10, 0, 0, tzinfo=TZ)
DAY = (datetime(2026, 11, 27, tzinfo=TZ), datetime(2026, 11, 28, tzinfo=TZ))


def at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def ev(event_id, call_id, type_, seconds, **extra):
    return {"event_id": event_id, "call_id": call_id, "type": type_, "at": at(seconds), **extra}


@pytest.fixture
def supervisor(make_user):
    with db.transaction() as session:
        calls_service.seed_queues(session)
    return make_user("sup", "supervisor")


def requests_of(client, headers, call_id):
    response = client.get(f"/api/v1/calls/{call_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


# -- 1. queue_log: same-second re-entry after a blind transfer ------------------------------------

T0 = 1764205200  # 2025-11-27 09:00:00 +08:00
QL_DAY = (datetime(2025, 11, 27, tzinfo=TZ), datetime(2025, 11, 28, tzinfo=TZ))
QUEUES = {"12345q": "general", "sbq": "social_security", "q12315": "h12315"}
EXTENSIONS = {"8001": "general", "8002": "social_security", "8315": "h12315"}


def queue_log_day(seed: int, calls: int) -> tuple[list[str], dict]:
    """A day of queue_log lines, whole-second stamps, and the figures it must give, counted
    here from the plan (not from the lines): every transfer re-enters the target queue in
    the very second of the BLINDTRANSFER line."""
    rng = random.Random(seed)
    lines: list[str] = []
    expected = {"offered": 0, "within": 0, "by_queue": {}}

    def count(queue: str, wait: int) -> None:
        expected["offered"] += 1
        expected["within"] += wait <= 15
        offered, within = expected["by_queue"].get(queue, (0, 0))
        expected["by_queue"][queue] = (offered + 1, within + (wait <= 15))

    names = {ours: theirs for theirs, ours in QUEUES.items()}
    extension_of = {ours: ext for ext, ours in EXTENSIONS.items()}
    for n in range(calls):
        callid = f"{T0 + n}.{n}"
        t = T0 + rng.randrange(0, 12 * 3600)
        queue = rng.choice(list(names))
        lines.append(f"{t}|{callid}|{names[queue]}|NONE|ENTERQUEUE||1380000{n:04d}|1")
        wait = rng.choice([3, 8, 15, 16, 30, 45])
        t += wait
        lines.append(f"{t}|{callid}|{names[queue]}|SIP/agent{n % 7}|CONNECT|{wait}|x|1")
        count(queue, wait)
        t += rng.randrange(20, 300)
        if rng.random() < 0.35:
            target = rng.choice([q for q in names if q != queue])
            ext = extension_of[target]
            lines.append(f"{t}|{callid}|{names[queue]}|SIP/agent{n % 7}|BLINDTRANSFER|{ext}|c|1")
            lines.append(f"{t}|{callid}|{names[target]}|NONE|ENTERQUEUE||1380000{n:04d}|1")
            wait2 = rng.choice([0, 4, 12, 15, 19, 40])
            t += wait2
            lines.append(f"{t}|{callid}|{names[target]}|SIP/agent{n % 5}|CONNECT|{wait2}|y|1")
            count(target, wait2)
            t += rng.randrange(20, 300)
            lines.append(f"{t}|{callid}|{names[target]}|SIP/agent{n % 5}|COMPLETECALLER|1|2|1")
        else:
            lines.append(f"{t}|{callid}|{names[queue]}|SIP/agent{n % 7}|COMPLETEAGENT|1|2|1")
    rng.shuffle(lines)  # the import must not depend on the file's order either
    return lines, expected


def test_1_queue_log_transfers_re_entering_in_the_same_second(client, supervisor, tmp_path):
    lines, expected = queue_log_day(seed=19, calls=120)
    path = tmp_path / "queue_log"
    path.write_text("\n".join(lines) + "\n")
    report = queue_log.import_file(
        path,
        batch=97,
        queue_map=queue_log.parse_mapping(",".join(f"{o}={t}" for t, o in QUEUES.items())),
        transfer_map=queue_log.parse_mapping(",".join(f"{o}={e}" for e, o in EXTENSIONS.items())),
    )
    assert report.rejected == 0 and report.problem_count == 0
    figures = rate(client, supervisor, *QL_DAY)
    assert (figures["offered"], figures["answered_within_threshold"]) == (
        expected["offered"],
        expected["within"],
    )
    for queue, (offered, within) in expected["by_queue"].items():
        one = rate(client, supervisor, *QL_DAY, queue=queue)
        assert (one["offered"], one["answered_within_threshold"]) == (offered, within), queue


# -- 2. transfer and the next leg's answer at the same instant ------------------------------------


def test_2_transfer_and_the_next_answer_in_the_same_instant(client, supervisor):
    post(
        client,
        [
            ev("a-o", "a", "offered", 0, queue="general"),
            ev("a-a", "a", "answered", 5, agent="agent1"),
            ev("a-t", "a", "transferred", 60, queue="social_security"),
            ev("a-a2", "a", "answered", 60, agent="agent2"),
            ev("a-e", "a", "ended", 200),
        ],
    )
    first, second = requests_of(client, supervisor, "a")
    assert (first["outcome"], first["wait_seconds"]) == ("answered", 5)
    assert (second["queue"], second["outcome"], second["wait_seconds"]) == (
        "social_security",
        "answered",
        0,
    )
    assert rate(client, supervisor, *DAY)["answered_within_threshold"] == 2


# -- 3. transferred while waiting ----------------------------------------------------------------


def test_3_a_transfer_while_waiting_is_one_request_answered_late(client, supervisor):
    post(
        client,
        [
            ev("b-o", "b", "offered", 0, queue="general"),
            ev("b-t", "b", "transferred", 20, queue="social_security"),
            ev("b-a", "b", "answered", 25, agent="agent2"),
            ev("b-e", "b", "ended", 100),
        ],
    )
    (only,) = requests_of(client, supervisor, "b")
    assert (only["outcome"], only["wait_seconds"]) == ("answered", 25)
    figures = rate(client, supervisor, *DAY)
    assert (figures["offered"], figures["answered"], figures["answered_within_threshold"]) == (
        1,
        1,
        0,
    )


# -- 4. a transfer repeated under a new id -------------------------------------------------------


def test_4_the_same_transfer_under_a_new_id_changes_nothing(client, supervisor):
    stream = [
        ev("c-o", "c", "offered", 0, queue="general"),
        ev("c-a", "c", "answered", 5, agent="agent1"),
        ev("c-t", "c", "transferred", 60, queue="social_security"),
        ev("c-a2", "c", "answered", 70, agent="agent2"),
        ev("c-e", "c", "ended", 200),
    ]
    post(client, stream)
    before = rate(client, supervisor, *DAY)
    post(client, [ev("c-t-again", "c", "transferred", 60.4, queue="social_security")])
    assert rate(client, supervisor, *DAY) == before
    assert len(requests_of(client, supervisor, "c")) == 2


# -- 5. clock skew between PBX nodes ---------------------------------------------------------


def test_5_an_answer_stamped_just_before_its_offer_is_an_answer_at_wait_0(client, supervisor):
    post(
        client,
        [
            ev("d-o", "d", "offered", 10, queue="general"),
            ev("d-a", "d", "answered", 9.8, agent="agent1"),
            ev("d-e", "d", "ended", 110),
        ],
    )
    (only,) = requests_of(client, supervisor, "d")
    assert (only["outcome"], only["wait_seconds"]) == ("answered", 0)
    assert rate(client, supervisor, *DAY)["rate"] == 1.0


# -- 6. a call whose end never comes ---------------------------------------------------------------


def test_6_a_call_without_an_end_is_lost_not_waiting_for_days(client, supervisor):
    now = datetime.now(UTC)
    post(
        client,
        [
            # Offered 15 days ago; nothing else ever arrived.
            {
                "event_id": "old-o",
                "call_id": "old",
                "type": "offered",
                "queue": "general",
                "at": (now - timedelta(days=15)).isoformat(),
            },
            # Answered in time 9 hours ago, and its end never came.
            {
                "event_id": "talk-o",
                "call_id": "talk",
                "type": "offered",
                "queue": "general",
                "at": (now - timedelta(hours=9)).isoformat(),
            },
            {
                "event_id": "talk-a",
                "call_id": "talk",
                "type": "answered",
                "agent": "agent1",
                "at": (now - timedelta(hours=9) + timedelta(seconds=4)).isoformat(),
            },
        ],
    )
    wall = client.get("/api/v1/kpi/wall", headers=supervisor).json()
    assert wall["waiting"] == 0 and wall["longest_wait_seconds"] == 0
    old_day = (now - timedelta(days=16), now - timedelta(days=14))
    old = rate(client, supervisor, *old_day)
    assert (old["offered"], old["lost"], old["rate"]) == (0, 1, None)
    recent = rate(client, supervisor, now - timedelta(hours=10), now)
    # The answer happened and counts; only its end is missing.
    assert (recent["offered"], recent["rate"], recent["lost_talking"]) == (1, 1.0, 1)
    talk_is_today = (now - timedelta(hours=9)).astimezone(get_settings().tz).date() == (
        now.astimezone(get_settings().tz).date()
    )
    assert wall["lost_calls"] == (1 if talk_is_today else 0)
    behind = client.get(
        "/api/v1/kpi/answer-rate/calls",
        params={"start": old_day[0].isoformat(), "end": old_day[1].isoformat()},
        headers=supervisor,
    ).json()
    assert [r["counted_as"] for r in behind["calls"]] == ["lost"]


# -- 7. a changed setting takes effect without a rebuild -----------------------------------------


def test_7_changed_thresholds_take_effect_without_a_rebuild(client, supervisor, monkeypatch):
    from tests.hotline.kpi.test_answer_rate import crafted_stream

    post(client, crafted_stream())
    assert rate(client, supervisor, *DAY)["rate"] == 0.4  # read from the hourly buckets
    try:
        monkeypatch.setenv("HOTLINE_SHORT_ABANDON_SECONDS", "10")
        get_settings.cache_clear()
        figures = rate(client, supervisor, *DAY)
        assert (figures["offered"], figures["short_abandoned"]) == (9, 1)
        assert figures["rate"] == round(4 / 9, 6)
        monkeypatch.setenv("HOTLINE_ANSWER_THRESHOLD_SECONDS", "16")
        get_settings.cache_clear()
        assert rate(client, supervisor, *DAY)["rate"] == round(5 / 9, 6)  # c3 at 16 s
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert rate(client, supervisor, *DAY)["rate"] == 0.4
