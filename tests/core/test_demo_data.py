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
