"""Jobs leave only after their transaction commits, and survive Redis being down."""

import pytest
from sqlalchemy import func, select

from hotline.core import db
from hotline.core.jobs import enqueue_after_commit, safe_job_id
from hotline.core.models import AuditEntry, OutboxMessage
from hotline.core.redis import ensure_embedded_redis, reset_clients, stop_embedded_redis
from hotline.core.settings import get_settings


def _pings(note: str) -> int:
    with db.transaction() as session:
        return session.scalar(
            select(func.count()).where(
                AuditEntry.action == "job.ping", AuditEntry.entity_id == note
            )
        )


def test_job_asked_for_in_a_rolled_back_transaction_never_runs(run_jobs):
    with pytest.raises(RuntimeError), db.transaction() as session:
        enqueue_after_commit(session, "hotline.core.worker.ping", "rolled-back", job_id="ping:rb")
        raise RuntimeError("the request failed after asking for the job")
    run_jobs()
    assert _pings("rolled-back") == 0
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_committed_job_runs_once_even_if_asked_twice(run_jobs):
    for _ in range(2):
        with db.transaction() as session:
            enqueue_after_commit(session, "hotline.core.worker.ping", "twice", job_id="ping:twice")
    assert run_jobs() == 1
    assert _pings("twice") == 1


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    """A Redis server of this test's own that it may stop and start at will."""
    data_dir = tmp_path / "redis"
    socket_path = ensure_embedded_redis(data_dir)
    monkeypatch.setenv("HOTLINE_REDIS_URL", f"unix://{socket_path}")
    get_settings.cache_clear()
    reset_clients()
    yield data_dir
    stop_embedded_redis(data_dir)
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_clients()


def test_job_asked_for_while_redis_is_down_runs_once_it_is_back(private_redis, run_jobs):
    stop_embedded_redis(private_redis)
    with db.transaction() as session:
        enqueue_after_commit(session, "hotline.core.worker.ping", "outage", job_id="ping:outage")
    # The commit succeeded although Redis was down; the job waits in the outbox.
    with db.transaction() as session:
        row = session.scalar(select(OutboxMessage))
        assert row is not None and "Error" in (row.last_error or "")
    ensure_embedded_redis(private_redis)
    reset_clients()
    assert run_jobs() == 1
    assert _pings("outage") == 1
    assert run_jobs() == 0
    assert _pings("outage") == 1


def test_scheduled_job_carries_its_time(run_jobs):
    from datetime import timedelta

    from rq import Queue

    from hotline.core.db import utcnow
    from hotline.core.redis import get_redis

    when = utcnow() + timedelta(hours=1)
    with db.transaction() as session:
        enqueue_after_commit(
            session, "hotline.core.worker.ping", "later", job_id="ping:later", at=when
        )
    run_jobs()
    assert _pings("later") == 0
    scheduled = Queue("default", connection=get_redis()).scheduled_job_registry
    job_id = safe_job_id("ping:later")
    assert scheduled.get_job_ids() == [job_id]
    assert abs(scheduled.get_scheduled_time(job_id).timestamp() - when.timestamp()) < 1
