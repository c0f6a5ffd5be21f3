"""Scheduled jobs asked for again after Redis lost them, automatically.

Once the outbox handed a scheduled job (a ticket's reminder, an article's review date) to rq,
Redis alone holds it. A Redis that restarted empty, or the embedded one killed within a
second of a commit (its append-only file is synced every second), has lost such jobs, and
nothing would ever run them. Each domain registers the function that asks again for the jobs
its rows imply (the composition root wires them; the core imports no domain), and every
long-running process watches the server's ``run_id``: the first process to see a server that
nobody has reconciled yet runs them all. Job ids are deterministic, so a job Redis still holds
is not asked for twice; running a reconciliation for nothing costs only time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from sqlalchemy.orm import Session

from hotline.core import metrics
from hotline.core.db import transaction

log = logging.getLogger(__name__)

Rescheduler = Callable[[Session], int]
_reschedulers: dict[str, Rescheduler] = {}

# Holds the run_id of the server whose jobs were last asked for again. Compared and set in one
# step, so that of several processes seeing a new server only one reconciles it.
RECONCILED_KEY = "hotline:reconciled-run-id"
_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def register_rescheduler(name: str, reschedule: Rescheduler) -> None:
    """Register ``reschedule(session) -> count``: it asks again (through
    ``enqueue_after_commit``, with the usual deterministic ids) for every scheduled job that
    the rows of one domain imply. Registering a name again replaces it."""
    _reschedulers[name] = reschedule


def reschedulers() -> dict[str, Rescheduler]:
    return dict(_reschedulers)


def reschedule_all() -> dict[str, int]:
    """Run every registered rescheduler in one transaction; how many rows each covered."""
    with transaction() as session:
        return {name: reschedule(session) for name, reschedule in _reschedulers.items()}


class RedisWatch:
    """Notices a Redis server this process has not seen before (its ``run_id`` changed) and
    has its scheduled jobs asked for again, once across all processes."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._lock = threading.Lock()
        self._on_new_server: list[Callable[[redis.Redis], None]] = []

    def on_new_server(self, callback: Callable[[redis.Redis], None]) -> None:
        """Call ``callback(client)`` whenever the server changes after the first one this
        process saw (e.g. a worker registers itself again with a server that restarted)."""
        self._on_new_server.append(callback)

    def check(self, client: redis.Redis) -> bool:
        """True when the server was new to this process. Cheap: one INFO when nothing changed."""
        run_id = client.info("server")["run_id"]
        with self._lock:
            if run_id == self.run_id:
                return False
            previous, self.run_id = self.run_id, run_id
        if previous is not None:
            log.warning("Redis changed (run_id %s -> %s)", previous[:8], run_id[:8])
            for callback in self._on_new_server:
                callback(client)
        if _reschedulers and client.eval(_CLAIM, 1, RECONCILED_KEY, run_id):
            try:
                counts = reschedule_all()
            except Exception:
                # Let this process or another try again at the next check.
                client.eval(_RELEASE, 1, RECONCILED_KEY, run_id)
                with self._lock:
                    self.run_id = previous
                raise
            metrics.REDIS_RECONCILIATIONS.inc()
            log.warning(
                "asked again for the scheduled jobs of a Redis not seen before: %s",
                ", ".join(f"{count} {name}" for name, count in counts.items()),
            )
        return True


watch = RedisWatch()
