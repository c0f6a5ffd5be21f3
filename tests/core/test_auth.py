from fastapi import Depends

from hotline.core.auth import Principal, create_access_token, require_roles


def test_password_flow_returns_a_bearer_token(client, make_user):
    make_user("agent1", "agent", password="secret-pass-1")
    response = client.post(
        "/api/v1/auth/token", data={"username": "agent1", "password": "secret-pass-1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"username": "agent1", "roles": ["agent"], "departments": []}


def test_wrong_password_is_a_json_401(client, make_user):
    make_user("agent1", "agent", password="secret-pass-1")
    response = client.post("/api/v1/auth/token", data={"username": "agent1", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.bad_credentials"
    unknown = client.post("/api/v1/auth/token", data={"username": "ghost", "password": "nope"})
    assert unknown.json()["error"]["code"] == "auth.bad_credentials"


def test_missing_and_expired_tokens_are_refused(client, make_user):
    assert client.get("/api/v1/auth/me").json()["error"]["code"] == "auth.unauthenticated"
    make_user("agent1", "agent")
    expired = create_access_token("agent1", minutes=-1)
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_role_guard(app, client, make_user):
    @app.get("/test-only/supervisors")
    def supervisors_only(p: Principal = Depends(require_roles("supervisor"))) -> dict:
        return {"user": p.username}

    agent = make_user("agent1", "agent")
    supervisor = make_user("sup1", "supervisor")
    admin = make_user("root", "admin")
    refused = client.get("/test-only/supervisors", headers=agent)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "auth.forbidden"
    assert client.get("/test-only/supervisors", headers=supervisor).json() == {"user": "sup1"}
    assert client.get("/test-only/supervisors", headers=admin).status_code == 200


def test_unknown_role_is_refused(client):
    import pytest

    from hotline.core.auth import create_user
    from hotline.core.db import transaction
    from hotline.core.errors import AppError

    with pytest.raises(AppError, match="unknown role"), transaction() as session:
        create_user(session, username="x", password="long-enough", roles=["wizard"])
