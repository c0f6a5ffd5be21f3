"""The staffing plan from measured calls: after-call work measured from the agents' wrap-up
states, the staffing target apart from the alert's, and shrinkage.

One half hour (10:00–10:30, 2026-11-27, Asia/Shanghai) with 500 calls (1,000 an hour), each
answered after 5 s and talked 180 s: 50 Erlangs. Staffed for 90 % within 15 s, Erlang C needs
58 agents; every call followed by 60 s of wrap-up makes 240 s of work per call (66.7
Erlangs) and 77 agents. With 30 % shrinkage the roster is 77 / 0.7 = 110 (58 / 0.7 → 83).
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.calls.models import AgentStateChange
from hotline.core import db
from hotline.core.settings import get_settings
from tests.hotline.kpi.test_answer_rate import post, queues, supervisor  # noqa: F401

TZ = ZoneInfo("Asia/Shanghai")
SLOT = datetime(2026, 11, 27, 10, 0, tzinfo=TZ)
CALLS = 500


def calls() -> list[dict]:
    # One agent per call, so wrap-ups never overlap; the intake puts the agent into
    # after-call work when the call ends, and that lasts until the agent is ready again.
    events = []
    for i in range(CALLS):
        offered = SLOT + timedelta(seconds=3.6 * i)
        call = f"st{i}"
        events += [
            {"event_id": f"{call}-o", "call_id": call, "type": "offered",
             "at": offered.isoformat(), "queue": "general"},
            {"event_id": f"{call}-a", "call_id": call, "type": "answered",
             "at": (offered + timedelta(seconds=5)).isoformat(), "agent": f"wrap{i}"},
            {"event_id": f"{call}-e", "call_id": call, "type": "ended",
             "at": (offered + timedelta(seconds=185)).isoformat()},
        ]  # fmt: skip
    return events


def record_wrap_ups(seconds: float) -> None:
    """Each call's agent, in 话后整理 (after_call_work) since the call ended, ready again
    ``seconds`` later: until then, that wrap-up is still open and not counted."""
    with db.transaction() as session:
        for i in range(CALLS):
            ended = SLOT + timedelta(seconds=3.6 * i + 185)
            agent = f"wrap{i}"
            session.add(
                AgentStateChange(
                    username=agent, state="ready", at=ended + timedelta(seconds=seconds)
                )
            )


def plan_slot(client, headers) -> dict:
    response = client.get("/api/v1/kpi/staffing", params={"day": "2026-11-27"}, headers=headers)
    assert response.status_code == 200, response.text
    return next(row for row in response.json() if row["start"] == SLOT.isoformat())


@pytest.fixture
def staffing_settings(monkeypatch):
    monkeypatch.setenv("HOTLINE_STAFFING_TARGET", "0.9")
    monkeypatch.setenv("HOTLINE_ANSWER_RATE_TARGET", "0.5")  # the alert's: not staffed for
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_wrap_up_moves_the_need_from_58_to_77_agents(client, supervisor, staffing_settings):  # noqa: F811
    post(client, calls())
    before = plan_slot(client, supervisor)
    assert before["arrivals"] == CALLS
    assert (before["average_handle_seconds"], before["after_call_work_seconds"]) == (180.0, 0.0)
    assert (before["staffing_target"], before["shrinkage"]) == (0.9, 0.3)
    assert (before["erlang_c_agents"], before["erlang_c_roster"]) == (58, 83)

    record_wrap_ups(60)
    after = plan_slot(client, supervisor)
    assert after["after_call_work_seconds"] == 60.0
    assert after["workload_seconds"] == 240.0
    assert (after["erlang_c_agents"], after["erlang_c_roster"]) == (77, 110)


def test_the_defaults_staff_for_97_percent_with_30_percent_shrinkage(client, supervisor):  # noqa: F811
    post(client, calls())
    record_wrap_ups(60)
    row = plan_slot(client, supervisor)
    assert (row["staffing_target"], row["shrinkage"]) == (0.97, 0.3)
    # 66.7 Erlangs at 97 % within 15 s: 81 agents; 81 / 0.7 = 115.7 → 116 on the roster.
    assert (row["erlang_c_agents"], row["erlang_c_roster"]) == (81, 116)


def test_a_wrap_up_still_open_is_not_counted(client, supervisor, staffing_settings):  # noqa: F811
    post(client, calls())
    record_wrap_ups(60)
    with db.transaction() as session:  # in wrap-up since 11:00 and still there
        session.add(
            AgentStateChange(username="late", state="after_call_work", at=SLOT + timedelta(hours=1))
        )
    assert plan_slot(client, supervisor)["after_call_work_seconds"] == 60.0
