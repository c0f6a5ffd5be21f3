"""Inputs a client controls stay within plausible bounds (issue 17, item 7).

``received_at=0`` made ticket ZH19700101000001; calendar overrides for year 1 or 9999 went
into every process's working calendar; skills and states were saved for agents that do not
exist; knowledge-base keywords and place notes had no length; IVR prompt parameters were
free text, each new value a render job and a cached WAV.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.routing import service as routing_service
from hotline.calls import service as calls_service
from hotline.core import auth, db
from hotline.core.settings import get_settings


@pytest.fixture
def people(database, make_user, monkeypatch) -> dict[str, dict[str, str]]:
    monkeypatch.setattr(auth, "hash_password", lambda password: f"not-hashed:{len(password)}")
    with db.transaction() as session:
        routing_service.seed_reference(session)
        calls_service.seed_queues(session)
    return {
        role: make_user(role, role)
        for role in ("agent", "supervisor", "dispatcher", "editor", "admin")
    }


def cti() -> dict[str, str]:
    return {"X-CTI-Token": get_settings().cti_token.get_secret_value()}


def _ticket(client, people, received_at):
    body = {"content": "商家拒绝退款", "address": "香洲区拱北夏湾", "matter_code": "SC-01"}
    if received_at is not None:
        body["received_at"] = received_at
    return client.post("/api/v1/tickets", json=body, headers=people["agent"])


@pytest.mark.parametrize("received_at", [0, "1900-01-01T08:00:00+08:00", "1970-01-01T00:00:00Z"])
def test_received_at_far_back_is_refused_and_says_why(client, people, received_at):
    response = _ticket(client, people, received_at)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ticket.received_too_old"
    assert "30 days" in error["message"]


def test_received_at_inside_the_window_is_taken(client, people):
    month_ago = datetime.now(UTC) - timedelta(days=29)
    response = _ticket(client, people, month_ago.isoformat())
    assert response.status_code == 201, response.text
    assert response.json()["number"].startswith(
        "ZH" + month_ago.astimezone(get_settings().tz).strftime("%Y%m")
    )
    soon = datetime.now(UTC) + timedelta(minutes=4)
    assert _ticket(client, people, soon.isoformat()).status_code == 201


def test_received_at_ahead_of_the_window_is_refused(client, people):
    later = datetime.now(UTC) + timedelta(minutes=6)
    response = _ticket(client, people, later.isoformat())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ticket.future"


def test_the_received_at_window_is_a_setting(people, settings_env):
    settings_env(received_at_max_age_days="2", received_at_max_ahead_minutes="0")
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    client = TestClient(create_app())
    three_days = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    response = _ticket(client, people, three_days)
    assert response.json()["error"]["code"] == "ticket.received_too_old"
    assert "2 days" in response.json()["error"]["message"]
    one_day = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert _ticket(client, people, one_day).status_code == 201
    ahead = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert _ticket(client, people, ahead).json()["error"]["code"] == "ticket.future"


@pytest.mark.parametrize("day", ["1900-10-01", "1999-12-31", "2100-01-01", "2999-12-31"])
def test_calendar_overrides_only_for_plausible_days(client, people, day):
    response = client.put(
        f"/api/v1/calendar/{day}", json={"working": False}, headers=people["admin"]
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "calendar.day_out_of_range"
    assert "2000-01-01" in response.json()["error"]["message"]


def test_calendar_override_range_ends_years_ahead(client, people):
    year = datetime.now(get_settings().tz).year
    for day, status in (
        (f"{year + 5}-12-31", 200),
        (f"{year + 6}-01-01", 400),
        ("2000-01-01", 200),
    ):
        response = client.put(
            f"/api/v1/calendar/{day}", json={"working": False}, headers=people["admin"]
        )
        assert response.status_code == status, (day, response.text)


def test_skills_and_states_only_for_known_agents(client, people):
    url = "/api/v1/agents/no_such_user/skills"
    response = client.put(url, json={"skills": ["general"]}, headers=people["supervisor"])
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "agent.not_found"
    response = client.put(
        "/api/v1/agents/no_such_user/state", json={"state": "ready"}, headers=cti()
    )
    assert response.status_code == 404, response.text
    # A user who is not an agent is no agent either.
    response = client.put(
        "/api/v1/agents/editor/skills", json={"skills": ["general"]}, headers=people["supervisor"]
    )
    assert response.status_code == 404
    assert client.get("/api/v1/agents", headers=people["supervisor"]).json() == []

    response = client.put(
        "/api/v1/agents/agent/skills", json={"skills": ["general"]}, headers=people["supervisor"]
    )
    assert response.status_code == 200, response.text
    response = client.put("/api/v1/agents/agent/state", json={"state": "ready"}, headers=cti())
    assert response.status_code == 200, response.text


def _article(**extra):
    return {
        "key": "bounds-1",
        "title": "社保卡补办",
        "body": "带身份证到任一网点办理。",
        "category": "社保",
        **extra,
    }


@pytest.mark.parametrize(
    "keywords",
    [[f"词{i}" for i in range(21)], ["社" * 33], [""]],
    ids=["too many", "too long", "empty"],
)
def test_kb_keywords_are_few_and_short(client, people, keywords):
    response = client.post(
        "/api/v1/kb/articles", json=_article(keywords=keywords), headers=people["editor"]
    )
    assert response.status_code == 422, response.text
    assert "keywords" in response.json()["error"]["message"]


def test_kb_keywords_within_bounds_are_taken(client, people):
    keywords = [f"词{i}" for i in range(20)] + []
    response = client.post(
        "/api/v1/kb/articles", json=_article(keywords=keywords), headers=people["editor"]
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body",
    [{"note": "注" * 1001}, {"ambiguous": ["XZ-GB"] * 21}, {"town": "T" * 200}],
    ids=["note", "ambiguous", "town"],
)
def test_place_notes_and_lists_are_bounded(client, people, body):
    response = client.put("/api/v1/routing/places/测试地名", json=body, headers=people["admin"])
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("key", "query", "expected"),
    [
        ("queue_position", "position=abc", "plain number"),
        ("queue_position", "position=您好欢迎", "plain number"),
        ("queue_position", "position=1000", "from 0 to 999"),
        ("queue_position", "position=-1", "plain number"),
        ("estimated_wait", "minutes=3.5", "plain number"),
        ("emergency", "signal=紫色", "one of"),
        ("emergency", "signal=请立即转账", "one of"),
    ],
)
def test_ivr_parameters_are_typed_by_the_template(client, people, key, query, expected):
    response = client.get(f"/api/v1/ivr/prompts/{key}.wav?{query}", headers=cti())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "ivr.bad_params" and expected in error["message"], error


def test_one_number_is_one_text_and_one_cache_key(database):
    from hotline.calls import ivr

    with db.transaction() as session:
        plain = ivr.fill(session, "queue_position", {"position": "7"})
        padded = ivr.fill(session, "queue_position", {"position": "007"})
        signal = ivr.fill(session, "emergency", {"signal": "红色"})
    assert plain == padded
    assert "台风红色预警" in signal[0]
