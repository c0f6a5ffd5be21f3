"""Call intake throughput and the answer rate over a year of calls, through a real server.

Two parts, each on a fresh database: embedded SQLite by default, or PostgreSQL + Redis when
HOTLINE_DATABASE_URL / HOTLINE_REDIS_URL are set. On PostgreSQL a new database is created on
the server that URL names (never the database it names) and dropped at the end; the server's
Redis is used through a private database number (--redis-db, must be empty, emptied at the end).

ingest
    A realistic CTI event stream (IVR, offered, overflow, answered, transferred, abandoned,
    ended; ~4,400 calls a day with a daily profile, over the last days up to now; 2 % of the
    events arrive up to five minutes late) is POSTed to /api/v1/calls/events in batches, one
    request after another, for each batch size on a fresh database and server. Baseline in the
    same run: right after each round of fresh batches, the very same batches are POSTed again —
    every event a duplicate, so the request pays JSON, validation, the dedupe query and the
    response but stores nothing. Every fresh event must come back accepted and every replayed
    one duplicate; afterwards the stored requests must equal the in-process derivation of the
    whole stream and every hourly KPI bucket must equal the sum over its requests.

year
    A year of requests (default 1.6 million, ~4,400 calls a day with a daily profile) is
    generated as call plans, turned into CallOffer rows and hourly KpiBucket rows with the
    service's own ``bucket_contribution`` (so buckets and rows agree), and bulk-loaded (COPY on
    PostgreSQL, executemany on SQLite; going through ``ingest`` would take hours at its rate).
    Then windows — the whole year, a calendar quarter, a day, ragged windows with minute edges
    from 10 minutes to 120 days, overall and per queue — are measured three ways, interleaved:
    GET /api/v1/kpi/answer-rate, in-process ``answer_rate``, and the baseline: one SQL aggregate
    over call_offers without buckets (written here). The aggregate's figures must equal
    ``answer_rate``'s, and the API's must equal the in-process ones, on every window.
    GET /api/v1/auth/me, interleaved with them, is the server's own baseline: what any
    authenticated request costs on the (shared, noisy) machine at that moment.

    python bench/bench_calls.py ingest [--events 60000] [--batch-sizes 500,100,2000]
    python bench/bench_calls.py year [--requests 1600000] [--windows 40]

    HOTLINE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
    HOTLINE_REDIS_URL=redis://127.0.0.1:6379/0 python bench/bench_calls.py ingest
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tickets import (  # noqa: E402 - the shared helpers live beside this script
    DEFAULT_REDIS_URL,
    PASSWORD,
    ActivitySampler,
    free_port,
    fresh_database,
    hotline,
    libpq_url,
    login,
    percentile,
    private_redis,
)

# As given on the command line: the run rewrites them to point at the bench database.
GIVEN_ENV = {k: os.environ.get(k, "") for k in ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL")}
TZ = ZoneInfo("Asia/Shanghai")
CTI_HEADERS = {"X-CTI-Token": "development-cti-token", "Content-Type": "application/json"}
EVENTS_PATH = "/api/v1/calls/events"
RATE_PATH = "/api/v1/kpi/answer-rate"
ME_PATH = "/api/v1/auth/me"
CALLS_PER_DAY = 4400
# Share of a day's calls in each local hour: a quiet night, a morning and an afternoon peak.
HOURLY_PROFILE = (
    0.4, 0.25, 0.2, 0.15, 0.15, 0.3, 0.8, 2.0, 5.0, 7.5, 8.0, 7.5,
    5.0, 4.5, 7.0, 7.5, 7.0, 6.0, 4.0, 3.2, 2.8, 2.2, 1.5, 0.8,
)  # fmt: skip
WEEKEND_FACTOR = 0.7
QUEUES = ("general", "social_security", "h12315", "h12333")
QUEUE_WEIGHTS = (0.6, 0.2, 0.12, 0.08)
# As `hotline seed` configures them: the specialist seats overflow to the general desk.
OVERFLOW_AFTER = {"social_security": 30.0, "h12315": 60.0, "h12333": 60.0}
AGENTS = tuple(f"agent{i:03d}" for i in range(1, 301))
ABANDON_SHARE = 0.10
TRANSFER_SHARE = 0.04  # of answered calls
IVR_SHARE = 0.35
LATE_SHARE = 0.02


# -- calls -------------------------------------------------------------------------------------


@dataclass(slots=True)
class CallPlan:
    """What happens to one call; rendered either as CTI events or directly as requests."""

    call_id: str
    caller: str
    offered_at: datetime  # UTC; the IVR (if any) comes before it
    queue: str
    wait: float  # seconds in the queue until answered or given up
    ivr_seconds: float = 0.0
    ivr_option: str = ""
    gave_up: str = ""  # "" answered | "abandoned" | "timeout" | "hangup"
    agent: str = ""
    talk: float = 0.0
    transfer_to: str = ""
    wait2: float = 0.0
    agent2: str = ""
    talk2: float = 0.0


def _ms(seconds: float) -> float:
    return round(seconds, 3)


def plan_call(
    rng: random.Random, call_id: str, offered_at: datetime, callers: list[str]
) -> CallPlan:
    """A call with the mix of a busy city hotline: 10 % abandoned, 4 % of the answered ones
    transferred; about 87 % of the answered ones and 78 % of all answered within 15 s."""
    caller = rng.choice(callers) if rng.random() < 0.1 else f"1{rng.randint(3e9, 9e9 - 1):010d}"
    queue = rng.choices(QUEUES, QUEUE_WEIGHTS)[0]
    plan = CallPlan(call_id, caller, offered_at, queue, 0.0)
    if rng.random() < IVR_SHARE:
        plan.ivr_seconds = _ms(rng.uniform(8, 40))
        plan.ivr_option = str(rng.randint(1, 6))
    if rng.random() < ABANDON_SHARE:
        wait = _ms(rng.expovariate(1 / 35) + 1)
        if wait >= 60 and rng.random() < 0.5:
            plan.wait, plan.gave_up = 60.0, "timeout"
        else:
            plan.wait, plan.gave_up = wait, rng.choice(("abandoned", "hangup"))
        return plan
    slow = rng.random() < 0.12
    plan.wait = _ms(rng.expovariate(1 / (35 if slow else 5)) + 0.5)
    plan.agent = rng.choice(AGENTS)
    plan.talk = _ms(rng.lognormvariate(5.0, 0.6))  # median ~150 s
    if rng.random() < TRANSFER_SHARE:
        plan.transfer_to = rng.choice([q for q in QUEUES if q != queue])
        plan.wait2 = _ms(rng.expovariate(1 / 12) + 0.5)
        plan.agent2 = rng.choice(AGENTS)
        plan.talk2 = _ms(rng.lognormvariate(5.0, 0.6))
    return plan


def plan_events(plan: CallPlan) -> list[tuple[datetime, dict[str, Any]]]:
    """The CTI events of ``plan`` as (moment, event) pairs; `at` is local time with its offset."""
    out: list[tuple[datetime, dict[str, Any]]] = []

    def add(kind: str, moment: datetime, **extra: Any) -> None:
        event = {
            "event_id": f"{plan.call_id}-{len(out)}",
            "type": kind,
            "call_id": plan.call_id,
            "at": moment.astimezone(TZ).isoformat(),
            **extra,
        }
        out.append((moment, event))

    t = plan.offered_at
    if plan.ivr_seconds:
        add("ivr_entered", t - timedelta(seconds=plan.ivr_seconds), caller=plan.caller)
        add("ivr_selected", t - timedelta(seconds=1), option=plan.ivr_option)
    add("offered", t, queue=plan.queue, caller=plan.caller)
    overflow = OVERFLOW_AFTER.get(plan.queue)
    if overflow is not None and plan.wait > overflow:
        add("offered", t + timedelta(seconds=overflow), queue="general")
    done = t + timedelta(seconds=plan.wait)
    if plan.gave_up == "hangup":
        add("ended", done)
        return out
    if plan.gave_up:
        extra = {"reason": "timeout"} if plan.gave_up == "timeout" else {}
        add("abandoned", done, **extra)
        add("ended", done + timedelta(seconds=0.5))
        return out
    add("answered", done, agent=plan.agent)
    hang_up = done + timedelta(seconds=plan.talk)
    if not plan.transfer_to:
        add("ended", hang_up)
        return out
    add("transferred", hang_up, queue=plan.transfer_to)
    second = hang_up + timedelta(seconds=plan.wait2)
    add("answered", second, agent=plan.agent2)
    add("ended", second + timedelta(seconds=plan.talk2))
    return out


def plan_offers(plan: CallPlan) -> list[Any]:
    """The requests ``derive_offers`` makes of ``plan_events(plan)``, built directly (fast)."""
    from hotline.calls.service import DerivedOffer

    t = plan.offered_at
    first = DerivedOffer(0, plan.queue, t, plan.caller)
    overflow = OVERFLOW_AFTER.get(plan.queue)
    if overflow is not None and plan.wait > overflow:
        first.queue, first.overflowed_from = "general", plan.queue
    done = t + timedelta(seconds=plan.wait)
    if plan.gave_up:
        first.abandoned_at = done
        first.timeout = plan.gave_up == "timeout"
        first.ended_at = done if plan.gave_up == "hangup" else done + timedelta(seconds=0.5)
        return [first]
    first.answered_at, first.agent = done, plan.agent
    hang_up = done + timedelta(seconds=plan.talk)
    if not plan.transfer_to:
        first.ended_at = hang_up
        return [first]
    first.transferred_at = hang_up
    second = DerivedOffer(1, plan.transfer_to, hang_up, plan.caller)
    second.answered_at = hang_up + timedelta(seconds=plan.wait2)
    second.agent = plan.agent2
    second.ended_at = second.answered_at + timedelta(seconds=plan.talk2)
    return [first, second]


def hourly_counts(start: datetime, end: datetime, calls_per_day: float) -> Iterator[tuple]:
    """(UTC hour, number of calls) for each hour in [start, end), following the daily profile;
    cumulative rounding makes the counts add up to the expected total exactly."""
    # Normalised over a week, so that weekdays and quieter weekends average ``calls_per_day``.
    per_weight = calls_per_day / (sum(HOURLY_PROFILE) * (5 + 2 * WEEKEND_FACTOR) / 7)
    carried = 0.0
    made = 0
    hour = start
    while hour < end:
        local = hour.astimezone(TZ)
        weight = HOURLY_PROFILE[local.hour] * (WEEKEND_FACTOR if local.weekday() >= 5 else 1.0)
        carried += weight * per_weight
        count = round(carried) - made
        made += count
        yield hour, count
        hour += timedelta(hours=1)


def _callers(rng: random.Random) -> list[str]:
    return [f"139{rng.randint(0, 99_999_999):08d}" for _ in range(2000)]


# -- server and CPU ----------------------------------------------------------------------------
# Kept here rather than imported: bench_tickets reshapes its own versions for its needs.

_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_server(env: dict[str, str], workers: int) -> Iterator[tuple[str, int]]:
    """`hotline serve --workers N` on a free port; yields (base URL, pid), stopped at the end."""
    port = free_port()
    command = [sys.executable, "-m", "hotline", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", str(workers)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise SystemExit(f"hotline serve exited with {server.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("hotline serve did not become healthy within 60 s")
            time.sleep(0.2)
        yield base, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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
    # utime + stime + cutime + cstime: the postmaster's reaped backends count too.
    return sum(int(x) for x in fields[11:15]) / _TICKS


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    pids.append(int(entry))
    return pids


class CpuMeter:
    """CPU seconds used by the API server tree, PostgreSQL, this process, and the machine."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def read(self) -> dict[str, float]:
        server = [self.server_pid, *_children(self.server_pid)]
        with open("/proc/stat") as f:
            machine = [int(x) for x in f.readline().split()[1:]]
        idle = (machine[3] + machine[4]) / _TICKS
        return {
            "api": sum(_cpu_seconds(p) for p in server),
            "postgres": sum(_cpu_seconds(p) for p in _pids_named("postgres")),
            "client": time.process_time(),
            "busy": sum(machine) / _TICKS - idle,
        }


# -- backends ----------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str  # "SQLite" | "PostgreSQL"
    env: dict[str, str]
    database_url: str  # SQLAlchemy URL

    @property
    def postgres(self) -> bool:
        return self.name == "PostgreSQL"


@contextlib.contextmanager
def fresh_backend(prefix: str, args: argparse.Namespace) -> Iterator[Backend]:
    """A fresh, migrated and seeded database with a supervisor `bench`; removed at the end."""
    server_url = GIVEN_ENV["HOTLINE_DATABASE_URL"]
    with contextlib.ExitStack() as stack:
        data_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        if args.keep_db:
            stack.callback(print, f"kept data directory {data_dir}", file=sys.stderr)
        else:
            # A year on SQLite is 400 MB: leaving it in /tmp after every run fills the disk.
            stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        if server_url:
            database_url = stack.enter_context(
                fresh_database(server_url, prefix, keep=args.keep_db)
            )
            redis_server = GIVEN_ENV["HOTLINE_REDIS_URL"] or DEFAULT_REDIS_URL
            redis_url = stack.enter_context(private_redis(redis_server, args.redis_db))
            env = dict(
                os.environ,
                HOTLINE_DATABASE_URL=database_url,
                HOTLINE_REDIS_URL=redis_url,
                HOTLINE_DATA_DIR=str(data_dir),
                HOTLINE_LOG_LEVEL="WARNING",
            )
            backend = Backend("PostgreSQL", env, database_url)
            hotline(env, "db", "upgrade")
        else:
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL")
            }
            env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_LOG_LEVEL="WARNING")
            backend = Backend("SQLite", env, f"sqlite:///{data_dir / 'hotline.db'}")
            stack.callback(_stop_embedded_redis, data_dir)
        hotline(env, "seed")
        hotline(env, "user", "create", "bench", "--role", "supervisor", "--password", PASSWORD)
        use_in_process(backend)
        yield backend
        from hotline.core import db

        db.dispose_engine()


def _stop_embedded_redis(data_dir: Path) -> None:
    from hotline.core.redis import stop_embedded_redis

    stop_embedded_redis(data_dir)


def use_in_process(backend: Backend) -> None:
    """Point this process's hotline settings and engine at the bench database."""
    for key in ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL", "HOTLINE_DATA_DIR"):
        if key in backend.env:
            os.environ[key] = backend.env[key]
        else:
            os.environ.pop(key, None)
    from hotline.core import db
    from hotline.core.settings import get_settings

    get_settings.cache_clear()
    db.dispose_engine()


def header(part: str, backend: Backend, extra: str = "") -> None:
    env = ""
    if backend.postgres:
        env = (
            f"HOTLINE_DATABASE_URL={shlex.quote(GIVEN_ENV['HOTLINE_DATABASE_URL'])} "
            f"HOTLINE_REDIS_URL={shlex.quote(GIVEN_ENV['HOTLINE_REDIS_URL'])} "
        )
    command = env + " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
    ).stdout.strip()
    print(f"\n== {part} on {backend.name} ==")
    print(f"command: {command}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, commit {commit or '?'}; {extra}"
    )


# -- part 1: ingest ----------------------------------------------------------------------------


def build_stream(count: int, seed: int, now: datetime) -> list[dict[str, Any]]:
    """``count`` events of the calls of the last days up to ``now``, in arrival order.

    Calls are made hour by hour backwards from ``now`` until there are enough events; events
    after ``now`` have not happened yet (calls in progress). Arrival follows the event time,
    except that 2 % arrive up to five minutes late. The oldest call may be cut short.
    """
    rng = random.Random(seed)
    callers = _callers(rng)
    run = f"{seed:x}{rng.randrange(16**6):06x}"
    arrivals: list[tuple[datetime, int, dict[str, Any]]] = []
    hour = now.replace(minute=0, second=0, microsecond=0)
    serial = 0
    while len(arrivals) < count:
        [(_, calls)] = hourly_counts(hour, hour + timedelta(hours=1), CALLS_PER_DAY)
        for _ in range(calls):
            offered = hour + timedelta(seconds=_ms(rng.uniform(0, 3600)))
            if offered >= now:
                continue
            plan = plan_call(rng, f"c{run}-{serial}", offered, callers)
            serial += 1
            for moment, event in plan_events(plan):
                if moment > now:
                    break
                late = rng.uniform(0, 300) if rng.random() < LATE_SHARE else 0.0
                arrivals.append((moment + timedelta(seconds=late), len(arrivals), event))
        hour -= timedelta(hours=1)
    arrivals.sort(key=lambda a: (a[0], a[1]))
    return [event for _, _, event in arrivals[-count:]]


@dataclass
class Phase:
    """One kind of request (fresh or replayed batches) summed over the rounds."""

    name: str
    events: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    cpu: Counter[str] = field(default_factory=Counter)
    activity: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def post_batches(
    base: str,
    bodies: list[bytes],
    sizes: list[int],
    phase: Phase,
    expect: str,
    concurrency: int,
    meter: CpuMeter,
    sampler: ActivitySampler | None = None,
) -> None:
    """POST ``bodies`` (``concurrency`` clients, keep-alive) and check every event's status."""
    lock = threading.Lock()
    queue = iter(range(len(bodies)))
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=base, headers=CTI_HEADERS, timeout=120) as http:
            while True:
                with lock:
                    index = next(queue, None)
                if index is None or failures:
                    return
                started = time.perf_counter()
                response = http.post(EVENTS_PATH, content=bodies[index])
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:300]}")
                    return
                report = response.json()
                with lock:
                    phase.latencies_ms.append(elapsed)
                    phase.counts.update(
                        {k: report[k] for k in ("accepted", "duplicates", "rejected")}
                    )
                if report[expect] != sizes[index]:
                    bad = [r for r in report["results"] if r["status"] != expect][:3]
                    failures.append(
                        f"batch {index}: {expect} {report[expect]}/{sizes[index]}: {bad}"
                    )

    before = meter.read()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    with sampler.recorded() if sampler else contextlib.nullcontext(Counter()) as activity:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    phase.seconds += elapsed
    for key, value in activity.items():
        phase.activity[key] += value * elapsed
    after = meter.read()
    for key in after:
        phase.cpu[key] += after[key] - before[key]
    if failures:
        raise SystemExit(f"{phase.name}: {failures[0]}")
    phase.events += sum(sizes)


class Reader(threading.Thread):
    """The wall meanwhile: GET the answer rate of the last 24 hours every ``interval`` seconds
    while ``reading`` is set (--with-reader), to show what intake does to its latency."""

    def __init__(self, base: str, interval: float = 0.1) -> None:
        super().__init__(name="reader", daemon=True)
        self.http = httpx.Client(base_url=base, headers=login(base, "bench"), timeout=60)
        self.interval = interval
        self.reading = threading.Event()
        self.stopped = threading.Event()
        self.latencies_ms: list[float] = []
        self.errors: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if not self.reading.is_set():
                continue
            now = datetime.now(TZ)
            params = {"start": (now - timedelta(days=1)).isoformat(), "end": now.isoformat()}
            started = time.perf_counter()
            response = self.http.get(RATE_PATH, params=params)
            if response.status_code == 200:
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.errors[str(response.status_code)] += 1

    def close(self) -> None:
        self.stopped.set()
        self.join(timeout=60)
        self.http.close()


def check_ingested(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Stored events and requests against the stream; every bucket against its requests."""
    from sqlalchemy import func, select

    from hotline.calls.models import CallEvent, CallOffer
    from hotline.calls.service import CallEventIn, bucket_contribution, derive_offers
    from hotline.core import db
    from hotline.kpi.service import bucket_sums

    by_call: dict[str, list[CallEventIn]] = defaultdict(list)
    for raw in events:
        by_call[raw["call_id"]].append(CallEventIn.model_validate(raw))
    expected = Counter(o.outcome for evs in by_call.values() for o in derive_offers(evs))
    with db.transaction() as session:
        stored_events = session.scalar(select(func.count()).select_from(CallEvent))
        stored = Counter(
            dict(session.execute(select(CallOffer.outcome, func.count()).group_by("outcome")).all())
        )
        sums: dict[tuple, Counter] = defaultdict(Counter)
        for offer in session.scalars(select(CallOffer)):
            key, values = bucket_contribution(offer)
            sums[key].update(values)
        buckets = bucket_sums(session)
        bad_buckets = 0
        for key in set(sums) | set(buckets):
            row, want = buckets.get(key), sums.get(key, Counter())
            for name in ("offered", "answered", "answered_within", "abandoned", "talk_count"):
                if (row[name] if row else 0) != want[name]:
                    bad_buckets += 1
                    break
            else:
                for name in ("wait_sum", "talk_sum"):
                    if abs((row[name] if row else 0.0) - want[name]) > 1e-6:
                        bad_buckets += 1
                        break
    problems = []
    if stored_events != len(events):
        problems.append(f"{stored_events} events stored, {len(events)} sent")
    if stored != expected:
        problems.append(f"requests by outcome {dict(stored)}, derived {dict(expected)}")
    if bad_buckets:
        problems.append(f"{bad_buckets} of {len(buckets)} KPI buckets differ from their requests")
    return {
        "requests": sum(stored.values()),
        "outcomes": dict(stored),
        "buckets": len(buckets),
        "problems": problems,
    }


def autovacuum_on(backend: Backend) -> bool:
    with psycopg.connect(libpq_url(backend.database_url)) as connection:
        return connection.execute("SHOW autovacuum").fetchone()[0] == "on"


def analyze(backend: Backend) -> None:
    """Refresh planner statistics (and so invalidate cached plans) of the bench database."""
    with psycopg.connect(libpq_url(backend.database_url), autocommit=True) as connection:
        connection.execute("ANALYZE")


def outbox_drain(limit_seconds: float = 300.0) -> tuple[int, float]:
    """Events still waiting in the outbox now, and the seconds until the relay delivered them.

    The API relays right after each commit and a background thread retries every second;
    what is left when the last batch has been answered is how far the event bus (screen
    pops, agent states on the wall) lags behind intake.
    """
    from sqlalchemy import func, select

    from hotline.core import db
    from hotline.core.models import OutboxMessage

    started = time.perf_counter()
    backlog = None
    while True:
        with db.transaction() as session:
            left = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        backlog = left if backlog is None else backlog
        waited = time.perf_counter() - started
        if not left:
            return backlog, waited
        if waited > limit_seconds:
            raise SystemExit(f"{left} outbox rows still undelivered after {limit_seconds:.0f} s")
        time.sleep(0.2)


def run_ingest(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    now = datetime.now(UTC)
    events = build_stream(args.events, args.seed, now)
    kinds = Counter(e["type"] for e in events)
    results: list[tuple[int, Phase, Phase, dict[str, Any]]] = []
    backend_name = ""
    for size_index, size in enumerate(sizes):
        with fresh_backend("bench_calls", args) as backend:
            backend_name = backend.name
            if size_index == 0:
                header(
                    "ingest",
                    backend,
                    f"{len(events)} events of {len({e['call_id'] for e in events})} calls "
                    f"({', '.join(f'{k} {v}' for k, v in kinds.most_common())}), "
                    f"`hotline serve --workers {args.workers}`, {args.concurrency} client(s)",
                )
            # The first size gets the whole stream; the others its newest part, to save time.
            stream = events if size_index == 0 else events[-args.other_events :]
            chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
            bodies = [json.dumps(chunk, ensure_ascii=False).encode() for chunk in chunks]
            lengths = [len(chunk) for chunk in chunks]
            fresh = Phase(f"batch {size}: new events")
            replay = Phase(f"batch {size}: all duplicates (baseline)")
            emulate_autovacuum = backend.postgres and not autovacuum_on(backend)
            if emulate_autovacuum and size_index == 0:
                print(
                    "  autovacuum is off on this PostgreSQL server: the bench runs ANALYZE after"
                    " each round, as autoanalyze would (else plans made while the tables were"
                    " empty stay cached in the server's connections)"
                )
            with contextlib.ExitStack() as stack:
                base, pid = stack.enter_context(running_server(backend.env, args.workers))
                meter = CpuMeter(pid)
                sampler = None
                if backend.postgres:
                    sampler = ActivitySampler(backend.database_url)
                    sampler.start()
                    stack.callback(sampler.close)
                reader = None
                if args.with_reader:
                    reader = Reader(base)
                    reader.start()
                    stack.callback(reader.close)
                rounds = max(1, min(args.rounds, len(bodies)))
                bounds = [round(i * len(bodies) / rounds) for i in range(rounds + 1)]
                profiler = None
                for r in range(rounds):
                    part = slice(bounds[r], bounds[r + 1])
                    if args.py_spy and size_index == 0 and r == 0:
                        profiler = _start_py_spy(pid, args.py_spy, args.profile_seconds)
                    if reader is not None:
                        reader.reading.set()
                    post_batches(
                        base,
                        bodies[part],
                        lengths[part],
                        fresh,
                        "accepted",
                        args.concurrency,
                        meter,
                        sampler,
                    )
                    if reader is not None:
                        reader.reading.clear()
                    post_batches(base, bodies[part], lengths[part], replay, "duplicates", 1, meter)
                    if emulate_autovacuum:
                        analyze(backend)
                backlog, drained = outbox_drain()
                if profiler is not None:
                    profiler.wait()
                check = check_ingested(stream)
                check.update(backlog=backlog, drained=drained)
                if reader is not None:
                    check["reader"] = (list(reader.latencies_ms), sum(reader.errors.values()))
            results.append((size, fresh, replay, check))
            print(
                f"  batch {size}: {fresh.rate:,.0f} events/s new, {replay.rate:,.0f} events/s "
                f"duplicates; {check['requests']} requests, {check['buckets']} buckets; "
                f"outbox {check['backlog']} events behind at the end, drained in "
                f"{check['drained']:.1f} s; "
                f"checks: {'; '.join(check['problems']) or 'ok'}",
                flush=True,
            )

    print_ingest(results, backend_name)


def print_ingest(results: list[tuple[int, Phase, Phase, dict]], backend_name: str) -> None:
    print()
    print(f"POST {EVENTS_PATH}, {backend_name}: events/s and latency per batch")
    print(
        f"{'series':<40}{'batches':>8}{'events/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'API':>7}{'pg*':>7}{'bench':>7}{'machine':>8}"
    )
    for _size, fresh, replay, _check in results:
        for phase in (fresh, replay):
            values, cpu = phase.latencies_ms, phase.cpu
            pg = f"{cpu['postgres'] / phase.seconds:>7.2f}" if backend_name == "PostgreSQL" else ""
            print(
                f"{phase.name:<40}{len(values):>8}{phase.rate:>10,.0f}"
                f"{percentile(values, 50):>9.1f}{percentile(values, 95):>9.1f}"
                f"{percentile(values, 99):>9.1f}{cpu['api'] / phase.seconds:>7.2f}"
                f"{pg or f'{chr(45):>7}'}{cpu['client'] / phase.seconds:>7.2f}"
                f"{cpu['busy'] / phase.seconds:>8.2f}"
            )
    print(
        "  CPU in cores used on average: the API server, every `postgres` process on the machine,"
        " this bench, and all non-idle CPU of the machine (others' work included)"
    )
    activity = [(f.name, f.activity, f.seconds) for _, f, _, _ in results if f.activity]
    if activity:
        keys = sorted({k for _, a, _ in activity for k in a})
        print(
            "PostgreSQL backends of the bench database while new events were posted (mean number)"
        )
        for key in keys:
            print(f"  {key:<44}" + "".join(f"{a[key] / t:>8.2f}" for _, a, t in activity))
    print()
    print(
        f"{'batch':>6}{'events':>8}{'new ev/s':>10}{'dupes ev/s':>12}{'p50 new/dup':>12}"
        f"{'2,000/s':>9}{'outbox behind':>15}{'drain s':>9}  checks"
    )
    for size, fresh, replay, check in results:
        ratio = percentile(fresh.latencies_ms, 50) / percentile(replay.latencies_ms, 50)
        verdict = "met" if fresh.rate >= 2000 else "NOT met"
        counts = f"accepted {fresh.counts['accepted']}, rejected {fresh.counts['rejected']}"
        print(
            f"{size:>6}{fresh.events:>8}{fresh.rate:>10,.0f}{replay.rate:>12,.0f}{ratio:>12.1f}"
            f"{verdict:>9}{check['backlog']:>15}{check['drained']:>9.1f}  {counts}; "
            f"{'; '.join(check['problems']) or 'stored requests and buckets agree'}"
        )
    print(
        "  outbox behind: events (agent states, screen pops) not yet relayed when the last batch"
        " was answered; drain s: until the relay had delivered them"
    )
    readers = [(size, check["reader"]) for size, _, _, check in results if "reader" in check]
    if readers:
        print()
        print(f"GET {RATE_PATH} (last 24 h, all queues) every 0.1 s while new events were posted")
        print(f"{'batch':>6}{'requests':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for size, (values, errors) in readers:
            print(
                f"{size:>6}{len(values):>10}{percentile(values, 50):>9.1f}"
                f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}"
                f"{max(values, default=float('nan')):>9.1f}"
                + (f"  {errors} failed" if errors else "")
            )
    if any(check["problems"] for *_, check in results):
        raise SystemExit("ingest checks failed")


def _start_py_spy(pid: int, output: str, seconds: float) -> subprocess.Popen:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
         "--format", "raw", "--rate", "200", "--duration", str(max(1, int(seconds))),
         "--output", output],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


# -- part 2: a year of calls -------------------------------------------------------------------

OFFER_COLUMNS = (
    "call_id", "seq", "queue", "caller", "offered_at", "answered_at", "agent", "abandoned_at",
    "transferred_at", "ended_at", "wait_seconds", "talk_seconds", "outcome", "overflowed_from",
)  # fmt: skip
BUCKET_COLUMNS = (
    "queue", "hour", "offered", "answered", "answered_within", "abandoned", "short_abandoned",
    "wait_sum", "talk_sum", "talk_count",
)  # fmt: skip
_TIMES = {"offered_at", "answered_at", "abandoned_at", "transferred_at", "ended_at", "hour"}


def year_plans(start: datetime, end: datetime, requests: int, seed: int) -> Iterator[list]:
    """Requests of [start, end), one list of (call_id, DerivedOffer) per day; about
    ``requests`` in all."""
    rng = random.Random(seed)
    callers = _callers(rng)
    offers_per_call = 1 + (1 - ABANDON_SHARE) * TRANSFER_SHARE
    days = (end - start) / timedelta(days=1)
    per_day = requests / offers_per_call / days
    serial = 0
    day: list = []
    day_end = start + timedelta(days=1)
    for hour, calls in hourly_counts(start, end, per_day):
        if hour >= day_end:
            yield day
            day, day_end = [], day_end + timedelta(days=1)
        moments = sorted(rng.uniform(0, 3600) for _ in range(calls))
        for offset in moments:
            plan = plan_call(rng, f"y{serial}", hour + timedelta(seconds=_ms(offset)), callers)
            serial += 1
            day.extend((plan.call_id, offer) for offer in plan_offers(plan))
    if day:
        yield day


def check_plans_match_derivation(seed: int) -> None:
    """plan_offers must give exactly what derive_offers makes of the plan's events."""
    from hotline.calls.service import CallEventIn, derive_offers

    rng = random.Random(seed)
    callers = _callers(rng)
    start = datetime(2026, 1, 5, 2, tzinfo=UTC)
    for i in range(3000):
        plan = plan_call(rng, f"check{i}", start + timedelta(minutes=i), callers)
        events = [CallEventIn.model_validate(e) for _, e in plan_events(plan)]
        derived = [o.columns() for o in derive_offers(events)]
        direct = [o.columns() for o in plan_offers(plan)]
        if derived != direct:
            raise SystemExit(f"plan_offers disagrees with derive_offers:\n{derived}\n{direct}")


def _sqlite_time(moment: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format (naive UTC): strings compare in time order.
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}"


def _pg_time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}+00"


def load_year(backend: Backend, start: datetime, end: datetime, args: argparse.Namespace) -> dict:
    """Generate and bulk-load the year; returns counts and seconds."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.types import DateTime

    from hotline.calls.service import bucket_basis, bucket_contribution

    # The settings the buckets are counted under, as the service records them: without them
    # the first read would recount the year.
    basis = list(bucket_basis().items())

    probe = datetime(2026, 3, 4, 5, 6, 7, 8000)
    dialect = sqlite_dialect.dialect()
    stored_form = DateTime().dialect_impl(dialect).bind_processor(dialect)(probe)
    assert stored_form == _sqlite_time(probe), (stored_form, _sqlite_time(probe))

    buckets: dict[tuple, dict[str, float]] = {}
    offers = 0
    generate_seconds = 0.0
    started = time.perf_counter()
    if backend.postgres:
        connection = psycopg.connect(libpq_url(backend.database_url))
        copy_context = connection.cursor().copy(
            f"COPY call_offers ({', '.join(OFFER_COLUMNS)}) FROM STDIN"
        )
        copy = copy_context.__enter__()

        def write(rows: list[dict]) -> None:
            lines = []
            for row in rows:
                cells = []
                for name in OFFER_COLUMNS:
                    value = row[name]
                    if value is None:
                        cells.append("\\N")
                    elif name in _TIMES:
                        cells.append(_pg_time(value))
                    else:
                        cells.append(str(value))
                lines.append("\t".join(cells))
            copy.write(("\n".join(lines) + "\n").encode())
    else:
        connection = sqlite3.connect(backend.database_url.removeprefix("sqlite:///"))
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN")
        insert = (
            f"INSERT INTO call_offers ({', '.join(OFFER_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in OFFER_COLUMNS)})"
        )

        def write(rows: list[dict]) -> None:
            connection.executemany(
                insert,
                [
                    tuple(
                        _sqlite_time(row[n]) if n in _TIMES and row[n] is not None else row[n]
                        for n in OFFER_COLUMNS
                    )
                    for row in rows
                ],
            )

    try:
        days = year_plans(start, end, args.requests, args.seed)
        while True:
            t0 = time.perf_counter()
            day = next(days, None)
            if day is None:
                break
            rows = []
            for call_id, offer in day:
                key, values = bucket_contribution(offer)
                sums = buckets.get(key)
                if sums is None:
                    buckets[key] = dict(values)
                else:
                    for name, value in values.items():
                        sums[name] += value
                rows.append({"call_id": call_id, **offer.columns()})
            generate_seconds += time.perf_counter() - t0
            write(rows)
            offers += len(rows)
        bucket_rows = [
            {"queue": q, "hour": h, **{n: v for n, v in values.items()}}
            for (q, h), values in buckets.items()
        ]
        if backend.postgres:
            copy_context.__exit__(None, None, None)
            with connection.cursor().copy(
                f"COPY kpi_buckets ({', '.join(BUCKET_COLUMNS)}) FROM STDIN"
            ) as bucket_copy:
                for row in bucket_rows:
                    bucket_copy.write_row([row[n] for n in BUCKET_COLUMNS])
            connection.cursor().executemany(
                "INSERT INTO counters (name, value) VALUES (%s, %s)", basis
            )
            connection.commit()
        else:
            connection.executemany(
                f"INSERT INTO kpi_buckets ({', '.join(BUCKET_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in BUCKET_COLUMNS)})",
                [
                    tuple(_sqlite_time(r[n]) if n == "hour" else r[n] for n in BUCKET_COLUMNS)
                    for r in bucket_rows
                ],
            )
            connection.executemany("INSERT INTO counters (name, value) VALUES (?, ?)", basis)
            connection.execute("COMMIT")
        load_seconds = time.perf_counter() - started
        analyze_seconds = 0.0
        if backend.postgres:
            # What autovacuum would have done on a table that grew over a year; explicit so
            # that plans and index-only scans do not depend on when it happened to run.
            connection.autocommit = True
            t0 = time.perf_counter()
            connection.execute("VACUUM ANALYZE call_offers")
            connection.execute("VACUUM ANALYZE kpi_buckets")
            analyze_seconds = time.perf_counter() - t0
    finally:
        connection.close()
    return {
        "offers": offers,
        "buckets": len(buckets),
        "seconds": load_seconds,
        "generate_seconds": generate_seconds,
        "analyze_seconds": analyze_seconds,
    }


def aggregate_rate(session: Any, start: datetime, end: datetime, queue: str | None) -> dict:
    """Baseline: the same figures from one SQL aggregate over call_offers, without buckets."""
    from sqlalchemy import and_, case, func, select

    from hotline.calls.models import CallOffer as O  # noqa: N814
    from hotline.core.settings import get_settings
    from hotline.kpi.service import _figures

    settings = get_settings()
    threshold, short = settings.answer_threshold_seconds, settings.short_abandon_seconds
    now = datetime.now(UTC)
    answered = O.answered_at.is_not(None)
    abandoned = and_(O.abandoned_at.is_not(None), O.answered_at.is_(None))
    # Still waiting and not yet past the threshold: counted neither way (kpi.service._pending).
    pending = and_(O.outcome == "waiting", O.offered_at > now - timedelta(seconds=threshold))
    # Waiting past the lost limit: its end never came; left out (kpi.service._open_requests).
    lost_before = now - timedelta(seconds=settings.lost_waiting_seconds)
    lost = and_(O.outcome == "waiting", O.offered_at <= lost_before)
    lost_talking = and_(
        O.outcome == "talking",
        O.answered_at <= now - timedelta(seconds=settings.lost_talking_seconds),
    )

    def count_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = select(
        func.count(),
        count_if(pending),
        count_if(lost),
        count_if(lost_talking),
        count_if(answered),
        count_if(and_(answered, O.wait_seconds <= threshold)),
        count_if(abandoned),
        count_if(and_(abandoned, O.wait_seconds < short)),
        func.coalesce(func.sum(case((answered, O.wait_seconds), else_=0.0)), 0.0),
        func.coalesce(func.sum(O.talk_seconds), 0.0),
        func.count(O.talk_seconds),
    ).where(O.offered_at >= start.astimezone(UTC), O.offered_at < end.astimezone(UTC))
    if queue:
        query = query.where(O.queue == queue)
    rows, waiting, lost_count, lost_talking_count, *sums = session.execute(query).one()
    names = ("answered", "answered_within", "abandoned", "short_abandoned", "wait_sum",
             "talk_sum", "talk_count")  # fmt: skip
    totals = {"offered": rows - waiting - lost_count, **dict(zip(names, sums, strict=True))}
    open_counts = {"waiting": waiting, "lost": lost_count, "lost_talking": lost_talking_count}
    return _figures(totals, open_counts)


@dataclass
class Window:
    kind: str
    start: datetime
    end: datetime
    queue: str | None


def make_windows(start: datetime, end: datetime, per_kind: int, seed: int) -> list[Window]:
    """Whole year, calendar quarters, days and ragged windows, overall and per queue, shuffled."""
    rng = random.Random(seed)
    choices = (None, None, *QUEUES)
    local_start, local_end = start.astimezone(TZ), end.astimezone(TZ)
    quarters = []
    month = local_start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month < local_end:
        if month.month % 3 == 1 and month >= local_start:
            following = month.replace(year=month.year + (month.month == 10),
                                      month=(month.month + 2) % 12 + 1)  # fmt: skip
            if following <= local_end:
                quarters.append((month, following))
        month = month.replace(year=month.year + (month.month == 12), month=month.month % 12 + 1)
    first_day = (local_start + timedelta(days=1)).replace(hour=0, minute=0)
    days = (local_end - first_day).days
    windows = []
    for i in range(per_kind):
        windows.append(Window("year", local_start, local_end, (None, *QUEUES)[i % 5]))
        q_start, q_end = rng.choice(quarters)
        windows.append(Window("quarter", q_start, q_end, rng.choice(choices)))
        day = first_day + timedelta(days=rng.randrange(days))
        windows.append(Window("day", day, day + timedelta(days=1), rng.choice(choices)))
        minutes = round(math.exp(rng.uniform(math.log(10), math.log(120 * 24 * 60))))
        if minutes % 60 == 0:
            minutes += rng.randint(1, 59)
        total = int((local_end - local_start).total_seconds() // 60)
        offset = rng.randrange(total - minutes)
        if offset % 60 == 0:
            offset += 1
        w_start = local_start + timedelta(minutes=offset)
        windows.append(
            Window("ragged", w_start, w_start + timedelta(minutes=minutes), rng.choice(choices))
        )
    rng.shuffle(windows)
    return windows


def _agree(a: dict, b: dict) -> bool:
    for key, value in a.items():
        other = b.get(key)
        if isinstance(value, float) or isinstance(other, float):
            # Sums of floats in another order: equal up to the rounding of the last digit.
            if value is None or other is None or abs(value - other) > 0.011:
                return False
        elif value != other:
            return False
    return a.keys() == b.keys()


def run_year(args: argparse.Namespace) -> None:
    with fresh_backend("bench_calls_year", args) as backend:
        now = datetime.now(UTC)
        end = now.astimezone(TZ).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        start = end - timedelta(days=365)
        check_plans_match_derivation(args.seed)
        loaded = load_year(backend, start, end, args)
        header(
            "year",
            backend,
            f"{loaded['offers']:,} requests from {start.astimezone(TZ):%Y-%m-%d %H:%M} to "
            f"{end.astimezone(TZ):%Y-%m-%d %H:%M} {TZ.key}, {loaded['buckets']:,} KPI buckets",
        )
        method = "COPY" if backend.postgres else "sqlite3 executemany, one transaction"
        print(
            f"loaded in {loaded['seconds']:.1f} s ({loaded['offers'] / loaded['seconds']:,.0f} "
            f"requests/s; generating + bucket_contribution {loaded['generate_seconds']:.1f} s "
            f"of it; {method})"
            + (f"; VACUUM ANALYZE {loaded['analyze_seconds']:.1f} s" if backend.postgres else "")
        )
        windows = make_windows(start, end, args.windows, args.seed)
        results = measure_windows(backend, windows, args)
        print_year(results, backend)


def measure_windows(backend: Backend, windows: list[Window], args: argparse.Namespace) -> dict:
    from hotline.core import db
    from hotline.kpi.service import answer_rate

    timings: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    mismatches: list[str] = []
    compared = 0
    year_figures: dict = {}
    slowest: list[tuple[float, float, Window]] = []
    with running_server(backend.env, args.workers) as (base, _pid):
        headers = login(base, "bench")
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:

            def via_api(w: Window) -> dict:
                params = {"start": w.start.isoformat(), "end": w.end.isoformat()}
                if w.queue:
                    params["queue"] = w.queue
                response = http.get(RATE_PATH, params=params)
                if response.status_code != 200:
                    raise SystemExit(
                        f"{RATE_PATH} {params}: {response.status_code} {response.text}"
                    )
                return response.json()

            def framework(_w: Window) -> dict:
                # What any authenticated GET costs on this server at this moment: the API's
                # figures minus this are the answer rate's own share.
                response = http.get(ME_PATH)
                response.raise_for_status()
                return response.json()

            def in_process(w: Window) -> dict:
                with db.transaction() as session:
                    return answer_rate(session, w.start, w.end, w.queue)

            def baseline(w: Window) -> dict:
                with db.transaction() as session:
                    return aggregate_rate(session, w.start, w.end, w.queue)

            paths: list[tuple[str, Callable[[Window], dict]]] = [
                ("api", via_api), ("answer_rate", in_process), ("aggregate", baseline),
                ("auth_me", framework),
            ]  # fmt: skip
            warm = [w for kind in ("year", "ragged", "day") for w in windows if w.kind == kind][:9]
            for w in warm:
                for _, path in paths:
                    path(w)
            for i, w in enumerate(windows):
                got: dict[str, dict] = {}
                for name, path in paths[i % 4 :] + paths[: i % 4]:  # rotate the order
                    t0 = time.perf_counter()
                    got[name] = path(w)
                    timings[w.kind][name].append((time.perf_counter() - t0) * 1000)
                compared += 1
                # The API also names the basis it counted overflow by; in process it is implied.
                api_figures = {k: v for k, v in got["api"].items() if k != "by"}
                if api_figures != json.loads(json.dumps(got["answer_rate"])):
                    mismatches.append(f"API vs in-process {w}: {got['api']} {got['answer_rate']}")
                if not _agree(got["answer_rate"], got["aggregate"]):
                    mismatches.append(f"buckets vs aggregate {w}: {got['answer_rate']} "
                                      f"{got['aggregate']}")  # fmt: skip
                if w.kind == "year" and w.queue is None:
                    year_figures = got["answer_rate"]
                slowest.append((timings[w.kind]["api"][-1], timings[w.kind]["answer_rate"][-1], w))
    return {
        "timings": timings,
        "mismatches": mismatches,
        "compared": compared,
        "year_figures": year_figures,
        "slowest": sorted(slowest, key=lambda s: -s[0])[:3],
    }


def print_year(results: dict, backend: Backend) -> None:
    timings = results["timings"]
    figures = results["year_figures"]
    print()
    print(f"GET {RATE_PATH} vs in-process answer_rate vs one SQL aggregate, {backend.name}, ms")
    print(
        f"{'windows':<10}{'n':>4} | {'API p50':>8}{'p95':>7}{'p99':>7} | {'answer_rate':>11}"
        f"{'p95':>7}{'p99':>7} | {'aggregate':>9}{'p95':>8}{'p99':>8} | {'agg/ar p50':>10}"
    )
    every: dict[str, list[float]] = defaultdict(list)
    for kind in ("year", "quarter", "day", "ragged"):
        series = timings[kind]
        for name, values in series.items():
            every[name] += values
        _year_row(kind, series)
    _year_row("all", every)
    api_p99 = percentile(every["api"], 99)
    me = every["auth_me"]
    print(
        f"baseline GET {ME_PATH}, interleaved: p50 {percentile(me, 50):.1f}, p95 "
        f"{percentile(me, 95):.1f}, p99 {percentile(me, 99):.1f} ms; ratio answer-rate API / "
        f"{ME_PATH}: p50 {percentile(every['api'], 50) / percentile(me, 50):.2f}, p99 "
        f"{api_p99 / percentile(me, 99):.2f}"
    )
    print(
        f"API p99 over all {len(every['api'])} windows {api_p99:.1f} ms, max "
        f"{max(every['api']):.1f} ms: target < 100 ms {'met' if api_p99 < 100 else 'NOT met'}"
    )
    print(
        f"agreement: {results['compared']} windows compared (API = in-process; in-process = "
        f"aggregate): {len(results['mismatches'])} mismatches"
    )
    for line in results["mismatches"][:5]:
        print("  " + line)
    for api_ms, rate_ms, w in results["slowest"]:
        print(
            f"  slow: {w.kind} {w.start:%Y-%m-%d %H:%M} + {w.end - w.start} "
            f"{w.queue or 'all queues'}: API {api_ms:.1f} ms, answer_rate {rate_ms:.1f} ms"
        )
    if figures:
        print(
            f"whole year, all queues: {figures['offered']:,} offered, rate {figures['rate']}, "
            f"ASA {figures['average_speed_of_answer_seconds']} s, abandon rate "
            f"{figures['abandon_rate']}"
        )
    if results["mismatches"]:
        raise SystemExit("answer_rate and the aggregate disagree")


def _year_row(kind: str, series: dict[str, list[float]]) -> None:
    api, rate, agg = series["api"], series["answer_rate"], series["aggregate"]
    print(
        f"{kind:<10}{len(api):>4} | {percentile(api, 50):>8.1f}{percentile(api, 95):>7.1f}"
        f"{percentile(api, 99):>7.1f} | {percentile(rate, 50):>11.1f}{percentile(rate, 95):>7.1f}"
        f"{percentile(rate, 99):>7.1f} | {percentile(agg, 50):>9.1f}{percentile(agg, 95):>8.1f}"
        f"{percentile(agg, 99):>8.1f} | {percentile(agg, 50) / percentile(rate, 50):>10.1f}"
    )


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=12345, help="random seed of the data")
    parser.add_argument("--workers", type=int, default=1, help="hotline serve --workers")
    parser.add_argument("--redis-db", type=int, default=14, help="private Redis db (PostgreSQL)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and data dir)")
    parts = parser.add_subparsers(dest="part", required=True)
    ingest = parts.add_parser("ingest", help="POST /calls/events throughput")
    ingest.add_argument("--events", type=int, default=60_000, help="events, first batch size")
    ingest.add_argument(
        "--other-events", type=int, default=20_000, help="events for the other batch sizes"
    )
    ingest.add_argument("--batch-sizes", default="500,100,2000", help="comma-separated")
    ingest.add_argument("--rounds", type=int, default=10, help="new/duplicate alternations")
    ingest.add_argument("--concurrency", type=int, default=1, help="clients posting at once")
    ingest.add_argument(
        "--with-reader",
        action="store_true",
        help="also GET the last 24 h answer rate every 0.1 s while posting, and report it",
    )
    ingest.add_argument("--py-spy", metavar="FILE", help="profile the server (first batch size)")
    ingest.add_argument("--profile-seconds", type=float, default=20.0)
    year = parts.add_parser("year", help="answer rate over a year of calls")
    year.add_argument("--requests", type=int, default=1_600_000, help="requests in the year")
    year.add_argument("--windows", type=int, default=40, help="windows of each kind")
    args = parser.parse_args()
    if args.part == "ingest":
        run_ingest(args)
    else:
        run_year(args)


if __name__ == "__main__":
    main()
