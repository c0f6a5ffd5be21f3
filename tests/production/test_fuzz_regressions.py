"""The server errors the fuzzer found, one by one: each input is now a 4xx with a stable code."""

from __future__ import annotations

import pytest

from hotline.app import create_app

BIG = 2**31  # beyond PostgreSQL's INTEGER
HUGE = 2**63  # beyond any 64-bit column

EDGE_MOMENTS = [
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59Z",
]


def _code(response) -> str:
    return response.json()["error"]["code"]


def test_every_schema_reference_resolves():
    """The call-event body referred to a component FastAPI never emitted, so clients (and the
    fuzzer) could not build a request from the documentation."""
    schema = create_app().openapi()
    components = schema["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    dangling = {
        r for r in refs(schema) if r.removeprefix("#/components/schemas/") not in components
    }
    assert not dangling, dangling
    body = schema["paths"]["/api/v1/calls/events"]["post"]["requestBody"]
    assert "event_id" in str(body)


def test_event_catch_up_beyond_64_bits(world):
    response = world.client.get(
        "/api/v1/events", params={"after": HUGE}, headers=world.headers["agent"]
    )
    assert response.status_code == 422 and _code(response) == "validation_error"


def test_routing_admin_changes_naming_unknown_codes(world):
    admin = world.headers["admin"]
    department = world.client.put(
        "/api/v1/routing/departments/C-NEW",
        json={"name": "新部门", "level": "area", "area": "NOWHERE"},
        headers=admin,
    )
    assert department.status_code == 400 and _code(department) == "routing.unknown_area"
    empty_town = world.client.put(
        "/api/v1/routing/departments/C-NEW",
        json={"name": "新部门", "level": "area", "town": ""},
        headers=admin,
    )
    assert empty_town.status_code == 400 and _code(empty_town) == "routing.unknown_town"
    place = world.client.put(
        "/api/v1/routing/places/新地名", json={"town": "000000000"}, headers=admin
    )
    assert place.status_code == 400 and _code(place) == "routing.unknown_town"
    ambiguous = world.client.put(
        "/api/v1/routing/places/新地名", json={"ambiguous": ["440402005", "0"]}, headers=admin
    )
    assert ambiguous.status_code == 400 and _code(ambiguous) == "routing.unknown_town"
    # Longer than the columns: PostgreSQL would refuse the row with a server error.
    long_code = world.client.put(
        f"/api/v1/routing/departments/{'X' * 33}",
        json={"name": "x", "level": "city"},
        headers=admin,
    )
    assert long_code.status_code == 422
    long_name = world.client.put(
        f"/api/v1/routing/places/{'地' * 65}", json={"town": "440402005"}, headers=admin
    )
    assert long_name.status_code == 422


def test_knowledge_base_version_numbers_beyond_32_bits(world):
    editor, key = world.headers["editor"], world.article_key
    version = world.client.get(f"/api/v1/kb/articles/{key}/versions/{BIG}", headers=editor)
    diff = world.client.get(
        f"/api/v1/kb/articles/{key}/diff", params={"from": 1, "to": BIG}, headers=editor
    )
    rollback = world.client.post(
        f"/api/v1/kb/articles/{key}/rollback", json={"version": BIG}, headers=editor
    )
    for response in (version, diff, rollback):
        assert response.status_code == 404, response.text
        assert _code(response) == "kb.version_not_found"


def test_ids_and_offsets_beyond_64_bits(world):
    editor, supervisor = world.headers["editor"], world.headers["supervisor"]
    for action, body in (("resolve", {}), ("decline", {"reason": "无误"})):
        response = world.client.post(f"/api/v1/kb/flags/{HUGE}/{action}", json=body, headers=editor)
        assert response.status_code == 404 and _code(response) == "kb.flag_not_found"
        response = world.client.post(f"/api/v1/kb/flags/{BIG}/{action}", json=body, headers=editor)
        assert response.status_code == 404 and _code(response) == "kb.flag_not_found"
    articles = world.client.get("/api/v1/kb/articles", params={"offset": HUGE}, headers=editor)
    assert articles.status_code == 422
    calls = world.client.get(
        "/api/v1/kpi/answer-rate/calls",
        params={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "offset": HUGE},
        headers=supervisor,
    )
    assert calls.status_code == 422


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
def test_moments_at_the_ends_of_the_calendar(world, moment):
    staff = {**world.headers["supervisor"], **world.cti}
    later = "2030-01-01T00:00:00+08:00"
    calls = {
        "ticket": ("POST", "/api/v1/tickets", {"json": {"content": "测试", "received_at": moment}}),
        "preview": ("POST", "/api/v1/routing/preview", {"json": {"received_at": moment}}),
        "report": ("GET", "/api/v1/reports/tickets", {"params": {"start": moment, "end": later}}),
        "answer rate": (
            "GET",
            "/api/v1/kpi/answer-rate",
            {"params": {"start": moment, "end": later}},
        ),
        "calls behind": (
            "GET",
            "/api/v1/kpi/answer-rate/calls",
            {"params": {"start": "2000-01-01T00:00:00Z", "end": moment}},
        ),
        "open311": ("GET", "/open311/v2/requests.json", {"params": {"start_date": moment}}),
    }
    for name, (method, path, kwargs) in calls.items():
        response = world.client.request(method, path, headers=staff, **kwargs)
        assert response.status_code in (400, 422), f"{name}: {response.text}"
    event = {"event_id": f"edge-{moment}", "type": "offered", "call_id": "edge", "queue": "general"}
    ingest = world.client.post(
        "/api/v1/calls/events", json={**event, "at": moment}, headers=world.cti
    )
    assert ingest.status_code == 200, ingest.text
    assert ingest.json()["results"][0]["status"] == "rejected"


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_days_at_the_ends_of_the_calendar(world, day):
    editor, admin = world.headers["editor"], world.headers["admin"]
    article = {"key": "KB-EDGE", "title": "t", "body": "b", "category": "c", "review_by": day}
    responses = {
        "new article": world.client.post("/api/v1/kb/articles", json=article, headers=editor),
        "edit": world.client.put(
            f"/api/v1/kb/articles/{world.article_key}", json={"review_by": day}, headers=editor
        ),
        "staffing": world.client.get(
            "/api/v1/kpi/staffing", params={"day": day}, headers=world.headers["supervisor"]
        ),
        "rule": world.client.post(
            "/api/v1/routing/matters/SC-02/rules",
            json={"level": "city", "type": "market", "effective_from": day},
            headers=admin,
        ),
        "holiday": world.client.put(
            f"/api/v1/calendar/{day}", json={"working": False}, headers=admin
        ),
    }
    for name, response in responses.items():
        assert response.status_code == 422, f"{name}: {response.text}"
        assert _code(response) == "validation_error"


def test_nul_characters_are_refused_alike_on_every_backend(world):
    """PostgreSQL cannot store U+0000 (a 500 there, stored as sent on SQLite)."""
    editor = world.headers["editor"]
    article = {"key": "KB-NUL", "title": "标题", "body": "正文\u0000", "category": "其他"}
    responses = [
        world.client.post("/api/v1/kb/articles", json=article, headers=editor),
        world.client.post(
            "/api/v1/tickets", json={"content": "噪音\u0000扰民"}, headers=world.headers["agent"]
        ),
        world.client.get("/api/v1/kb/search", params={"q": "社保\u0000卡"}),
        world.client.post("/api/v1/auth/token", data={"username": "a\u0000", "password": "x"}),
        world.client.put("/api/v1/kb/synonyms/%00", json={"synonyms": ["核查"]}, headers=editor),
    ]
    for response in responses:
        assert response.status_code == 422, response.text
        assert _code(response) == "validation_error"
    # An escaped backslash before "u0000" is text, not a NUL.
    fine = {**article, "key": "KB-BACKSLASH", "body": "路径 C:\\u0000 不是空字符"}
    assert world.client.post("/api/v1/kb/articles", json=fine, headers=editor).status_code == 201


def test_a_nul_in_one_call_event_costs_only_that_event(world):
    base = {"type": "offered", "call_id": "nul-call", "queue": "general"}
    events = [
        {**base, "event_id": "nul-1", "at": "2026-11-02T09:00:00+08:00"},
        {**base, "event_id": "nul-2", "at": "2026-11-02T09:00:05+08:00", "caller": "138\u0000"},
        {**base, "event_id": "nul-3", "type": "ended", "at": "2026-11-02T09:01:00+08:00"},
    ]
    response = world.client.post("/api/v1/calls/events", json=events, headers=world.cti)
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "rejected", "accepted"]
