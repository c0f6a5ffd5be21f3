"""The relay thread: a commit waits for a pass that began after it, and commits share passes."""

import threading
import time

import pytest
from rq.job import Job
from sqlalchemy import func, select

from hotline.core import db, outbox
from hotline.core.events import all_events_after, publish_after_commit
from hotline.core.jobs import enqueue_after_commit, safe_job_id
from hotline.core.models import OutboxMessage
from hotline.core.redis import get_redis

pytestmark = pytest.mark.usefixtures("database")


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_each_commit_returns_with_its_event_logged_and_its_job_in_rq():
    with db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": 1})
        enqueue_after_commit(session, "hotline.core.worker.ping", "now", job_id="ping:relay")
    # No waiting here: the commit itself waited for the relay.
    with db.transaction() as session:
        assert [e["data"] for e in all_events_after(session, 0)] == [{"n": 1}]
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert Job.exists(safe_job_id("ping:relay"), connection=get_redis())


def test_commits_made_while_a_pass_runs_share_the_next_one():
    relayer = outbox._relayer()
    committed: list[int] = []
    seen_own_event: list[bool] = []

    def commit(n: int) -> None:
        with db.transaction() as session:
            publish_after_commit(session, "kpi.wall", "x", {"n": n})
        with db.transaction() as session:
            seen_own_event.append(n in [e["data"]["n"] for e in all_events_after(session, 0)])
        committed.append(n)

    # The relay thread cannot move anything while the test holds the relay lock, so the eight
    # commits pile up behind one pass at most; once it is released they need one more.
    asked_before = relayer._asked
    with outbox._relay_lock:
        passes_before = relayer.passes
        threads = [threading.Thread(target=commit, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: relayer._asked - asked_before >= 8)
        assert committed == []  # every commit is waiting for its pass
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(committed) == list(range(8))
    assert seen_own_event == [True] * 8
    assert relayer.passes - passes_before <= 2
    with db.transaction() as session:
        ids = [e["id"] for e in all_events_after(session, 0)]
    assert len(ids) == len(set(ids)) == 8


def test_a_commit_without_outbox_messages_does_not_wait_for_the_relay():
    relayer = outbox._relayer()
    asked = relayer._asked
    # Holding the relay lock: a commit that waited for a pass would hang here.
    with outbox._relay_lock, db.transaction() as session:
        session.execute(select(1))
    assert relayer._asked == asked


def test_a_rolled_back_transaction_asks_for_no_pass():
    relayer = outbox._relayer()
    asked = relayer._asked
    with pytest.raises(RuntimeError), db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "x", {"n": "never"})
        raise RuntimeError("rolled back")
    assert relayer._asked == asked
    with db.transaction() as session:
        assert all_events_after(session, 0) == []


def test_a_pass_looks_only_at_the_kinds_its_commits_staged_the_retry_takes_the_rest():
    # A job row left by a process that died between its commit and its relay.
    with db.transaction() as session:
        session.add(
            OutboxMessage(
                kind="job",
                payload={
                    "func": "hotline.core.worker.ping",
                    "args": ["left"],
                    "job_id": "ping_left",
                },
            )
        )
    with db.transaction() as session:
        publish_after_commit(session, "kpi.wall", "kpi.updated", {"n": 1})
    with db.transaction() as session:
        assert len(all_events_after(session, 0)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    outbox._relayer().wake()  # what the retry poller of every process does each second
    _wait_until(lambda: Job.exists("ping_left", connection=get_redis()))
    _wait_until(lambda: _outbox_rows() == 0)


def _outbox_rows() -> int:
    with db.transaction() as session:  # one short transaction per look: SQLite has one writer
        return session.scalar(select(func.count()).select_from(OutboxMessage))
