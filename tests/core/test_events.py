"""Events are published after commit over Redis, with ids kept in the database."""

import json
import threading

import pytest

from hotline.core import db
from hotline.core.events import all_events_after, events_after, publish_after_commit
from hotline.core.outbox import events_channel
from hotline.core.redis import get_redis

pytestmark = pytest.mark.usefixtures("database")


def test_events_get_increasing_ids_and_a_rolled_back_one_never_exists():
    with db.transaction() as session:
        publish_after_commit(session, "tickets.dept.XZ-MARKET", "ticket.created", {"n": 1})
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": 2})
    with pytest.raises(RuntimeError), db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": "never"})
        raise RuntimeError("rolled back")
    with db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": 3})
    with db.transaction() as session:
        everything = all_events_after(session, 0)
        assert [e["data"]["n"] for e in everything] == [1, 2, 3]
        ids = [e["id"] for e in everything]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert [e["data"]["n"] for e in all_events_after(session, ids[0])] == [2, 3]
        only_wall = events_after(session, 0, topics=["kpi."])
        assert [e["data"]["n"] for e in only_wall] == [2, 3]
        # An exact topic does not match a longer code that merely starts the same way.
        assert events_after(session, 0, topics=["tickets.dept.XZ"]) == []


def test_events_reach_redis_subscribers_after_commit():
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events_channel())
    pubsub.get_message(timeout=1)  # the subscription confirmation
    with db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"rate": 0.97})
        assert pubsub.get_message(timeout=0.2) is None  # nothing before the commit
    message = None
    for _ in range(50):
        message = pubsub.get_message(timeout=0.1)
        if message:
            break
    pubsub.close()
    assert message is not None
    body = json.loads(message["data"])
    assert body["type"] == "kpi.updated" and body["data"] == {"rate": 0.97} and body["id"] >= 1


def test_concurrent_publishers_never_reuse_an_id():
    def publish(worker: int) -> None:
        for i in range(10):
            with db.transaction() as session:
                publish_after_commit(session, "kpi.wall", "x", {"w": worker, "i": i})

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.transaction() as session:
        ids = [e["id"] for e in all_events_after(session, 0)]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_catch_up_api_filters_by_role(client, make_user):
    with db.transaction() as session:
        publish_after_commit(session, "tickets.dept.XZ-MARKET", "ticket.created", {"n": "mine"})
        publish_after_commit(session, "tickets.dept.C-HRSS", "ticket.created", {"n": "theirs"})
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": "wall"})
    department = make_user("xz", "department", departments=("XZ-MARKET",))
    supervisor = make_user("sup", "supervisor")
    seen = client.get("/api/v1/events?after=0", headers=department).json()
    assert [e["data"]["n"] for e in seen["events"]] == ["mine"]
    assert seen["last_id"] == 3
    assert len(client.get("/api/v1/events", headers=supervisor).json()["events"]) == 3


def test_installations_on_one_redis_server_hear_only_their_own_events(monkeypatch):
    """Pub/sub ignores database numbers: the channel carries the number instead."""
    from hotline.core.redis import reset_clients
    from hotline.core.settings import get_settings

    channels = {}
    for database in (3, 5):
        url = (
            get_settings().redis_url
            or f"unix://{get_redis().connection_pool.connection_kwargs['path']}"
        )
        base = url.rsplit("/", 1)[0] if url.startswith("redis://") else url.split("?")[0]
        monkeypatch.setenv(
            "HOTLINE_REDIS_URL",
            f"{base}/{database}" if url.startswith("redis://") else f"{base}?db={database}",
        )
        get_settings.cache_clear()
        reset_clients()
        channels[database] = events_channel()
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_clients()
    assert channels[3] != channels[5]
