"""Migration 0016 on a database with history: the visits in the trail become follow-up
records and counts on their tickets, and going back loses no ticket's trail."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from hotline.core import db, migrate


def test_visits_in_the_trail_become_follow_ups(desk):
    satisfied = desk.ticket_in("visited")
    reopened = desk.create()["number"]
    desk.act(reopened, "accept", "market")
    desk.act(reopened, "reply", "market", reply="已处理")
    desk.act(reopened, "visit", "agent", satisfaction="unsatisfied")
    desk.act(reopened, "reply", "market", reply="再次处理")
    desk.act(reopened, "visit", "supervisor", satisfaction="basically_satisfied")
    config = migrate.alembic_config()
    before = ScriptDirectory.from_config(config).get_revision("0016").down_revision
    with db.transaction() as session:
        trail = session.scalar(text("SELECT count(*) FROM ticket_actions"))

    command.downgrade(config, before)
    with db.transaction() as session:
        assert session.scalar(text("SELECT count(*) FROM ticket_actions")) == trail
    command.upgrade(config, "head")

    with db.transaction() as session:
        visits = session.execute(
            text(
                "SELECT t.number, f.department_code, f.source, f.satisfaction, f.actor "
                "FROM follow_ups f JOIN tickets t ON t.id = f.ticket_id ORDER BY f.id"
            )
        ).all()
        counted = session.execute(
            text(
                "SELECT number, visits_satisfied, visits_basically_satisfied, "
                "visits_unsatisfied FROM tickets ORDER BY id"
            )
        ).all()
    assert [tuple(v) for v in visits] == [
        (satisfied, "XZ-MARKET", "hotline", "satisfied", "agent"),
        (reopened, "XZ-MARKET", "hotline", "unsatisfied", "agent"),
        (reopened, "XZ-MARKET", "hotline", "basically_satisfied", "supervisor"),
    ]
    assert [tuple(c) for c in counted] == [(satisfied, 1, 0, 0), (reopened, 0, 1, 1)]
