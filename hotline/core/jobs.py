"""Background jobs on rq, asked for inside a transaction and enqueued only after it commits.

Job arguments are ids and plain values; a job opens its own transaction (``db.transaction()``),
re-reads the state and does nothing if the work is already done, so running it twice is harmless.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hotline.core import outbox

DEFAULT_QUEUE = "default"


def safe_job_id(job_id: str) -> str:
    """rq accepts only letters, digits, '_' and '-'; keep ids readable and still unique."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)
    if safe == job_id:
        return job_id
    return f"{safe}-{hashlib.sha1(job_id.encode()).hexdigest()[:10]}"


def enqueue_after_commit(
    session: Session,
    func: str,
    *args: Any,
    job_id: str,
    at: datetime | None = None,
    queue: str = DEFAULT_QUEUE,
    retry: int = 3,
    **kwargs: Any,
) -> None:
    """Ask for ``func`` (a dotted path) to run once the current transaction commits.

    ``job_id`` must be deterministic (e.g. ``sla-reminder:{ticket_id}:{deadline}``): the same
    id asked for twice runs once. ``at`` (aware datetime) schedules the job for later.
    """
    job_id = safe_job_id(job_id)
    if at is not None and at.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    outbox.add(
        session,
        "job",
        {
            "func": func,
            "args": list(args),
            "kwargs": kwargs,
            "job_id": job_id,
            "queue": queue,
            "at": at.isoformat() if at else None,
            "retry": retry,
        },
    )
