"""Ticket creation throughput (POST /api/v1/tickets) through a real server on PostgreSQL.

Creates a fresh database on the PostgreSQL server of HOTLINE_DATABASE_URL (never touching the
database that URL names), runs `hotline db upgrade` and `hotline seed` against it, starts
--servers N × `hotline serve` on ports of their own (the production layout of
docs/operations.md; client n talks to server n mod N, as a proxy would spread them) and lets
concurrent clients create tickets with varied requests
(matters, addresses, landmarks, places only in the text, ambiguous and outside places, repeat
callers) for a fixed time. Two baselines run under the same load in the same run, interleaved
with the creation rounds so that background noise hits all three alike:

  GET /api/v1/auth/me            framework, token check, the caller's user row and roles
  POST /api/v1/routing/preview   the same, plus routing the very same requests (no writes)

so "create / preview" is what writing, dispatching, the trail and the outbox cost on top of
routing. While each series runs, pg_stat_activity is sampled to show where the bench database's
backends spend their time (running, waiting on a row lock, idle in a transaction the API holds
open), and the CPU of the API workers, PostgreSQL, Redis and this load generator is read from
/proc, also per request: that figure holds whatever else the machine is doing, and gives the
ceiling (req/s were the two cores ours alone). Afterwards the database is checked: as many
tickets as 201 answers, an empty outbox.

`--workers N` (uvicorn's processes sharing one port) is there to compare: a connection stays
with the worker that accepted it, and with a few keep-alive clients that is often one worker
for nearly all of them (the per-worker CPU line shows it).

The load generator shares the machine with the server. httpx (the default) costs about 1 ms
of CPU per request in this process, which on two cores caps what any endpoint can show;
--client raw sends the same requests through a bare asyncio HTTP/1.1 client instead. The CPU
table shows how much each party took. --py-spy FILE profiles the API workers while they create.

Jobs go to their own Redis database (--redis-db, default 12) on the HOTLINE_REDIS_URL server,
which must be empty at the start and is emptied at the end, so the rq jobs created here never
reach a worker of anyone else. The database is dropped at the end unless --keep-db is given.

    HOTLINE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    HOTLINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
    python bench/bench_tickets.py [--seconds 20] [--concurrency 16] [--servers 2] [--workers 1]
                                  [--client httpx|raw] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
REFERENCE = REPOSITORY / "dispatch" / "reference"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench-password"

# -- realistic requests ----------------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程"
_OPENERS = [
    "市民来电反映，",
    "来电人称，",
    "市民表示，",
    "来电人反映：",
    "市民通过微信公众号反映，",
    "",
]
_DURATIONS = ["两天", "一个星期", "半个月", "一个多月", "三个月", "很长时间"]
_ASKS = [
    "请相关部门尽快核实处理。",
    "希望有关部门依法处理并回复。",
    "要求尽快解决。",
    "请予以答复。",
    "来电人情绪激动，要求尽快处理并回电。",
    "之前已反映过一次，至今没有结果，请督促处理。",
]
_EXTRA = [
    "",
    "",
    "附近居民意见很大。",
    "已经向社区反映过，没有效果。",
    "来电人不愿透露更多个人信息。",
    "现场有照片可以提供。",
]
# Citizens name the problem, not the catalogue entry: keywords only, in varied sentences.
_PATTERNS = [
    "{0}的问题一直没人管，还有{1}，",
    "反映{0}，{1}，",
    "家附近{0}，{1}情况严重，",
    "想咨询一下{0}的事情，另外{1}怎么办，",
    "遇到{0}，对方说{1}不归他们管，",
]
_CHANNELS = ["phone"] * 14 + ["app"] * 2 + ["web"] * 2 + ["wechat"] * 2 + ["open311"]


def load_reference() -> dict[str, Any]:
    """The shipped reference data as plain dicts: matters, towns, places, areas, departments."""
    gazetteer = yaml.safe_load((REFERENCE / "gazetteer.yaml").read_text(encoding="utf-8"))
    matters = yaml.safe_load((REFERENCE / "matters.yaml").read_text(encoding="utf-8"))
    departments = yaml.safe_load((REFERENCE / "departments.yaml").read_text(encoding="utf-8"))
    return {"gazetteer": gazetteer, "matters": matters["matters"], "departments": departments}


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


def build_requests(count: int, seed: int = 12345) -> list[dict[str, Any]]:
    """A deterministic mix of ``count`` ticket requests as an agent would send them.

    Addresses: a town (35 %), a landmark or road (25 %), an area only (10 %), the place only
    in the text (12 %), an ambiguous place (6 %), outside Zhuhai (4 %), none (5 %), two towns
    (3 %). The agent confirms the matter in 70 % of them; one in ten comes from a repeat caller,
    so the duplicate check finds earlier tickets.
    """
    rng = random.Random(seed)
    ref = load_reference()
    gazetteer = ref["gazetteer"]
    areas = {a["code"]: a for a in gazetteer["areas"]}
    towns = [t for t in gazetteer["towns"] if "valid_from" not in t]
    places = [p for p in gazetteer["places"] if p.get("town") or p.get("area")]
    ambiguous = [p for p in gazetteer["places"] if p.get("ambiguous")]
    matters = [m for m in ref["matters"] if m["keywords"]]
    repeat_callers = [_phone(rng) for _ in range(200)]
    requests = []
    for _ in range(count):
        matter = rng.choice(matters)
        number = rng.randint(1, 300)
        keywords = rng.sample(matter["keywords"], min(2, len(matter["keywords"])))
        subject = rng.choice(_PATTERNS).format(*keywords, *keywords)
        subject += f"已经{rng.choice(_DURATIONS)}了，{rng.choice(_EXTRA)}{rng.choice(_ASKS)}"
        opener = rng.choice(_OPENERS)
        roll = rng.random()
        text = opener + subject
        if roll < 0.35:
            town = rng.choice(towns)
            address = f"珠海市{areas[town['district']]['name']}{town['name']}某某路{number}号"
        elif roll < 0.60:
            address = f"{rng.choice(places)['name']}附近{number}号"
        elif roll < 0.70:
            address = f"{rng.choice(list(areas.values()))['name']}某某花园{number}栋"
        elif roll < 0.82:
            address = ""
            text = f"{opener}在{rng.choice(places)['name']}旁边，{subject}"
        elif roll < 0.88:
            address = f"{rng.choice(ambiguous)['name']}{number}号"
        elif roll < 0.92:
            address = f"中山市{rng.choice(gazetteer['not_zhuhai'])}镇{number}号"
        elif roll < 0.97:
            address = ""
        else:
            first, second = rng.sample(towns, 2)
            address = f"{first['name']}至{second['name']}路段"
        request: dict[str, Any] = {
            "channel": rng.choice(_CHANNELS),
            "content": text,
            "address": address,
            "caller_name": rng.choice(_SURNAMES) + rng.choice(["先生", "女士"]),
            "caller_phone": (rng.choice(repeat_callers) if rng.random() < 0.1 else _phone(rng)),
        }
        if rng.random() < 0.7:
            request["matter_code"] = matter["code"]
        requests.append(request)
    return requests


# -- fresh database, Redis and server ------------------------------------------------------------


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form (postgresql://) of a SQLAlchemy PostgreSQL URL."""
    scheme, rest = sqlalchemy_url.split("://", 1)
    if not scheme.startswith("postgres"):
        raise SystemExit(f"this benchmark needs PostgreSQL, not {scheme}")
    return "postgresql://" + rest


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (query string kept)."""
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return f"{base}?{query}" if query else base


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """Create an empty database on the server of ``server_url``; yield its SQLAlchemy URL.

    Dropped again at the end (also after a failure) unless ``keep``; the database that
    ``server_url`` names is only used to reach the server.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = psycopg.connect(libpq_url(server_url), autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(server_url, name)
        finally:
            if keep:
                print(f"kept database {name}", file=sys.stderr)
            else:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextlib.contextmanager
def private_redis(url: str, db: int) -> Iterator[str]:
    """A Redis database of the server at ``url`` that must be empty; emptied again at the end."""
    base = url.split("?", 1)[0].rstrip("/")
    if base.count("/") > 2:  # redis://host:port/N: replace the database number
        base = base.rsplit("/", 1)[0]
    private = f"{base}/{db}"
    client = redis.Redis.from_url(private)
    if client.dbsize():
        raise SystemExit(f"Redis database {private} is not empty; choose another with --redis-db")
    try:
        yield private
    finally:
        client.flushdb()
        client.close()


def bench_env(database_url: str, redis_url: str) -> dict[str, str]:
    """Environment for hotline commands against the bench database and Redis."""
    return dict(
        os.environ,
        HOTLINE_DATABASE_URL=database_url,
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_DATA_DIR=tempfile.mkdtemp(prefix="bench-hotline-"),
        HOTLINE_LOG_LEVEL="WARNING",
    )


def hotline(env: dict[str, str], *args: str) -> str:
    """Run one `hotline` command; its output, or exit with its error."""
    done = subprocess.run(
        [sys.executable, "-m", "hotline", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"hotline {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_servers(
    env: dict[str, str], servers: int, workers: int
) -> Iterator[list[tuple[str, int]]]:
    """``servers`` × `hotline serve --workers N`, each on a free port; yields their (base URL,
    pid), stopped at the end."""
    started: list[tuple[str, subprocess.Popen]] = []
    try:
        for _ in range(servers):
            port = free_port()
            command = [sys.executable, "-m", "hotline", "serve", "--port", str(port)]
            server = subprocess.Popen([*command, "--workers", str(workers)], env=env)
            started.append((f"http://127.0.0.1:{port}", server))
        for base, server in started:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"hotline serve exited with {server.returncode}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("hotline serve did not become healthy within 60 s")
                time.sleep(0.2)
        yield [(base, server.pid) for base, server in started]
    finally:
        for _base, server in started:
            server.terminate()
        for _base, server in started:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def login(base: str, username: str) -> dict[str, str]:
    """Authorization header of a fresh token for ``username``."""
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# -- where the time and CPU go --------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found + [g for c in found for g in _children(c)]


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime + stime + cutime + cstime: the postmaster's reaped backends count too, so that
    # connections closed during a series do not make the PostgreSQL figure go backwards.
    return sum(int(x) for x in fields[11:15]) / _TICKS


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    pids.append(int(entry))
    return pids


def _own_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, without its reaped children."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds used by the API server tree, PostgreSQL, Redis, this process, and the machine.

    ``bench_db`` is the CPU of the backends of the bench database alone (every other
    PostgreSQL figure includes whatever else the machine's server does), as the
    ActivitySampler follows them.
    """

    def __init__(self, server_pids: list[int], sampler: ActivitySampler | None = None) -> None:
        self.server_pids = server_pids
        self.sampler = sampler

    def _workers(self) -> list[int]:
        """The processes that serve requests: uvicorn's workers, or the server itself."""
        return [w for pid in self.server_pids for w in (_children(pid) or [pid])]

    def read(self) -> dict[str, float]:
        server = [p for pid in self.server_pids for p in (pid, *_children(pid))]
        with open("/proc/stat") as f:
            machine = [int(x) for x in f.readline().split()[1:]]
        idle = (machine[3] + machine[4]) / _TICKS
        return {
            "api": sum(_cpu_seconds(p) for p in server),
            "postgres": sum(_cpu_seconds(p) for p in _pids_named("postgres")),
            "redis": sum(_cpu_seconds(p) for p in _pids_named("redis-server")),
            "client": time.process_time(),
            "busy": sum(machine) / _TICKS - idle,
            "bench_db": self.sampler.backend_seconds() if self.sampler else 0.0,
            **{f"worker:{pid}": _cpu_seconds(pid) for pid in self._workers()},
        }

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU used between two readings."""
        return {k: after[k] - before.get(k, 0.0) for k in after}


class ActivitySampler(threading.Thread):
    """Samples pg_stat_activity of one database every 50 ms: what its backends are doing, and
    the CPU they use (read from /proc for each backend it sees; a connection the API's pool
    closes between two samples loses at most its last 50 ms)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="pg-activity", daemon=True)
        self.connection = psycopg.connect(libpq_url(database_url), autocommit=True)
        self.samples: Counter[str] = Counter()
        self.ticks = 0
        self.recording = threading.Event()
        self.stopped = threading.Event()
        self._backend_cpu: dict[int, float] = {}
        self._backend_total = 0.0
        self._lock = threading.Lock()

    def backend_seconds(self) -> float:
        with self._lock:
            return self._backend_total

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            rows = self.connection.execute(
                "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            ).fetchall()
            with self._lock:
                for pid, *_ in rows:
                    now = _own_cpu_seconds(pid)
                    # First seen: everything it used counts, it was opened for this bench.
                    self._backend_total += max(0.0, now - self._backend_cpu.get(pid, 0.0))
                    self._backend_cpu[pid] = now
            if not self.recording.is_set():
                continue
            self.ticks += 1
            for _pid, state, wait_type, wait_event in rows:
                if state == "active":
                    key = "active: " + (f"{wait_type}:{wait_event}" if wait_type else "running")
                elif state == "idle in transaction":
                    key = "idle in transaction (app working)"
                else:
                    continue
                self.samples[key] += 1

    @contextlib.contextmanager
    def recorded(self) -> Iterator[Counter[str]]:
        """Record while the block runs; yields the counter, filled with mean backends per state."""
        self.samples, self.ticks = Counter(), 0
        self.recording.set()
        result: Counter[str] = Counter()
        try:
            yield result
        finally:
            self.recording.clear()
            for key, count in self.samples.items():
                result[key] = count / max(self.ticks, 1)

    def close(self) -> None:
        self.stopped.set()
        self.join(timeout=2)
        self.connection.close()


# -- load -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One request kind of the load: method, path, the expected status, pre-encoded bodies."""

    name: str
    method: str
    path: str
    expected: int
    bodies: tuple[bytes, ...] = ()

    def body(self, i: int) -> bytes | None:
        return self.bodies[i % len(self.bodies)] if self.bodies else None


def json_bodies(items: list[dict[str, Any]]) -> tuple[bytes, ...]:
    """Request bodies encoded once, so the load generator spends its CPU on HTTP only."""
    return tuple(json.dumps(item, ensure_ascii=False).encode() for item in items)


@dataclass
class Series:
    """The outcome of one endpoint under load, summed over its rounds."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: Counter[str] = field(default_factory=Counter)
    activity: Counter[str] = field(default_factory=Counter)
    rounds: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams (--client raw).

    It exists to measure how much of the two cores httpx itself takes: it only writes a
    request and reads a Content-Length (or chunked) response, for uvicorn on localhost.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.prefix = f"Host: {host}:{port}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write((head + "\r\n").encode() + (body or b""))
        try:
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("server closed the connection")
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                data = b""
                while size := int((await self.reader.readline()).strip(), 16):
                    data += await self.reader.readexactly(size + 2)
                await self.reader.readline()
            else:
                data = await self.reader.readexactly(length)
        except Exception:
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _load(
    bases: list[str],
    headers: dict[str, str],
    endpoint: Endpoint,
    seconds: float,
    clients: int,
    client_kind: str,
) -> tuple[list[float], Counter[str], float]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    send_headers = {**headers, "Content-Type": "application/json"}
    async with contextlib.AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30)
            )
            for base in bases
        ]
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(number: int) -> None:
            # Client n talks to server n mod N, as a proxy would spread them.
            base, hx = bases[number % len(bases)], pools[number % len(bases)]
            host, port = base.split("//", 1)[1].split(":")
            raw = RawConnection(host, int(port), headers) if client_kind == "raw" else None
            while time.perf_counter() < deadline:
                i = next(counter)
                body = endpoint.body(i)
                t0 = time.perf_counter()
                try:
                    if raw is not None:
                        status, data = await raw.request(endpoint.method, endpoint.path, body)
                    else:
                        response = await hx.request(
                            endpoint.method,
                            endpoint.path,
                            content=body,
                            headers=send_headers if body is not None else None,
                        )
                        status, data = response.status_code, response.content
                except (httpx.HTTPError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status == endpoint.expected:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors[f"{status} {data[:120].decode(errors='replace')}"] += 1
            if raw is not None:
                raw.close()

        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def run_round(
    series: Series,
    bases: list[str],
    headers: dict[str, str],
    endpoint: Endpoint,
    seconds: float,
    clients: int,
    client_kind: str = "httpx",
    meter: CpuMeter | None = None,
    sampler: ActivitySampler | None = None,
) -> None:
    """Load ``endpoint`` with ``clients`` concurrent clients for ``seconds``; add to ``series``."""
    before = meter.read() if meter else {}
    with sampler.recorded() if sampler else contextlib.nullcontext(Counter()) as activity:
        latencies, errors, elapsed = asyncio.run(
            _load(bases, headers, endpoint, seconds, clients, client_kind)
        )
    if meter:
        for key, value in CpuMeter.spent(before, meter.read()).items():
            series.cpu[key] += value
    for key, value in activity.items():
        # Weighted by time so that rounds of different length average correctly.
        series.activity[key] += value * elapsed
    series.latencies_ms += latencies
    series.errors.update(errors)
    series.seconds += elapsed
    series.rounds += 1


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def print_series_table(title: str, rows: list[Series], unit: str = "req/s") -> None:
    """Throughput, latency percentiles and errors of each series, one line each."""
    print(title)
    print(
        f"{'series':<34}{'requests':>9}{unit:>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'mean ms':>9}{'errors':>8}"
    )
    for s in rows:
        values = s.latencies_ms
        mean = statistics.mean(values) if values else float("nan")
        print(
            f"{s.name:<34}{len(values):>9}{s.rate:>10.1f}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}{mean:>9.1f}"
            f"{sum(s.errors.values()):>8}"
        )


def print_cpu_table(rows: list[Series]) -> None:
    """CPU of each party as cores used on average while the series ran (2.0 = both cores),
    then per request: what one request costs, whatever else the machine was doing."""
    print("CPU while each series ran, in cores (this machine has", os.cpu_count(), "cores)")
    parts = ["api", "bench_db", "postgres", "redis", "client", "busy"]
    labels = ["API", "bench db", "postgres*", "redis*", "bench", "machine"]
    print(f"{'series':<34}" + "".join(f"{label:>11}" for label in labels))
    for s in rows:
        print(f"{s.name:<34}" + "".join(f"{s.cpu[p] / s.seconds:>11.2f}" for p in parts))
    print("  * every process of that name on the machine; 'machine' = all non-idle CPU;")
    print("    'bench db' = the PostgreSQL backends of the bench database only")
    # Connections stay with the worker that accepted them: one busy worker and one idle one
    # show here, not in the totals.
    for s in rows:
        split = sorted(
            (v / s.seconds for k, v in s.cpu.items() if k.startswith("worker:")), reverse=True
        )
        print(f"  API cores per worker, {s.name}: " + " + ".join(f"{v:.2f}" for v in split))
    print()
    cores = os.cpu_count() or 1
    print("CPU per request, ms (ceiling: req/s if API, bench db and load generator had the")
    print(f"{cores} cores to themselves)")
    print(f"{'series':<34}{'API':>11}{'bench db':>11}{'bench':>11}{'total':>11}{'ceiling':>11}")
    for s in rows:
        n = len(s.latencies_ms) or 1
        per = [1000 * s.cpu[p] / n for p in ("api", "bench_db", "client")]
        total = sum(per)
        ceiling = 1000 * cores / total if total else float("nan")
        print(
            f"{s.name:<34}"
            + "".join(f"{v:>11.2f}" for v in per)
            + f"{total:>11.2f}{ceiling:>11.0f}"
        )


def print_activity_table(rows: list[Series]) -> None:
    """Mean number of the bench database's backends in each state while the series ran."""
    keys = sorted({k for s in rows for k in s.activity}, key=lambda k: (k.startswith("idle"), k))
    if not keys:
        return
    print("PostgreSQL backends of the bench database, mean number in each state (sampled)")
    width = max(len(k) for k in keys) + 2
    print(f"{'state':<{width}}" + "".join(f"{s.name[:22]:>24}" for s in rows))
    for key in keys:
        print(f"{key:<{width}}" + "".join(f"{s.activity[key] / s.seconds:>24.2f}" for s in rows))


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per series")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per series")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--servers",
        type=int,
        default=2,
        help="`hotline serve` processes, each on its own port; clients are spread over them "
        "as a proxy would (the production layout, docs/operations.md)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="hotline serve --workers: uvicorn processes sharing one port; connections stay "
        "with whichever accepted them, often one",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per series, unmeasured")
    parser.add_argument("--requests", type=int, default=5000, help="distinct requests in the mix")
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="load generator: httpx.AsyncClient, or a bare asyncio HTTP/1.1 client that leaves "
        "more of the machine's CPU to the server",
    )
    parser.add_argument("--redis-db", type=int, default=12, help="private Redis database number")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="profile the API workers (GIL holder, py-spy raw stacks) in the first creation round",
    )
    args = parser.parse_args()

    server_url = os.environ.get("HOTLINE_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_server = os.environ.get("HOTLINE_REDIS_URL", DEFAULT_REDIS_URL)
    requests = build_requests(args.requests)
    previews = [
        {
            "text": r["content"],
            "address": r["address"],
            **({"matter_code": r["matter_code"]} if "matter_code" in r else {}),
        }
        for r in requests
    ]
    create = Endpoint(
        "POST /tickets (create+route)", "POST", "/api/v1/tickets", 201, json_bodies(requests)
    )
    plan = [
        create,
        Endpoint("baseline GET /auth/me", "GET", "/api/v1/auth/me", 200),
        Endpoint(
            "baseline POST /routing/preview",
            "POST",
            "/api/v1/routing/preview",
            200,
            json_bodies(previews),
        ),
    ]
    results = {endpoint.name: Series(endpoint.name) for endpoint in plan}
    warm_errors: Counter[str] = Counter()
    with (
        fresh_database(server_url, "bench_tickets", keep=args.keep_db) as database_url,
        private_redis(redis_server, args.redis_db) as redis_url,
    ):
        env = bench_env(database_url, redis_url)
        hotline(env, "db", "upgrade")
        hotline(env, "seed")
        hotline(env, "user", "create", "bench", "--role", "agent", "--password", PASSWORD)
        with running_servers(env, args.servers, args.workers) as servers:
            bases, pids = [b for b, _ in servers], [p for _, p in servers]
            headers = login(bases[0], "bench")
            sampler = ActivitySampler(database_url)
            sampler.start()
            meter = CpuMeter(pids, sampler)
            try:
                for endpoint in plan:  # warm-up: jieba, the rule cache, connection pools
                    warm = Series("warm-up")
                    run_round(
                        warm, bases, headers, endpoint, args.warmup, args.concurrency, args.client
                    )
                    if not warm.latencies_ms:
                        raise SystemExit(f"{endpoint.name} fails: {dict(warm.errors)}")
                    warm_errors.update({f"{endpoint.name}: {k}": v for k, v in warm.errors.items()})
                warm_tickets = _count(database_url, "tickets")
                for round_number in range(args.rounds):
                    for endpoint in plan:
                        profiler = None
                        if args.py_spy and round_number == 0 and endpoint is create:
                            profiler = start_profiler(pids, args.py_spy, args.seconds / args.rounds)
                        run_round(
                            results[endpoint.name],
                            bases,
                            headers,
                            endpoint,
                            args.seconds / args.rounds,
                            args.concurrency,
                            args.client,
                            meter,
                            sampler,
                        )
                        if profiler:
                            profiler.wait()
            finally:
                sampler.close()
            # The relay of the last commits may still be under way.
            outbox = _wait_outbox_empty(database_url)
        tickets = _count(database_url, "tickets") - warm_tickets
        jobs = _scheduled_jobs(redis_url)

    created, me_series, preview_series = results.values()
    print()
    print(
        f"command: python bench/bench_tickets.py --seconds {args.seconds:g} --rounds {args.rounds}"
        f" --concurrency {args.concurrency} --servers {args.servers} --workers {args.workers}"
        f" --client {args.client}"
    )
    print(
        f"python {sys.version.split()[0]}, PostgreSQL (fresh database), Redis db {args.redis_db};"
        f" {args.servers} × `hotline serve --workers {args.workers}`, {args.concurrency} concurrent"
        f" {args.client} clients, {len(requests)} distinct requests;"
        f" {args.rounds} interleaved rounds per series"
    )
    print()
    print_series_table(f"{args.seconds:g} s of load per series", list(results.values()))
    for label, baseline in (("GET /auth/me", me_series), ("routing preview", preview_series)):
        p95 = percentile(created.latencies_ms, 95) / percentile(baseline.latencies_ms, 95)
        print(
            f"ratio create / {label + ':':<17} {created.rate / baseline.rate:.2f} (throughput),"
            f" {p95:.2f} (p95 latency)"
        )
    print()
    print_cpu_table(list(results.values()))
    print()
    print_activity_table(list(results.values()))
    print()
    print(
        f"check: {tickets} tickets in the database for {len(created.latencies_ms)} answers 201;"
        f" outbox rows left: {outbox}; rq scheduled jobs: {jobs}"
    )
    for series in results.values():
        for message, count in series.errors.most_common(5):
            print(f"  error in {series.name}: {count} × {message}")
    # The first requests of a day race to create that day's ticket-number counter; they are
    # reported, not hidden, but do not count in the measured series.
    for message, count in warm_errors.most_common(5):
        print(f"  warm-up error (not measured): {count} × {message}")
    if args.py_spy:
        print()
        summarize_profile(args.py_spy)


def summarize_profile(path: str, top: int = 25) -> None:
    """The project's own functions by share of the samples in which they were on the stack."""
    total = 0
    inclusive: Counter[str] = Counter()
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            total += int(count)
            frames = {
                frame.split(":")[0] + ")"
                for frame in stack.split(";")
                if "(hotline/" in frame or "(dispatch/" in frame
            }
            for frame in frames:
                inclusive[frame] += int(count)
    if not total:
        print(f"py-spy wrote no samples to {path}")
        return
    print(f"py-spy, API workers holding the GIL during creation ({total} samples, {path}):")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {frame}")


class Profilers:
    """py-spy sampling every API process (each server and its subprocesses) for ``seconds``;
    their raw stacks end up together in ``output``."""

    def __init__(self, server_pids: list[int], output: str, seconds: float) -> None:
        self.output = output
        py_spy = Path(sys.executable).with_name("py-spy")
        self.parts = [f"{output}.{pid}" for pid in server_pids]
        self.processes = [
            subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--subprocesses",
                    "--nonblocking",
                    "--gil",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--duration",
                    str(max(1, int(seconds))),
                    "--output",
                    part,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, part in zip(server_pids, self.parts, strict=True)
        ]

    def wait(self) -> None:
        for process in self.processes:
            process.wait()
        with open(self.output, "w") as out:
            for part in self.parts:
                with contextlib.suppress(OSError), open(part) as f:
                    out.write(f.read())
                with contextlib.suppress(OSError):
                    os.unlink(part)


def start_profiler(server_pids: list[int], output: str, seconds: float) -> Profilers:
    return Profilers(server_pids, output, seconds)


def _count(database_url: str, table: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _wait_outbox_empty(database_url: str, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        left = _count(database_url, "outbox")
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _scheduled_jobs(redis_url: str) -> int:
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    connection = redis.Redis.from_url(redis_url)
    return ScheduledJobRegistry(queue=Queue("default", connection=connection)).count


if __name__ == "__main__":
    main()
