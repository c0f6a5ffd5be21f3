"""Private PostgreSQL and Redis servers and real ``hotline`` processes for the production tests.

These tests stop, kill and restart servers on purpose, so they never touch the machine's shared
PostgreSQL (5432) or Redis (6379): each run starts its own PostgreSQL cluster (initdb, as the
``postgres`` user when we are root, since initdb refuses to run as root) and a redis-server per
test, on free ports in temporary directories. Every ``hotline serve`` and ``hotline worker`` is
a real process started the way an operator starts it; the tests talk to them over HTTP and
websockets and look at the database and Redis directly only to check the outcome.

Everything waits on conditions (a server answering, ``/healthz``, a row appearing) with a
deadline; nothing sleeps for timing.

The module is imported by the test modules explicitly (it is not a conftest), so the other
tests of this folder see none of its fixtures.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

MISSING = "missing system dependency"
PASSWORD = "cluster-pw-12345"
# name -> (roles, departments); SC-01 at 拱北 goes to XZ-MARKET by the reference data.
USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "admin": (("admin",), ()),
    "supervisor": (("supervisor",), ()),
    "agent": (("agent",), ()),
    "market": (("department",), ("XZ-MARKET",)),
}
GONGBEI = "香洲区拱北夏湾"
MARKET = "XZ-MARKET"
TEMPLATE_DB = "hotline_template"

T = TypeVar("T")


class Gone(AssertionError):
    """Raised by a condition when waiting longer is pointless (the process exited)."""


# -- waiting ---------------------------------------------------------------------------------


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes.

    Exceptions count as "not yet": a server that is still starting refuses connections.
    ``explain`` describes the state on a timeout, for failures seen only once in CI.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Gone:
            raise
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last: {type(last_error).__name__}: {last_error})" if last_error else ""
            if explain is not None:
                detail += f"\n{explain()}"
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- the servers -----------------------------------------------------------------------------


def _pg_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{candidate}/initdb", os.X_OK) and os.access(f"{candidate}/pg_ctl", os.X_OK):
            return Path(candidate)
    for name in ("initdb", "pg_ctl"):
        if shutil.which(name) is None:
            pytest.skip(f"{MISSING}: PostgreSQL server binaries ({name}) not found")
    return Path(shutil.which("initdb")).parent  # type: ignore[arg-type]


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"{MISSING}: redis-server not found")
    return binary


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free port, its socket in its own directory."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(f"{MISSING}: running as root and there is no postgres user")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        if self.run_as:
            shutil.chown(self.dir, user="postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        subprocess.run(
            [
                *self.run_as,
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )

    def _pg_ctl(self, *args: str) -> None:
        # A test machine's PostgreSQL need not survive a power cut: no fsync keeps it quick.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [
                *self.run_as,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        """A fast restart: every connection is cut, as an operator's restart or a failover."""
        self._pg_ctl("-m", "fast", "restart")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """A redis-server of our own; stopping and starting it again keeps its data (AOF)."""

    def __init__(self, directory: Path) -> None:
        self.binary = _redis_server()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the server keeps it open
        # appendfsync always: what Redis acknowledged before a stop is there after the start,
        # as with a production Redis that persists its data.
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(lambda: self.client().ping(), timeout=20, what=f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # redis writes its AOF and exits on SIGTERM
            self.process.wait(timeout=20)
        self.process = None


def embedded_redis_servers(data_dir: Path) -> list[int]:
    """The pids of every living redis-server working in ``data_dir`` (the embedded server
    runs in its data dir), stopped or not: more than one is a split brain."""
    wanted = str(data_dir.resolve())
    found = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            if os.readlink(f"{proc}/cwd") != wanted:
                continue
            if b"redis-server" not in Path(f"{proc}/cmdline").read_bytes():
                continue
        except OSError:
            continue
        pid = int(proc.rsplit("/", 1)[1])
        if alive(pid):
            found.append(pid)
    return sorted(found)


class EmbeddedRedis:
    """The embedded redis-server the cluster's own processes start in their data dir: the
    test only watches it, signals it and, at the end, stops what is left of it."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir

    @property
    def socket_path(self) -> Path:
        from hotline.core.redis import embedded_socket_path

        return embedded_socket_path(self.dir.resolve())

    def client(self) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=5, socket_connect_timeout=2
        )

    def servers(self) -> list[int]:
        return embedded_redis_servers(self.dir)

    def pid(self) -> int:
        servers = self.servers()
        assert len(servers) == 1, f"one embedded redis-server, not {servers}"
        return servers[0]

    def stop(self) -> None:
        for pid in self.servers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not self.servers(), timeout=20, what="the embedded Redis to stop")
        for pid in self.servers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- hotline processes -----------------------------------------------------------------------


_RQ_CHATTER = re.compile(r"cleaning (group )?registries")


class HotlineProcess:
    """One ``hotline`` command running in the background, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotline", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process itself (not its children): a crash, or ``kill -9 PID``."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it and everything it started, politely first."""
        stop_all([self], timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log without rq's every-maintenance-run chatter, which at the
        tests' one-second maintenance would push everything telling out of the tail."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        telling = [line for line in text.splitlines() if not _RQ_CHATTER.search(line)]
        return "\n".join(telling[-lines:])


def stop_all(processes: list[HotlineProcess], timeout: float = 5.0) -> None:
    """SIGTERM to all at once, SIGKILL to whatever still runs after ``timeout`` (uvicorn waits
    for open websockets, rq for its job: a test has no patience for that)."""
    families = {p.pid: descendants(p.pid) for p in processes}
    for process in processes:
        if process.running():
            process.process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.process.kill()
            process.process.wait(timeout=10)
    for family in families.values():
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Api(HotlineProcess):
    """``hotline serve`` on its own port: one uvicorn process, as behind a proxy."""

    def __init__(self, name: str, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port = port
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        super().__init__(name, args, env, log_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.base_url}/healthz", timeout=10)


class Cluster:
    """One system on private servers: a database cloned from the seeded template, a Redis,
    and whatever API processes and workers a test starts."""

    def __init__(
        self,
        pg: PostgresServer,
        root: Path,
        database: str,
        *,
        embedded_redis: bool = False,
        **settings: str,
    ) -> None:
        self.pg = pg
        self.root = root
        self.database = database
        self.redis: RedisServer | EmbeddedRedis
        root.mkdir(parents=True, exist_ok=True)
        if embedded_redis:
            # No HOTLINE_REDIS_URL: the processes start (and restart) the server themselves.
            self.redis = EmbeddedRedis(root / "data")
            redis_setting = {}
        else:
            self.redis = RedisServer(root / "redis")
            self.redis.start()
            redis_setting = {"HOTLINE_REDIS_URL": self.redis.url}
        self.processes: list[HotlineProcess] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "RQ_"))},
            "HOTLINE_ENV": "production",
            "HOTLINE_SECRET_KEY": "cluster-test-secret-" + "x" * 40,
            "HOTLINE_CTI_TOKEN": "cluster-test-cti-token-" + "y" * 20,
            # production refuses the development SMS outbox; these tests send no codes
            "HOTLINE_SMS_SENDER": "http",
            "HOTLINE_SMS_GATEWAY_URL": "http://127.0.0.1:9/no-sms-in-these-tests",
            "HOTLINE_DATA_DIR": str(root / "data"),
            "HOTLINE_DATABASE_URL": pg.url(database),
            **redis_setting,
            "HOTLINE_LOG_LEVEL": "INFO",
            "HOTLINE_OUTBOX_POLL_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
            **{f"HOTLINE_{k.upper()}": v for k, v in settings.items()},
        }
        self.engine: Engine = create_engine(pg.url(database), poolclass=NullPool)
        self._tokens: dict[str, str] = {}

    # processes

    def serve(self, name: str | None = None) -> Api:
        name = name or f"api{sum(isinstance(p, Api) for p in self.processes) + 1}"
        api = Api(name, free_port(), self.env, self.root / f"{name}.log")
        self.processes.append(api)
        return api

    def worker(self, name: str) -> HotlineProcess:
        args = ["worker", "--name", name]
        process = HotlineProcess(name, args, self.env, self.root / f"{name}.log")
        self.processes.append(process)
        return process

    def wait_healthy(self, *apis: Api, timeout: float = 90) -> None:
        for api in apis:

            def healthy(api: Api = api) -> bool:
                if not api.running():
                    raise Gone(f"{api.name} exited:\n{api.log_tail()}")
                return api.health().status_code == 200

            wait_for(healthy, timeout=timeout, what=f"{api.name} /healthz 200", interval=0.2)

    def wait_workers(self, *names: str, timeout: float = 90) -> None:
        from rq import Worker

        def registered() -> bool:
            for process in self.processes:
                if process.name in names and not process.running():
                    raise Gone(f"{process.name} exited:\n{process.log_tail()}")
            present = {w.name for w in Worker.all(connection=self.redis.client())}
            return set(names) <= present

        wait_for(registered, timeout=timeout, what=f"workers {names} registered", interval=0.2)

    def stop(self) -> None:
        stop_all(self.processes)
        self.redis.stop()
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in self.processes)

    # talking to it

    def token(self, api: Api, username: str) -> str:
        if username not in self._tokens:
            response = httpx.post(
                f"{api.base_url}/api/v1/auth/token",
                data={"username": username, "password": PASSWORD},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def ticket_id(self, number: str) -> int:
        return self.scalar("SELECT id FROM tickets WHERE number = :n", n=number)

    def actions(self, ticket_id: int, action: str) -> int:
        return self.scalar(
            "SELECT count(*) FROM ticket_actions WHERE ticket_id = :t AND action = :a",
            t=ticket_id,
            a=action,
        )

    def events_by_topic(self, event_type: str, number: str) -> dict[str, int]:
        """How many ``event_type`` events about ticket ``number`` each topic got."""
        rows = self.rows(
            "SELECT topic, count(*) FROM events WHERE type = :t AND payload->>'number' = :n "
            "GROUP BY topic",
            t=event_type,
            n=number,
        )
        return {topic: count for topic, count in rows}

    def outbox_size(self) -> int:
        return self.scalar("SELECT count(*) FROM outbox")

    def lock_waiters(self) -> int:
        """Transactions of this cluster's database waiting for a row lock."""
        return self.scalar(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )

    @contextlib.contextmanager
    def ticket_locked(self, ticket_id: int) -> Iterator[None]:
        """Hold the ticket's row lock: a job that writes about the ticket waits in the middle
        of its transaction until the block ends, which is how the tests catch a job mid-way."""
        with self.engine.connect() as conn:
            # as the application locks a ticket (dispatch.tickets.models.TICKET_ROW_LOCK)
            conn.execute(
                text("SELECT id FROM tickets WHERE id = :t FOR NO KEY UPDATE"), {"t": ticket_id}
            )
            try:
                yield
            finally:
                conn.rollback()

    def rq_state(self, job_id: str) -> str:
        """Where rq has a job and who holds the scheduler locks: what a stuck retry needs."""
        from rq import Queue
        from rq.job import Job

        client = self.redis.client()
        queue = Queue("default", connection=client)
        lines = []
        try:
            job = Job.fetch(job_id, connection=client)
            lines.append(
                f"job {job_id}: status={job.get_status(refresh=True)} worker={job.worker_name} "
                f"retries_left={job.retries_left} last_heartbeat={job.last_heartbeat}"
            )
        except Exception as exc:  # noqa: BLE001 - the state is what we want to see
            lines.append(f"job {job_id}: {type(exc).__name__}: {exc}")
        for name in ("started", "scheduled", "failed", "finished"):
            registry = getattr(queue, f"{name}_job_registry")
            entries = client.zrange(registry.key, 0, -1, withscores=True)
            lines.append(f"{name}: {[(k.decode(), round(v, 1)) for k, v in entries]}")
        lines.append(f"queued: {queue.get_job_ids()} now={time.time():.1f}")
        for key in client.keys("rq:scheduler*"):
            kind = client.type(key).decode()
            value = client.get(key) if kind == "string" else kind
            lines.append(f"{key.decode()} = {value!r} ttl={client.ttl(key)}")
        return "\n".join(lines)

    def job_of(self, prefix: str, registry: str = "started") -> str | None:
        """The id of a job in the default queue's ``registry`` whose id starts with ``prefix``
        (rq job ids are the deterministic ids of hotline.core.jobs, made safe)."""
        from rq import Queue

        queue = Queue("default", connection=self.redis.client())
        registries = {
            "started": queue.started_job_registry,
            "scheduled": queue.scheduled_job_registry,
            "finished": queue.finished_job_registry,
        }
        return next((j for j in registries[registry].get_job_ids() if j.startswith(prefix)), None)

    def process(self, name: str) -> HotlineProcess:
        return next(p for p in self.processes if p.name == name)

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """Point this test process's own settings at the cluster (for calling jobs directly)."""
        from hotline.core import db
        from hotline.core.redis import reset_clients
        from hotline.core.settings import get_settings

        names = ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL")
        saved = {name: os.environ.get(name) for name in names}
        os.environ["HOTLINE_DATABASE_URL"] = self.env["HOTLINE_DATABASE_URL"]
        os.environ["HOTLINE_REDIS_URL"] = self.env["HOTLINE_REDIS_URL"]
        get_settings.cache_clear()
        db.dispose_engine()
        reset_clients()
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()
            db.dispose_engine()
            reset_clients()


def ticket_body(content: str = "在拱北买的电饭煲坏了，商家不退", **extra: Any) -> dict[str, Any]:
    """A request that the reference data routes to XZ-MARKET (SC-01 at 拱北)."""
    return {
        "channel": "phone",
        "content": content,
        "address": GONGBEI,
        "caller_phone": "13812341234",
        "matter_code": "SC-01",
        **extra,
    }


def urgent_ticket_with_reminder_in(seconds: float) -> dict[str, Any]:
    """An urgent ticket received long enough ago that its due-soon reminder (at 80 % of the
    one-hour accept clock, 48 minutes after receipt) falls ``seconds`` from now."""
    received = datetime.now(UTC) - timedelta(minutes=48) + timedelta(seconds=seconds)
    return ticket_body(
        content="拱北一家超市卖过期食品，孩子吃了呕吐",
        urgent=True,
        received_at=received.isoformat(),
    )


class Loader:
    """Creates tickets continuously through the given API processes (round robin) in a thread,
    keeping every answer: status, ticket number or error body, and how long it took."""

    def __init__(self, apis: list[Api], token: str, *, pause: float = 0.05) -> None:
        self.clients = [api.client(token) for api in apis]
        self.pause = pause
        self.answers: list[tuple[int, str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            client = self.clients[i % len(self.clients)]
            started = time.monotonic()
            try:
                response = client.post("/api/v1/tickets", json=ticket_body(f"拱北商店不退货 {i}"))
                status = response.status_code
                detail = response.json().get("number") if status == 201 else response.text
            except httpx.HTTPError as exc:
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.answers.append((status, detail, time.monotonic() - started))
            i += 1
            self._stop.wait(self.pause)  # load shape, not timing: a steady stream of requests

    def created(self) -> list[str]:
        with self._lock:
            return [detail for status, detail, _ in self.answers if status == 201]

    def failures(self) -> list[tuple[int, str, float]]:
        with self._lock:
            return [a for a in self.answers if a[0] != 201]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for client in self.clients:
            client.close()


# -- websocket clients -----------------------------------------------------------------------


def subprotocols(token: str) -> list[Any]:
    """What a client offers the gateway: its protocol, and its token as ``bearer.<token>``."""
    from websockets.typing import Subprotocol

    return [Subprotocol("hotline.v1"), Subprotocol(f"bearer.{token}")]


class Listener:
    """A console's websocket in a thread: collects event frames, and on a dropped connection
    reconnects to the next URL with ``last_id`` of the last event it saw (what the browser
    pages do)."""

    def __init__(self, urls: list[str], token: str, *, last_id: int | None = None) -> None:
        self.urls = urls
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.connections: list[str] = []
        self.resyncs: list[dict[str, Any]] = []
        self.last_id = last_id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ws-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        attempt = 0
        while not self._stop.is_set():
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            query = f"?last_id={self.last_id}" if self.last_id is not None else ""
            try:
                # The token in Sec-WebSocket-Protocol, as the pages send it (not in the URL).
                with connect(
                    url + query,
                    subprotocols=subprotocols(self.token),
                    open_timeout=5,
                    close_timeout=1,
                ) as ws:
                    while not self._stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=0.2))
                        except TimeoutError:
                            continue
                        self._handle(url, message)
            except (ConnectionClosed, OSError, TimeoutError):
                self._connected.clear()
                # The next URL at once: another process is up; a short pause only when all
                # of them refused, so a dead process is not hammered.
                if attempt % len(self.urls) == 0:
                    self._stop.wait(0.2)

    def _handle(self, url: str, message: dict[str, Any]) -> None:
        with self._lock:
            if message["type"] == "hello":
                self.hellos.append(message)
                self.connections.append(url)
                if self.last_id is None:
                    self.last_id = message["last_id"]
                self._connected.set()
            elif message["type"] == "event":
                self.events.append(message)
                self.last_id = message["id"]
            elif message["type"] == "resync":
                self.resyncs.append(message)

    def wait_connected(self, timeout: float = 20) -> None:
        assert self._connected.wait(timeout), f"websocket to {self.urls} did not connect"

    def numbers(self, event_type: str = "ticket.created", topic: str = f"tickets.dept.{MARKET}"):
        """The ticket numbers of the ``event_type`` events received on ``topic``, in order."""
        with self._lock:
            return [
                e["data"]["number"]
                for e in self.events
                if e["event"] == event_type and e["topic"] == topic
            ]

    def ids(self) -> list[int]:
        with self._lock:
            return [e["id"] for e in self.events]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- fixtures --------------------------------------------------------------------------------


def _seed_template(pg: PostgresServer, root: Path) -> None:
    """Schema, reference data and users, once: each test's database is a copy of this one."""
    pg.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    commands = [["db", "upgrade"], ["seed"]]
    for username, (roles, departments) in USERS.items():
        args = ["user", "create", username, "--password", PASSWORD]
        args += [a for r in roles for a in ("--role", r)]
        args += [a for d in departments for a in ("--department", d)]
        commands.append(args)
    # One interpreter runs every command (the real CLI, as `hotline ...` would): starting one
    # per command would cost seconds each.
    script = (
        "import json, sys\nfrom hotline.cli import app\n"
        "for args in json.loads(sys.argv[1]):\n    app(args, standalone_mode=False)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")},
        "HOTLINE_ENV": "test",
        "HOTLINE_DATA_DIR": str(root / "seed-data"),
        "HOTLINE_DATABASE_URL": pg.url(TEMPLATE_DB),
        "HOTLINE_REDIS_URL": "redis://127.0.0.1:1/0",  # never used by these commands
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"seeding failed:\n{done.stdout}\n{done.stderr}"


_postgres: PostgresServer | None = None


def shared_postgres() -> PostgresServer:
    """The one private PostgreSQL of this test run: started and seeded on first use (a few
    seconds), shared by every module, destroyed when the test process exits."""
    global _postgres
    if _postgres is None:
        pg = PostgresServer()
        atexit.register(pg.destroy)
        pg.start()
        _seed_template(pg, pg.dir)
        _postgres = pg
    return _postgres


@contextlib.contextmanager
def building_clusters(pg: PostgresServer) -> Iterator[Callable[..., Cluster]]:
    """Build clusters on fresh copies of the template database; all stopped on the way out.

    Keyword arguments become ``HOTLINE_*`` settings of every process of the cluster.
    """
    made: list[Cluster] = []
    root = Path(tempfile.mkdtemp(prefix="hotline-cluster-"))

    def make(*, embedded_redis: bool = False, **settings: str) -> Cluster:
        database = f"cluster_{os.getpid()}_{len(made)}_{int(time.time() * 1000) % 10**8}"
        pg.execute(f"CREATE DATABASE {database} TEMPLATE {TEMPLATE_DB}")
        cluster = Cluster(
            pg, root / str(len(made)), database, embedded_redis=embedded_redis, **settings
        )
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            # Shown by pytest only when a test failed: what each process said last.
            print(cluster.logs())
            cluster.stop()
            with contextlib.suppress(Exception):
                pg.execute(f"DROP DATABASE IF EXISTS {cluster.database} WITH (FORCE)")
        shutil.rmtree(root, ignore_errors=True)


# Quick failure detection for tests that kill things: a busy worker's heartbeat every second,
# a job without one for 4 s is abandoned, and workers look for such jobs every second.
FAST_WORKERS = {
    "worker_heartbeat_seconds": "1",
    "worker_heartbeat_grace_seconds": "3",
    "worker_maintenance_seconds": "1",
}
