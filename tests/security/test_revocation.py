"""Security issue 17, item 3: a password, role, department or account change ends the user's
sessions: its tokens are refused and its open websockets close within seconds (4401)."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from sqlalchemy import select, text
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from agents_ui import gateway as gateway_module
from hotline.cli import app as cli
from hotline.core import db
from hotline.core.models import AuditEntry
from hotline.core.settings import get_settings

runner = CliRunner()
PASSWORD = "pw-12345678"
MARKET, HEALTH = "XZ-MARKET", "C-HEALTH"
# Sockets must close within this; the periodic fallback is disabled where it would blur which
# path closed them.
CLOSE_DEADLINE = 5.0
NOW = int(time.time())


@pytest.fixture
def departments(database):
    from dispatch.routing.models import Department

    with db.transaction() as session:
        for code in (MARKET, HEALTH):
            session.add(Department(code=code, name=code, level="city", types=[]))


@pytest.fixture
def event_path_only(monkeypatch):
    """No periodic re-check during the test (set before the app starts): only the revocation
    event can close the socket."""
    monkeypatch.setattr(gateway_module, "REVALIDATE_SECONDS", 3600.0)


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def me(client, token: str):
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def cli_ok(*words: str) -> None:
    result = runner.invoke(cli, list(words))
    assert result.exit_code == 0, result.output


def change_password_by_api(client, token: str, user: str) -> None:
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another-pw-123"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert me(client, response.json()["access_token"]).status_code == 200


CHANGES = {
    "password_by_api": change_password_by_api,
    "password_by_cli": lambda client, token, user: cli_ok(
        "user", "password", user, "--password", "another-pw-123"
    ),
    "disable": lambda client, token, user: cli_ok("user", "disable", user),
    "role": lambda client, token, user: cli_ok(
        "user",
        "create",
        user,
        "--role",
        "supervisor",
        "--department",
        MARKET,
        "--password",
        PASSWORD,
        "--reset-password",
    ),  # fmt: skip
    "department": lambda client, token, user: cli_ok(
        "user",
        "create",
        user,
        "--role",
        "department",
        "--department",
        HEALTH,
        "--password",
        PASSWORD,
        "--reset-password",
    ),  # fmt: skip
}
EXPECTED_CODE = {"disable": "auth.invalid_token"}


def wait_for_close(ws, timeout: float) -> tuple[int, str]:
    """The close code and reason of ``ws``, or a failure if it stays open past ``timeout``."""
    outcome: list[tuple[int, str]] = []

    def until_closed() -> None:
        while True:
            try:
                ws.receive_json()
            except WebSocketDisconnect as closed:
                outcome.append((closed.code, closed.reason))
                return

    # A daemon: should the socket stay open, the blocked reader must not keep pytest alive.
    reader = threading.Thread(target=until_closed, daemon=True)
    reader.start()
    reader.join(timeout)
    assert outcome, f"socket still open {timeout} s after the change"
    return outcome[0]


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_refuses_the_old_token(client, departments, make_user, change):
    token = bearer(make_user("li", "department", departments=(MARKET,), password=PASSWORD))
    assert me(client, token).status_code == 200
    CHANGES[change](client, token, "li")
    refused = me(client, token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == EXPECTED_CODE.get(change, "auth.token_revoked")


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_closes_the_open_socket(event_path_only, client, departments, make_user, change):
    token = bearer(make_user("li", "department", departments=(MARKET,), password=PASSWORD))
    bystander = bearer(make_user("wang", "department", departments=(MARKET,)))
    with (
        client.websocket_connect(f"/ws?token={token}") as ws,
        client.websocket_connect(f"/ws?token={bystander}") as other,
    ):
        assert ws.receive_json()["type"] == "hello"
        assert other.receive_json()["type"] == "hello"
        CHANGES[change](client, token, "li")
        assert wait_for_close(ws, CLOSE_DEADLINE) == (4401, "auth.token_revoked")
        # Somebody else's session goes on.
        other.send_text("ping")
        assert other.receive_json()["type"] == "pong"
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws?token={token}"),
    ):
        pass
    assert refused.value.code == 4401


def test_the_periodic_check_closes_a_socket_whose_event_was_lost(monkeypatch, make_user, app):
    from fastapi.testclient import TestClient

    monkeypatch.setattr(gateway_module, "REVALIDATE_SECONDS", 0.2)
    token = bearer(make_user("li", "agent"))
    with TestClient(app) as client, client.websocket_connect(f"/ws?token={token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        # Behind the application's back: no event is published, only the row changes.
        with db.transaction() as session:
            session.execute(text("UPDATE users SET token_version = token_version + 1"))
        assert wait_for_close(ws, CLOSE_DEADLINE) == (4401, "auth.token_revoked")


def test_enabling_again_does_not_revive_old_tokens(client, make_user):
    token = bearer(make_user("li", "agent", password=PASSWORD))
    cli_ok("user", "disable", "li")
    login = {"username": "li", "password": PASSWORD}
    assert client.post("/api/v1/auth/token", data=login).status_code == 401
    cli_ok("user", "enable", "li")
    assert me(client, token).status_code == 401
    fresh = client.post("/api/v1/auth/token", data=login).json()["access_token"]
    assert me(client, fresh).status_code == 200


def test_a_wrong_current_password_changes_nothing(client, make_user):
    token = bearer(make_user("li", "agent", password=PASSWORD))
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-the-password", "new_password": "another-pw-123"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "auth.bad_credentials"
    assert me(client, token).status_code == 200
    too_short = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert too_short.status_code in (400, 422)
    assert me(client, token).status_code == 200


def test_the_changes_are_audited(client, departments, make_user):
    token = bearer(make_user("li", "department", departments=(MARKET,), password=PASSWORD))
    change_password_by_api(client, token, "li")
    cli_ok("user", "disable", "li")
    cli_ok("user", "enable", "li")
    with db.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity == "user", AuditEntry.entity_id == "li")
            .order_by(AuditEntry.id)
        ).all()
        details = session.scalars(select(AuditEntry.detail)).all()
    assert actions == ["user.created", "user.password_changed", "user.disabled", "user.enabled"]
    assert not any("pw-" in str(d) for d in details)  # never a password


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "li", "ver": 0, "iat": NOW},  # no expiry: it would never die
        {"sub": "li", "iat": NOW, "exp": NOW + 600},  # no version: it could not be revoked
        {"sub": "li", "ver": 0, "exp": NOW + 600},  # no issue time
    ],
    ids=["no_exp", "no_ver", "no_iat"],
)
def test_a_token_missing_a_required_claim_is_refused(client, make_user, claims):
    make_user("li", "agent")
    token = jwt.encode(claims, get_settings().secret_key.get_secret_value(), "HS256")
    response = me(client, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.invalid_token"
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws?token={token}"),
    ):
        pass
    assert refused.value.code == 4401


# -- the CLI's checks ----------------------------------------------------------------------------


def test_create_refuses_an_existing_name_without_reset_password(client, departments, make_user):
    token = bearer(make_user("li", "agent", password=PASSWORD))
    result = runner.invoke(cli, ["user", "create", "li", "--role", "admin", "--password", "x" * 9])
    assert result.exit_code == 2 and "exists" in result.output
    assert me(client, token).json()["roles"] == ["agent"]  # unchanged, session alive


def test_create_refuses_an_unknown_department(departments):
    result = runner.invoke(
        cli,
        ["user", "create", "li", "--role", "department", "--department", "NOPE",
         "--password", PASSWORD],
    )  # fmt: skip
    assert result.exit_code == 2 and "unknown department" in result.output


def test_the_department_role_needs_a_department(departments):
    result = runner.invoke(
        cli, ["user", "create", "li", "--role", "department", "--password", PASSWORD]
    )
    assert result.exit_code == 2 and "department" in result.output


@pytest.mark.parametrize("words", [["disable"], ["enable"], ["password", "--password", "x" * 9]])
def test_user_commands_refuse_an_unknown_user(database, words):
    result = runner.invoke(cli, ["user", words[0], "nobody", *words[1:]])
    assert result.exit_code == 2 and "no user" in result.output
