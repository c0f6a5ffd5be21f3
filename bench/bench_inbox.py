"""Department inbox latency (GET /api/v1/tickets) with a million tickets on PostgreSQL.

Creates a fresh database on the PostgreSQL server of HOTLINE_DATABASE_URL (never touching the
database that URL names), runs `hotline db upgrade` and `hotline seed`, and fills it with
--tickets tickets (default 1,000,000) received over the last two years: each one a request
routed by the project's own routing (so departments, towns, matters and the stored routing
explanation are what intake would have written), with a status mix that follows age — most
tickets older than a month are closed, a few stragglers stay open and overdue, recent ones are
being handled — and a co-handling department on some. Rows go in with COPY, secondary indexes
are built afterwards, then VACUUM ANALYZE runs as autovacuum would have long since done.

Then `hotline serve` answers a department user of the department with the largest inbox,
over one keep-alive connection, request after request, in interleaved rounds:

  inbox                 GET /api/v1/tickets            its open tickets, soonest deadline first
  inbox due=overdue     GET /api/v1/tickets?due=overdue
  inbox due=soon        GET /api/v1/tickets?due=soon
  status=accepted       GET /api/v1/tickets?status=accepted
  status=closed         GET /api/v1/tickets?status=closed   (the department's history)
  baseline              GET /api/v1/auth/me            same framework, token check, database

Finally the SQL that the service runs for each series is captured and run under
EXPLAIN (ANALYZE, BUFFERS), and the plans are summarised. The database is dropped at the end
unless --keep-db is given; --use-db NAME measures a kept database again without refilling it.

    HOTLINE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    HOTLINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
    python bench/bench_inbox.py [--tickets 1000000] [--requests 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tickets import (  # noqa: E402 - the shared helpers live beside this script
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PASSWORD,
    bench_env,
    build_requests,
    fresh_database,
    hotline,
    libpq_url,
    login,
    percentile,
    private_redis,
    running_server,
    with_database,
)

DAY = 86400.0
HOUR = 3600.0
OPEN = ("pending_dispatch", "dispatched", "accepted")
TICKET_COLUMNS = [
    "id",
    "number",
    "channel",
    "caller_name",
    "caller_phone",
    "content",
    "address",
    "town_code",
    "area_code",
    "matter_code",
    "kind",
    "urgent",
    "major",
    "rule_version",
    "routing",
    "lead_department",
    "status",
    "received_at",
    "dispatched_at",
    "accepted_at",
    "replied_at",
    "closed_at",
    "accept_deadline",
    "finish_deadline",
    "due_at",
    "accepted_on_time",
    "finished_on_time",
    "overdue",
    "reply",
    "satisfaction",
    "resolved",
    "first_contact_resolution",
    "return_count",
    "reopen_count",
    "supervise_count",
    "ruled_departments",
    "parent_id",
    "call_id",
    "created_by",
    "created_at",
    "updated_at",
    "version",
]
DEPARTMENT_COLUMNS = ["ticket_id", "department_code", "role", "open", "due_at"]
# Filled when the schema has it: the moment a running clock turns yellow (80 % of its time).
DUE_SOON = "due_soon_at"
REPLIES = [
    "已联系来电人并现场核查，问题已处理。",
    "经核实，已责令商家整改，并向来电人说明处理结果。",
    "已安排人员清理，来电人表示认可。",
    "经调查情况属实，已依法立案处理，后续结果将另行告知。",
    "已向来电人解释相关政策及办理流程。",
    "该问题不属于本单位职责，已协调相关单位处理。",
]
SATISFACTION = ["satisfied"] * 80 + ["basically_satisfied"] * 12 + ["unsatisfied"] * 8


# -- the routed request pool -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoutedCase:
    """One request as intake stores it, pre-formatted for COPY (text format)."""

    channel: str
    caller_name: str
    content: str
    address: str
    town_code: str
    area_code: str
    matter_code: str
    kind: str
    urgent: bool
    rule_version: str
    routing: str
    lead_department: str


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def routed_pool(database_url: str, count: int) -> list[RoutedCase]:
    """Route ``count`` varied requests with the project's own service, as intake would."""
    os.environ["HOTLINE_DATABASE_URL"] = database_url
    from dispatch.routing import service as routing_service
    from hotline.core.db import dispose_engine, transaction
    from hotline.core.settings import get_settings

    get_settings.cache_clear()
    pool = []
    with transaction() as session:
        routing = routing_service.current_routing(session)
        for request in build_requests(count, seed=2024):
            decision = routing_service.decide(
                session,
                text=request["content"],
                address=request["address"],
                matter_code=request.get("matter_code"),
            )
            matter = routing.ruleset.matter(decision["matter"]["code"])
            location = decision["location"]
            stored = {k: decision[k] for k in ("department", "location", "explanation", "level")}
            pool.append(
                RoutedCase(
                    channel=request["channel"],
                    caller_name=request["caller_name"],
                    content=_copy_text(request["content"]),
                    address=_copy_text(request["address"]),
                    town_code=(location["town"] or {}).get("code") or "\\N",
                    area_code=(location["area"] or {}).get("code") or "\\N",
                    matter_code=matter.code,
                    kind=matter.kind,
                    urgent=matter.urgent,
                    rule_version=decision["rule_version"],
                    routing=_copy_text(json.dumps(stored, ensure_ascii=False)),
                    lead_department=decision["department"]["code"],
                )
            )
    dispose_engine()
    return pool


# -- generating a million tickets ----------------------------------------------------------------


def _ts(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _open_share(age_days: float) -> float:
    """Share of tickets of this age still open: most are handled within days, a few linger."""
    if age_days < 1:
        return 0.85
    if age_days < 7:
        return 0.45
    if age_days < 30:
        return 0.12
    if age_days < 90:
        return 0.03
    return 0.004


def generate(
    count: int,
    pool: list[RoutedCase],
    now: datetime,
    tz: ZoneInfo,
    seed: int = 7,
    due_soon: tuple[bool, bool] = (False, False),
) -> Iterator[tuple[list[str], list[str], dict[str, int]]]:
    """Yield chunks of COPY lines for tickets and ticket_departments, and per-day numbers.

    Tickets are spread evenly over the two years before ``now``, ids in order of receipt.
    Deadlines: accept within a day (2 h if urgent), finish within a week (a day if urgent).
    ``due_soon`` says whether tickets and ticket_departments get a due_soon_at column last.
    """
    soon_on_tickets, soon_on_departments = due_soon
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange
    end = now.timestamp()
    start = end - 730 * DAY
    step = (end - start) / count
    dispatched_departments = sorted({c.lead_department for c in pool} - {"DESK"})
    phones = [f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}" for _ in range(50_000)]
    per_day: dict[str, int] = {}
    tickets: list[str] = []
    departments: list[str] = []
    day_key, day_end = "", 0.0
    for i in range(count):
        received = start + (i + rand()) * step
        if received >= day_end:
            local = datetime.fromtimestamp(received, tz)
            day_key = local.strftime("%Y%m%d")
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            day_end = (midnight + timedelta(days=1)).timestamp()
        per_day[day_key] = sequence = per_day.get(day_key, 0) + 1
        case = pool[randrange(len(pool))]
        age = (end - received) / DAY
        lead = case.lead_department
        is_open = rand() < _open_share(age)
        if lead == "DESK" and not is_open:
            lead = dispatched_departments[randrange(len(dispatched_departments))]
        accept_hours = 2.0 if case.urgent else 24.0
        finish_hours = 24.0 if case.urgent else 7 * 24.0
        dispatched = accepted = replied = closed = None
        accept_deadline = finish_deadline = due = clock = None
        accepted_on_time = finished_on_time = None
        satisfaction = resolved = reply = None
        first_contact = False
        if lead == "DESK":
            status = "pending_dispatch"
        else:
            dispatched = min(received + rand() * 1800, end - 60)
            accept_deadline = dispatched + accept_hours * HOUR
            roll = rand()
            if is_open and (roll < 0.15 or (age < 1 and roll < 0.4)):
                status = "dispatched"
                due, clock = accept_deadline, dispatched
            else:
                accepted = min(dispatched + rand() * accept_hours * 1.2 * HOUR, end - 30)
                accepted_on_time = accepted <= accept_deadline
                finish_deadline = accepted + finish_hours * HOUR
                if is_open:
                    status = "accepted"
                    due, clock = finish_deadline, accepted
                else:
                    replied = min(accepted + rand() * finish_hours * 1.15 * HOUR, end - 10)
                    finished_on_time = replied <= finish_deadline
                    reply = REPLIES[randrange(len(REPLIES))]
                    roll = rand()
                    status = "closed" if roll < 0.9 else ("visited" if roll < 0.96 else "replied")
                    if age < 7 and roll < 0.5:
                        status = "replied"
                    if status != "replied":
                        satisfaction = SATISFACTION[randrange(len(SATISFACTION))]
                        resolved = satisfaction != "unsatisfied"
                    if status == "closed":
                        closed = min(replied + (1 + rand() * 2) * DAY, end - 5)
        if status == "closed" and rand() < 0.05:
            first_contact, reply = True, "已在通话中向来电人解答。"
        overdue = bool(due and due < end) or finished_on_time is False
        updated = max(t for t in (received, dispatched, accepted, replied, closed) if t)
        version = 1 + sum(t is not None for t in (dispatched, accepted, replied, closed))
        row = (
            str(i + 1),
            f"ZH{day_key}{sequence:06d}",
            case.channel,
            case.caller_name,
            phones[randrange(len(phones))],
            case.content,
            case.address,
            case.town_code,
            case.area_code,
            case.matter_code,
            case.kind,
            "t" if case.urgent else "f",
            "f",
            case.rule_version,
            case.routing,
            lead,
            status,
            _ts(received),
            _ts(dispatched) if dispatched else "\\N",
            _ts(accepted) if accepted else "\\N",
            _ts(replied) if replied else "\\N",
            _ts(closed) if closed else "\\N",
            _ts(accept_deadline) if accept_deadline else "\\N",
            _ts(finish_deadline) if finish_deadline else "\\N",
            _ts(due) if due else "\\N",
            "\\N" if accepted_on_time is None else ("t" if accepted_on_time else "f"),
            "\\N" if finished_on_time is None else ("t" if finished_on_time else "f"),
            "t" if overdue else "f",
            reply or "\\N",
            satisfaction or "\\N",
            "\\N" if resolved is None else ("t" if resolved else "f"),
            "t" if first_contact else "f",
            "0",
            "0",
            "0",
            "[]",
            "\\N",
            "\\N",
            "agent1",
            _ts(received),
            _ts(updated),
            str(version),
        )
        soon_text = _ts(clock + 0.8 * (due - clock)) if due and clock else "\\N"
        tickets.append("\t".join(row) + (f"\t{soon_text}" if soon_on_tickets else ""))
        open_flag = "t" if status in OPEN else "f"
        due_text = row[24] + (f"\t{soon_text}" if soon_on_departments else "")
        departments.append(f"{i + 1}\t{lead}\tlead\t{open_flag}\t{due_text}")
        if rand() < 0.07:
            co = dispatched_departments[randrange(len(dispatched_departments))]
            if co != lead:
                departments.append(f"{i + 1}\t{co}\tco\t{open_flag}\t{due_text}")
        if len(tickets) == 20_000:
            yield tickets, departments, per_day
            tickets, departments = [], []
    yield tickets, departments, per_day


def _secondary_indexes(connection: psycopg.Connection, tables: tuple[str, ...]) -> list[tuple]:
    """(name, definition) of the indexes that back no constraint: dropped during COPY."""
    return connection.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = ANY(%s) AND i.schemaname = current_schema()
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        ORDER BY i.indexname
        """,
        [list(tables)],
    ).fetchall()


def _has_column(connection: psycopg.Connection, table: str, column: str) -> bool:
    return bool(
        connection.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s"
            " AND column_name = %s AND table_schema = current_schema()",
            [table, column],
        ).fetchone()
    )


def _check_columns(connection: psycopg.Connection) -> None:
    """Refuse to fill a schema that gained required columns this generator does not know."""
    for table, known in (("tickets", TICKET_COLUMNS), ("ticket_departments", DEPARTMENT_COLUMNS)):
        missing = connection.execute(
            """
            SELECT column_name FROM information_schema.columns
            WHERE table_name = %s AND table_schema = current_schema()
              AND is_nullable = 'NO' AND column_default IS NULL AND NOT (column_name = ANY(%s))
            """,
            [table, list(known)],
        ).fetchall()
        if missing:
            raise SystemExit(f"{table} has new required columns {missing}; teach the generator")


def fill(database_url: str, count: int, pool: list[RoutedCase], tz: ZoneInfo) -> dict[str, float]:
    """COPY ``count`` tickets into the database; returns the seconds each step took."""
    timings: dict[str, float] = {}
    tables = ("tickets", "ticket_departments")
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        _check_columns(connection)
        due_soon = tuple(_has_column(connection, table, DUE_SOON) for table in tables)
        ticket_columns = TICKET_COLUMNS + [DUE_SOON] * due_soon[0]
        department_columns = DEPARTMENT_COLUMNS + [DUE_SOON] * due_soon[1]
        indexes = _secondary_indexes(connection, tables)
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        with connection.transaction():
            # Foreign keys are not checked row by row during the load: the generator only uses
            # codes that routing produced from the seeded departments and matters.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                connection.execute("SET LOCAL session_replication_role = replica")
            per_day: dict[str, int] = {}
            departments_total = 0
            with connection.cursor() as cursor:
                tickets_copy = f"COPY tickets ({', '.join(ticket_columns)}) FROM STDIN"
                departments_copy = (
                    f"COPY ticket_departments ({', '.join(department_columns)}) FROM STDIN"
                )
                pending: list[str] = []
                with cursor.copy(tickets_copy) as copy:
                    for tickets, departments, days in generate(
                        count, pool, datetime.now(UTC), tz, due_soon=due_soon
                    ):
                        per_day = days
                        if tickets:
                            copy.write("\n".join(tickets) + "\n")
                        pending += departments
                departments_total = len(pending)
                with cursor.copy(departments_copy) as copy:
                    for i in range(0, len(pending), 50_000):
                        copy.write("\n".join(pending[i : i + 50_000]) + "\n")
                del pending
                cursor.executemany(
                    "INSERT INTO counters (name, value) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    [(f"ticket-number-{day}", n) for day, n in per_day.items()],
                )
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('tickets', 'id'), %s)", [max(count, 1)]
                )
        timings["generate + COPY"] = time.perf_counter() - started
        timings["ticket_departments rows"] = departments_total
        started = time.perf_counter()
        connection.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            connection.execute(definition)
        timings[f"build {len(indexes)} secondary indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute("VACUUM (ANALYZE) tickets, ticket_departments")
        timings["VACUUM ANALYZE"] = time.perf_counter() - started
    return timings


# -- measuring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One series: a name, the query string of GET /api/v1/tickets, and search() arguments."""

    name: str
    params: dict[str, str]


QUERIES = [
    Query("inbox (default)", {}),
    Query("inbox due=overdue", {"due": "overdue"}),
    Query("inbox due=soon", {"due": "soon"}),
    Query("status=accepted", {"status": "accepted"}),
    Query("status=closed (history)", {"status": "closed"}),
]


def busiest_department(database_url: str) -> dict[str, Any]:
    """The department with the most open tickets (the dispatch desk is no department), and the
    sizes of its lists."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        code, open_count = connection.execute(
            "SELECT department_code, count(*) FROM ticket_departments"
            " WHERE open AND department_code <> 'DESK' GROUP BY department_code"
            " ORDER BY count(*) DESC, department_code LIMIT 1"
        ).fetchone()
        total, overdue = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE open AND due_at < now())"
            " FROM ticket_departments WHERE department_code = %s",
            [code],
        ).fetchone()
        departments = connection.execute(
            "SELECT count(DISTINCT department_code) FROM ticket_departments"
        ).fetchone()[0]
        statuses = dict(
            connection.execute("SELECT status, count(*) FROM tickets GROUP BY status").fetchall()
        )
    return {
        "code": code,
        "open": open_count,
        "overdue": overdue,
        "total": total,
        "departments": departments,
        "statuses": statuses,
    }


def measure(client: httpx.Client, path: str, params: dict[str, str], n: int) -> list[float]:
    """Latencies in ms of ``n`` sequential GETs; exits on the first failure."""
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} {params} failed: {response.status_code} {response.text}")
    return timings


def explain(database_url: str, department: str) -> list[tuple[str, list[str]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL that search() runs for each series."""
    os.environ["HOTLINE_DATABASE_URL"] = database_url
    from sqlalchemy import event

    from dispatch.tickets import service
    from hotline.core.auth import Principal
    from hotline.core.db import dispose_engine, get_engine, transaction
    from hotline.core.settings import get_settings

    get_settings.cache_clear()
    principal = Principal(
        user_id=0,
        username="bench-inbox",
        roles=frozenset({"department"}),
        departments=frozenset({department}),
    )
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        captured.append((statement, parameters))

    plans = []
    engine = get_engine()
    for query in QUERIES:
        captured.clear()
        event.listen(engine, "before_cursor_execute", capture)
        try:
            with transaction() as session:
                service.search(session, principal, **query.params)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = next(
            (s, p) for s, p in captured if s.lstrip().upper().startswith("SELECT tickets".upper())
        )
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
            ).all()
        plans.append((query.name, [r[0] for r in rows]))
    dispose_engine()
    return plans


def summarize_plan(lines: list[str]) -> str:
    """The plan's nodes on one line, with actual rows, sort methods and the execution time."""
    nodes = []
    for line in lines:
        text = line.strip().removeprefix("-> ").strip()
        if line.lstrip().startswith("->") or line == lines[0]:
            name = text.split("  (")[0]
            rows = text.split("rows=")[-1].split(" ")[0] if "actual" in text else "?"
            nodes.append(f"{name} [{rows} rows]")
        elif text.startswith("Sort Method"):
            nodes[-1] += f" ({text})"
    total = next((x for x in lines if x.startswith("Execution Time")), "")
    return " → ".join(nodes) + f"; {total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets to fill in")
    parser.add_argument("--requests", type=int, default=300, help="requests per series")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--workers", type=int, default=2, help="hotline serve --workers")
    parser.add_argument("--pool", type=int, default=4000, help="distinct routed requests")
    parser.add_argument("--redis-db", type=int, default=13, help="private Redis database number")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument("--use-db", metavar="NAME", help="measure a kept, filled database")
    args = parser.parse_args()

    server_url = os.environ.get("HOTLINE_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_server = os.environ.get("HOTLINE_REDIS_URL", DEFAULT_REDIS_URL)
    tz = ZoneInfo(os.environ.get("HOTLINE_TIMEZONE", "Asia/Shanghai"))
    timings: dict[str, float] = {}
    database = (
        contextlib.nullcontext(with_database(server_url, args.use_db))
        if args.use_db
        else fresh_database(server_url, "bench_inbox", keep=args.keep_db)
    )
    with database as database_url, private_redis(redis_server, args.redis_db) as redis_url:
        env = bench_env(database_url, redis_url)
        if not args.use_db:
            started = time.perf_counter()
            hotline(env, "db", "upgrade")
            hotline(env, "seed")
            timings["db upgrade + seed"] = time.perf_counter() - started
            started = time.perf_counter()
            pool = routed_pool(database_url, args.pool)
            timings[f"route {len(pool)} distinct requests"] = time.perf_counter() - started
            timings.update(fill(database_url, args.tickets, pool, tz))
        inbox = busiest_department(database_url)
        hotline(
            env, "user", "create", "inbox", "--role", "department", "--department", inbox["code"],
            "--password", PASSWORD,
        )  # fmt: skip
        results: dict[str, list[float]] = {q.name: [] for q in QUERIES}
        results["baseline GET /auth/me"] = []
        sizes: dict[str, int] = {}
        with running_server(env, args.workers) as (base, _pid):
            client = httpx.Client(base_url=base, headers=login(base, "inbox"), timeout=30)
            with client:
                for query in QUERIES:  # warm-up: caches, connection pool, the plans
                    measure(client, "/api/v1/tickets", query.params, 20)
                    listed = client.get("/api/v1/tickets", params=query.params).json()
                    sizes[query.name] = len(listed)
                measure(client, "/api/v1/auth/me", {}, 20)
                per_round = max(1, args.requests // args.rounds)
                for _ in range(args.rounds):
                    for query in QUERIES:
                        results[query.name] += measure(
                            client, "/api/v1/tickets", query.params, per_round
                        )
                    results["baseline GET /auth/me"] += measure(
                        client, "/api/v1/auth/me", {}, per_round
                    )
        plans = explain(database_url, inbox["code"])
        tickets_in_db = _count_tickets(database_url)

    print()
    print(
        f"command: python bench/bench_inbox.py --tickets {args.tickets} --requests {args.requests}"
        f" --rounds {args.rounds} --workers {args.workers}"
    )
    print(
        f"python {sys.version.split()[0]}, PostgreSQL (fresh database), `hotline serve --workers"
        f" {args.workers}`, one keep-alive connection, sequential requests"
    )
    if timings:
        fill_total = sum(v for k, v in timings.items() if not k.endswith("rows"))
        print(f"fill: {fill_total:.1f} s in all")
        for step, value in timings.items():
            shown = f"{value:,.0f}" if step.endswith("rows") else f"{value:.1f} s"
            print(f"  {step:<36}{shown:>12}")
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(inbox["statuses"].items()))
    print(f"{tickets_in_db:,} tickets over {inbox['departments']} departments; {statuses}")
    print(
        f"department user of {inbox['code']} (the largest inbox): {inbox['open']:,} open,"
        f" {inbox['overdue']:,} open and overdue, {inbox['total']:,} tickets in all"
    )
    print()
    print(f"{'series':<28}{'items':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in results.items():
        print(
            f"{name:<28}{sizes.get(name, 1):>6}{percentile(values, 50):>9.2f}"
            f"{percentile(values, 95):>9.2f}{percentile(values, 99):>9.2f}"
            f"{statistics.mean(values):>9.2f}"
        )
    baseline = percentile(results["baseline GET /auth/me"], 95)
    ratios = ", ".join(
        f"{q.name} {percentile(results[q.name], 95) / baseline:.2f}" for q in QUERIES
    )
    print(f"p95 ratio to the baseline: {ratios}")
    print()
    print("EXPLAIN (ANALYZE, BUFFERS) of the query search() runs, per series:")
    for name, lines in plans:
        print(f"  {name}: {summarize_plan(lines)}")
    print()
    print(f"plan of the default inbox ({inbox['code']}):")
    for line in plans[0][1]:
        print(f"  {line}")


def _count_tickets(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute("SELECT count(*) FROM tickets").fetchone()[0]


if __name__ == "__main__":
    main()
