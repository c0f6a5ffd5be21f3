"""Redis faults, automated: the embedded server stopped and killed under load, an external
Redis restarted empty, a worker killed with SIGKILL.

Each test builds its own system on private servers (cluster.py): real ``hotline serve`` and
``hotline worker`` processes; the shared PostgreSQL and Redis of the machine are never touched.
"""

from __future__ import annotations

import os
import re
import signal
import time

import httpx
import pytest

from tests.production.cluster import (
    FAST_WORKERS,
    Api,
    Cluster,
    HotlineProcess,
    Loader,
    building_clusters,
    shared_postgres,
    stop_all,
    ticket_body,
    wait_for,
)

pytestmark = pytest.mark.slow

# Look at Redis's run_id every second instead of every five: the tests wait less.
QUICK_WATCH = {"redis_watch_seconds": "1"}
RECONCILED_LOG_LINE = "asked again for the scheduled jobs of a Redis not seen before"
_JOB_TICKET = re.compile(rb"^rq:job:sla-(reminder|deadline)_(\d+)_accept_")


@pytest.fixture
def make_cluster():
    with building_clusters(shared_postgres()) as make:
        yield make


def _tickets_without_jobs(cluster: Cluster, numbers: list[str]) -> list[str]:
    """The tickets among ``numbers`` that lack their accept reminder or deadline job in rq."""
    ids = dict(cluster.rows("SELECT number, id FROM tickets WHERE number = ANY(:n)", n=numbers))
    have: dict[int, set[bytes]] = {}
    for key in cluster.redis.client().scan_iter(match="rq:job:sla-*", count=1000):
        found = _JOB_TICKET.match(key)
        if found:
            have.setdefault(int(found.group(2)), set()).add(found.group(1))
    return [n for n in numbers if have.get(ids[n]) != {b"reminder", b"deadline"}]


def _health(api: Api) -> tuple[int, dict]:
    response = api.health()
    return response.status_code, response.json()


def _is_ok(api: Api) -> bool:
    status, body = _health(api)
    return status == 200 and body["status"] == "ok"


def _reconciliations(api: Api) -> float:
    text = httpx.get(f"{api.base_url}/metrics", timeout=10).text
    found = re.search(r"^hotline_redis_reconciliations_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_embedded_redis_stopped_then_killed_under_load_stays_one_server_and_loses_no_job(
    make_cluster,
):
    cluster = make_cluster(embedded_redis=True, **FAST_WORKERS, **QUICK_WATCH)
    api = cluster.serve()
    worker = cluster.worker("w1")
    cluster.wait_healthy(api)
    cluster.wait_workers("w1")
    server = cluster.redis.pid()
    loader = Loader([api], cluster.token(api, "agent"), pause=0.1)
    try:
        wait_for(lambda: len(loader.created()) >= 5, timeout=30, what="the load to run")

        # Stopped (SIGSTOP) for 12 s: the server holds the data dir without answering.
        os.kill(server, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            seen_degraded = 0
            while time.monotonic() - stopped < 12:  # the stop lasts 12 s, on purpose
                status, body = _health(api)
                assert status == 503 and body["status"] == "degraded", body
                assert body["degraded"] == ["redis"], body
                assert body["redis"]["state"] == "not answering", body
                assert str(server) in body["redis"]["error"], body
                seen_degraded += 1
                assert cluster.redis.servers() == [server], "a second redis-server started"
                time.sleep(0.5)
        finally:
            os.kill(server, signal.SIGCONT)
        assert seen_degraded >= 5
        wait_for(lambda: _is_ok(api), timeout=30, what="/healthz ok after SIGCONT")
        assert cluster.redis.servers() == [server]

        # Killed (SIGKILL) under load: the system starts it again from its append-only file.
        before_kill = len(loader.created())
        wait_for(lambda: len(loader.created()) >= before_kill + 5, timeout=30, what="more load")
        os.kill(server, signal.SIGKILL)

        def recovered() -> bool:
            status, body = _health(api)
            servers = cluster.redis.servers()
            # Truthful: never ok while no server runs (the API may start one while answering).
            if status == 200 and not servers:
                raise AssertionError(f"/healthz said ok with no redis-server: {body}")
            assert status == 200 or body["status"] == "degraded", body
            return status == 200 and body["status"] == "ok" and servers not in ([], [server])

        lies: list[str] = []

        def recovered_noting_lies() -> bool:
            try:
                return recovered()
            except AssertionError as exc:
                lies.append(str(exc))
                return False

        wait_for(recovered_noting_lies, timeout=30, what="a new redis-server and /healthz ok")
        assert lies == []
        assert len(cluster.redis.servers()) == 1
        after_kill = len(loader.created())
        wait_for(lambda: len(loader.created()) >= after_kill + 5, timeout=30, what="more load")
    finally:
        loader.stop()
    created = loader.created()
    assert loader.failures() == [], "no request failed, during the faults or after them"

    # Every ticket has its jobs, also those rq took just before the kill (asked for again).
    wait_for(
        lambda: not _tickets_without_jobs(cluster, created),
        timeout=30,
        what="every ticket to have its reminder and deadline jobs",
    )
    assert len(cluster.redis.servers()) == 1
    cluster.wait_workers("w1")
    assert worker.running() and api.running()

    # Both processes leave politely: the last one stops the server it no longer needs.
    stop_all([api, worker], timeout=15)
    wait_for(
        lambda: cluster.redis.servers() == [],
        timeout=20,
        what="the embedded Redis to stop with its last user",
    )


def _worker_reconciliations(worker: HotlineProcess) -> int:
    return worker.log_path.read_text(errors="replace").count(RECONCILED_LOG_LINE)


def test_an_external_redis_restarted_empty_has_its_jobs_asked_for_again(make_cluster):
    cluster = make_cluster(**QUICK_WATCH)
    api = cluster.serve()
    worker = cluster.worker("w1")
    cluster.wait_healthy(api)
    cluster.wait_workers("w1")
    agent = cluster.token(api, "agent")
    numbers = []
    with api.client(agent) as http:
        for i in range(3):
            response = http.post("/api/v1/tickets", json=ticket_body(f"拱北商店不退货 {i}"))
            assert response.status_code == 201, response.text
            numbers.append(response.json()["number"])
    assert _tickets_without_jobs(cluster, numbers) == []
    # The server seen first was reconciled once (nobody had), by the API or by the worker.
    wait_for(
        lambda: _reconciliations(api) + _worker_reconciliations(worker) == 1,
        timeout=20,
        what="the first reconciliation",
    )
    before = _reconciliations(api) + _worker_reconciliations(worker)

    cluster.redis.stop()
    for leftover in cluster.redis.dir.iterdir():  # empty: as a Redis without persistence
        if leftover.name != "redis.log":
            if leftover.is_dir():
                for inner in leftover.iterdir():
                    inner.unlink()
                leftover.rmdir()
            else:
                leftover.unlink()
    cluster.redis.start()
    assert cluster.redis.client().dbsize() == 0

    # Once, by whichever process saw the new server first: counted in the API's /metrics,
    # logged by a worker (which has no /metrics).
    wait_for(
        lambda: _reconciliations(api) + _worker_reconciliations(worker) == before + 1,
        timeout=20,
        what="the reconciliation to be counted",
    )
    wait_for(
        lambda: not _tickets_without_jobs(cluster, numbers),
        timeout=30,
        what="every ticket's jobs back in rq",
    )
    # The running worker put itself back into the emptied server's list of workers.
    cluster.wait_workers("w1", timeout=20)
    assert _reconciliations(api) + _worker_reconciliations(worker) == before + 1
    wait_for(lambda: _is_ok(api), timeout=20, what="/healthz ok with the worker listed")


def test_a_worker_killed_with_sigkill_leaves_healthz_within_the_grace(make_cluster):
    cluster = make_cluster(**FAST_WORKERS)
    api = cluster.serve()
    victim, survivor = cluster.worker("w1"), cluster.worker("w2")
    cluster.wait_healthy(api)
    cluster.wait_workers("w1", "w2")
    wait_for(
        lambda: _health(api)[1]["workers"]["names"] == ["w1", "w2"],
        timeout=20,
        what="both workers in /healthz",
    )
    victim.kill()
    killed = time.monotonic()
    # rq keeps its registration for another minute; its heartbeats stopped at once.
    grace = int(FAST_WORKERS["worker_heartbeat_seconds"]) + int(
        FAST_WORKERS["worker_heartbeat_grace_seconds"]
    )
    gone_after = None
    while time.monotonic() - killed < grace + 6:  # watched past the grace, on purpose
        names = _health(api)[1]["workers"]["names"]
        assert "w2" in names, "a running worker was reported missing"
        if gone_after is None and "w1" not in names:
            gone_after = time.monotonic() - killed
        time.sleep(0.25)
    assert gone_after is not None and gone_after <= grace + 2, gone_after
    assert survivor.running()
