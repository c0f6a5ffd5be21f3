"""The rq worker of the system: runs jobs and scheduled jobs, and retries the outbox."""

from __future__ import annotations

import logging

from rq import Queue, Worker

from hotline.core.db import transaction
from hotline.core.models import AuditEntry
from hotline.core.outbox import RelayThread
from hotline.core.redis import get_redis

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")


def run_worker(
    *, burst: bool = False, name: str | None = None, with_scheduler: bool = True
) -> None:
    """Work the queues until stopped (or until empty with ``burst``)."""
    connection = get_redis()
    relay = RelayThread()
    relay.start()
    try:
        worker = Worker(
            [Queue(q, connection=connection) for q in QUEUES], connection=connection, name=name
        )
        worker.work(burst=burst, with_scheduler=with_scheduler)
    finally:
        relay.stop()


def ping(note: str) -> str:
    """A harmless job that leaves a trace in the audit log: proves the pipeline end to end."""
    with transaction() as session:
        session.add(
            AuditEntry(actor="system", action="job.ping", entity="job", entity_id=note, detail={})
        )
    return note
