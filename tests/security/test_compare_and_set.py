"""Every ticket state change is a compare-and-set on the state its actor saw (issue 17, item 8).

Two dispatchers sending a waiting ticket to two departments without a version both won: the
second read the first one's dispatch and, the ticket being dispatched, re-dispatched it (改派)
over it. Now the UPDATE carries the version read (0 rows: 409 ``ticket.version_conflict``) and
an action that would redo a change just made by someone else needs the version the actor saw
(409 ``ticket.version_required``): exactly one of them wins, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dispatch.routing import service as routing_service
from dispatch.tickets import service as ticket_service
from hotline.core import auth, db

MARKET, GX_MARKET = "XZ-MARKET", "GX-MARKET"
LOSER_CODES = {"ticket.version_conflict", "ticket.version_required"}


@pytest.fixture
def people(database, app, make_user, monkeypatch) -> dict[str, dict[str, str]]:
    monkeypatch.setattr(auth, "hash_password", lambda password: f"not-hashed:{len(password)}")
    with db.transaction() as session:
        routing_service.seed_reference(session)
    return {
        "agent": make_user("agent", "agent"),
        "dispatcher": make_user("dispatcher", "dispatcher"),
        "dispatcher2": make_user("dispatcher2", "dispatcher"),
        "admin": make_user("admin", "admin"),
    }


def _waiting_ticket(client: TestClient, people) -> dict:
    """A ticket at the dispatch desk (no address: routing cannot place it)."""
    response = client.post(
        "/api/v1/tickets", json={"content": "有个事情想反映一下"}, headers=people["agent"]
    )
    assert response.status_code == 201, response.text
    ticket = client.get(f"/api/v1/tickets/{response.json()['number']}", headers=people["admin"])
    assert ticket.json()["status"] == "pending_dispatch"
    return ticket.json()


def _race(app, sends: list[Callable[[TestClient], Response]], *, after_read: bool = False):
    """Each request from its own thread and client, released together by a barrier; with
    ``after_read`` each also waits until both have read the ticket (PostgreSQL only: SQLite
    takes its write lock at BEGIN IMMEDIATE, before the read)."""
    start = threading.Barrier(len(sends), timeout=30)
    read = threading.Barrier(len(sends), timeout=30)
    answers: list = [None] * len(sends)
    real_get = ticket_service.get

    def get_then_wait(session, principal, number):
        ticket = real_get(session, principal, number)
        read.wait()
        return ticket

    def run(index: int) -> None:
        try:
            client = TestClient(app, raise_server_exceptions=False)
            start.wait()
            answers[index] = sends[index](client)
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            answers[index] = exc

    if after_read:
        ticket_service.get = get_then_wait
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sends))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        ticket_service.get = real_get
    assert all(isinstance(a, Response) for a in answers), answers
    return answers


def _dispatch(people, number: str, actor: str, department: str, **body):
    def send(client: TestClient) -> Response:
        return client.post(
            f"/api/v1/tickets/{number}/dispatch",
            json={"department": department, **body},
            headers=people[actor],
        )

    return send


def _assert_exactly_one_wins(client, people, number: str, answers: list[Response], before):
    winners = [a for a in answers if a.status_code == 200]
    losers = [a for a in answers if a.status_code != 200]
    assert len(winners) == 1, [(a.status_code, a.text[:300]) for a in answers]
    assert losers[0].status_code == 409, losers[0].text
    assert losers[0].json()["error"]["code"] in LOSER_CODES, losers[0].text
    after = client.get(f"/api/v1/tickets/{number}", headers=people["admin"]).json()
    assert after["lead_department"] == winners[0].json()["lead_department"]
    assert after["version"] == winners[0].json()["version"]
    assert len(after["trail"]) == len(before["trail"]) + 1


@pytest.mark.parametrize("round_", range(3))
def test_two_dispatchers_without_a_version_exactly_one_wins(app, people, round_):
    with TestClient(app) as client:
        before = _waiting_ticket(client, people)
        number = before["number"]
        answers = _race(
            app,
            [
                _dispatch(people, number, "dispatcher", MARKET),
                _dispatch(people, number, "dispatcher2", GX_MARKET),
            ],
        )
        _assert_exactly_one_wins(client, people, number, answers, before)


def test_two_dispatchers_who_read_the_same_state_exactly_one_wins(app, people):
    if db.get_engine().dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN IMMEDIATE: two cannot read one state")
    with TestClient(app) as client:
        before = _waiting_ticket(client, people)
        number = before["number"]
        answers = _race(
            app,
            [
                _dispatch(people, number, "dispatcher", MARKET),
                _dispatch(people, number, "dispatcher2", GX_MARKET),
            ],
            after_read=True,
        )
        _assert_exactly_one_wins(client, people, number, answers, before)


def test_a_redispatch_needs_the_version_its_dispatcher_saw(app, people):
    with TestClient(app) as client:
        number = _waiting_ticket(client, people)["number"]
        first = _dispatch(people, number, "dispatcher", MARKET)(client)
        assert first.status_code == 200, first.text
        blind = _dispatch(people, number, "dispatcher2", GX_MARKET)(client)
        assert blind.status_code == 409, blind.text
        assert blind.json()["error"]["code"] == "ticket.version_required"
        assert blind.json()["error"]["details"]["version"] == first.json()["version"]
        stale = _dispatch(people, number, "dispatcher2", GX_MARKET, version=1)(client)
        assert stale.json()["error"]["code"] == "ticket.version_conflict"
        seen = _dispatch(people, number, "dispatcher2", GX_MARKET, version=first.json()["version"])
        moved = seen(client)
        assert moved.status_code == 200, moved.text
        assert moved.json()["lead_department"] == GX_MARKET
