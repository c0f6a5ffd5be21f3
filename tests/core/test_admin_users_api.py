"""The administrators' user API (/api/v1/admin/users…) and the audit log (/api/v1/admin/audit).

Real app, real database and Redis: accounts are made and changed over HTTP, then used to log
in, so a disabled account or a reset password is seen to take effect, not just to be stored.
"""

from __future__ import annotations

import pytest

from dispatch.routing import service as routing_service
from hotline.core import db

PASSWORD = "pw-12345678"
USERS = "/api/v1/admin/users"


@pytest.fixture
def admin(client, make_user):
    with db.transaction() as session:
        routing_service.seed_reference(session)
    return make_user("boss", "admin")


def create(client, admin, expect: int = 201, **fields):
    body = {"username": "newbie", "password": PASSWORD, "roles": ["agent"], **fields}
    response = client.post(USERS, json=body, headers=admin)
    assert response.status_code == expect, response.text
    return response.json()


def log_in(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def bearer(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_an_admin_creates_a_user_who_can_then_log_in(client, admin):
    made = create(client, admin, full_name="新 同事", roles=["agent", "editor"])
    assert made["username"] == "newbie"
    assert made["roles"] == ["agent", "editor"]
    assert made["active"] is True and made["full_name"] == "新 同事"
    me = client.get("/api/v1/auth/me", headers=bearer(log_in(client, "newbie")))
    assert me.json()["roles"] == ["agent", "editor"]
    listed = client.get(USERS, params={"role": "editor"}, headers=admin).json()
    assert [u["username"] for u in listed] == ["newbie"]
    assert client.get(f"{USERS}/newbie", headers=admin).json()["full_name"] == "新 同事"


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"roles": ["department"]}, 400, "auth.department_required"),
        ({"roles": ["department"], "departments": ["NO-SUCH"]}, 422, "auth.unknown_department"),
        ({"roles": ["wizard"]}, 400, "auth.unknown_role"),
        ({"roles": []}, 422, "validation_error"),
        ({"password": "short"}, 422, "validation_error"),
        ({"password": "x" * 1025}, 422, "validation_error"),
        ({"username": ""}, 422, "validation_error"),
        ({"username": "a" * 65}, 422, "validation_error"),
        ({"username": "has space"}, 422, "validation_error"),
        ({"departments": ["D"] * 21}, 422, "validation_error"),
    ],
)
def test_what_the_api_refuses_when_creating(client, admin, fields, status, code):
    refused = create(client, admin, expect=status, **fields)
    assert refused["error"]["code"] == code
    assert refused["error"]["message"]
    assert client.get(f"{USERS}/newbie", headers=admin).status_code == 404


def test_a_name_is_taken_once(client, admin):
    create(client, admin)
    assert create(client, admin, expect=409)["error"]["code"] == "auth.user_exists"


def test_a_department_user_needs_a_known_department(client, admin):
    made = create(client, admin, roles=["department"], departments=["XZ-MARKET"])
    assert made["departments"] == ["XZ-MARKET"]
    emptied = client.patch(f"{USERS}/newbie", json={"departments": []}, headers=admin)
    assert emptied.status_code == 400 and error_code(emptied) == "auth.department_required"
    unknown = client.patch(f"{USERS}/newbie", json={"departments": ["NOPE"]}, headers=admin)
    assert unknown.status_code == 422 and error_code(unknown) == "auth.unknown_department"
    # An agent made a department user at once needs the department in the same change.
    create(client, admin, username="agent2")
    alone = client.patch(f"{USERS}/agent2", json={"roles": ["department"]}, headers=admin)
    assert error_code(alone) == "auth.department_required"
    both = client.patch(
        f"{USERS}/agent2",
        json={"roles": ["department"], "departments": ["GX-MARKET"]},
        headers=admin,
    )
    assert both.status_code == 200, both.text
    assert both.json()["departments"] == ["GX-MARKET"]


def test_disabling_ends_the_sessions_and_refuses_log_in_until_enabled(client, admin):
    create(client, admin)
    token = bearer(log_in(client, "newbie"))
    assert client.get("/api/v1/auth/me", headers=token).status_code == 200

    disabled = client.patch(f"{USERS}/newbie", json={"active": False}, headers=admin)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    after = client.get("/api/v1/auth/me", headers=token)
    assert after.status_code == 401
    assert log_in(client, "newbie").status_code == 401
    assert [
        u["username"] for u in client.get(USERS, params={"active": False}, headers=admin).json()
    ] == ["newbie"]

    assert client.patch(f"{USERS}/newbie", json={"active": True}, headers=admin).status_code == 200
    assert (
        client.get("/api/v1/auth/me", headers=bearer(log_in(client, "newbie"))).status_code == 200
    )
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401  # the old one stays dead


def test_a_role_change_and_a_password_reset_end_the_sessions(client, admin):
    create(client, admin)
    token = bearer(log_in(client, "newbie"))
    changed = client.patch(f"{USERS}/newbie", json={"roles": ["supervisor"]}, headers=admin)
    assert changed.json()["roles"] == ["supervisor"]
    assert error_code(client.get("/api/v1/auth/me", headers=token)) == "auth.token_revoked"

    token = bearer(log_in(client, "newbie"))
    short = client.post(f"{USERS}/newbie/password", json={"password": "short"}, headers=admin)
    assert short.status_code == 422 and error_code(short) == "validation_error"
    reset = client.post(
        f"{USERS}/newbie/password", json={"password": "pw-new-pass-1"}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    assert log_in(client, "newbie").status_code == 401
    bearer(log_in(client, "newbie", "pw-new-pass-1"))

    token = bearer(log_in(client, "newbie", "pw-new-pass-1"))
    ended = client.post(f"{USERS}/newbie/sessions/end", json={"reason": "手机丢失"}, headers=admin)
    assert ended.status_code == 200
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401


def test_an_admin_cannot_lock_themselves_out(client, admin):
    for change in ({"active": False}, {"roles": ["agent"]}):
        refused = client.patch(f"{USERS}/boss", json=change, headers=admin)
        assert refused.status_code == 409 and error_code(refused) == "admin.self_lockout"
    assert client.get("/api/v1/auth/me", headers=admin).json()["roles"] == ["admin"]


def test_unknown_users_are_a_404(client, admin):
    for method, path, body in [
        ("GET", f"{USERS}/ghost", None),
        ("PATCH", f"{USERS}/ghost", {"active": False}),
        ("POST", f"{USERS}/ghost/password", {"password": PASSWORD}),
        ("POST", f"{USERS}/ghost/sessions/end", {}),
    ]:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 404, (method, path, response.text)
        assert error_code(response) == "auth.unknown_user"


def test_only_admins_manage_users(client, admin, make_user):
    create(client, admin)
    for role in ("agent", "supervisor", "dispatcher", "editor"):
        headers = make_user(f"a-{role}", role)
        for method, path, body in [
            ("GET", USERS, None),
            ("POST", USERS, {"username": "x1", "password": PASSWORD, "roles": ["admin"]}),
            ("PATCH", f"{USERS}/newbie", {"active": False}),
            ("POST", f"{USERS}/newbie/password", {"password": PASSWORD}),
            ("GET", "/api/v1/admin/audit", None),
        ]:
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (role, method, path, response.text)
            assert error_code(response) == "auth.forbidden"
    assert client.get(USERS).status_code == 401
    assert client.get(f"{USERS}/newbie", headers=admin).json()["active"] is True
    assert client.get(f"{USERS}/x1", headers=admin).status_code == 404


def test_every_change_is_in_the_audit_log_with_filters(client, admin, make_user):
    create(client, admin)
    client.patch(f"{USERS}/newbie", json={"active": False}, headers=admin)
    client.patch(f"{USERS}/newbie", json={"active": True}, headers=admin)
    client.post(f"{USERS}/newbie/password", json={"password": "pw-new-pass-1"}, headers=admin)

    def actions(**params) -> list[str]:
        response = client.get("/api/v1/admin/audit", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [(e["action"], e["entity_id"]) for e in response.json()["entries"]]

    mine = actions(actor="boss", entity="user")
    assert mine == [
        ("user.password_changed", "newbie"),
        ("user.enabled", "newbie"),
        ("user.disabled", "newbie"),
        ("user.created", "newbie"),
    ]
    assert actions(action="user.disabled") == [("user.disabled", "newbie")]
    assert len(actions(action="user.")) == 5  # boss was made by "system"
    assert actions(actor="nobody") == []
    assert actions(until="2000-01-01T00:00:00+00:00") == []
    assert len(actions(since="2000-01-01T00:00:00+00:00", actor="boss")) == 4

    first = client.get("/api/v1/admin/audit", params={"limit": 3, "actor": "boss"}, headers=admin)
    page = first.json()
    assert len(page["entries"]) == 3 and page["next_before"]
    rest = client.get(
        "/api/v1/admin/audit",
        params={"limit": 3, "actor": "boss", "before_id": page["next_before"]},
        headers=admin,
    ).json()
    assert [e["action"] for e in rest["entries"]] == ["user.created"]
    assert rest["next_before"] is None
    bad = client.get("/api/v1/admin/audit", params={"limit": 0}, headers=admin)
    assert bad.status_code == 422 and error_code(bad) == "validation_error"
