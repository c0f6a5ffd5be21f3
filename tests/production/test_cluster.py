"""Several ``hotline serve`` processes and rq workers on PostgreSQL and Redis act as one system.

Two API processes on their own ports (as behind a proxy) and two workers, each with its rq
scheduler, on a private PostgreSQL and Redis (see cluster.py): events reach websocket clients
of every process, a scheduled job runs once, and nothing a request needs lives in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from tests.production.cluster import (
    FAST_WORKERS,
    MARKET,
    Api,
    Cluster,
    Listener,
    building_clusters,
    shared_postgres,
    ticket_body,
    urgent_ticket_with_reminder_in,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def system() -> Iterator[tuple[Cluster, list[Api]]]:
    """Two API processes and two workers; these tests change data, never the processes."""
    with building_clusters(shared_postgres()) as make:
        cluster = make(**FAST_WORKERS)
        apis = [cluster.serve(), cluster.serve()]
        cluster.worker("w1")
        cluster.worker("w2")
        cluster.wait_healthy(*apis)
        cluster.wait_workers("w1", "w2")
        yield cluster, apis


def test_events_reach_websocket_clients_of_every_process(system):
    cluster, (api1, api2) = system
    supervisor = cluster.token(api1, "supervisor")
    market = cluster.token(api1, "market")
    listeners = {
        "supervisor@1": Listener([api1.ws_url], supervisor),
        "supervisor@2": Listener([api2.ws_url], supervisor),
        "market@2": Listener([api2.ws_url], market),
    }
    try:
        for listener in listeners.values():
            listener.wait_connected()
        numbers = []
        for api in (api1, api2):
            with api.client(cluster.token(api1, "agent")) as http:
                response = http.post("/api/v1/tickets", json=ticket_body())
                assert response.status_code == 201, response.text
                assert response.json()["lead_department"] == MARKET
                numbers.append(response.json()["number"])

        for name, listener in listeners.items():
            wait_for(
                lambda listener=listener: set(numbers) <= set(listener.numbers()),
                timeout=20,
                what=f"{name} to see tickets {numbers}",
            )
        # One event log: the same event carries the same id on every process.
        ids = {
            name: {
                e["data"]["number"]: e["id"]
                for e in listener.events
                if e["event"] == "ticket.created" and e["topic"] == f"tickets.dept.{MARKET}"
            }
            for name, listener in listeners.items()
        }
        assert ids["supervisor@1"] == ids["supervisor@2"] == ids["market@2"]
    finally:
        for listener in listeners.values():
            listener.close()


def test_a_scheduled_reminder_runs_once_with_two_schedulers(system):
    cluster, (api1, _api2) = system
    connection = cluster.redis.client()
    # Both workers run a scheduler; rq's lock lets one of them move due jobs at a time.
    assert connection.get("rq:scheduler-lock:default") is not None

    with api1.client(cluster.token(api1, "agent")) as http:
        response = http.post("/api/v1/tickets", json=urgent_ticket_with_reminder_in(4))
    assert response.status_code == 201, response.text
    number = response.json()["number"]
    ticket_id = cluster.scalar("SELECT id FROM tickets WHERE number = :n", n=number)

    registry = ScheduledJobRegistry("default", connection=connection)
    # The job id is sla-reminder:{ticket}:{which}:{label}:{deadline}, made safe for rq.
    prefix = f"sla-reminder_{ticket_id}_accept_"
    job_id = wait_for(
        lambda: next((j for j in registry.get_job_ids() if j.startswith(prefix)), None),
        timeout=20,
        what="the reminder to be scheduled",
    )
    job = Job.fetch(job_id, connection=connection)
    wait_for(
        lambda: job.get_status(refresh=True) == "finished",
        timeout=30,
        what=f"reminder job {job_id} to finish",
    )
    assert job.return_value() == "reminded"

    reminders = cluster.scalar(
        "SELECT count(*) FROM ticket_actions WHERE ticket_id = :t AND action = 'reminder'",
        t=ticket_id,
    )
    assert reminders == 1
    # rq kept one result per execution: it ran once, not twice with the second doing nothing.
    assert [r.type.name for r in job.results()] == ["SUCCESSFUL"]
    assert job_id not in registry.get_job_ids()
    assert job_id not in Queue("default", connection=connection).job_ids


def test_nothing_a_request_needs_lives_in_one_process(system):
    cluster, (api1, api2) = system
    agent = cluster.token(api1, "agent")  # a token from one process is good on the other

    # Ticket numbers come from the database: concurrent creation on both processes never
    # hands out the same number twice.
    def create(i: int) -> str:
        api = (api1, api2)[i % 2]
        with api.client(agent) as http:
            response = http.post("/api/v1/tickets", json=ticket_body(f"拱北的商店不退货，第{i}次"))
        assert response.status_code == 201, response.text
        return response.json()["number"]

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(create, range(16)))
    assert len(set(numbers)) == 16

    # A ticket created through one process is accepted through the other.
    with api2.client(cluster.token(api2, "market")) as http:
        accepted = http.post(f"/api/v1/tickets/{numbers[0]}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"

    # A routing change made through one process is what the other routes by, at once: the
    # rule cache of each process is checked against the revision in the database.
    preview = {"text": "商店不退货", "address": "珠海测试新村", "matter_code": "SC-01"}
    with api2.client(agent) as http:
        assert http.post("/api/v1/routing/preview", json=preview).json()["location"]["town"] is None
        gongbei = {**preview, "address": "香洲区拱北夏湾"}
        town = http.post("/api/v1/routing/preview", json=gongbei).json()["location"]["town"]
    with api1.client(cluster.token(api1, "admin")) as http:
        saved = http.put("/api/v1/routing/places/测试新村", json={"town": town["code"]})
    assert saved.status_code == 200, saved.text
    with api2.client(agent) as http:
        after = http.post("/api/v1/routing/preview", json=preview).json()
    assert after["location"]["town"] == town
    assert after["department"]["code"] == MARKET
