"""Security issue 17, item 1: no request for topics ever widens what a caller receives.

Every role × every kind of topic request × (live, replay from ``last_id``) must receive exactly
the events the table below allows, and ``GET /api/v1/events`` likewise. The expected sets come
from ``MAY_SEE`` and ``requested_match`` in this file, never from ``hotline.core.topics``: a bug
there must not be able to move the expectation along with the result.
"""

from __future__ import annotations

import pytest

from hotline.core import db
from hotline.core.events import last_event_id, publish_after_commit

DEPARTMENT = "XZ-MARKET"
OTHER_DEPARTMENT = "C-HEALTH"
ROLES = ("agent", "supervisor", "dispatcher", "admin", "editor", "department")
HOTLINE_ROLES = {"agent", "supervisor", "dispatcher", "admin"}


def user_of(role: str) -> str:
    return f"u-{role}"


# One event on each of these topics; "{me}" is the connecting user's own name.
TOPICS = (
    f"tickets.dept.{DEPARTMENT}",
    f"tickets.dept.{OTHER_DEPARTMENT}",
    "tickets.by.someone",
    "calls.queues",
    "calls.agents.someone",
    "kpi.wall",
    "kb.articles",
    "agent.{me}",
    "agent.someone",
    "auth.sessions",
    "zzz",
)


def may_see(role: str, topic: str, me: str) -> bool:
    """The table of what each role may receive (issue 17 and docs/architecture.md)."""
    if topic == f"agent.{me}":
        return True
    branch = topic.split(".")[0]
    if role in HOTLINE_ROLES:
        return branch in {"tickets", "calls", "kpi", "kb"}
    if role == "editor":
        return branch == "kb"
    if role == "department":
        return topic == f"tickets.dept.{DEPARTMENT}"
    raise AssertionError(role)


OWN_REQUEST = {
    "agent": "agent.{me}",
    "supervisor": "kpi.",
    "dispatcher": "tickets.",
    "admin": "calls.",
    "editor": "kb.",
    "department": f"tickets.dept.{DEPARTMENT}",
}
REQUESTS = {
    "none": lambda role: "",
    "own": lambda role: OWN_REQUEST[role],
    "other_department": lambda role: f"tickets.dept.{OTHER_DEPARTMENT}",
    "unknown": lambda role: "zzz",
    "mixed": lambda role: f"zzz,tickets.dept.{OTHER_DEPARTMENT},{OWN_REQUEST[role]},auth.",
}


def requested_match(requested: str, topic: str) -> bool:
    patterns = [p for p in requested.split(",") if p]
    if not patterns:
        return True
    return any(topic.startswith(p) if p.endswith(".") else topic == p for p in patterns)


def expected_topics(role: str, requested: str) -> set[str]:
    me = user_of(role)
    concrete = {t.format(me=me) for t in TOPICS}
    return {
        t for t in concrete if may_see(role, t, me) and requested_match(requested.format(me=me), t)
    }


def publish_everything(role: str) -> int:
    """One event per topic (one transaction); returns the id of the last one."""
    with db.transaction() as session:
        for topic in TOPICS:
            concrete = topic.format(me=user_of(role))
            publish_after_commit(session, concrete, "probe", {"topic": concrete})
    with db.transaction() as session:
        return last_event_id(session)


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def events_until_pong(ws, *, at_least: int = 0) -> list[dict]:
    """Every event frame before a pong whose ``last_id`` is at least ``at_least``."""
    events = []
    while True:
        ws.send_text("ping")
        while True:
            message = ws.receive_json()
            if message["type"] == "event":
                events.append(message)
            elif message["type"] == "pong":
                break
            else:
                assert message["type"] == "heartbeat", message
        if message["last_id"] >= at_least:
            return events


def drain_live(ws, last_id: int) -> list[dict]:
    # The first pong that knows ``last_id`` proves the gateway has queued every event up to
    # it; the frames queued before that pong may still trail it, the next pong follows them.
    events = events_until_pong(ws, at_least=last_id)
    return events + events_until_pong(ws)


@pytest.fixture
def users(make_user):
    return {
        role: token_of(
            make_user(
                user_of(role), role, departments=(DEPARTMENT,) if role == "department" else ()
            )
        )
        for role in ROLES
    }


def ws_path(token: str, requested: str, last_id: int | None = None) -> str:
    path = f"/ws?token={token}"
    if requested:
        path += f"&topics={requested}"
    if last_id is not None:
        path += f"&last_id={last_id}"
    return path


@pytest.mark.parametrize("role", ROLES)
def test_live_events_follow_the_table(client, users, role):
    requests = {kind: make(role).format(me=user_of(role)) for kind, make in REQUESTS.items()}
    sockets = {}
    try:
        for kind, requested in requests.items():
            ws = client.websocket_connect(ws_path(users[role], requested)).__enter__()
            sockets[kind] = ws
            assert ws.receive_json()["type"] == "hello"
        last_id = publish_everything(role)
        for kind, ws in sockets.items():
            got = [e["topic"] for e in drain_live(ws, last_id)]
            assert len(got) == len(set(got)), (kind, got)
            assert set(got) == expected_topics(role, requests[kind]), (role, kind)
    finally:
        for ws in sockets.values():
            ws.__exit__(None, None, None)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(REQUESTS))
def test_replay_follows_the_table(client, users, role, kind):
    requested = REQUESTS[kind](role).format(me=user_of(role))
    with db.transaction() as session:
        before = last_event_id(session)
    publish_everything(role)
    with client.websocket_connect(ws_path(users[role], requested, before)) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello"
        got = [e["topic"] for e in events_until_pong(ws)]
    assert len(got) == len(set(got)), got
    assert set(got) == expected_topics(role, requested)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(REQUESTS))
def test_the_events_api_follows_the_table(client, users, role, kind):
    requested = REQUESTS[kind](role).format(me=user_of(role))
    with db.transaction() as session:
        before = last_event_id(session)
    publish_everything(role)
    params: dict[str, str | int] = {"after": before}
    if requested:
        params["topics"] = requested
    response = client.get(
        "/api/v1/events", params=params, headers={"Authorization": f"Bearer {users[role]}"}
    )
    assert response.status_code == 200, response.text
    got = [e["topic"] for e in response.json()["events"]]
    assert len(got) == len(set(got)), got
    assert set(got) == expected_topics(role, requested)


def test_no_pattern_is_no_event_and_everything_needs_its_own_function(database):
    from hotline.core.events import all_events_after, events_after

    publish_everything("agent")
    with db.transaction() as session:
        assert events_after(session, 0, topics=[]) == []
        with pytest.raises(TypeError):
            events_after(session, 0)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            events_after(session, 0, topics=None)  # type: ignore[arg-type]
        assert len(all_events_after(session, 0)) == len(TOPICS)
