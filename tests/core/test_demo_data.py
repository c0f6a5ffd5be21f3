"""Demo data: every role can log in and the tickets cover the lifecycle's states."""

from sqlalchemy import select

from dispatch.routing import service as routing_service
from dispatch.tickets.models import Ticket
from hotline import demo
from hotline.calls import service as calls_service
from hotline.core import db


def test_demo_data_covers_every_role_and_state(client):
    with db.transaction() as session:
        routing_service.seed_reference(session)
        calls_service.seed_queues(session)
    with db.transaction() as session:
        demo.create_demo_users(session)
    with db.transaction() as session:
        assert demo.create_demo_tickets(session) == len(demo.DEMO_TICKETS)
    with db.transaction() as session:
        assert demo.create_demo_tickets(session) == 0  # once only
        statuses = {t.status for t in session.scalars(select(Ticket))}
    assert {"dispatched", "accepted", "replied", "closed", "pending_dispatch"} <= statuses
    for username, *_ in demo.DEMO_USERS:
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": demo.DEMO_PASSWORD}
        )
        assert response.status_code == 200, username


def test_a_second_start_closes_the_calls_left_open_and_does_not_backfill_again(client):
    from datetime import timedelta

    from hotline.calls.models import CallOffer
    from hotline.core.db import utcnow

    with db.transaction() as session:
        calls_service.seed_queues(session)
    with db.transaction() as session:
        assert demo.needs_backfill(session)  # a first start: nothing simulated yet
    # What a simulator killed mid-run leaves: one caller waiting, one call being talked.
    earlier = utcnow() - timedelta(minutes=20)
    events = []
    for call_id, answered in (("sim1-100-000001", False), ("sim1-100-000002", True)):
        types = ["ivr_entered", "offered"] + (["answered"] if answered else [])
        for number, type_ in enumerate(types, start=1):
            event = {"event_id": f"{call_id}:{number}", "type": type_, "call_id": call_id}
            event["at"] = (earlier + timedelta(seconds=10 * number)).isoformat()
            event.update({"offered": {"queue": "general", "caller": "13800009999"}}.get(type_, {}))
            if type_ == "answered":
                event["agent"] = "sim-general-01"
            events.append(event)
    # A real call of the hotline's own telephone system, also still open, is not the demo's.
    events.append(
        {"event_id": "pbx-1:1", "type": "offered", "call_id": "pbx-1", "queue": "general"}
        | {"at": earlier.isoformat()}
    )
    with db.transaction() as session:
        result = calls_service.ingest(session, events)
        assert all(r["status"] == "accepted" for r in result.results), result.results

    with db.transaction() as session:
        assert demo.close_abandoned_simulated_calls(session) == 2
    with db.transaction() as session:
        assert demo.close_abandoned_simulated_calls(session) == 0  # once
        assert not demo.needs_backfill(session)
        outcomes = dict(session.execute(select(CallOffer.call_id, CallOffer.outcome)).all())
        agent = calls_service.agents(session)
    assert outcomes == {
        "sim1-100-000001": "abandoned",
        "sim1-100-000002": "answered",
        "pbx-1": "waiting",
    }
    assert {a.username: a.state for a in agent}["sim-general-01"] == "after_call_work"
