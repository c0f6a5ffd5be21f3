"""The traffic simulator: the seeded model on its own, then against a real `hotline serve`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from hotline.calls import simulator as sim
from hotline.calls.cli import calls_app
from hotline.calls.service import CallEventIn, derive_offers

TZ = ZoneInfo("Asia/Shanghai")
MIDNIGHT = datetime(2026, 11, 24, tzinfo=TZ)  # a Tuesday
CTI_TOKEN = "development-cti-token"


def day(config: sim.SimulationConfig | None = None, seed: int = 2017) -> list[sim.SimItem]:
    config = config or sim.SimulationConfig()
    return list(
        sim.generate_traffic(config, start=MIDNIGHT, seed=seed, until=MIDNIGHT + timedelta(days=1))
    )


@pytest.fixture(scope="module")
def one_day() -> list[sim.SimItem]:
    return day()


def call_events(items: list[sim.SimItem]) -> dict[str, list[dict]]:
    calls: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        if item.kind == "call_event":
            calls[item.body["call_id"]].append(item.body)
    return calls


def when(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


# ------------------------------------------------------------------------- the model alone


def test_a_day_has_the_configured_number_of_calls_shaped_by_the_hour(one_day):
    arrivals = [
        when(e).astimezone(TZ).hour
        for events in call_events(one_day).values()
        for e in events
        if e["type"] == "ivr_entered"
    ]
    # Poisson with mean 4,426: the standard deviation is 67, so 5 % is more than 3 of them.
    assert abs(len(arrivals) - 4426) < 0.05 * 4426
    by_hour = Counter(arrivals)
    peak = min(by_hour[h] for h in (9, 10, 15, 16))
    night = max(by_hour[h] for h in (1, 2, 3, 4))
    assert peak > 10 * night
    assert by_hour[12] < by_hour[10]  # the lunch dip


def test_the_seats_split_as_in_the_2017_report(one_day):
    first_queue = [
        next(e["queue"] for e in events if e["type"] == "offered")
        for events in call_events(one_day).values()
        if any(e["type"] == "offered" for e in events)
    ]
    share = first_queue.count("social_security") / len(first_queue)
    assert round(sim.SOCIAL_SECURITY_SHARE, 3) == 0.506
    assert abs(share - sim.SOCIAL_SECURITY_SHARE) < 0.03
    assert set(first_queue) == {"general", "social_security"}


def test_every_call_is_a_valid_life_from_ivr_to_its_end(one_day):
    calls = call_events(one_day)
    assert [i.at for i in one_day] == sorted(i.at for i in one_day)
    outcomes: Counter[str] = Counter()
    for call_id, events in calls.items():
        parsed = [CallEventIn.model_validate(e) for e in events]
        for event in parsed:
            event.check()
        types = [e.type for e in parsed]
        assert types[0] == "ivr_entered" and types[-1] == "ended", (call_id, types)
        assert types.count("ended") == 1
        assert len({e.event_id for e in parsed}) == len(parsed)
        times = [e.at for e in parsed]
        assert times == sorted(times)
        if "answered" in types:
            assert types.index("answered") > types.index("offered")
        for offer in derive_offers(parsed):
            assert offer.outcome != "waiting"  # every offered request came to an end
            if offer.answered_at:
                assert offer.answered_at >= offer.offered_at
                assert offer.wait_seconds >= 2  # the phone rings first
            outcomes[offer.outcome] += 1
        if "transferred" in types:
            transfer = next(e for e in parsed if e.type == "transferred")
            assert transfer.queue == "social_security"
            assert next(e for e in parsed if e.type == "offered").queue == "general"
    assert outcomes["answered"] > 0.8 * sum(outcomes.values())
    assert 0.02 < outcomes["abandoned"] / sum(outcomes.values()) < 0.2
    assert sum(1 for events in calls.values() if events[-2]["type"] == "ivr_entered") > 0


def test_agents_report_ready_break_and_transfers_and_file_tickets_for_answered_calls(one_day):
    states = [i.body for i in one_day if i.kind == "agent_state"]
    assert {s["state"] for s in states} == {"ready", "break", "after_call_work"}
    assert {s["username"] for s in states} == {
        f"sim-{queue}-{n:02d}" for queue in ("general", "social_security") for n in range(1, 16)
    }
    transfers = sum(
        1 for i in one_day if i.kind == "call_event" and i.body["type"] == "transferred"
    )
    assert sum(1 for s in states if s["state"] == "after_call_work") == transfers > 0

    calls = call_events(one_day)
    answered = {c for c, events in calls.items() if any(e["type"] == "answered" for e in events)}
    tickets = [i for i in one_day if i.kind == "ticket"]
    assert {t.body["call_id"] for t in tickets} <= answered
    assert 0.2 < len(tickets) / len(answered) < 0.4
    for ticket in tickets:
        assert ticket.at > when(calls[ticket.body["call_id"]][-1])  # after the call
        assert ticket.body["matter_code"] and ticket.body["content"]
        assert ticket.body["caller_phone"] == calls[ticket.body["call_id"]][0]["caller"]


def test_the_same_seed_gives_the_same_traffic_and_another_seed_does_not():
    start, until = MIDNIGHT + timedelta(hours=9), MIDNIGHT + timedelta(hours=10)
    config = sim.SimulationConfig()
    first = list(sim.generate_traffic(config, start=start, seed=7, until=until))
    again = list(sim.generate_traffic(config, start=start, seed=7, until=until))
    other = list(sim.generate_traffic(config, start=start, seed=8, until=until))
    assert first == again
    assert first != other


def test_a_typhoon_surge_quadruples_arrivals_and_raises_abandons():
    start = MIDNIGHT + timedelta(hours=9)
    window = sim.Surge(start=0, end=3600, factor=4.0)

    def hour(surge):
        items = list(
            sim.generate_traffic(
                sim.SimulationConfig(surge=surge),
                start=start,
                seed=11,
                until=start + timedelta(hours=1),
            )
        )
        types = Counter(i.body["type"] for i in items if i.kind == "call_event")
        return items, types

    calm_items, calm = hour(None)
    storm_items, storm = hour(window)
    assert 3.4 < storm["ivr_entered"] / calm["ivr_entered"] < 4.6
    assert storm["abandoned"] / storm["offered"] > 2 * calm["abandoned"] / calm["offered"]
    typhoon = {m for _c, m, _a in sim.TICKET_TOPICS["typhoon"]}
    assert not any(i.body["matter_code"] in typhoon for i in calm_items if i.kind == "ticket")
    assert any(i.body["matter_code"] in typhoon for i in storm_items if i.kind == "ticket")


def test_without_draining_everything_ends_at_the_stop():
    start = MIDNIGHT + timedelta(hours=10)
    until = start + timedelta(minutes=20)
    items = list(
        sim.generate_traffic(sim.SimulationConfig(), start=start, seed=3, until=until, drain=False)
    )
    assert items[-1].at == until and all(i.at <= until for i in items)
    for call_id, events in call_events(items).items():
        assert events[-1]["type"] == "ended", call_id
        offers = derive_offers([CallEventIn.model_validate(e) for e in events])
        assert all(o.outcome != "waiting" for o in offers)


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="calls_per_day"):
        sim.SimulationConfig(calls_per_day=0)
    with pytest.raises(ValueError, match="24"):
        sim.SimulationConfig(hourly_profile=(1.0,) * 23)


def test_an_unreachable_server_is_a_clear_error():
    with pytest.raises(sim.SimulationError, match="cannot reach"):
        sim.run_simulation(url=f"http://127.0.0.1:{_free_port()}", backfill_hours=0.1, seed=1)


# ------------------------------------------------------------------ against `hotline serve`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hotline(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`hotline serve` on a free port with an empty data dir, seeded, with agent1 and agent2."""
    data_dir = tmp_path_factory.mktemp("simulated") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_LOG_LEVEL="WARNING")
    _hotline(env, "seed")
    # Side by side: each is mostly interpreter start-up and a password hash.
    creating = [
        subprocess.Popen(
            [sys.executable, "-m", "hotline", "user", "create", username, "--role", "agent"]
            + ["--password", "demo12345"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for username in ("agent1", "agent2")
    ]
    assert [p.wait(timeout=60) for p in creating] == [0, 0]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--port", str(port)], env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "hotline serve exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hotline serve did not become healthy"
            time.sleep(0.1)  # polling the server until it answers
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        from hotline.core.redis import stop_embedded_redis

        stop_embedded_redis(data_dir)


def _agent_headers(url: str) -> dict[str, str]:
    token = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": "agent1", "password": "demo12345"}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_backfill_of_one_hour_fills_the_real_system(server):
    report = sim.run_simulation(
        url=server,
        cti_token=CTI_TOKEN,
        config=sim.SimulationConfig(calls_per_day=8000),
        seed=42,
        backfill_hours=1,
    )
    now = datetime.now(UTC)

    assert report.calls > 5 and report.rejected == 0 and report.problems == []
    assert report.accepted == report.events_sent
    assert report.last_at < now and report.first_at >= now - timedelta(hours=1, minutes=30)
    headers = _agent_headers(server)
    queues = httpx.get(f"{server}/api/v1/calls/queues", headers=headers)
    assert queues.status_code == 200
    by_code = {q["queue"]: q for q in queues.json()}
    assert {"general", "social_security"} <= set(by_code)
    assert all(q["waiting"] == 0 for q in queues.json())  # every simulated call ended

    rate = httpx.get(
        f"{server}/api/v1/kpi/answer-rate",
        params={
            "start": (now - timedelta(hours=2)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
        },
        headers=headers,
    ).json()
    offered = rate["offered"]
    details = [
        httpx.get(f"{server}/api/v1/calls/{call_id}", headers=headers).json()
        for call_id in report.call_ids
    ]
    # Every call that left the IVR for a queue counts; those who hung up in the IVR do not.
    # How many hang up depends on the hour the backfill covers, so count them, not a share.
    reached_a_queue = [d for d in details if any(e["type"] == "offered" for e in d["events"])]
    assert len(reached_a_queue) >= report.calls // 2
    assert offered >= len(reached_a_queue)
    assert sum(len(d["requests"]) for d in details) >= offered
    assert report.tickets > 0 and report.ticket_failures == 0
    assert sum(len(d["tickets"]) for d in details) == report.tickets
    agents = httpx.get(f"{server}/api/v1/agents", headers=headers).json()
    simulated = [a for a in agents if a["username"].startswith("sim-")]
    assert len(simulated) == 30 and {a["state"] for a in simulated} == {"logged_out"}


@pytest.mark.slow
def test_real_time_run_stops_by_itself_after_its_duration(server):
    started = time.monotonic()
    result = CliRunner().invoke(
        calls_app,
        [
            "simulate",
            "--url",
            server,
            "--cti-token",
            CTI_TOKEN,
            "--duration",
            "3",
            "--speed",
            "120",
            "--agents",
            "2",
            "--seed",
            "9",
            "--calls-per-day",
            "20000",
            "--no-tickets",
        ],
    )
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert 3 <= elapsed < 20
    assert "real time ×120 (seed 9)" in result.output
    headers = _agent_headers(server)
    assert all(
        q["waiting"] == 0
        for q in httpx.get(f"{server}/api/v1/calls/queues", headers=headers).json()
    )
    agents = {
        a["username"]: a["state"]
        for a in httpx.get(f"{server}/api/v1/agents", headers=headers).json()
    }
    assert agents["sim-general-01"] == agents["sim-social_security-02"] == "logged_out"


@pytest.mark.slow
def test_a_wrong_cti_token_stops_the_run(server):
    result = CliRunner().invoke(
        calls_app,
        ["simulate", "--url", server, "--cti-token", "wrong", "--backfill", "0.2", "--seed", "1"],
    )
    assert result.exit_code == 1
    assert "refused the CTI token" in result.output


def _wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)  # polling the server until the condition holds


@pytest.mark.slow
def test_a_ready_person_in_the_console_gets_a_call_answered_to_them(server):
    import threading

    headers = _agent_headers(server)
    me = f"{server}/api/v1/agents/me/state"
    assert httpx.put(me, json={"state": "ready"}, headers=headers).status_code == 200
    stop = threading.Event()
    run = threading.Thread(
        target=sim.run_simulation,
        kwargs={
            "url": server,
            "cti_token": CTI_TOKEN,
            # Few simulated callers: the call to look at is the person's.
            "config": sim.SimulationConfig(calls_per_day=10, agents={"general": 1}),
            "seed": 5,
            "stop": stop,
            "file_tickets": False,
        },
    )
    run.start()
    try:

        def agent1() -> dict:
            agents = httpx.get(f"{server}/api/v1/agents", headers=headers).json()
            return next(a for a in agents if a["username"] == "agent1")

        on_call = _wait_for(lambda: (a := agent1())["state"] == "on_call" and a, "a call")
        call_id = on_call["current_call_id"]
        assert call_id.startswith(sim.CALL_ID_PREFIX)
        detail = httpx.get(f"{server}/api/v1/calls/{call_id}", headers=headers).json()
        answered = [e for e in detail["events"] if e["type"] == "answered"]
        assert [e["agent"] for e in answered] == ["agent1"]
        assert detail["requests"][0]["queue"] == "general"

        # The person leaves the call in the console: the simulated caller hangs up.
        after = httpx.put(me, json={"state": "after_call_work"}, headers=headers)
        assert after.status_code == 200

        def ended() -> bool:
            call = httpx.get(f"{server}/api/v1/calls/{call_id}", headers=headers).json()
            return any(e["type"] == "ended" for e in call["events"])

        _wait_for(ended, "the end of the person's call")
    finally:
        stop.set()
        run.join(timeout=30)
        httpx.put(me, json={"state": "logged_out"}, headers=headers)
    assert not run.is_alive()
    assert all(
        q["waiting"] == 0
        for q in httpx.get(f"{server}/api/v1/calls/queues", headers=headers).json()
    )
