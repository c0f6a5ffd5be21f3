"""The websocket gateway: authentication, topics by role, replay by last id, slow clients."""

import asyncio
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from agents_ui.gateway import Client, Gateway
from hotline.core import db
from hotline.core.auth import Principal
from hotline.core.events import last_event_id, publish_after_commit, topic_matches


def token_of(headers):
    return headers["Authorization"].split()[1]


def publish(topic, type_, **data):
    with db.transaction() as session:
        publish_after_commit(session, topic, type_, data)


def next_event(ws):
    while True:
        message = ws.receive_json()
        if message["type"] in ("event", "resync"):
            return message


def test_a_socket_needs_a_valid_token(client):
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws?token=bad"):
        pass
    assert refused.value.code == 4401


def test_department_gets_only_its_topics_live(client, make_user):
    department = make_user("xz", "department", departments=("XZ-MARKET",))
    with client.websocket_connect(f"/ws?token={token_of(department)}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["user"] == "xz"
        publish("tickets.dept.C-HRSS", "ticket.created", n="not mine")
        publish("kpi.wall", "kpi.updated", n="not mine either")
        publish("tickets.dept.XZ-MARKET", "ticket.created", n="mine")
        event = next_event(ws)
        assert event["data"] == {"n": "mine"} and event["topic"] == "tickets.dept.XZ-MARKET"


def test_a_console_asks_for_its_own_topics_and_gets_no_more(client, make_user):
    agent = make_user("amy", "agent")
    topics = "agent.amy,calls.agents.amy,tickets.by.amy,agent.bob"
    with client.websocket_connect(f"/ws?token={token_of(agent)}&topics={topics}") as ws:
        hello = ws.receive_json()
        assert hello["topics"] == ["agent.amy", "calls.agents.amy", "tickets.by.amy"]
        publish("calls.agents.bob", "agent.state", n="another agent")
        publish("calls.queues", "calls.changed", n="the queues")
        publish("tickets.dept.XZ-MARKET", "ticket.created", n="a department's")
        publish("tickets.by.amy", "ticket.created", n="mine")
        assert next_event(ws)["data"] == {"n": "mine"}


def test_asking_for_more_than_the_role_allows_is_cut_down(client, make_user):
    department = make_user("xz", "department", departments=("XZ-MARKET",))
    topics = "tickets.,calls.,agent.sup"
    with client.websocket_connect(f"/ws?token={token_of(department)}&topics={topics}") as ws:
        assert ws.receive_json()["topics"] == ["tickets.dept.XZ-MARKET"]
        publish("tickets.by.xz", "ticket.created", n="not a department topic")
        publish("calls.queues", "calls.changed", n="not for departments")
        publish("tickets.dept.XZ-MARKET", "ticket.created", n="mine")
        assert next_event(ws)["data"] == {"n": "mine"}


def test_replay_after_a_reconnect_keeps_to_the_topics_asked_for(client, make_user):
    supervisor = make_user("sup", "supervisor")
    token = token_of(supervisor)
    publish("kpi.wall", "kpi.updated", n=0)
    with db.transaction() as session:
        last_id = last_event_id(session)  # what a client saw last before it went away
    publish("calls.queues", "calls.changed", n="unwanted")
    publish("kpi.wall", "kpi.updated", n="wanted")
    with client.websocket_connect(f"/ws?token={token}&last_id={last_id}&topics=kpi.") as ws:
        ws.receive_json()
        assert next_event(ws)["data"] == {"n": "wanted"}


def test_reconnecting_with_the_last_id_replays_what_was_missed(client, make_user):
    supervisor = make_user("sup", "supervisor")
    token = token_of(supervisor)
    with client.websocket_connect(f"/ws?token={token}") as ws:
        ws.receive_json()
        publish("kpi.wall", "kpi.updated", n=1)
        first = next_event(ws)
    # Disconnected: these happen while the client is away.
    publish("kpi.wall", "kpi.updated", n=2)
    publish("kpi.wall", "kpi.updated", n=3)
    with client.websocket_connect(f"/ws?token={token}&last_id={first['id']}") as ws:
        ws.receive_json()
        replayed = [next_event(ws)["data"]["n"], next_event(ws)["data"]["n"]]
        publish("kpi.wall", "kpi.updated", n=4)
        live = next_event(ws)
    assert replayed == [2, 3] and live["data"]["n"] == 4
    assert live["id"] > first["id"]


def test_ping_is_answered_with_the_newest_id(client, make_user):
    supervisor = make_user("sup", "supervisor")
    with client.websocket_connect(f"/ws?token={token_of(supervisor)}") as ws:
        ws.receive_json()
        ws.send_text("ping")
        assert ws.receive_json()["type"] == "pong"


def _principal(name, *roles, departments=()):
    return Principal(1, name, frozenset(roles), frozenset(departments))


def test_a_slow_client_is_dropped_and_never_holds_others_back():
    async def scenario():
        gateway = Gateway()
        slow = Client(_principal("slow", "supervisor"), ["kpi."], asyncio.Queue(5))
        fast = Client(_principal("fast", "supervisor"), ["kpi."], asyncio.Queue(100))
        gateway.add(slow)
        gateway.add(fast)
        for i in range(1, 51):
            gateway._fan_out({"id": i, "topic": "kpi.wall", "type": "x", "data": {}, "at": None})
            if fast.queue.qsize() > 40:
                while not fast.queue.empty():
                    fast.queue.get_nowait()
        return slow, fast, gateway

    slow, fast, gateway = asyncio.run(scenario())
    assert slow.dropped is True and slow.queue.qsize() == 5
    assert fast.dropped is False and gateway.last_id == 50


def test_a_gap_in_pubsub_is_filled_from_the_log(database):
    publish("kpi.wall", "kpi.updated", n=1)
    publish("kpi.wall", "kpi.updated", n=2)
    publish("kpi.wall", "kpi.updated", n=3)

    async def scenario():
        gateway = Gateway()
        watcher = Client(_principal("sup", "supervisor"), ["kpi."], asyncio.Queue(100))
        gateway.add(watcher)
        with db.transaction() as session:
            from hotline.core.events import all_events_after

            log = all_events_after(session, 0)
        # Redis lost the first two messages: only the third arrives.
        await gateway.deliver(log[2])
        frames = [watcher.queue.get_nowait() for _ in range(watcher.queue.qsize())]
        return [json.loads(f.text)["data"]["n"] for f in frames]

    assert asyncio.run(scenario()) == [1, 2, 3]


_segment = st.sampled_from(["calls", "agents", "a1", "a2", "kpi", "tickets", "dept", "X"])
_topic = st.lists(_segment, min_size=1, max_size=4).map(".".join)
_pattern = st.one_of(_topic, _topic.map(lambda t: t + "."))


@given(
    topic=_topic,
    subscriptions=st.lists(st.lists(_pattern, min_size=1, max_size=3), max_size=8),
)
def test_an_event_reaches_exactly_the_clients_whose_patterns_match_its_topic(topic, subscriptions):
    async def scenario():
        gateway = Gateway()
        clients = [
            Client(_principal(f"u{n}", "supervisor"), sorted(set(patterns)), asyncio.Queue(10))
            for n, patterns in enumerate(subscriptions)
        ]
        for client in clients:
            gateway.add(client)
        if clients:
            gateway.remove(clients[0])
        gateway._fan_out({"id": 1, "topic": topic, "type": "x", "data": {}, "at": None})
        return clients

    clients = asyncio.run(scenario())
    for n, client in enumerate(clients):
        expected = n > 0 and any(topic_matches(topic, p) for p in client.patterns)
        # Once at most, even when two of its patterns match.
        assert client.queue.qsize() == (1 if expected else 0), (topic, client.patterns)


def test_a_quiet_socket_is_sent_a_heartbeat_and_a_busy_one_is_not(monkeypatch):
    from agents_ui import gateway as gateway_module

    monkeypatch.setattr(gateway_module, "HEARTBEAT_SECONDS", 0.3)

    async def scenario():
        gateway = Gateway()
        quiet = Client(_principal("quiet", "supervisor"), ["kpi."], asyncio.Queue(10))
        busy = Client(_principal("busy", "supervisor"), ["calls."], asyncio.Queue(10))
        gateway.add(quiet)
        gateway.add(busy)
        beats = asyncio.create_task(gateway._heartbeats())
        try:
            # The pump stamps last_sent on every frame it writes; a busy socket stays fresh.
            async with asyncio.timeout(10):
                while quiet.queue.empty():
                    busy.last_sent = time.monotonic() + 3600
                    await asyncio.sleep(0.01)
        finally:
            beats.cancel()
        return quiet.queue.get_nowait(), busy.queue.qsize()

    beat, busy_queued = asyncio.run(scenario())
    assert beat is gateway_module._HEARTBEAT
    assert busy_queued == 0
