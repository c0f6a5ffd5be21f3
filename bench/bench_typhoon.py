"""A typhoon-day peak against the whole system on PostgreSQL and Redis, then more until it breaks.

Sets up a fresh database on the PostgreSQL server of HOTLINE_DATABASE_URL (never the database
that URL names; dropped at the end) and a private, empty database number on the Redis server
of HOTLINE_REDIS_URL (emptied at the end), runs `hotline db upgrade` and `hotline seed`, creates
the users, and starts the system as production would: N `hotline serve` processes on ports of
their own (the clients spread over them as a proxy would: each user keeps to one process) and M
`hotline worker` processes.

Then, open loop (every request is sent at its scheduled time whatever the answers before it;
latency counts from that scheduled time, so a server that falls behind cannot hide it):

  call events     a telephony system posts each event as it happens (POST /api/v1/calls/events,
                  one event per request): offered, then answered by a free agent or abandoned,
                  then ended; the agent goes back to ready after its after-call work
                  (PUT /api/v1/agents/me/state, as the console does);
  tickets         agents file tickets (POST /api/v1/tickets, realistic requests from
                  bench_tickets.build_requests), each after one routing preview
                  (POST /api/v1/routing/preview) as the console shows before submitting;
  consoles        --consoles websockets, one per agent, asking for their own topics as the
                  console page does;
  walls           --walls websockets of supervisors (calls., kpi., tickets.dept.), each
                  reloading GET /api/v1/kpi/wall when events arrive, at most every 2 s (as
                  the wall page coalesces its reloads).

Event-to-screen latency is measured on every frame every client receives: the moment the
frame is read minus the event's own time stamp (``at``, taken in the request's transaction;
server and clients share this machine's clock).

Phase 1 (steady) runs --call-events/s and --tickets/s for --seconds. Targets: zero errors, API
p99 under 200 ms, event-to-screen p99 under 500 ms. Phase 2 (--ramp) multiplies both rates by
--step every --step-seconds until a target is missed, and reports where it broke and why: the
CPU taken by the API processes, the workers, PostgreSQL, Redis and this load generator.

    HOTLINE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    HOTLINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
    python bench/bench_typhoon.py [--seconds 300] [--call-events 50] [--tickets 20]
        [--consoles 500] [--walls 10] [--api-processes 2] [--rq-workers 1] [--ramp]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tickets import (  # noqa: E402 - the sibling benchmark's request mix and helpers
    CpuMeter,
    bench_env,
    build_requests,
    free_port,
    fresh_database,
    hotline,
    libpq_url,
    private_redis,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench-password"
API_P99_MS = 200.0
SCREEN_P99_MS = 500.0
WALL_RELOAD_SECONDS = 2.0
QUEUES = ["general"] * 7 + ["social_security"] * 3  # the seed's split, roughly
MAX_IN_FLIGHT = 256
TIMELINE_SECONDS = 10
# A call: offered; after a 2-12 s wait answered, or abandoned (ABANDON_SHARE of them, and any
# that find every agent busy); ended after TALK_SECONDS; the agent ready again 3-10 s later.
# Talk is compressed from real minutes so 500 agents carry the peak (~17 calls/s x ~21 s held
# = ~360 busy) without running out, which would quietly drop the ended and ready requests.
ABANDON_SHARE = 0.05
EVENTS_PER_CALL = 3 - ABANDON_SHARE
TALK_SECONDS = (5, 25)
PEAK_CALL_EVENTS = 50  # the typhoon peak, which TALK_SECONDS is sized for
CALLER = "13800000000"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Window:
    """What one phase (or ramp step) measured."""

    label: str
    call_rate: float
    ticket_rate: float
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    screen_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    frames: Counter = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)  # how late requests left this process
    cpu: dict[str, float] = field(default_factory=dict)  # while the load was sent
    server: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    seconds: float = 0.0
    tickets_created: int = 0
    calls: int = 0
    no_free_agent: int = 0  # abandoned because every agent was busy: the load fell short
    started: float = 0.0  # perf_counter at the window's start
    # (seconds into the window it was due, latency ms) per request: when it went wrong
    timeline: list[tuple[float, float]] = field(default_factory=list)

    def call_events_per_second(self) -> float:
        return len(self.latency_ms["call event"]) / max(self.seconds, 1e-9)

    def api_all(self) -> list[float]:
        return [v for values in self.latency_ms.values() for v in values]

    def screen_all(self) -> list[float]:
        return [v for values in self.screen_ms.values() for v in values]

    def verdict(self) -> list[str]:
        missed = []
        if sum(self.errors.values()):
            missed.append(f"{sum(self.errors.values())} errors")
        api = percentile(self.api_all(), 0.99)
        if api >= API_P99_MS:
            missed.append(f"API p99 {api:.0f} ms")
        screen = percentile(self.screen_all(), 0.99)
        if screen >= SCREEN_P99_MS:
            missed.append(f"event-to-screen p99 {screen:.0f} ms")
        # The load itself fell short (agents ran out, or the generator lagged): not a pass.
        sent = self.call_events_per_second()
        if sent < 0.97 * self.call_rate:
            missed.append(f"only {sent:.1f} of {self.call_rate:.0f} call events/s sent")
        return missed


@dataclass
class Answer:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class RawPool:
    """Keep-alive HTTP/1.1 connections to one API process, one request at a time each.

    httpx costs about 1 ms of CPU a request in this process, which on two shared cores is
    CPU taken from the system under test; this sends the same bytes with a fraction of it.
    """

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        # uvicorn closes a connection idle for 5 s; like any HTTP client, send again on a new
        # connection when a kept-alive one turns out closed before it answered anything.
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since > 3:
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer, method, path, body, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                continue
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, method, path, body, headers)

    async def _exchange(self, reader, writer, method, path, body, headers) -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            writer.write((head + "\r\n").encode() + (body or b""))
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection")
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value == "close":
                    close = True
            answer = Answer(int(status_line.split()[1]), await reader.readexactly(length))
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return answer

    def close(self) -> None:
        for _reader, writer, _since in self.idle:
            writer.close()
        self.idle.clear()


class Load:
    """The clients: HTTP requests on a schedule, and the websockets that watch the results."""

    def __init__(self, bases: list[str], tokens: dict[str, str], cti: str, args) -> None:
        self.bases = bases
        self.tokens = tokens
        self.cti = {"X-CTI-Token": cti}
        self.args = args
        self.agents = [name for name in tokens if name.startswith("agent")]
        self.free_agents: deque[str] = deque(self.agents)
        self.walls = [name for name in tokens if name.startswith("wall")]
        self.window: Window | None = None
        self.requests = itertools.cycle(build_requests(5000, seed=2026))
        self.rng = random.Random(8)
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.tasks: set[asyncio.Task] = set()
        self.wall_dirty: dict[str, bool] = {name: False for name in self.walls}
        self.sockets_open = 0
        # Every event frame, in a window or not: the cost phase waits on it.
        self.frames_seen = 0
        self.reload_walls = True  # off while the cost phase measures each kind alone
        # One pool per API process; a user keeps to one process, as behind a sticky proxy.
        self.clients = [RawPool(b) for b in bases]
        self.home = {name: n % len(bases) for n, name in enumerate(sorted(tokens))}
        self.cti_turn = itertools.cycle(range(len(bases)))

    # -- HTTP -------------------------------------------------------------------------------

    async def request(
        self,
        kind: str,
        due: float,
        method: str,
        path: str,
        *,
        user: str | None = None,
        payload: object = None,
    ) -> Answer | None:
        """Send at ``due`` (or as soon as a slot is free), as ``user`` to that user's process;
        without a user (the telephony system), to each process in turn."""
        window = self.window
        client = self.clients[self.home[user] if user else next(self.cti_turn)]
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else self.cti
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        async with self.in_flight:
            if window is not None:
                window.lag_ms.append(max(0.0, time.perf_counter() - due) * 1000)
            try:
                response = await asyncio.wait_for(
                    client.request(method, path, body, headers), timeout=30
                )
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                self._error(window, kind, f"{type(exc).__name__}: {exc}")
                return None
        if window is not None:
            latency = (time.perf_counter() - due) * 1000
            window.latency_ms[kind].append(latency)
            window.timeline.append((due - window.started, latency))
            if response.status_code >= 400:
                self._error(window, kind, f"{response.status_code} {response.text[:200]}")
        return response

    @staticmethod
    def _error(window: Window | None, kind: str, what: str) -> None:
        if window is None:
            return
        window.errors[kind] += 1
        if len(window.error_samples) < 10:
            window.error_samples.append(f"{kind}: {what}")

    def spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post_event(self, due: float, call_id: str, kind: str, **fields) -> None:
        event = {
            "event_id": f"{call_id}-{kind}",
            "type": kind,
            "call_id": call_id,
            "at": datetime.now(UTC).isoformat(),
            **fields,
        }
        await self.request("call event", due, "POST", "/api/v1/calls/events", payload=[event])

    async def call(self, due: float) -> None:
        """One caller: offered, then answered (or abandoned), then ended; ~3 events."""
        if self.window is not None:
            self.window.calls += 1
        call_id = f"ty-{self.rng.getrandbits(48):012x}"
        caller = f"13{self.rng.randint(0, 999_999_999):09d}"
        queue = self.rng.choice(QUEUES)
        await self.post_event(due, call_id, "offered", queue=queue, caller=caller)
        wait = self.rng.uniform(2, 12)
        await asyncio.sleep(wait)
        no_free_agent = not self.free_agents
        if no_free_agent or self.rng.random() < ABANDON_SHARE:
            if no_free_agent and self.window is not None:
                self.window.no_free_agent += 1
            await self.post_event(time.perf_counter(), call_id, "abandoned")
            return
        agent = self.free_agents.popleft()
        await self.post_event(time.perf_counter(), call_id, "answered", agent=agent)
        # Loads above the peak shorten talk in proportion, so the same 500 agents carry them:
        # the bench finds where the system breaks, not where the simulated centre runs dry.
        rate = self.window.call_rate if self.window else PEAK_CALL_EVENTS
        await asyncio.sleep(self.rng.uniform(*TALK_SECONDS) / max(rate / PEAK_CALL_EVENTS, 1.0))
        await self.post_event(time.perf_counter(), call_id, "ended")
        await asyncio.sleep(self.rng.uniform(3, 10))  # after-call work
        await self.request("agent state", time.perf_counter(), "PUT", "/api/v1/agents/me/state",
                           user=agent, payload={"state": "ready"})  # fmt: skip
        self.free_agents.append(agent)

    async def ticket(self, due: float) -> None:
        agent = self.rng.choice(self.agents)
        body = dict(next(self.requests))
        preview = {k: body[k] for k in ("content", "address") if k in body}
        preview["text"] = preview.pop("content")
        if "matter_code" in body:
            preview["matter_code"] = body["matter_code"]
        await self.request("routing preview", due, "POST", "/api/v1/routing/preview",
                           user=agent, payload=preview)  # fmt: skip
        response = await self.request("ticket", time.perf_counter(), "POST", "/api/v1/tickets",
                                      user=agent, payload=body)  # fmt: skip
        if response is not None and response.status_code == 201 and self.window is not None:
            self.window.tickets_created += 1

    async def run(self, window: Window, seconds: float) -> None:
        """Send calls and tickets at the window's rates for ``seconds`` (Poisson arrivals)."""
        self.window = window
        started = window.started = time.perf_counter()
        calls_per_second = window.call_rate / EVENTS_PER_CALL
        streams = [(calls_per_second, self.call), (window.ticket_rate, self.ticket)]
        nexts = [started + self.rng.expovariate(rate) for rate, _ in streams]
        end = started + seconds
        while True:
            index = min(range(len(nexts)), key=nexts.__getitem__)
            due = nexts[index]
            if due >= end:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            rate, action = streams[index]
            self.spawn(action(due))
            nexts[index] = due + self.rng.expovariate(rate)
        window.seconds = time.perf_counter() - started

    # -- websockets -------------------------------------------------------------------------

    async def listen(self, username: str, topics: str, audience: str, ready: asyncio.Queue):
        url = self.bases[self.home[username]].replace("http://", "ws://") + f"/ws?topics={topics}"
        # The token in Sec-WebSocket-Protocol, as the pages send it: never in the logged URL.
        offered = [Subprotocol("hotline.v1"), Subprotocol(f"bearer.{self.tokens[username]}")]
        while True:
            try:
                async with connect(
                    url, subprotocols=offered, max_size=None, open_timeout=60, ping_interval=None
                ) as ws:
                    self.sockets_open += 1
                    await ready.put(username)
                    async for message in ws:
                        moment = time.time()
                        frame = json.loads(message)
                        if frame.get("type") != "event":
                            continue
                        self.frames_seen += 1
                        window = self.window
                        if window is not None and frame.get("at"):
                            at = datetime.fromisoformat(frame["at"]).timestamp()
                            window.screen_ms[audience].append((moment - at) * 1000)
                            window.frames[audience] += 1
                        if audience == "wall":
                            self.wall_dirty[username] = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted, then reconnect like a page
                self._error(self.window, f"{audience} socket", f"{type(exc).__name__}: {exc}")
            finally:
                self.sockets_open -= 1
            await asyncio.sleep(1)

    async def wall_reloads(self, name: str) -> None:
        """A wall reloads its figures when events came, at most every 2 s (as the page does).

        Each wall on its own clock, started at a random moment, as pages opened at different
        times are: one shared tick would send every wall's request in the same millisecond.
        """
        await asyncio.sleep(self.rng.uniform(0, WALL_RELOAD_SECONDS))
        while True:
            if self.wall_dirty[name] and self.reload_walls:
                self.wall_dirty[name] = False
                self.spawn(self.request("wall", time.perf_counter(), "GET", "/api/v1/kpi/wall",
                                        user=name))  # fmt: skip
            await asyncio.sleep(WALL_RELOAD_SECONDS)

    async def connect_all(self) -> list[asyncio.Task]:
        ready: asyncio.Queue = asyncio.Queue()
        tasks = []
        for index, agent in enumerate(self.agents[: self.args.consoles]):
            topics = f"agent.{agent},calls.agents.{agent},tickets.by.{agent}"
            tasks.append(asyncio.create_task(self.listen(agent, topics, "console", ready)))
            if index % 50 == 49:
                await asyncio.sleep(0.05)  # the server checks every token against the database
        for wall in self.walls:
            tasks.append(
                asyncio.create_task(self.listen(wall, "calls.,kpi.,tickets.dept.", "wall", ready))
            )
        for _ in tasks:
            await asyncio.wait_for(ready.get(), 120)
        tasks += [asyncio.create_task(self.wall_reloads(name)) for name in self.walls]
        return tasks

    async def settle(self, timeout: float = 180) -> None:
        """Let the calls and tickets already started finish (they are part of the window);
        what is still running after ``timeout`` is cancelled and counted as an error."""
        deadline = time.monotonic() + timeout
        while self.tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self.tasks), timeout=1)
        for task in list(self.tasks):
            task.cancel()
            self._error(self.window, "unfinished", "still running when the window closed")
        await asyncio.gather(*list(self.tasks), return_exceptions=True)


# -- the system under test ---------------------------------------------------------------------


@contextlib.contextmanager
def running_system(env: dict[str, str], api_processes: int, rq_workers: int):
    """N `hotline serve` processes on ports of their own and M workers; yields their URLs and
    the processes (API processes first)."""
    ports = [free_port() for _ in range(api_processes)]
    processes = [
        subprocess.Popen([sys.executable, "-m", "hotline", "serve", "--port", str(port)], env=env)
        for port in ports
    ]
    api = list(processes)
    for n in range(rq_workers):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "hotline", "worker", "--name", f"typhoon-{n}"], env=env
            )
        )
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 90
        waiting = set(bases)
        while waiting:
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a process of the system exited during start-up")
            for base in list(waiting):
                with contextlib.suppress(httpx.HTTPError):
                    health = httpx.get(f"{base}/healthz", timeout=2)
                    if health.status_code == 200 and health.json()["workers"]["count"] >= (
                        rq_workers
                    ):
                        waiting.discard(base)
            if time.monotonic() > deadline:
                raise SystemExit("the system did not become healthy within 90 s")
            time.sleep(0.2)
        yield bases, api, processes[len(api) :]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def create_users(env: dict[str, str], consoles: int, walls: int) -> dict[str, str]:
    """Agents and supervisors straight in the database with one shared argon2 hash (hashing
    500 passwords would only time argon2); returns a fresh access token for each."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("HOTLINE_")})
    from hotline.core.auth import create_access_token, hash_password
    from hotline.core.db import transaction
    from hotline.core.models import User, UserRole

    users = {f"agent{n:04d}": "agent" for n in range(consoles)}
    users |= {f"wall{n:02d}": "supervisor" for n in range(walls)}
    shared = hash_password(PASSWORD)
    with transaction() as session:
        for username, role in users.items():
            user = User(username=username, password_hash=shared, full_name="")
            user.roles = [UserRole(role=role)]
            session.add(user)
    return {name: create_access_token(name) for name in users}


def outbox_left(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]


# -- reporting ---------------------------------------------------------------------------------


def row(label: str, values: list[float], extra: str = "") -> str:
    if not values:
        return f"  {label:<30}{0:>8}{'—':>9}{'—':>9}{'—':>9}{'—':>9}  {extra}"
    return (
        f"  {label:<30}{len(values):>8}{percentile(values, 0.5):>9.1f}"
        f"{percentile(values, 0.95):>9.1f}{percentile(values, 0.99):>9.1f}{max(values):>9.1f}"
        f"  {extra}"
    )


def report(window: Window) -> None:
    seconds = max(window.seconds, 1e-9)
    print(
        f"\n{window.label}: {window.call_rate:.0f} call events/s and {window.ticket_rate:.1f}"
        f" tickets/s asked for {window.seconds:.0f} s;"
        f" sent {window.call_events_per_second():.1f} call events/s,"
        f" created {window.tickets_created / seconds:.1f} tickets/s;"
        f" {window.calls} calls, {window.no_free_agent} found no free agent"
    )
    print(f"  {'series':<30}{'count':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in sorted(window.latency_ms):
        print(row(kind, window.latency_ms[kind], f"errors {window.errors[kind]}"))
    print(row("API, all requests", window.api_all(), f"target p99 < {API_P99_MS:.0f} ms"))
    for audience in ("console", "wall"):
        print(
            row(
                f"event-to-screen, {audience}s",
                window.screen_ms[audience],
                f"{window.frames[audience] / seconds:.0f} frames/s",
            )
        )
    print(row("event-to-screen, all", window.screen_all(), f"target p99 < {SCREEN_P99_MS:.0f} ms"))
    print(row("send lag (load generator)", window.lag_ms))
    slices: dict[int, list[float]] = defaultdict(list)
    for due, latency in window.timeline:
        slices[int(due // TIMELINE_SECONDS)].append(latency)
    print(f"  API latency over the window, by when the request was due ({TIMELINE_SECONDS} s):")
    print(
        "    "
        + "  ".join(
            f"{n * TIMELINE_SECONDS:>3}s p99 {percentile(v, 0.99):>5.0f}"
            for n, v in sorted(slices.items())
        )
    )
    socket_errors = {k: v for k, v in window.errors.items() if "socket" in k}
    if socket_errors:
        print(f"  socket drops: {socket_errors}")
    if window.server:
        print("  as the API processes saw it (their /metrics histograms, ms):")
        for route, (count, p50, p99) in sorted(window.server.items(), key=lambda kv: -kv[1][0]):
            print(f"    {route:<44}{count:>8}  p50 {p50:>7}  p99 {p99:>7}")
    if window.cpu:
        share = ", ".join(f"{k} {v:.2f}" for k, v in window.cpu.items())
        print(f"  CPU cores used while the load was sent (of {os.cpu_count()}): {share}")
    for sample in window.error_samples:
        print(f"  error: {sample}")
    missed = window.verdict()
    print(f"  verdict: {'all targets met' if not missed else 'MISSED: ' + '; '.join(missed)}")


_BUCKET = re.compile(r"^hotline_http_request_seconds_bucket\{(?P<labels>[^}]*)\} (?P<n>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape_latency(bases: list[str]) -> Counter:
    """The API processes' own latency histograms (from /metrics), summed over processes:
    what the server saw, to tell its time from the load generator's."""
    counts: Counter = Counter()
    for base in bases:
        with contextlib.suppress(httpx.HTTPError):
            for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
                match = _BUCKET.match(line)
                if match:
                    labels = dict(_LABEL.findall(match["labels"]))
                    key = (f"{labels['method']} {labels['route']}", float(labels["le"]))
                    counts[key] += float(match["n"])
    return counts


def server_quantiles(before: Counter, after: Counter) -> dict[str, tuple[int, str, str]]:
    """Per route: requests in the window, and the histogram bucket holding p50 and p99."""
    by_route: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (route, le), n in after.items():
        by_route[route].append((le, n - before.get((route, le), 0)))
    result = {}
    for route, buckets in by_route.items():
        buckets.sort()
        total = buckets[-1][1]
        if total <= 0:
            continue

        def bound(share: float, buckets=buckets, total=total) -> str:
            for le, n in buckets:
                if n >= share * total:
                    return "≤ ∞" if le == float("inf") else f"≤ {le * 1000:.0f}"
            return "?"

        result[route] = (int(total), bound(0.5), bound(0.99))
    return result


class CpuTotals:
    """CPU cores used per party over a window: API, workers, PostgreSQL, Redis, this process."""

    def __init__(self, api: list[subprocess.Popen], workers: list[subprocess.Popen]) -> None:
        self.api = CpuMeter([p.pid for p in api])
        self.workers = CpuMeter([p.pid for p in workers])

    def read(self) -> dict[str, float]:
        first = self.api.read()
        first["workers"] = self.workers.read()["api"]
        return first

    @staticmethod
    def cores(before: dict[str, float], after: dict[str, float], seconds: float):
        keys = ("api", "workers", "postgres", "redis", "client", "busy")
        names = {"api": "API", "client": "load generator", "busy": "machine"}
        return {names.get(k, k): (after[k] - before[k]) / seconds for k in keys}


# -- the cost of each request, one at a time ---------------------------------------------------


# What the steady phase asks for each second, per kind, at --call-events E and --tickets T:
# E/EVENTS_PER_CALL calls, each offered, then answered or abandoned, then ended if answered, and
# the agent back to ready; T previews and T tickets; every wall reloads at most every 2 s.
def demand_per_second(kind: str, args) -> float:
    calls = args.call_events / EVENTS_PER_CALL
    answered = calls * (1 - ABANDON_SHARE)
    return {
        "call event: offered": calls,
        "call event: answered": answered,
        "call event: ended": answered,
        "agent state": answered,
        "routing preview": args.tickets,
        "ticket": args.tickets,
        "wall": args.walls / WALL_RELOAD_SECONDS,
    }[kind]


async def quiesce(load: Load, database_url: str, timeout: float = 30) -> None:
    """Wait until every event of the requests sent so far reached the sockets: the outbox is
    empty and no frame arrived for 0.5 s (fan-out is part of what a request costs)."""
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(outbox_left, database_url) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    seen, still_since = load.frames_seen, time.monotonic()
    while time.monotonic() - still_since < 0.5 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if load.frames_seen != seen:
            seen, still_since = load.frames_seen, time.monotonic()


async def measure_costs(load: Load, cpu: CpuTotals, database_url: str, args) -> None:
    """Closed loop, one request at a time, each kind in a batch of --cost: the API's CPU per
    request (its fan-out to the connected sockets included) and what the steady phase's rates
    therefore ask of the API processes. A demand near the cores the API can have is a queue."""
    n = args.cost
    calls = [f"cost-{k:05d}-{random.getrandbits(24):06x}" for k in range(n)]
    agents = [load.free_agents[k % len(load.free_agents)] for k in range(n)]
    queues = [load.rng.choice(QUEUES) for _ in range(n)]

    def event(k: int, kind: str, **fields):
        return load.post_event(time.perf_counter(), calls[k], kind, **fields)

    async def ticket(k: int):
        await load.ticket(time.perf_counter())

    batches = [
        ("call event: offered", lambda k: event(k, "offered", queue=queues[k], caller=CALLER)),
        ("call event: answered", lambda k: event(k, "answered", agent=agents[k])),
        ("call event: ended", lambda k: event(k, "ended")),
        ("agent state", lambda k: load.request("agent state", time.perf_counter(), "PUT",
                                               "/api/v1/agents/me/state", user=agents[k],
                                               payload={"state": "ready"})),
        ("ticket (with its routing preview)", ticket),
        ("wall", lambda k: load.request("wall", time.perf_counter(), "GET", "/api/v1/kpi/wall",
                                        user=load.walls[k % len(load.walls)])),
    ]  # fmt: skip
    print(f"\ncost of one request, closed loop, {n} of each (API CPU includes the fan-out):")
    print(
        f"  {'kind':<36}{'API CPU ms':>11}{'postgres ms':>12}{'p50 ms':>8}"
        f"{'per s':>8}{'API cores':>10}"
    )
    total = 0.0
    load.reload_walls = False
    for kind, send in batches:
        window = Window(kind, 0, 0)
        load.window = window
        await quiesce(load, database_url)
        before = cpu.read()
        for k in range(n):
            await send(k)
        await quiesce(load, database_url)
        after = cpu.read()
        load.window = None
        api_ms = (after["api"] - before["api"]) / n * 1000
        pg_ms = (after["postgres"] - before["postgres"]) / n * 1000
        kinds = ["routing preview", "ticket"] if kind.startswith("ticket") else [kind.split(":")[0]]
        latency = [v for key in kinds for v in window.latency_ms[key]]
        rate = demand_per_second("ticket" if kind.startswith("ticket") else kind, args)
        cores = api_ms / 1000 * rate
        total += cores
        errors = sum(window.errors.values())
        print(
            f"  {kind:<36}{api_ms:>11.2f}{pg_ms:>12.2f}{percentile(latency, 0.5):>8.1f}"
            f"{rate:>8.1f}{cores:>10.2f}"
            + (f"  errors {errors}: {window.error_samples[:2]}" if errors else "")
        )
    load.reload_walls = True
    print(
        f"  the steady phase's rates ask the API processes for {total:.2f} cores "
        f"(of {os.cpu_count()}, shared with PostgreSQL and this load generator)"
    )


async def measure(
    bases: list[str], tokens: dict[str, str], cti: str, processes, args, database_url: str
) -> list[Window]:
    load = Load(bases, tokens, cti, args)
    api, workers = processes
    cpu = CpuTotals(api, workers)
    socket_tasks = await load.connect_all()
    print(
        f"connected {load.sockets_open} websockets ({args.consoles} consoles, {args.walls} walls)"
    )
    windows = []
    try:
        if args.cost:
            await measure_costs(load, cpu, database_url, args)
            if args.cost_only:
                return windows
        # Warm-up: caches, connection pools, the first agents on calls.
        await load.run(Window("warm-up", args.call_events, args.tickets), args.warmup)
        await load.settle()
        plan = [("steady typhoon peak", args.call_events, args.tickets, args.seconds)]
        for step in range(1, args.max_steps + 1 if args.ramp else 1):
            factor = args.step**step
            plan.append(
                (f"ramp step {step} (x{factor:.2f})", args.call_events * factor,
                 args.tickets * factor, args.step_seconds)
            )  # fmt: skip
        for label, call_rate, ticket_rate, seconds in plan:
            window = Window(label, call_rate, ticket_rate)
            print(f"{label}: sending for {seconds:.0f} s", flush=True)
            before, started = cpu.read(), time.perf_counter()
            histograms = await asyncio.to_thread(scrape_latency, bases)
            await load.run(window, seconds)
            busy = CpuTotals.cores(before, cpu.read(), time.perf_counter() - started)
            await load.settle()
            window.server = server_quantiles(
                histograms, await asyncio.to_thread(scrape_latency, bases)
            )
            window.cpu = busy
            load.window = None
            report(window)
            windows.append(window)
            if label.startswith("ramp") and window.verdict():
                break
    finally:
        # A client task that died early (a bug here) would quietly lighten the load.
        for task in socket_tasks:
            if task.done() and not task.cancelled() and task.exception():
                print(f"load generator task failed: {task.exception()!r}")
        for task in socket_tasks:
            task.cancel()
        await asyncio.gather(*socket_tasks, return_exceptions=True)
        for client in load.clients:
            client.close()
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--call-events", type=float, default=50, help="call events a second")
    parser.add_argument("--tickets", type=float, default=20, help="new tickets a second")
    parser.add_argument("--consoles", type=int, default=500)
    parser.add_argument("--walls", type=int, default=10)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--rq-workers", type=int, default=1)
    parser.add_argument("--ramp", action="store_true", help="then raise the load until it breaks")
    parser.add_argument("--step", type=float, default=1.5, help="ramp factor per step")
    parser.add_argument("--step-seconds", type=float, default=60)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument(
        "--cost",
        type=int,
        default=0,
        help="first measure the API CPU of each request kind, this many of each",
    )
    parser.add_argument("--cost-only", action="store_true", help="stop after the cost phase")
    args = parser.parse_args()

    database_server = os.environ.get("HOTLINE_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_server = os.environ.get("HOTLINE_REDIS_URL", DEFAULT_REDIS_URL)
    with (
        fresh_database(database_server, "bench_typhoon") as database_url,
        private_redis(redis_server, args.redis_db) as redis_url,
    ):
        env = bench_env(database_url, redis_url)
        cti = f"bench-cti-{random.getrandbits(32):08x}"
        env["HOTLINE_CTI_TOKEN"] = cti
        hotline(env, "db", "upgrade")
        hotline(env, "seed")
        tokens = create_users(env, args.consoles, args.walls)
        with running_system(env, args.api_processes, args.rq_workers) as (bases, api, workers):
            print(
                f"python {sys.version.split()[0]}; PostgreSQL + Redis; {args.api_processes} API "
                f"processes, {args.rq_workers} rq workers; {os.cpu_count()} cores shared with "
                "the load generator"
            )
            windows = asyncio.run(measure(bases, tokens, cti, (api, workers), args, database_url))
            deadline = time.monotonic() + 30
            while (left := outbox_left(database_url)) and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"\noutbox after the run: {left} rows left (0: every job and event delivered)")
        created = sum(w.tickets_created for w in windows)
        with psycopg.connect(libpq_url(database_url)) as conn:
            stored = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        print(f"tickets: {stored} stored for {created} answers 201 in the measured windows "
              "(warm-up included in the stored count)")  # fmt: skip


if __name__ == "__main__":
    main()
