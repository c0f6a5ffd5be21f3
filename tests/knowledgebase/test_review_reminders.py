"""The review-by reminder: an rq job scheduled some days before an article's review-by date,
announcing ``kb.review_due`` once, however often it runs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from hotline.core import db
from hotline.core.models import AuditEntry
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings
from knowledgebase import service


def local_today():
    return datetime.now(get_settings().tz).date()


class ReminderJobs:
    def __init__(self) -> None:
        self.queue = Queue("default", connection=get_redis())
        self.registry = self.queue.scheduled_job_registry

    def scheduled(self) -> list[tuple[Job, datetime]]:
        jobs = [Job.fetch(i, connection=self.queue.connection) for i in self.registry.get_job_ids()]
        return [
            (job, self.registry.get_scheduled_time(job))
            for job in jobs
            if job.func_name == "knowledgebase.jobs.review_due"
        ]

    def make_due(self, job: Job) -> None:
        self.registry.schedule(job, datetime.now(UTC) - timedelta(seconds=1))

    def run_again(self, job: Job) -> str:
        again = self.queue.enqueue(job.func_name, args=job.args, job_id=f"{job.id}-again")
        return again


@pytest.fixture
def reminders(database) -> ReminderJobs:
    return ReminderJobs()


def review_events(kb_events, mark):
    return [e for e in kb_events(mark) if e["type"] == "kb.review_due"]


def test_a_reminder_is_scheduled_before_the_review_by_date_and_sent_once(
    kb, reminders, run_jobs, kb_events
):
    review_by = local_today() + timedelta(days=60)
    kb.create(review_by=review_by.isoformat())
    kb.publish("KB-T-001")
    run_jobs()  # relays the outbox: the job goes to rq's scheduled registry
    [(job, at)] = reminders.scheduled()
    expected = datetime.combine(
        review_by - timedelta(days=service.REVIEW_REMINDER_DAYS),
        time(service.REVIEW_REMINDER_HOUR),
        tzinfo=get_settings().tz,
    )
    assert at == expected.astimezone(UTC)
    assert job.id.startswith("kb-review-due_")  # deterministic: article and date

    mark = kb_events.mark()
    reminders.make_due(job)
    assert run_jobs() == 1
    [event] = review_events(kb_events, mark)
    assert event["data"] == {
        "key": "KB-T-001",
        "review_by": review_by.isoformat(),
        "department": None,
        "status": "published",
    }
    # A retry or a second worker running the same call records nothing more.
    reminders.run_again(job)
    assert run_jobs() == 1
    assert len(review_events(kb_events, mark)) == 1
    with db.transaction() as session:
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "kb.review_due")
        ).all()
    assert [(a.entity_id, a.detail["review_by"]) for a in audit] == [
        ("KB-T-001", review_by.isoformat())
    ]


def test_a_review_by_date_inside_the_window_is_reminded_at_once(kb, run_jobs, kb_events):
    mark = kb_events.mark()
    kb.create(review_by=(local_today() + timedelta(days=3)).isoformat())
    assert run_jobs() == 1
    assert len(review_events(kb_events, mark)) == 1


def test_a_moved_or_retired_article_is_not_reminded_for_its_old_date(
    kb, reminders, run_jobs, kb_events
):
    first = local_today() + timedelta(days=40)
    kb.create(review_by=first.isoformat())
    kb.call("PUT", "/articles/KB-T-001", "editor",
            json={"review_by": (first + timedelta(days=100)).isoformat()})  # fmt: skip
    run_jobs()
    jobs = sorted(reminders.scheduled(), key=lambda item: item[1])
    assert [job.args[1] for job, _ in jobs] == [
        first.isoformat(),
        (first + timedelta(days=100)).isoformat(),
    ]
    mark = kb_events.mark()
    reminders.make_due(jobs[0][0])
    run_jobs()
    assert review_events(kb_events, mark) == []
    assert jobs[0][0].id != jobs[1][0].id
    kb.call("POST", "/articles/KB-T-001/retire", "editor")
    reminders.make_due(jobs[1][0])
    run_jobs()
    assert review_events(kb_events, mark) == []
