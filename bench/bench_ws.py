"""Event-to-screen latency of the websocket gateway with 500 agent consoles and 10 walls.

Starts `hotline serve` over a fresh data dir (embedded SQLite and Redis, as `hotline demo`),
runs `hotline seed`, creates --clients agent users and --walls supervisors, and connects one
websocket per console and per wall (the websockets client library, asyncio). Then, round after
round, a telephony system posts a call through the API (POST /api/v1/calls/events: offered,
then answered by one of the agents). Each POST publishes, after its commit, ``calls.changed``
on ``calls.queues``, ``agent.state`` on ``calls.agents.<agent>`` and the screen pop
``call.answered`` on ``agent.<agent>``.

Consoles connect as the console page does, asking only for their own topics
(``?topics=agent.<me>,calls.agents.<me>,tickets.by.<me>``); walls ask for ``calls.``, ``kpi.``
and ``tickets.dept.``. Three configurations run in the same process, one after another:

  baseline      1 console and 1 wall
  consoles      --clients consoles and --walls walls, as the pages connect
  broadcast     the same, but every console takes every topic its role may see (what the
                consoles did before they asked for their own topics): shows what the
                narrowing saves

Latency = receipt of the event's frame at a client − the moment the POST that caused it was
sent, both on this process's monotonic clock. Series: the screen pop at the answering agent's
console, that agent's state change at its console, the queue change at every wall (and, in
broadcast, at every console). The clients share one asyncio process, so their own parsing is
part of the figure (the "screen" end is the client's loop, which is what a browser's would be).

    python bench/bench_ws.py [--clients 500] [--walls 10] [--rounds 100] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

REPO = Path(__file__).resolve().parents[1]
CTI = {"X-CTI-Token": "development-cti-token"}
TARGET_P99_MS = 200.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Receipts:
    """When each client received each event id; waiters learn when an id reached everyone."""

    expected: int = 0
    at: dict[int, list[float]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, event_id: int, moment: float) -> None:
        self.at.setdefault(event_id, []).append(moment)
        self.changed.set()

    async def wait_for(self, event_id: int, count: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.at.get(event_id, [])) < count:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                break
        return self.at.get(event_id, [])


def subprotocols(token: str) -> list[Subprotocol]:
    """The token as the gateway takes it: in Sec-WebSocket-Protocol, not in the logged URL."""
    return [Subprotocol("hotline.v1"), Subprotocol(f"bearer.{token}")]


async def listen(url: str, token: str, receipts: Receipts, ready: asyncio.Queue) -> None:
    async with connect(
        url, subprotocols=subprotocols(token), max_size=None, open_timeout=60, ping_interval=None
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        await ready.put(ws)
        await read_frames(ws, receipts)


async def read_frames(ws: ClientConnection, receipts: Receipts) -> None:
    try:
        async for message in ws:
            moment = time.perf_counter()
            frame = json.loads(message)
            if frame.get("type") == "event":
                receipts.note(frame["id"], moment)
    except Exception:  # noqa: BLE001 - a closed socket ends its reader
        return


def console_topics(agent: str) -> str:
    return f"agent.{agent},calls.agents.{agent},tickets.by.{agent}"


WALL_TOPICS = "calls.,kpi.,tickets.dept."


async def connect_all(urls: list[tuple[str, str]], receipts: Receipts) -> tuple:
    """Connect to each (url, token) of ``urls``."""
    ready: asyncio.Queue = asyncio.Queue()
    started = time.perf_counter()
    tasks = []
    # A few at a time: the server authenticates each one against the database.
    for index, (url, token) in enumerate(urls):
        tasks.append(asyncio.create_task(listen(url, token, receipts, ready)))
        if index % 50 == 49:
            await asyncio.sleep(0)
    sockets = [await asyncio.wait_for(ready.get(), 120) for _ in urls]
    return tasks, sockets, time.perf_counter() - started


def call_events(call_id: str, agent: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "event_id": f"{call_id}-offered",
            "type": "offered",
            "call_id": call_id,
            "at": (now - timedelta(seconds=4)).isoformat(),
            "queue": "general",
            "caller": "13800138000",
        },
        {
            "event_id": f"{call_id}-answered",
            "type": "answered",
            "call_id": call_id,
            "at": now.isoformat(),
            "agent": agent,
        },
    ]


@dataclass
class Series:
    screen_pop_ms: list[float] = field(default_factory=list)  # call.answered, one console
    own_state_ms: list[float] = field(default_factory=list)  # agent.state, that console
    wall_ms: list[float] = field(default_factory=list)  # calls.changed, every wall
    console_broadcast_ms: list[float] = field(default_factory=list)  # broadcast: every console
    post_ms: list[float] = field(default_factory=list)  # the POST's own round trip
    missing: int = 0
    server_cpu_ms: float = 0.0  # per round
    client_cpu_ms: float = 0.0


@dataclass
class Audience:
    agents: list[str]
    walls: int
    broadcast: bool  # consoles take every visible topic
    consoles: Receipts = field(default_factory=Receipts)
    wall_receipts: Receipts = field(default_factory=Receipts)


async def run_rounds(
    http: httpx.AsyncClient,
    tokens: dict[str, str],
    audience: Audience,
    rounds: int,
    interval: float,
) -> Series:
    series = Series()
    agents = audience.agents
    last_id = (
        await http.get("/api/v1/events", params={"after": 2**53}, headers=auth(tokens[agents[0]]))
    ).json()["last_id"]
    everyone = len(agents) if audience.broadcast else 1
    for round_no in range(rounds):
        agent = agents[round_no % len(agents)]
        call_id = f"bench-{uuid.uuid4().hex[:10]}"
        sent = time.perf_counter()
        response = await http.post(
            "/api/v1/calls/events", json=call_events(call_id, agent), headers=CTI
        )
        series.post_ms.append((time.perf_counter() - sent) * 1000)
        response.raise_for_status()
        # The ids the POST's events got, read back from the event log as the agent who
        # answered: only that agent may see its screen pop.
        log = (
            await http.get("/api/v1/events", params={"after": last_id}, headers=auth(tokens[agent]))
        ).json()
        last_id = log["last_id"]
        by_topic = {e["topic"]: e["id"] for e in log["events"]}
        queues, pop = by_topic["calls.queues"], by_topic[f"agent.{agent}"]
        state = by_topic[f"calls.agents.{agent}"]

        def after(moments: list[float], sent: float = sent) -> list[float]:
            return [(moment - sent) * 1000 for moment in moments]

        got = await audience.consoles.wait_for(pop, 1, timeout=10)
        series.screen_pop_ms += after(got)
        series.missing += 1 - len(got)
        got = await audience.consoles.wait_for(state, everyone, timeout=10)
        # In broadcast every console has it; the agent's own is not told apart: take the
        # slowest as its upper bound.
        series.own_state_ms += after(got)[-1:]
        series.missing += everyone - len(got)
        got = await audience.wall_receipts.wait_for(queues, audience.walls, timeout=10)
        series.wall_ms += after(got)
        series.missing += audience.walls - len(got)
        if audience.broadcast:
            got = await audience.consoles.wait_for(queues, len(agents), timeout=10)
            series.console_broadcast_ms += after(got)
            series.missing += len(agents) - len(got)
        for receipts in (audience.consoles, audience.wall_receipts):
            for event_id in (queues, pop, state):
                receipts.at.pop(event_id, None)
        await asyncio.sleep(interval)
    return series


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell server from client work."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def summary_rows(label: str, values: list[float]) -> str:
    return (
        f"{label:<42}{len(values):>8}{statistics.median(values):>9.1f}"
        f"{percentile(values, 0.95):>9.1f}{percentile(values, 0.99):>9.1f}{max(values):>9.1f}"
    )


def prepare(env: dict[str, str], agents: list[str], supervisors: list[str]) -> dict[str, str]:
    """Reference data with `hotline seed`; users and their tokens straight in the database
    (one argon2 hash shared by all: hashing 500 passwords would only time argon2)."""
    subprocess.run(
        [sys.executable, "-m", "hotline", "seed"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    os.environ.update({k: v for k, v in env.items() if k.startswith("HOTLINE_")})
    from hotline.core.auth import create_access_token, hash_password
    from hotline.core.db import transaction
    from hotline.core.models import User, UserRole

    shared_hash = hash_password("bench-password")
    with transaction() as session:
        for name in agents + supervisors:
            user = User(username=name, password_hash=shared_hash, full_name="")
            role = "supervisor" if name in supervisors else "agent"
            user.roles = [UserRole(role=role)]
            session.add(user)
    return {name: create_access_token(name) for name in agents + supervisors}


async def measure(
    url: str,
    agents: list[str],
    supervisors: list[str],
    tokens: dict[str, str],
    server_pid: int,
    args,
) -> None:
    base_ws = url.replace("http://", "ws://") + "/ws?last_id=0"
    limits = httpx.Limits(max_keepalive_connections=4)
    configurations = [
        ("baseline (1 console, 1 wall)", Audience(agents[:1], 1, broadcast=False)),
        (
            f"{len(agents)} consoles + {len(supervisors)} walls",
            Audience(agents, len(supervisors), broadcast=False),
        ),
        (
            f"broadcast: {len(agents)} consoles take every topic",
            Audience(agents, len(supervisors), broadcast=True),
        ),
    ]
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        results = {}
        for label, audience in configurations:
            console_urls = [
                (
                    base_ws + ("" if audience.broadcast else f"&topics={console_topics(a)}"),
                    tokens[a],
                )
                for a in audience.agents
            ]
            wall_urls = [
                (f"{base_ws}&topics={WALL_TOPICS}", tokens[s])
                for s in supervisors[: audience.walls]
            ]
            c_tasks, c_sockets, connect_s = await connect_all(console_urls, audience.consoles)
            w_tasks, w_sockets, _ = await connect_all(wall_urls, audience.wall_receipts)
            # Warm-up rounds are not counted: the first queries fill caches.
            await run_rounds(http, tokens, audience, 5, args.interval)
            server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
            series = await run_rounds(http, tokens, audience, args.rounds, args.interval)
            series.server_cpu_ms = (cpu_seconds(server_pid) - server_cpu) * 1000 / args.rounds
            series.client_cpu_ms = (time.process_time() - client_cpu) * 1000 / args.rounds
            results[label] = (series, connect_s)
            for ws in c_sockets + w_sockets:
                await ws.close()
            await asyncio.gather(*c_tasks, *w_tasks, return_exceptions=True)

    print(f"\nwebsocket event-to-screen latency, {args.rounds} rounds, SQLite + embedded Redis")
    print(f"{'series':<58}{'samples':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, (series, connect_s) in results.items():
        print(label)
        print(summary_rows("  screen pop at the agent's console", series.screen_pop_ms))
        print(summary_rows("  agent state at the agent's console", series.own_state_ms))
        print(summary_rows("  queue change at every wall", series.wall_ms))
        if series.console_broadcast_ms:
            print(summary_rows("  queue change at every console", series.console_broadcast_ms))
        print(summary_rows("  POST round trip", series.post_ms))
        print(
            f"  connected in {connect_s:.2f} s; frames not received: {series.missing}; "
            f"CPU per round: server {series.server_cpu_ms:.1f} ms, "
            f"clients {series.client_cpu_ms:.1f} ms"
        )
    labels = list(results)
    base, big, broadcast = (results[label][0] for label in labels)

    def worst_p99(series: Series) -> float:
        screens = series.screen_pop_ms + series.own_state_ms + series.wall_ms
        return max(percentile(v, 0.99) for v in (series.screen_pop_ms, series.wall_ms, screens))

    p99 = worst_p99(big)
    print(
        f"worst p99, {labels[1]}: {p99:.1f} ms; ratio to baseline {p99 / worst_p99(base):.2f}; "
        f"target p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'}"
    )
    print(
        f"server CPU per round, broadcast / as the pages connect: "
        f"{broadcast.server_cpu_ms / big.server_cpu_ms:.2f}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--walls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hotline-bench-ws-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_LOG_LEVEL="WARNING")
        agents = [f"agent{n:04d}" for n in range(args.clients)]
        supervisors = [f"wall{n:02d}" for n in range(args.walls)]
        tokens = prepare(env, agents, supervisors)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "hotline", "serve", "--port", str(port)], env=env, cwd=REPO
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("hotline serve did not start")
                time.sleep(0.2)
            print(
                f"python {sys.version.split()[0]}, hotline serve (1 process), "
                f"{args.clients} agents, {args.walls} walls"
            )
            asyncio.run(measure(url, agents, supervisors, tokens, server.pid, args))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            from hotline.core.redis import stop_embedded_redis

            stop_embedded_redis(data_dir)


if __name__ == "__main__":
    main()
