"""Agents' states follow the call events: on the call when they answer, into after-call work
when the call leaves them (a transfer) or ends, whether the events come one by one or in a
batch."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from hotline.calls import service as calls_service
from hotline.calls.models import AgentStateChange
from hotline.core import db

TZ = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 27, 10, 0, 0, tzinfo=TZ)
CTI = {"X-CTI-Token": "development-cti-token"}


def ev(event_id, type_, seconds, **extra):
    at = (BASE + timedelta(seconds=seconds)).isoformat()
    return {"event_id": event_id, "call_id": "t1", "type": type_, "at": at, **extra}


TRANSFERRED_CALL = [
    ev("t1-o", "offered", 0, queue="general", caller="13800000009"),
    ev("t1-a", "answered", 5, agent="agentA"),
    ev("t1-t", "transferred", 20, queue="social_security"),
    ev("t1-a2", "answered", 30, agent="agentB"),
    ev("t1-e", "ended", 50),
]


@pytest.fixture
def queues(database):
    with db.transaction() as session:
        calls_service.seed_queues(session)


@pytest.mark.parametrize("batched", [True, False], ids=["one batch", "one by one"])
def test_a_transfer_frees_the_first_agent_and_the_end_frees_the_second(client, queues, batched):
    batches = [TRANSFERRED_CALL] if batched else [[e] for e in TRANSFERRED_CALL]
    for batch in batches:
        response = client.post("/api/v1/calls/events", json=batch, headers=CTI)
        assert response.status_code == 200, response.text
    with db.transaction() as session:
        states = {a.username: (a.state, a.current_call_id) for a in calls_service.agents(session)}
        changes = [
            (c.username, c.state, (c.at - BASE).total_seconds())
            for c in session.scalars(
                select(AgentStateChange).order_by(AgentStateChange.at, AgentStateChange.id)
            )
        ]
    assert states == {"agentA": ("after_call_work", None), "agentB": ("after_call_work", None)}
    assert changes == [
        ("agentA", "on_call", 5.0),
        ("agentA", "after_call_work", 20.0),
        ("agentB", "on_call", 30.0),
        ("agentB", "after_call_work", 50.0),
    ]
