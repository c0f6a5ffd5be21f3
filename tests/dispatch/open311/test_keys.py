"""Open311 API keys: issued and revoked by admins, from the CLI and the API, audited, hashed."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dispatch.open311.cli import open311_app
from dispatch.open311.models import Open311ApiKey
from hotline.core import db
from hotline.core.models import AuditEntry

pytestmark = pytest.mark.usefixtures("seeded")

runner = CliRunner()
FORM = {"service_code": "SC-02", "description": "商家卖过期食品", "address_string": "唐家湾镇"}


@pytest.fixture
def admin(make_user):
    return make_user("root", "admin")


def _audit() -> list[tuple[str, str, str]]:
    with db.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "open311_api_key").order_by(AuditEntry.id)
        )
        return [(r.action, r.entity_id, r.actor) for r in rows]


def test_cli_creates_lists_and_revokes_keys_storing_only_a_hash(client, api_key):
    prefix = api_key[:8]
    assert len(api_key) >= 43
    with db.transaction() as session:
        row = session.scalar(select(Open311ApiKey))
        assert row.prefix == prefix and row.name == "珠海城市App"
        assert row.key_hash == hashlib.sha256(api_key.encode()).hexdigest()
        assert api_key not in (row.key_hash, row.prefix, row.name)

    listed = runner.invoke(open311_app, ["key", "list"])
    assert listed.exit_code == 0
    assert prefix in listed.output and "active" in listed.output and "never" in listed.output
    assert api_key not in listed.output

    # A refused request rolls its whole transaction back, the key's last use included.
    bad = client.post(
        "/open311/v2/requests.json", data={**FORM, "service_code": "NOPE", "api_key": api_key}
    )
    assert bad.status_code == 400
    assert "used never" in runner.invoke(open311_app, ["key", "list"]).output
    assert client.post("/open311/v2/requests.json", data={**FORM, "api_key": api_key}).is_success
    assert "used never" not in runner.invoke(open311_app, ["key", "list"]).output

    revoked = runner.invoke(open311_app, ["key", "revoke", prefix])
    assert revoked.exit_code == 0 and prefix in revoked.output
    assert "revoked" in runner.invoke(open311_app, ["key", "list"]).output
    refused = client.post("/open311/v2/requests.json", data={**FORM, "api_key": api_key})
    assert refused.status_code == 403

    actions = _audit()
    assert [(a, p) for a, p, _ in actions] == [
        ("open311.key_created", prefix),
        ("open311.key_revoked", prefix),
    ]
    assert all(actor.startswith("cli:") for _, _, actor in actions)


def test_cli_refuses_an_unknown_prefix_and_an_empty_name(seeded):
    result = runner.invoke(open311_app, ["key", "revoke", "nosuchky"])
    assert result.exit_code == 2 and "no Open311 API key" in result.output
    result = runner.invoke(open311_app, ["key", "create", "  "])
    assert result.exit_code == 2
    assert "no Open311 API keys" in runner.invoke(open311_app, ["key", "list"]).output


def test_admin_api_issues_lists_and_revokes_keys(client, admin):
    created = client.post("/api/v1/open311/keys", json={"name": "香洲区政务App"}, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    key, prefix = body["key"], body["prefix"]
    assert key.startswith(prefix) and body["active"] is True and body["created_by"] == "root"

    posted = client.post("/open311/v2/requests.json", data={**FORM, "api_key": key})
    assert posted.status_code == 200, posted.text

    listed = client.get("/api/v1/open311/keys", headers=admin).json()
    assert [(k["prefix"], k["active"]) for k in listed] == [(prefix, True)]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is not None

    revoked = client.delete(f"/api/v1/open311/keys/{prefix}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_by"] == "root"
    again = client.delete(f"/api/v1/open311/keys/{prefix}", headers=admin)
    assert again.status_code == 200  # revoking twice changes nothing and is not audited twice
    refused = client.post("/open311/v2/requests.xml", data={**FORM, "api_key": key})
    assert refused.status_code == 403 and b"<errors><error><code>403</code>" in refused.content

    assert client.delete("/api/v1/open311/keys/nosuchky", headers=admin).status_code == 404
    assert _audit() == [
        ("open311.key_created", prefix, "root"),
        ("open311.key_revoked", prefix, "root"),
    ]


def test_only_admins_manage_keys(client, make_user):
    agent = make_user("agent1", "agent")
    assert client.post("/api/v1/open311/keys", json={"name": "x"}, headers=agent).status_code == 403
    assert client.get("/api/v1/open311/keys", headers=agent).status_code == 403
    assert client.delete("/api/v1/open311/keys/abc", headers=agent).status_code == 403
    assert client.get("/api/v1/open311/keys").status_code == 401
    assert _audit() == []
