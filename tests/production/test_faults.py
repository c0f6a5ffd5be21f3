"""Faults, automated: a worker killed mid-job, Redis stopped under load, PostgreSQL restarted,
an API process killed under its websocket clients.

Each test builds its own system on private servers (cluster.py) and breaks it on purpose;
the shared PostgreSQL and Redis of the machine are never touched.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.job import Job

from tests.production.cluster import (
    FAST_WORKERS,
    MARKET,
    Listener,
    Loader,
    alive,
    building_clusters,
    descendants,
    shared_postgres,
    ticket_body,
    urgent_ticket_with_reminder_in,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def make_cluster():
    with building_clusters(shared_postgres()) as make:
        yield make


REMINDER = "dispatch.tickets.jobs.remind"


def _reminder_prefix(ticket_id: int) -> str:
    # sla-reminder:{ticket}:{which}:{label}:{deadline}, as hotline.core.jobs makes it safe
    return f"sla-reminder_{ticket_id}_accept_"


def _create(api, token: str, body: dict) -> dict:
    with api.client(token) as http:
        response = http.post("/api/v1/tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_worker_killed_mid_job_has_the_job_retried_and_nothing_sent_twice(make_cluster):
    cluster = make_cluster(**FAST_WORKERS)
    api = cluster.serve()
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.wait_healthy(api)
    cluster.wait_workers("w1", "w2")
    agent = cluster.token(api, "agent")

    number = _create(api, agent, urgent_ticket_with_reminder_in(3))["number"]
    ticket_id = cluster.ticket_id(number)
    prefix = _reminder_prefix(ticket_id)
    with cluster.ticket_locked(ticket_id):
        job_id = wait_for(lambda: cluster.job_of(prefix), timeout=30, what="the reminder to start")
        # Mid-job: the reminder's transaction waits for our lock on the ticket.
        wait_for(
            lambda: cluster.lock_waiters() >= 1, timeout=10, what="the job to wait on the lock"
        )
        job = Job.fetch(job_id, connection=cluster.redis.client())
        victim = cluster.process(job.worker_name)
        survivor = "w2" if victim.name == "w1" else "w1"
        family = descendants(victim.pid)
        assert family, "a forking worker runs its job in a work-horse child"
        victim.kill()
        # The work-horse and the scheduler end with their worker instead of running on
        # unsupervised: rq would retry the job elsewhere while the old one still ran.
        wait_for(
            lambda: not any(alive(pid) for pid in family),
            timeout=10,
            what=f"the children {family} of the killed worker to end",
        )
    # Our lock is gone: the killed job's transaction, whose client died, never commits.

    wait_for(
        lambda: job.get_status(refresh=True) == "finished",
        timeout=60,
        what="the abandoned reminder to be retried by the other worker",
        explain=lambda: cluster.rq_state(job_id),
    )
    job.refresh()
    assert job.worker_name == survivor
    assert job.return_value() == "reminded"
    assert cluster.actions(ticket_id, "reminder") == 1
    wait_for(lambda: cluster.outbox_size() == 0, timeout=20, what="the outbox to drain")
    told = cluster.events_by_topic("ticket.reminder", number)
    assert told.get(f"tickets.dept.{MARKET}") == 1
    assert set(told.values()) == {1}, told


def test_a_queue_whose_scheduler_died_is_scheduled_by_another_within_the_maintenance_interval(
    make_cluster,
):
    """Workers that start together split the per-queue scheduler locks. When the scheduler
    holding one queue's lock dies without giving it back (killed with its process group), the
    surviving scheduler must take that queue over once the lock expires, within the maintenance
    interval: rq alone waited two minutes, and a reminder due meanwhile waited with it."""
    cluster = make_cluster(**FAST_WORKERS)
    api = cluster.serve()
    dead_scheduler_lock_seconds = 3
    cluster.redis.client().set(
        "rq:scheduler-lock:default", "a-dead-scheduler", ex=dead_scheduler_lock_seconds
    )
    cluster.worker("w1")
    cluster.wait_healthy(api)
    cluster.wait_workers("w1")
    agent = cluster.token(api, "agent")

    number = _create(api, agent, urgent_ticket_with_reminder_in(2))["number"]
    prefix = _reminder_prefix(cluster.ticket_id(number))
    job_id = wait_for(
        lambda: cluster.job_of(prefix, registry="scheduled"),
        timeout=10,
        what="the reminder to be scheduled",
    )
    wait_for(
        lambda: cluster.job_of(prefix, registry="finished"),
        timeout=30,
        what="the reminder to run once the dead scheduler's lock expired",
        explain=lambda: cluster.rq_state(job_id),
    )


def test_two_runs_of_one_reminder_at_once_remind_once(make_cluster):
    """A job may run twice at the same time (a retry while a stalled run goes on): the ticket's
    row lock makes the second run see the first one's reminder instead of adding its own."""
    from dispatch.tickets import jobs

    cluster = make_cluster()
    with cluster.settings():
        from dispatch.routing.service import forget_cached_rules
        from dispatch.tickets import service
        from hotline.core.db import transaction
        from hotline.core.outbox import relay_once

        forget_cached_rules()  # rules cached from the suite's own database are not these

        received = datetime.now(UTC) - timedelta(minutes=30)
        with transaction() as session:
            ticket, _ = service.create(
                session,
                actor="agent",
                **{**ticket_body(urgent=True), "received_at": received},
            )
            ticket_id, number = ticket.id, ticket.number
        relay_once()
        job_id = cluster.job_of(_reminder_prefix(ticket_id), registry="scheduled")
        assert job_id, "the ticket's reminder was scheduled"
        args = Job.fetch(job_id, connection=cluster.redis.client()).args

        results: list[str] = []
        with cluster.ticket_locked(ticket_id):
            runs = [
                threading.Thread(target=lambda: results.append(jobs.remind(*args)))
                for _ in range(2)
            ]
            for run in runs:
                run.start()
            wait_for(lambda: cluster.lock_waiters() == 2, timeout=20, what="both runs to wait")
        for run in runs:
            run.join(timeout=30)
        relay_once()
        forget_cached_rules()

    assert sorted(results) == ["already reminded", "reminded"]
    assert cluster.actions(ticket_id, "reminder") == 1
    assert set(cluster.events_by_topic("ticket.reminder", number).values()) == {1}


def test_redis_stopped_for_30_s_under_load_loses_nothing(make_cluster):
    cluster = make_cluster(**FAST_WORKERS)
    api1, api2 = cluster.serve(), cluster.serve()
    worker = cluster.worker("w1")
    cluster.wait_healthy(api1, api2)
    cluster.wait_workers("w1")
    agent = cluster.token(api1, "agent")
    listener = Listener([api2.ws_url], cluster.token(api1, "supervisor"))
    listener.wait_connected()
    pids = {api.name: api.pid for api in (api1, api2)} | {"w1": worker.pid}

    # A reminder in flight when Redis goes: it finishes while Redis is down, so rq cannot record
    # it; rq's worker loop gives up on such an error, ours must start over once Redis is back.
    inflight = _create(api1, agent, urgent_ticket_with_reminder_in(2))["number"]
    inflight_id = cluster.ticket_id(inflight)
    loader = Loader([api1, api2], agent)
    try:
        with cluster.ticket_locked(inflight_id):
            wait_for(
                lambda: cluster.job_of(_reminder_prefix(inflight_id)),
                # Due in 2 s; on a loaded 2-core machine the worker's scheduler took over 30 s.
                timeout=60,
                what="the in-flight reminder to start",
            )
            wait_for(lambda: cluster.lock_waiters() >= 1, timeout=10, what="it to wait mid-job")
            wait_for(lambda: len(loader.created()) >= 5, timeout=30, what="the load to run")
            cluster.redis.stop()
            outage_began = time.monotonic()
            before_outage = len(loader.created())

        # Due while Redis is away: its job waits in the outbox, then runs when Redis is back.
        due_in_outage = _create(api2, agent, urgent_ticket_with_reminder_in(2))["number"]

        while time.monotonic() - outage_began < 30:  # the outage lasts 30 s, on purpose
            for api in (api1, api2):
                health = api.health()
                assert health.status_code == 503, health.text
                assert health.json()["status"] == "degraded"
                assert health.json()["degraded"] == ["redis"]
                assert health.json()["database"]["ok"] is True
            time.sleep(1.0)
        during_outage = len(loader.created()) - before_outage
        # Without pub/sub the gateway reads new events from the event log: consoles stay live.
        first_in_outage = loader.created()[before_outage]
        wait_for(
            lambda: first_in_outage in listener.numbers(),
            timeout=10,
            what="an event of the outage to reach the websocket while Redis is still away",
        )
        cluster.redis.start()

        for api in (api1, api2):
            wait_for(
                lambda api=api: api.health().status_code == 200,
                timeout=30,
                what=f"{api.name} /healthz back to 200",
            )
        after_outage = len(loader.created())
        wait_for(lambda: len(loader.created()) >= after_outage + 5, timeout=30, what="more load")
    finally:
        loader.stop()
    created = loader.created()

    assert during_outage >= 10, "the API kept creating tickets while Redis was down"
    assert loader.failures() == [], "no request failed, during the outage or after it"
    # No ticket lost: every 201 is in the database, once.
    numbers = {n for (n,) in cluster.rows("SELECT number FROM tickets")}
    assert set(created) <= numbers and len(created) == len(set(created))
    # Nothing restarted: the same processes answer.
    assert all(p.running() for p in cluster.processes if p.name in pids)
    assert {p.name: p.pid for p in cluster.processes if p.name in pids} == pids
    cluster.wait_workers("w1")

    # Events: the websocket client got every ticket, in order, none twice.
    wanted = set(created) | {inflight, due_in_outage}
    wait_for(
        lambda: wanted <= set(listener.numbers()),
        timeout=60,
        what="every ticket's event to reach the websocket client",
    )
    listener.close()
    assert len(listener.numbers()) == len(set(listener.numbers()))
    assert listener.ids() == sorted(set(listener.ids()))

    # Jobs: the outbox drains, every ticket's deadline job is in rq, and the reminders ran
    # exactly once: the one due during the outage, and the one that was in flight.
    wait_for(lambda: cluster.outbox_size() == 0, timeout=30, what="the outbox to drain")
    queue = Queue("default", connection=cluster.redis.client())
    scheduled = set(queue.scheduled_job_registry.get_job_ids())
    for number in created:
        prefix = f"sla-deadline_{cluster.ticket_id(number)}_accept_"
        assert any(j.startswith(prefix) for j in scheduled), f"deadline job of {number}"
    for number in (due_in_outage, inflight):
        ticket_id = cluster.ticket_id(number)
        wait_for(
            lambda ticket_id=ticket_id: cluster.actions(ticket_id, "reminder") >= 1,
            timeout=60,
            what=f"the reminder of {number} to run",
        )
    inflight_job = Job.fetch(
        wait_for(
            lambda: cluster.job_of(_reminder_prefix(inflight_id), registry="finished"),
            timeout=60,
            what="the in-flight reminder, abandoned in the outage, to be retried",
        ),
        connection=cluster.redis.client(),
    )
    assert inflight_job.return_value() == "already reminded"
    for number in (due_in_outage, inflight):
        assert cluster.actions(cluster.ticket_id(number), "reminder") == 1
        assert set(cluster.events_by_topic("ticket.reminder", number).values()) == {1}


def test_the_api_recovers_by_itself_after_postgresql_restarts(make_cluster):
    cluster = make_cluster(**FAST_WORKERS)
    api = cluster.serve()
    cluster.worker("w1")
    cluster.wait_healthy(api)
    agent = cluster.token(api, "agent")
    listener = Listener([api.ws_url], cluster.token(api, "supervisor"))
    listener.wait_connected()
    loader = Loader([api], agent)
    try:
        wait_for(lambda: len(loader.created()) >= 5, timeout=30, what="the load to run")
        # A fast restart under load: every connection of the pool is cut mid-use.
        base = len(loader.created())
        cluster.pg.restart()
        wait_for(
            lambda: len(loader.created()) >= base + 5,
            timeout=30,
            what="creation to work again after the restart",
        )
        # Then a longer stop, as a failover or crash recovery takes: longer than the gateway's
        # 15 s heartbeat, so it looks for missed events while the database is away.
        cluster.pg.stop()
        stopped = time.monotonic()
        health = api.health()
        assert health.status_code == 503
        assert health.json()["status"] == "degraded" and health.json()["degraded"] == ["database"]
        while time.monotonic() - stopped < 17:  # the database is away 17 s, on purpose
            time.sleep(1.0)
        cluster.pg.start()
        wait_for(lambda: api.health().status_code == 200, timeout=30, what="/healthz 200 again")
        recovered = len(loader.answers)
        wait_for(lambda: len(loader.answers) >= recovered + 10, timeout=30, what="more load")
    finally:
        loader.stop()

    answers = loader.answers
    later = answers[recovered:]
    assert all(status == 201 for status, _, _ in later), later
    # Meanwhile: a clean 503 in JSON, quickly, never a 500, a hang or a dropped connection.
    for status, detail, seconds in loader.failures():
        assert status == 503, (status, detail)
        assert '"code":"database.unavailable"' in detail.replace(" ", ""), detail
        assert seconds < 10
    assert loader.failures(), "requests during the outage were refused"
    # The websocket side survived too: tickets created after the outage reach the client.
    fresh = _create(api, agent, ticket_body())["number"]
    wait_for(lambda: fresh in listener.numbers(), timeout=30, what="a new event over the socket")
    listener.close()


def test_clients_of_a_killed_api_process_resume_on_another_without_losing_events(make_cluster):
    cluster = make_cluster()
    api1, api2 = cluster.serve(), cluster.serve()
    cluster.worker("w1")
    cluster.wait_healthy(api1, api2)
    supervisor = cluster.token(api1, "supervisor")
    # Connected to api1 first; api2 is where they go when it disappears (as behind a proxy).
    listeners = [Listener([api1.ws_url, api2.ws_url], supervisor) for _ in range(3)]
    loader = Loader([api2], cluster.token(api2, "agent"))
    try:
        for listener in listeners:
            listener.wait_connected()
        wait_for(
            lambda: all(len(listener.numbers()) >= 3 for listener in listeners),
            timeout=30,
            what="events to flow to the clients of api1",
        )
        api1.kill()
        wait_for(
            lambda: all(listener.connections[-1] == api2.ws_url for listener in listeners),
            timeout=30,
            what="every client to reconnect to api2",
        )
        resumed_at = len(loader.created())
        wait_for(lambda: len(loader.created()) >= resumed_at + 5, timeout=30, what="more load")
    finally:
        loader.stop()
    created = loader.created()
    assert loader.failures() == []
    for listener in listeners:
        wait_for(
            lambda listener=listener: set(created) <= set(listener.numbers()),
            timeout=30,
            what="every client to have every ticket's event",
        )
        listener.close()
        # Resumed from its last id: nothing missed, nothing twice, in order, no resync needed.
        assert listener.numbers() == created
        assert listener.ids() == sorted(set(listener.ids()))
        assert listener.resyncs == []
        assert listener.hellos[-1] and listener.connections == [api1.ws_url, api2.ws_url]
    # Its clients gone, api2 stops at once on SIGTERM: a process being restarted does not wait
    # for sockets that already left (it did, up to the gateway's 15 s heartbeat).
    api2.process.terminate()
    api2.process.wait(timeout=5)
