"""Fixtures for the ticket (工单) API tests: seeded routing data, a cast of users, helpers around
the HTTP API, a settable clock for the ticket service, and the events and rq jobs it leaves.

Nothing here is autouse: the pure calendar and deadline tests in this folder need no database.
The API test modules ask for ``desk`` (and ``clock`` or ``sla_jobs`` where they need them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from dispatch.routing import service as routing_service
from dispatch.tickets import service as ticket_service
from dispatch.tickets.models import Ticket
from hotline.core import auth, db
from hotline.core.events import all_events_after, last_event_id
from hotline.core.redis import get_redis

# By the reference data, SC-01 (消费纠纷投诉, area level) at 拱北 goes to 香洲区市场监督管理局.
GONGBEI = "香洲区拱北夏湾"
MARKET = "XZ-MARKET"
GX_MARKET = "GX-MARKET"
PHONE = "13812341234"

# name -> (roles, departments)
CAST: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "agent": (("agent",), ()),
    "dispatcher": (("dispatcher",), ()),
    "dispatcher2": (("dispatcher",), ()),
    "supervisor": (("supervisor",), ()),
    "admin": (("admin",), ()),
    "market": (("department",), (MARKET,)),
    "market2": (("department",), (MARKET,)),
    "gx_market": (("department",), (GX_MARKET,)),
    "xz_gov": (("department",), ("XZ-GOV",)),
    "two_hats": (("department",), (MARKET, "XZ-GOV")),  # a member of two departments
}


@pytest.fixture
def reference(database) -> None:
    """The shipped gazetteer, departments and matter catalogue, as every ticket needs them."""
    with db.transaction() as session:
        routing_service.seed_reference(session)


@pytest.fixture
def cheap_passwords(monkeypatch) -> None:
    """argon2 takes half a second per user; these tests log in with tokens, never passwords."""
    monkeypatch.setattr(auth, "hash_password", lambda password: f"not-hashed:{len(password)}")


@dataclass
class Desk:
    """The API as the cast uses it, with the status codes each call must answer."""

    client: TestClient
    headers: dict[str, dict[str, str]]

    def create(self, as_: str = "agent", expect: int = 201, **fields: Any) -> dict[str, Any]:
        body = {
            "content": "商家拒绝退款，要求处理",
            "address": GONGBEI,
            "matter_code": "SC-01",
            "caller_phone": PHONE,
            "caller_name": "张三",
        }
        body.update(fields)
        if isinstance(body.get("received_at"), datetime):
            body["received_at"] = body["received_at"].isoformat()
        response = self.client.post("/api/v1/tickets", json=body, headers=self.headers[as_])
        assert response.status_code == expect, response.text
        return response.json()

    def attempt(self, number: str, action: str, as_: str, **body: Any) -> Response:
        return self.client.post(
            f"/api/v1/tickets/{number}/{action}", json=body, headers=self.headers[as_]
        )

    def act(
        self, number: str, action: str, as_: str, expect: int = 200, **body: Any
    ) -> dict[str, Any]:
        response = self.attempt(number, action, as_, **body)
        assert response.status_code == expect, response.text
        return response.json()

    def refused(
        self, number: str, action: str, as_: str, status: int, code: str, **body: Any
    ) -> dict[str, Any]:
        """Assert the action is refused with ``status``/``code`` and changed nothing."""
        before = self.get(number)
        response = self.attempt(number, action, as_, **body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code, response.text
        after = self.get(number)
        assert after["version"] == before["version"]
        assert after["status"] == before["status"]
        assert len(after["trail"]) == len(before["trail"])
        return response.json()

    def get(self, number: str, as_: str = "admin", expect: int = 200) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/tickets/{number}", headers=self.headers[as_])
        assert response.status_code == expect, response.text
        return response.json()

    def listing(self, as_: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/tickets", params=params, headers=self.headers[as_])
        assert response.status_code == 200, response.text
        return response.json()

    def numbers(self, as_: str, **params: Any) -> list[str]:
        return [t["number"] for t in self.listing(as_, **params)]

    def ticket_in(self, status: str, **fields: Any) -> str:
        """A fresh ticket brought to ``status`` the ordinary way (for the market department)."""
        if status == "pending_dispatch":
            return self.create(address="", content="商家拒绝退款", **fields)["number"]
        number = self.create(**fields)["number"]
        steps = {
            "accepted": [("accept", "market", {})],
            "replied": [("accept", "market", {}), ("reply", "market", {"reply": "已协调退款"})],
            "visited": [
                ("accept", "market", {}),
                ("reply", "market", {"reply": "已协调退款"}),
                ("visit", "agent", {"satisfaction": "satisfied"}),
            ],
            "closed": [
                ("accept", "market", {}),
                ("reply", "market", {"reply": "已协调退款"}),
                ("visit", "agent", {"satisfaction": "satisfied"}),
                ("close", "agent", {}),
            ],
        }.get(status, [])
        for action, actor, body in steps:
            self.act(number, action, actor, **body)
        assert self.get(number)["status"] == status
        return number


@pytest.fixture
def desk(reference, cheap_passwords, app, make_user) -> Iterator[Desk]:
    headers = {
        name: make_user(name, *roles, departments=departments)
        for name, (roles, departments) in CAST.items()
    }
    # A server error must come back as a 500 the assertions can show, not as an exception.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Desk(client=client, headers=headers)


class Clock:
    """The ticket service's idea of "now", set by the test (jobs and tokens keep real time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now: datetime | None = None
        monkeypatch.setattr(ticket_service, "utcnow", self._now)

    def _now(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)

    def set(self, moment: datetime) -> datetime:
        assert moment.tzinfo is not None
        self.now = moment.astimezone(UTC)
        return moment

    def advance(self, **delta: float) -> datetime:
        assert self.now is not None, "set the clock first"
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


# -- events ------------------------------------------------------------------------------------


@pytest.fixture
def events() -> Callable[[int], list[dict[str, Any]]]:
    """``events(after_id)``: the event log after an id (0: everything)."""

    def read(after_id: int = 0) -> list[dict[str, Any]]:
        with db.transaction() as session:
            return all_events_after(session, after_id, limit=10_000)

    return read


@pytest.fixture
def last_event() -> Callable[[], int]:
    """``last_event()``: the id of the newest event, to read what a request adds after it."""

    def read() -> int:
        with db.transaction() as session:
            return last_event_id(session)

    return read


# -- scheduled rq jobs -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledJob:
    job: Job
    at: datetime  # when rq will enqueue it (UTC, whole seconds)

    @property
    def kind(self) -> str:
        """``due_soon``/``one_hour_left`` reminders or ``deadline`` (the overdue check)."""
        if self.job.func_name.endswith(".remind"):
            return self.job.args[3]
        return "deadline"

    @property
    def which(self) -> str:
        return self.job.args[1]

    @property
    def deadline_iso(self) -> str:
        return self.job.args[2]


class SlaJobs:
    """The reminder and overdue jobs the ticket service scheduled, and a way to make them due."""

    def __init__(self) -> None:
        self.queue = Queue("default", connection=get_redis())
        self.registry = self.queue.scheduled_job_registry

    def ticket_id(self, number: str) -> int:
        with db.transaction() as session:
            return session.scalar(select(Ticket.id).where(Ticket.number == number))

    def scheduled(self, number: str, which: str | None = None) -> list[ScheduledJob]:
        ticket_id = self.ticket_id(number)
        found = []
        for job_id in self.registry.get_job_ids():
            job = Job.fetch(job_id, connection=self.queue.connection)
            if not job.func_name.startswith("dispatch.tickets.jobs."):
                continue
            if job.args[0] != ticket_id or (which and job.args[1] != which):
                continue
            found.append(ScheduledJob(job, self.registry.get_scheduled_time(job)))
        return sorted(found, key=lambda s: (s.at, s.kind))

    def make_due(self, *jobs: ScheduledJob) -> None:
        """Move the jobs' time to a second ago, so the worker's scheduler enqueues them now."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for scheduled in jobs:
            self.registry.schedule(scheduled.job, past)

    def run_again(self, scheduled: ScheduledJob) -> Job:
        """Queue the same call once more (a retry, or a second worker picking it up)."""
        return self.queue.enqueue(
            scheduled.job.func_name,
            args=scheduled.job.args,
            job_id=f"{scheduled.job.id}-again",
        )

    @staticmethod
    def result(job: Job) -> Any:
        return Job.fetch(job.id, connection=job.connection).return_value()


@pytest.fixture
def sla_jobs(database) -> Iterator[SlaJobs]:
    yield SlaJobs()
