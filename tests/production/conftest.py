"""Fixtures for the production-readiness tests: one populated system shared by a module.

The fuzzing and role-matrix tests send hundreds of requests; building the reference data, the
users and the tickets once per module (instead of once per request) keeps them inside their
time budget. The module-scoped ``world`` empties the database and Redis first, exactly like
the root ``database`` fixture does per test, so it neither sees nor leaves other tests' rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from hotline.core import db
from hotline.core.auth import create_access_token, create_user
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings

ROLES = ("agent", "supervisor", "dispatcher", "department", "editor", "admin")
# The department user works for 香洲区市场监督管理局; ``outsider`` for 高新区's market office,
# which owns none of the tickets the world's department tickets are about.
MARKET, OTHER_MARKET = "XZ-MARKET", "GX-MARKET"


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]  # role (or "outsider") -> Authorization header
    cti: dict[str, str]  # the X-CTI-Token header of the telephony system
    market_ticket: str  # led by XZ-MARKET, dispatched
    desk_ticket: str  # waiting at the dispatch desk
    call_id: str
    article_key: str  # a published knowledge-base article
    flag_id: int  # an open error report on it
    values: dict[str, str] = field(default_factory=dict)  # path parameter -> a real value

    def path_value(self, path: str, name: str) -> str | None:
        """A real value for the path parameter ``name`` of the route ``path``, if one is known."""
        if name == "number" and "/kb/" in path:
            return "1"  # a knowledge-base version number, not a ticket number
        if name == "code" and path.startswith("/api/v1/routing/departments/"):
            return MARKET
        if path.endswith(".wav"):
            # A real prompt or article would be rendered by an rq worker, and without one the
            # route answers 503 "still rendering" after 10 s, by design: never a real key here.
            return "no-such-audio"
        return self.values.get(name)

    def fill(self, path: str) -> str:
        """``path`` with every ``{parameter}`` replaced by a real value."""
        return re.sub(r"\{(\w+)\}", lambda m: self.path_value(path, m.group(1)) or "x", path)


def empty_database() -> None:
    """What the root ``database`` fixture does, for fixtures wider than one test."""
    engine = db.get_engine()
    names = [t.name for t in reversed(db.Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
    get_redis().flushdb()
    from dispatch.routing.service import forget_cached_rules
    from knowledgebase.service import forget_cached_index

    forget_cached_rules()
    forget_cached_index()


def _populate(client: TestClient) -> World:
    from dispatch.tickets import service as ticket_service
    from dispatch.tickets.models import Ticket
    from hotline.cli import SEED_LOADERS
    from hotline.core import auth

    with db.transaction() as session:
        for loader in SEED_LOADERS:
            loader(session)
    users = {role: ((role,), ()) for role in ROLES}
    users["department"] = (("department",), (MARKET,))
    users["outsider"] = (("department",), (OTHER_MARKET,))
    # argon2 costs half a second a user; these users log in with tokens, never passwords.
    real_hash = auth.hash_password
    auth.hash_password = lambda password: f"not-hashed:{len(password)}"
    try:
        with db.transaction() as session:
            for name, (roles, departments) in users.items():
                create_user(
                    session,
                    username=name,
                    password="pw-12345678",
                    roles=list(roles),
                    departments=list(departments),
                )
    finally:
        auth.hash_password = real_hash
    headers = {name: {"Authorization": f"Bearer {create_access_token(name)}"} for name in users}
    cti = {"X-CTI-Token": get_settings().cti_token.get_secret_value()}

    def ok(response, status: int = 200):
        assert response.status_code == status, response.text
        return response.json()

    market = ok(
        client.post(
            "/api/v1/tickets",
            json={
                "content": "商家拒绝退款，要求处理",
                "address": "香洲区拱北夏湾",
                "matter_code": "SC-01",
                "caller_phone": "13812341234",
                "caller_name": "张三",
            },
            headers=headers["agent"],
        ),
        201,
    )["number"]
    desk = ok(
        client.post(
            "/api/v1/tickets",
            json={"content": "有个事情想反映一下", "caller_phone": "13812349999"},
            headers=headers["agent"],
        ),
        201,
    )["number"]
    with db.transaction() as session:
        leads = dict(session.execute(select(Ticket.number, Ticket.lead_department)).all())
    assert leads == {market: MARKET, desk: ticket_service.DESK}, leads

    call_id = "world-call-1"
    start = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        {"event_id": "w-1", "type": "offered", "call_id": call_id, "queue": "general"},
        {"event_id": "w-2", "type": "answered", "call_id": call_id, "agent": "agent"},
        {"event_id": "w-3", "type": "ended", "call_id": call_id},
    ]
    for seconds, event in zip((0, 8, 120), events, strict=True):
        event["at"] = (start + timedelta(seconds=seconds)).isoformat()
    assert ok(client.post("/api/v1/calls/events", json=events, headers=cti))["accepted"] == 3

    article_key = ok(client.get("/api/v1/kb/search", params={"q": "社保卡"}))[0]["key"]
    flag = ok(
        client.post(
            f"/api/v1/kb/articles/{article_key}/flags",
            json={"kind": "outdated", "note": "电话号码变了"},
            headers=headers["agent"],
        ),
        201,
    )
    world = World(
        client=client,
        headers=headers,
        cti=cti,
        market_ticket=market,
        desk_ticket=desk,
        call_id=call_id,
        article_key=article_key,
        flag_id=flag["id"],
    )
    world.values = {
        "number": market,
        "action": "accept",
        "code": "SC-01",
        "name": "夏湾",
        "day": "2031-10-08",
        "call_id": call_id,
        "phone": "13812341234",
        "username": "agent",
        "prefix": "nokey",
        "key": article_key,
        "article_key": article_key,
        "flag_id": str(flag["id"]),
        "term": "社保卡",
        "fmt": "json",
        "photo_id": "1",
    }
    return world


@contextmanager
def _populated_world(app) -> Iterator[World]:
    """A seeded system served by ``app``: a user of every role, tickets, a call, a KB."""
    empty_database()
    # A server error must come back as a 500 the assertions can show, not as an exception.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield _populate(client)
    empty_database()


@pytest.fixture(scope="session")
def populated_world():
    """``with populated_world(app) as world:`` for a module that must build its own app."""
    return _populated_world


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    from hotline.app import create_app

    with _populated_world(create_app()) as populated:
        yield populated
