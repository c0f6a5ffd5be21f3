"""The audit log of admin changes: every route that changes how the system works writes a row
with who did it and when.

Every route of /api/v1 that changes something is either in ``AUDITED`` (and the scenario below
changes it through the API and finds the audit row) or in ``NOT_AUDITED`` with the reason, so
a new changing route has to be placed in one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from hotline.app import create_app
from hotline.core import db
from hotline.core.models import AuditEntry
from tests.production.routes import route_table

CHANGING = ("POST", "PUT", "PATCH", "DELETE")

NOT_AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/token"): "a log-in changes nothing (failures are counted in Redis)",
    ("POST", "/api/v1/routing/preview"): "reads only",
    ("POST", "/api/v1/routing/draft/replay"): "a what-if: reads only",
    ("POST", "/api/v1/tickets"): "tickets keep their own trail (ticket_actions: actor, time)",
    ("POST", "/api/v1/tickets/{number}/link"): "in the ticket's trail",
    ("POST", "/api/v1/tickets/{number}/unlink"): "in the ticket's trail",
    ("POST", "/api/v1/tickets/{number}/{action}"): "in the ticket's trail",
    ("POST", "/api/v1/calls/events"): "telephony data, stored as call_events",
    ("POST", "/api/v1/hotspots/{hotspot_id}/merge"): "audited as hotspot.merged and in each "
    "ticket's trail; shown in tests/dispatch/hotspots/test_merge_api.py (needs an incident)",
    ("POST", "/api/v1/hotspots/{hotspot_id}/unmerge"): "audited as hotspot.unmerged and in each "
    "ticket's trail (tests/dispatch/hotspots/test_merge_api.py)",
    ("POST", "/api/v1/hotspots/{hotspot_id}/dismiss"): "audited as hotspot.dismissed "
    "(tests/dispatch/hotspots/test_merge_api.py)",
    ("PUT", "/api/v1/agents/me/state"): "kept as agent_state_changes with the time",
    ("PUT", "/api/v1/agents/{username}/state"): "kept as agent_state_changes with the time",
    ("POST", "/api/v1/kb/articles/{key}/views"): "a counter",
    ("POST", "/api/v1/kb/articles/{key}/votes"): "a counter",
    ("POST", "/api/v1/kb/preview"): "reads only (renders a draft's Markdown)",
    ("POST", "/api/v1/calls/{call_id}/handover-110"): "kept as the handover with agent and time",
    ("POST", "/api/v1/police-link/from-110"): "audited as police.transfer_received by 'cti'",
    ("POST", "/api/v1/portal/codes"): "a text message; counted in Redis for the limits",
    ("POST", "/api/v1/portal/codes/verify"): "uses up a code (Redis); changes no data",
    ("POST", "/api/v1/portal/requests"): "a ticket with its trail (portal_submitted, citizen:app)",
    (
        "POST",
        "/api/v1/portal/lookup",
    ): "a new tracking link of the ticket (portal_links, created_at)",
    ("POST", "/api/v1/portal/track/rating"): "in the ticket's trail (visit by citizen:app)",
    ("POST", "/api/v1/auth/password"): "audited as user.password_changed, shown in "
    "tests/security/test_revocation.py (this world's users have no real password hash)",
}


@dataclass(frozen=True)
class Change:
    method: str
    route: str  # the route template, as in the route table
    role: str  # who makes the change (a user of that name has that role)
    body: Any = None
    path: Callable[[Any], str] | None = None  # the concrete path, when it needs the world
    files: Any = None  # a multipart upload instead of a JSON body


def _key_prefix(world) -> str:
    return world.values["open311_prefix"]


# In order: some changes need the ones before them (a review needs a submitted article).
ARTICLE = "/api/v1/kb/articles/KB-AUDIT-1"
SCENARIO: list[Change] = [
    Change(
        "POST",
        "/api/v1/routing/matters/{code}/rules",
        "admin",
        {"level": "city", "type": "market", "effective_from": "2031-01-01"},
        lambda w: "/api/v1/routing/matters/SC-01/rules",
    ),
    Change(
        "POST",
        "/api/v1/routing/draft/publish",
        "admin",
        {
            "matters": [{"code": "SC-01", "level": "area", "type": "market"}],
            "effective_from": "2032-01-01",
        },
    ),
    Change(
        "PUT",
        "/api/v1/routing/departments/{code}",
        "admin",
        {"name": "审计测试局", "level": "city", "types": []},
        lambda w: "/api/v1/routing/departments/C-AUDIT",
    ),
    Change(
        "PUT",
        "/api/v1/routing/places/{name}",
        "admin",
        {"town": "440402005"},
        lambda w: "/api/v1/routing/places/审计测试广场",
    ),
    Change(
        "PUT",
        "/api/v1/calendar/{day}",
        "admin",
        {"working": False, "note": "台风停工"},
        lambda w: "/api/v1/calendar/2031-10-08",
    ),
    Change(
        "DELETE",
        "/api/v1/calendar/{day}",
        "admin",
        path=lambda w: "/api/v1/calendar/2031-10-08",
    ),
    Change(
        "POST",
        "/api/v1/admin/users",
        "admin",
        {"username": "audit-user", "password": "pw-12345678", "roles": ["agent"]},
    ),
    Change(
        "PATCH",
        "/api/v1/admin/users/{username}",
        "admin",
        {"roles": ["agent", "editor"]},
        lambda w: "/api/v1/admin/users/audit-user",
    ),
    Change(
        "POST",
        "/api/v1/admin/users/{username}/password",
        "admin",
        {"password": "pw-87654321"},
        lambda w: "/api/v1/admin/users/audit-user/password",
    ),
    Change(
        "POST",
        "/api/v1/admin/users/{username}/sessions/end",
        "admin",
        {"reason": "审计测试"},
        lambda w: "/api/v1/admin/users/audit-user/sessions/end",
    ),
    Change("POST", "/api/v1/open311/keys", "admin", {"name": "审计测试客户端"}),
    Change(
        "DELETE",
        "/api/v1/open311/keys/{prefix}",
        "admin",
        path=lambda w: f"/api/v1/open311/keys/{_key_prefix(w)}",
    ),
    Change(
        "PUT",
        "/api/v1/agents/{username}/skills",
        "supervisor",
        {"skills": ["general", "social_security"]},
        lambda w: "/api/v1/agents/agent/skills",
    ),
    Change(
        "PUT",
        "/api/v1/ivr/prompts/{key}",
        "supervisor",
        {"text": "您好，欢迎致电珠海12345热线，我们将竭诚为您服务。"},
        lambda w: "/api/v1/ivr/prompts/greeting",
    ),
    Change(
        "PUT",
        "/api/v1/police-link/matters",
        "supervisor",
        {"direction": "to_110", "matters": [{"name": "正在发生的盗窃", "keywords": ["盗窃"]}]},
    ),
    Change(
        "PUT",
        "/api/v1/kb/synonyms/{term}",
        "editor",
        {"synonyms": ["核查"]},
        lambda w: "/api/v1/kb/synonyms/审计",
    ),
    Change(
        "DELETE", "/api/v1/kb/synonyms/{term}", "editor", path=lambda w: "/api/v1/kb/synonyms/审计"
    ),
    Change(
        "POST",
        "/api/v1/kb/articles",
        "editor",
        {"key": "KB-AUDIT-1", "title": "审计测试", "body": "第一版正文。", "category": "其他"},
    ),
    Change(
        "PUT", "/api/v1/kb/articles/{key}", "editor", {"body": "第二版正文。"}, lambda w: ARTICLE
    ),
    Change(
        "POST", "/api/v1/kb/articles/{key}/submit", "editor", path=lambda w: f"{ARTICLE}/submit"
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/reject",
        "supervisor",
        {"comment": "请补充办理地点"},
        lambda w: f"{ARTICLE}/reject",
    ),
    Change(
        "POST", "/api/v1/kb/articles/{key}/submit", "editor", path=lambda w: f"{ARTICLE}/submit"
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/approve",
        "supervisor",
        {},
        lambda w: f"{ARTICLE}/approve",
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/publish",
        "supervisor",
        path=lambda w: f"{ARTICLE}/publish",
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/rollback",
        "editor",
        {"version": 1},
        lambda w: f"{ARTICLE}/rollback",
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/retire",
        "editor",
        {"reason": "测试结束"},
        lambda w: f"{ARTICLE}/retire",
    ),
    Change(
        "POST",
        "/api/v1/kb/articles/{key}/flags",
        "agent",
        {"kind": "wrong", "note": "地址写错了"},
        lambda w: f"/api/v1/kb/articles/{w.article_key}/flags",
    ),
    Change(
        "POST",
        "/api/v1/kb/flags/{flag_id}/resolve",
        "editor",
        {"note": "已更正电话", "body": "更正后的正文。"},
        lambda w: f"/api/v1/kb/flags/{w.flag_id}/resolve",
    ),
    Change(
        "POST",
        "/api/v1/kb/flags/{flag_id}/decline",
        "editor",
        {"reason": "核实无误"},
        lambda w: f"/api/v1/kb/flags/{w.values['new_flag']}/decline",
    ),
    Change(
        "POST",
        "/api/v1/kb/import",
        "editor",
        files={
            "file": (
                "kb.jsonl",
                '{"key":"KB-AUDIT-IMPORT","title":"导入审计","body":"正文。","category":"其他"}\n',
                "application/x-ndjson",
            )
        },
    ),
    Change("POST", "/api/v1/routing/models/train", "admin"),
    Change(
        "POST",
        "/api/v1/routing/models/{version_id}/activate",
        "admin",
        path=lambda w: f"/api/v1/routing/models/{w.values['model_version']}/activate",
    ),
]
AUDITED = {(change.method, change.route) for change in SCENARIO}


def test_every_changing_route_is_audited_or_says_why_not():
    changing = {r for r in route_table(create_app()) if r[0] in CHANGING}
    changing = {r for r in changing if r[1].startswith("/api/v1/")}
    assert changing, "the route table lists no changing routes"
    unplaced = sorted(changing - AUDITED - set(NOT_AUDITED))
    assert not unplaced, f"changing routes neither audited nor excused: {unplaced}"
    assert not AUDITED & set(NOT_AUDITED)
    stale = sorted((AUDITED | set(NOT_AUDITED)) - changing)
    assert not stale, f"entries for routes that do not exist: {stale}"


def _newest_id() -> int:
    with db.transaction() as session:
        return session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0


def _rows_after(last_id: int) -> list[AuditEntry]:
    with db.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id > last_id)).all()
        session.expunge_all()
        return list(rows)


def test_each_admin_change_writes_an_audit_row_with_actor_and_time(world):
    for change in SCENARIO:
        path = change.path(world) if change.path else change.route
        last_id = _newest_id()
        started = datetime.now(UTC) - timedelta(seconds=1)
        response = world.client.request(
            change.method,
            path,
            json=change.body,
            files=change.files,
            headers=world.headers[change.role],
        )
        finished = datetime.now(UTC) + timedelta(seconds=1)
        assert response.status_code < 300, f"{change.method} {path}: {response.text}"
        rows = _rows_after(last_id)
        mine = [row for row in rows if row.actor == change.role]
        assert mine, f"{change.method} {path} wrote no audit row by {change.role}: {rows}"
        for row in mine:
            assert started <= row.at <= finished, (row.action, row.at)
            assert row.action and row.entity and row.entity_id, row.action
        if change.route == "/api/v1/open311/keys":
            world.values["open311_prefix"] = response.json()["prefix"]
        if change.route == "/api/v1/kb/articles/{key}/flags":
            world.values["new_flag"] = str(response.json()["id"])
        if change.route == "/api/v1/routing/models/train":
            world.values["model_version"] = _trained_model_version()


def _trained_model_version() -> int:
    """A version to activate: trained here, as the worker would (not activated)."""
    from dispatch.routing import training

    with db.transaction() as session:
        return training.train_version(session, actor="system", activate=False).id


def test_the_routing_audit_lists_the_admins_changes(world):
    """Admins read the routing changes back through the API, newest first."""
    response = world.client.get("/api/v1/routing/audit", headers=world.headers["admin"])
    assert response.status_code == 200, response.text
    entries = response.json()
    models = [e["action"] for e in entries if e["action"].startswith("routing.model_")]
    assert models == [
        "routing.model_activated",
        "routing.model_trained",
        "routing.model_training_requested",
    ]
    entries = [e for e in entries if not e["action"].startswith("routing.model_")]
    assert [e["action"] for e in entries[:3]] == [
        "routing.place_saved",
        "routing.department_saved",
        "routing.rule_changed",
    ]
    assert all(e["actor"] == "admin" and e["at"] for e in entries[:3])
