"""Deadline reminders and the overdue mark, scheduled by the ticket service and run by a real
rq worker.

The service schedules its jobs in rq's scheduled registry at the 80 % point, one hour before
the deadline and at the deadline. A test checks those times, then moves the jobs it wants to
run to a second ago (``sla_jobs.make_due``) and lets ``run_jobs`` (a real ``SimpleWorker``
with its scheduler) enqueue and run them. Urgent matter SC-05 (电梯困人) keeps the windows short.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

MARKET = "XZ-MARKET"

pytestmark = pytest.mark.usefixtures("desk")


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def rq_time(moment: datetime) -> datetime:
    """rq keeps schedule times as whole UTC seconds."""
    return moment.astimezone(UTC).replace(microsecond=0)


def urgent_ticket(desk) -> dict:
    return desk.create(matter_code="SC-05", content="电梯困人，有老人被困")


def trail_of(desk, number: str, *actions: str) -> list[dict]:
    return [e for e in desk.get(number)["trail"] if e["action"] in actions]


def events_for(events, mark: int, number: str | None = None) -> list[tuple[str, str]]:
    """What departments and supervisors were told (the creator's console copy left out)."""
    return [
        (e["topic"], e["type"])
        for e in events(mark)
        if (number is None or e["data"].get("number") == number)
        and not e["topic"].startswith("tickets.by.")
    ]


def test_an_urgent_ticket_is_reminded_at_80_percent_and_checked_at_its_deadline(desk, sla_jobs):
    created = urgent_ticket(desk)
    dispatched = at(created["received_at"])  # created now, so dispatched at the same moment
    deadline = at(created["accept_deadline"])
    assert deadline - dispatched == timedelta(hours=1)

    jobs = sla_jobs.scheduled(created["number"], "accept")
    # One hour before a one-hour deadline is the moment of dispatch: that reminder is left out.
    assert [(j.kind, j.at) for j in jobs] == [
        ("due_soon", rq_time(dispatched + timedelta(minutes=48))),
        ("deadline", rq_time(deadline)),
    ]
    assert {j.deadline_iso for j in jobs} == {deadline.isoformat()}
    assert sla_jobs.scheduled(created["number"], "finish") == []


def test_a_normal_ticket_gets_both_reminders_before_its_accept_deadline(desk, sla_jobs):
    created = desk.create()
    dispatched = at(created["received_at"])
    deadline = at(created["accept_deadline"])
    jobs = {j.kind: j.at for j in sla_jobs.scheduled(created["number"], "accept")}
    assert set(jobs) == {"due_soon", "one_hour_left", "deadline"}
    eighty_percent = dispatched + (deadline - dispatched) * 0.8
    assert abs(jobs["due_soon"] - eighty_percent) <= timedelta(seconds=1)
    assert jobs["one_hour_left"] == rq_time(deadline - timedelta(hours=1))
    assert jobs["deadline"] == rq_time(deadline)


def test_a_reminder_is_recorded_once_however_often_its_job_runs(
    desk, sla_jobs, run_jobs, events, last_event
):
    created = urgent_ticket(desk)
    number = created["number"]
    due_soon, deadline_check = sla_jobs.scheduled(number, "accept")
    assert due_soon.kind == "due_soon"
    mark = last_event()
    sla_jobs.make_due(due_soon)
    assert run_jobs() == 1
    assert sla_jobs.result(due_soon.job) == "reminded"

    [reminder] = trail_of(desk, number, "reminder")
    assert reminder["actor"] == "system"
    assert reminder["detail"] == {
        "which": "accept",
        "label": "due_soon",
        "deadline": created["accept_deadline"],
    }
    assert events_for(events, mark, number) == [(f"tickets.dept.{MARKET}", "ticket.reminder")]
    assert desk.get(number)["overdue"] is False

    again = sla_jobs.run_again(due_soon)
    assert run_jobs() == 1
    assert sla_jobs.result(again) == "already reminded"
    assert len(trail_of(desk, number, "reminder")) == 1
    assert events_for(events, mark, number) == [(f"tickets.dept.{MARKET}", "ticket.reminder")]
    # the overdue check is untouched and still waits for the deadline
    assert [j.job.id for j in sla_jobs.scheduled(number, "accept")] == [deadline_check.job.id]


def test_the_deadline_job_marks_the_ticket_overdue_once_and_alerts_the_kpi_wall(
    desk, sla_jobs, run_jobs, events, last_event
):
    created = urgent_ticket(desk)
    number = created["number"]
    [deadline_check] = [j for j in sla_jobs.scheduled(number, "accept") if j.kind == "deadline"]
    mark = last_event()
    sla_jobs.make_due(deadline_check)
    assert run_jobs() == 1
    assert sla_jobs.result(deadline_check.job) == "marked overdue"

    ticket = desk.get(number)
    assert ticket["overdue"] is True
    [overdue] = trail_of(desk, number, "overdue")
    assert overdue["actor"] == "system"
    assert overdue["detail"] == {"which": "accept", "deadline": created["accept_deadline"]}
    alerts = [e for e in events(mark) if e["topic"] == "kpi.alerts"]
    assert [(e["type"], e["data"]) for e in alerts] == [
        ("ticket.overdue", {"number": number, "department": MARKET, "which": "accept"})
    ]
    assert (f"tickets.dept.{MARKET}", "ticket.overdue") in events_for(events, mark, number)

    again = sla_jobs.run_again(deadline_check)
    assert run_jobs() == 1
    assert sla_jobs.result(again) == "already marked"
    assert len(trail_of(desk, number, "overdue")) == 1
    assert len([e for e in events(mark) if e["topic"] == "kpi.alerts"]) == 1


def test_accept_jobs_do_nothing_once_the_ticket_stopped_waiting_for_acceptance(
    desk, sla_jobs, run_jobs, events, last_event
):
    ways = {
        "accept": ("market", {}),
        "answer-directly": ("agent", {"answer": "已告知物业电梯维保电话"}),
        "return": ("market", {"reason": "电梯属横琴辖区"}),
    }
    waiting = {}
    for how, (actor, body) in ways.items():
        number = urgent_ticket(desk)["number"]
        waiting[number] = sla_jobs.scheduled(number, "accept")
        assert len(waiting[number]) == 2
        desk.act(number, how, actor, **body)
    mark = last_event()
    every_job = [job for jobs in waiting.values() for job in jobs]
    sla_jobs.make_due(*every_job)
    assert run_jobs() == len(every_job)
    assert [sla_jobs.result(j.job) for j in every_job] == ["not running"] * len(every_job)
    for number in waiting:
        assert desk.get(number)["overdue"] is False
        assert trail_of(desk, number, "reminder", "overdue") == []
    assert events(mark) == []


def test_finish_jobs_follow_the_deadline_an_approved_extension_moved(
    desk, sla_jobs, run_jobs, events, last_event
):
    number = urgent_ticket(desk)["number"]
    accepted = desk.act(number, "accept", "market")
    finish = at(accepted["finish_deadline"])
    started = finish - timedelta(hours=24)  # urgent: 24 clock hours from acceptance
    old = sla_jobs.scheduled(number, "finish")
    assert [(j.kind, j.at) for j in old] == [
        ("due_soon", rq_time(started + timedelta(hours=24) * 0.8)),
        ("one_hour_left", rq_time(finish - timedelta(hours=1))),
        ("deadline", rq_time(finish)),
    ]

    desk.act(number, "request-extension", "market", reason="需更换电梯部件", hours=2)
    approved = desk.act(number, "decide-extension", "dispatcher", approve=True)
    moved = at(approved["finish_deadline"])
    assert moved == finish + timedelta(hours=2)
    fresh = [
        j for j in sla_jobs.scheduled(number, "finish") if j.deadline_iso != old[0].deadline_iso
    ]
    assert [j.kind for j in fresh] == ["due_soon", "one_hour_left", "deadline"]
    assert {j.deadline_iso for j in fresh} == {approved["finish_deadline"]}
    assert fresh[1].at == rq_time(moved - timedelta(hours=1))
    assert fresh[2].at == rq_time(moved)
    decided = at(trail_of(desk, number, "decide-extension")[0]["at"])
    # 80 % of the time from the decision to the new deadline (the trail's time is a moment later)
    assert abs(fresh[0].at - (decided + (moved - decided) * 0.8)) <= timedelta(seconds=2)

    mark = last_event()
    sla_jobs.make_due(*old)
    assert run_jobs() == 3
    assert [sla_jobs.result(j.job) for j in old] == ["not running"] * 3
    assert trail_of(desk, number, "reminder", "overdue") == []
    assert events(mark) == []

    sla_jobs.make_due(fresh[2])
    assert run_jobs() == 1
    assert sla_jobs.result(fresh[2].job) == "marked overdue"
    [overdue] = trail_of(desk, number, "overdue")
    assert overdue["detail"] == {"which": "finish", "deadline": approved["finish_deadline"]}
    assert desk.get(number)["overdue"] is True


def test_a_rejected_extension_leaves_the_deadline_and_its_jobs_as_they_were(
    desk, sla_jobs, run_jobs
):
    number = urgent_ticket(desk)["number"]
    accepted = desk.act(number, "accept", "market")
    before = [j.job.id for j in sla_jobs.scheduled(number, "finish")]
    desk.act(number, "request-extension", "market", reason="需更换电梯部件", hours=2)
    rejected = desk.act(number, "decide-extension", "dispatcher", approve=False)
    assert rejected["finish_deadline"] == accepted["finish_deadline"]
    jobs = sla_jobs.scheduled(number, "finish")
    assert [j.job.id for j in jobs] == before
    sla_jobs.make_due(jobs[-1])
    assert run_jobs() == 1
    assert sla_jobs.result(jobs[-1].job) == "marked overdue"


def test_replying_in_time_makes_the_finish_jobs_harmless(desk, sla_jobs, run_jobs):
    number = urgent_ticket(desk)["number"]
    desk.act(number, "accept", "market")
    jobs = sla_jobs.scheduled(number, "finish")
    desk.act(number, "reply", "market", reply="已解困")
    sla_jobs.make_due(*jobs)
    assert run_jobs() == 3
    assert [sla_jobs.result(j.job) for j in jobs] == ["not running"] * 3
    assert desk.get(number)["overdue"] is False


def test_a_ticket_accepted_late_runs_against_its_new_deadline_without_the_old_overdue_mark(
    desk, sla_jobs, run_jobs
):
    """The overdue flag follows the deadline running now: an approved extension clears it,
    and so must acceptance, which replaces the missed accept deadline by a finish deadline
    (the late acceptance itself stays recorded as accepted_on_time and in the trail)."""
    number = urgent_ticket(desk)["number"]
    [deadline_check] = [j for j in sla_jobs.scheduled(number, "accept") if j.kind == "deadline"]
    sla_jobs.make_due(deadline_check)
    assert run_jobs() == 1
    assert desk.get(number)["overdue"] is True
    accepted = desk.act(number, "accept", "market")
    assert accepted["deadline_status"] == "ok"
    assert accepted["overdue"] is False
