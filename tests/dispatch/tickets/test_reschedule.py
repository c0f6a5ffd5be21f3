"""After Redis lost its data, `hotline jobs reschedule` asks again for the deadline jobs.

Once the outbox handed a scheduled job to rq, Redis alone held it: a Redis that comes back
empty would never remind a department or mark a ticket overdue. The command rebuilds the jobs
from the tickets, with the ids and times the service gave them.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hotline.cli import app as cli
from hotline.core.redis import get_redis

pytestmark = pytest.mark.usefixtures("desk")


def _jobs(sla_jobs, running: dict[str, str]) -> dict[str, list[tuple[str, object]]]:
    """The jobs of the clock each ticket runs against (an accepted ticket's accept-clock jobs
    are left over, harmless: they find the ticket no longer running against them)."""
    return {n: [(j.job.id, j.at) for j in sla_jobs.scheduled(n, w)] for n, w in running.items()}


def test_jobs_lost_with_redis_are_asked_for_again_with_their_ids_and_times(desk, sla_jobs):
    numbers = {
        desk.create()["number"]: "accept",  # both reminders and the deadline check
        desk.create(matter_code="SC-05", content="电梯困人，有老人被困")["number"]: "accept",
        desk.ticket_in("accepted"): "finish",
    }
    closed = desk.ticket_in("closed")
    before = _jobs(sla_jobs, numbers)
    assert all(before.values())

    get_redis().flushdb()  # Redis came back without its data
    assert not any(_jobs(sla_jobs, numbers).values())

    result = CliRunner().invoke(cli, ["jobs", "reschedule"])
    assert result.exit_code == 0, result.output
    assert "3 running tickets" in result.output
    assert _jobs(sla_jobs, numbers) == before
    assert sla_jobs.scheduled(closed) == []

    # Run again, or with nothing lost: the same jobs, none doubled.
    assert CliRunner().invoke(cli, ["jobs", "reschedule"]).exit_code == 0
    assert _jobs(sla_jobs, numbers) == before
