"""Callers' personal data never reaches department users (security issue 17, item 2).

Unit tests of the masks (what they catch, what they must leave alone), then the whole system:
tickets taken through the API and through Open311 with phone numbers, ID numbers and e-mail
addresses in every field, handled by a department; every route a department user can reach,
and every event it receives over a real websocket and through ``/api/v1/events``, is searched
for the originals, while the hotline's own roles still see them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hotline.core import db, privacy
from hotline.core.auth import Principal
from hotline.core.events import last_event_id, publish_after_commit
from tests.production.routes import route_table
from tests.production.test_role_matrix import EXPECTED, OUTSIDE_API

# -- the masks ---------------------------------------------------------------------------------

MASKED = [
    ("联系13812349999", "联系138****9999"),
    ("电话138 1234 9999。", "电话138****9999。"),
    ("138-1234-9999", "138****9999"),
    ("+86-138-1234-9999", "138****9999"),
    ("+86 138 1234 9999", "138****9999"),
    ("+8613812349999", "138****9999"),
    ("0086 13812349999", "138****9999"),
    ("8613812349999", "138****9999"),
    ("（+86）13812349999", "138****9999"),
    ("13812349999、13912345678", "138****9999、139****5678"),
    ("１３８１２３４９９９９", "138****9999"),  # full-width digits, from a Chinese input method
    ("座机0756-2123456转801", "座机0756-***3456转801"),
    ("(0756)2123456", "0756-***3456"),
    ("（0756）2123456", "0756-***3456"),
    ("0756 21234567", "0756-****4567"),
    ("07562123456", "0756-***3456"),
    ("010-12345678", "010-****5678"),
    ("020 87654321", "020-****4321"),
    ("+86 756 2123456", "0756-***3456"),
    ("身份证440402199001011234", "身份证4404**********1234"),
    ("ID 44040219900101123X", "ID 4404**********123X"),
    ("44040219900101123x", "4404**********123x"),
    ("440402 19900101 123X", "4404**********123X"),
    ("旧证440402900101123", "旧证4404*******1123"),
    ("zhang.san@example.com", "z***@example.com"),
    ("邮箱abc_1@qq.com谢谢", "邮箱a***@qq.com谢谢"),
    ("mailto:Li.Si+hk@mail.example.com.cn", "mailto:L***@mail.example.com.cn"),
]

UNCHANGED = [
    "ZH20261205000123",
    "工单ZH20261205000123已办结",
    "20261205000123",
    "2026-12-05",
    "2026年12月5日 10:30",
    "2026/12/05 10:30-12:00",
    "2026-12-05T10:30:00+08:00",
    "¥13,812.00",
    "退款金额12345678元",
    "1380元，13812.50元",
    "人民路138号1234室",
    "3栋1201房",
    "香洲区凤凰北路2088号",
    "邮编519000",
    "订单号1381234999912",
    "批次a13812349999",
    "12345 热线",
    "138****9999",
    "0756-***3456",
    "4404**********123X",
    "z***@example.com",
    "",
]


@pytest.mark.parametrize(("text", "masked"), MASKED, ids=[t for t, _ in MASKED])
def test_personal_data_in_free_text_is_masked(text, masked):
    assert privacy.mask_text(text) == masked
    assert privacy.mask_text(masked) == masked, "masking twice changes nothing"


@pytest.mark.parametrize("text", UNCHANGED)
def test_ticket_numbers_dates_amounts_and_house_numbers_are_left_alone(text):
    assert privacy.mask_text(text) == text


def test_known_fields_are_masked_by_key_and_other_strings_by_pattern():
    value = {
        "caller_phone": "13812349999",
        "Phone": "0756-2123456",
        "caller": "+8613812349999",
        "email": "zhang.san@example.com",
        "id_number": "440402199001011234",
        "caller_name": "张三丰",
        "number": "ZH20261205000123",
        "version": 13812349999,
        "trail": [{"detail": {"note": "回电13812349999", "email": "li@example.org"}}],
        "nothing": None,
    }
    assert privacy.mask_value(value) == {
        "caller_phone": "138****9999",
        "Phone": "075*****3456",
        "caller": "+86*******9999",
        "email": "z***@example.com",
        "id_number": "4404**********1234",
        "caller_name": "张**",
        "number": "ZH20261205000123",
        "version": 13812349999,  # not a string: nothing personal is stored as a number
        "trail": [{"detail": {"note": "回电138****9999", "email": "l***@example.org"}}],
        "nothing": None,
    }


def test_a_callers_own_phone_and_name_are_masked_even_when_no_pattern_knows_them():
    known = privacy.known_caller("+442079460958", "王小明")
    text = "王小明说回拨+442079460958"
    assert privacy.mask_text(text, known) == "王**说回拨+44******0958"


@pytest.mark.parametrize(
    ("roles", "sees"),
    [
        ({"agent"}, True),
        ({"dispatcher"}, True),
        ({"supervisor"}, True),
        ({"admin"}, True),
        ({"department", "agent"}, True),
        ({"department"}, False),
        ({"editor"}, False),
        (set(), False),
    ],
)
def test_only_hotline_roles_see_the_originals(roles, sees):
    principal = Principal(1, "u", frozenset(roles), frozenset({"XZ-MARKET"}))
    value = {"content": "联系13812349999"}
    assert privacy.sees_personal_data(principal) is sees
    assert (privacy.for_principal(principal, value) == value) is sees


# -- the whole system --------------------------------------------------------------------------

MARKET = "XZ-MARKET"
CALLER_PHONE = "13812349999"
OPEN311_PHONE = "+86 139 1234 6666"
ORIGINALS = [
    CALLER_PHONE,
    "138 1234 8888",
    "+86-137-1234-7777",
    "0756-2123456",
    "(0756)2123457",
    "0756 21234588",
    "010-12345678",
    "440402199001011234",
    "44040219900101123X",
    "440402900101123",
    "zhang.san@example.com",
    "li.si@example.org",
    "wang@example.net",
    OPEN311_PHONE,
    "13912346666",
    "13612345555",
    "0756-8123456",
    "13512344444",
    "13712340000",  # the portal's citizen
]
CALLER_NAME = "张三丰"
PERSONAL = (
    "联系13812349999，或138 1234 8888，+86-137-1234-7777；座机0756-2123456；"
    "身份证440402199001011234，旧证440402900101123；邮箱zhang.san@example.com"
)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def leaks(text: str) -> list[str]:
    """The originals (or their digits-only forms) that ``text`` contains."""
    found = [o for o in ORIGINALS if o in text]
    found += [o for o in ORIGINALS if len(digits(o)) >= 7 and digits(o) in text]
    if CALLER_NAME in text:
        found.append(CALLER_NAME)
    return sorted(set(found))


@dataclass
class Scene:
    client: TestClient
    headers: dict[str, dict[str, str]]
    api_ticket: str
    open311_ticket: str
    desk_ticket: str
    portal_token: str = ""
    # (method, path) -> what the department was answered there during the scene
    seen: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def token(self, who: str) -> str:
        return self.headers[who]["Authorization"].removeprefix("Bearer ")


def _ok(response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response


@pytest.fixture
def scene(client, make_user) -> Scene:
    from dispatch.open311 import service as open311_service
    from dispatch.routing import service as routing_service

    with db.transaction() as session:
        routing_service.seed_reference(session)
        _row, api_key = open311_service.create_key(session, name="城市App", actor="admin")
    headers = {
        "agent": make_user("agent", "agent"),
        "dispatcher": make_user("dispatcher", "dispatcher"),
        "supervisor": make_user("supervisor", "supervisor"),
        "market": make_user("market", "department", departments=(MARKET,)),
    }
    api = _ok(
        client.post(
            "/api/v1/tickets",
            json={
                "content": "商家拒绝退款。" + PERSONAL,
                "address": "香洲区拱北夏湾 门口电话(0756)2123457",
                "matter_code": "SC-01",
                "caller_phone": CALLER_PHONE,
                "caller_name": CALLER_NAME,
            },
            headers=headers["agent"],
        ),
        201,
    ).json()
    assert api["lead_department"] == MARKET, api
    posted = _ok(
        client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": api_key,
                "service_code": "SC-01",
                "description": "商家拒绝退款，我的身份证44040219900101123X，座机0756 21234588",
                "address_string": "香洲区拱北夏湾，联系010-12345678",
                "phone": OPEN311_PHONE,
                "first_name": "三丰",
                "last_name": "张",
                "email": "li.si@example.org",
                "media_url": "https://img.example.com/13612345555.jpg",
            },
        )
    ).json()
    open311_number = posted[0]["service_request_id"]
    desk_number = _ok(
        client.post(
            "/api/v1/tickets",
            json={
                "content": "商家拒绝退款，请回电13512344444",
                "matter_code": "SC-01",
                "caller_phone": "13512344444",
            },
            headers=headers["agent"],
        ),
        201,
    ).json()["number"]
    scene = Scene(client, headers, api["number"], open311_number, desk_number)
    portal_number, scene.portal_token = _portal_ticket(client)
    act = ("POST", "/api/v1/tickets/{number}/{action}")

    def department_acts(number: str, action: str, **body: Any) -> None:
        answer = _ok(
            client.post(f"/api/v1/tickets/{number}/{action}", json=body, headers=headers["market"])
        )
        scene.seen.setdefault(act, []).append(answer.text)

    _ok(
        client.post(
            f"/api/v1/tickets/{desk_number}/dispatch",
            json={"department": MARKET, "note": "请联系市民wang@example.net或0756-8123456"},
            headers=headers["dispatcher"],
        )
    )
    department_acts(scene.api_ticket, "accept")
    department_acts(
        scene.api_ticket,
        "request-extension",
        working_days=2,
        reason="市民13912346666要求现场核查",
    )
    _ok(
        client.post(
            f"/api/v1/tickets/{scene.api_ticket}/supervise",
            json={"note": "尽快联系13812349999，身份证440402199001011234"},
            headers=headers["supervisor"],
        )
    )
    department_acts(
        scene.api_ticket,
        "reply",
        reply="已电话联系138 1234 8888（市民），并回复zhang.san@example.com，已退款",
    )
    department_acts(scene.desk_ticket, "accept")
    department_acts(scene.open311_ticket, "accept")
    department_acts(portal_number, "accept")
    department_acts(portal_number, "reply", reply="已回电13712340000及0756-2123456，已退款")
    # An event carrying a caller's data on the department's own topic, as a future event type
    # might: the bus does not mask, the edges do.
    with db.transaction() as session:
        publish_after_commit(
            session,
            f"tickets.dept.{MARKET}",
            "ticket.noted",
            {"content": PERSONAL, "caller_phone": CALLER_PHONE, "caller_name": CALLER_NAME},
        )
    return scene


def _portal_ticket(client: TestClient) -> tuple[str, str]:
    """A request through the citizens' portal, full of personal data: number, tracking token."""
    from hotline.core import sms

    phone = "13712340000"
    _ok(client.post("/api/v1/portal/codes", json={"phone": phone}), 202)
    code = sms.read_outbox(sms.outbox_path(), phone)[-1].split("验证码是")[1][:6]
    verify = {"phone": phone, "code": code}
    token = _ok(client.post("/api/v1/portal/codes/verify", json=verify)).json()["phone_token"]
    created = _ok(
        client.post(
            "/api/v1/portal/requests",
            data={
                "content": "商家拒绝退款。" + PERSONAL,
                "name": CALLER_NAME,
                "matter_code": "SC-01",
                "area_code": "XZ",
                "address": "拱北夏湾，门口电话(0756)2123457",
            },
            headers={"X-Phone-Token": token},
        ),
        201,
    ).json()
    return created["number"], created["token"]


def _department_calls(scene: Scene) -> dict[tuple[str, str], Callable[[], list[str]]]:
    """Every route a department user can reach, and how to read what it is answered there."""
    client, market = scene.client, scene.headers["market"]
    numbers = (scene.api_ticket, scene.open311_ticket, scene.desk_ticket)

    def get(path: str, **params: Any) -> Callable[[], list[str]]:
        return lambda: [_ok(client.get(path, params=params, headers=market)).text]

    def each_ticket() -> list[str]:
        return [_ok(client.get(f"/api/v1/tickets/{n}", headers=market)).text for n in numbers]

    def inbox() -> list[str]:
        return [
            _ok(client.get("/api/v1/tickets", params=params, headers=market)).text
            for params in (
                {},
                {"status": "replied"},
                {"status": "accepted"},
                {"due": "soon"},
                # The inbox's tabs and search (issue 20): answered and co-handled tickets too.
                {"status": "replied,visited", "role": "lead"},
                {"status": "closed"},
                {"role": "co"},
                {"q": "退款", "status": "dispatched,accepted,replied,visited,closed"},
            )
        ]

    def progress() -> list[str]:
        params = {"number": scene.api_ticket, "phone_last4": CALLER_PHONE[-4:]}
        return [_ok(client.get("/api/v1/public/progress", params=params)).text]

    def open311() -> list[str]:
        return [
            _ok(client.get(f"/open311/v2/requests.{fmt}")).text
            + _ok(client.get(f"/open311/v2/requests/{scene.open311_ticket}.{fmt}")).text
            for fmt in ("json", "xml")
        ]

    def portal() -> list[str]:
        """What anyone holding the tracking link sees: the citizen's own words, masked."""
        tracking = {"X-Tracking-Token": scene.portal_token}
        return [_ok(client.get("/api/v1/portal/track", headers=tracking)).text]

    def portal_rating() -> list[str]:
        tracking = {"X-Tracking-Token": scene.portal_token}
        body = {"satisfaction": "satisfied"}
        answer = client.post("/api/v1/portal/track/rating", json=body, headers=tracking)
        assert answer.status_code in (200, 409), answer.text  # 409: rated already
        return [answer.text]

    reports = {"start": "2000-01-01T00:00:00", "end": "2099-01-01T00:00:00"}
    return {
        ("GET", "/api/v1/portal/track"): portal,
        ("POST", "/api/v1/portal/track/rating"): portal_rating,
        ("GET", "/api/v1/auth/me"): get("/api/v1/auth/me"),
        ("GET", "/api/v1/events"): get("/api/v1/events"),
        ("GET", "/api/v1/tickets"): inbox,
        ("GET", "/api/v1/tickets/{number}"): each_ticket,
        ("POST", "/api/v1/tickets/{number}/{action}"): lambda: scene.seen[
            ("POST", "/api/v1/tickets/{number}/{action}")
        ],
        ("GET", "/api/v1/reports/tickets"): lambda: [
            _ok(
                client.get("/api/v1/reports/tickets", params={**reports, "by": by}, headers=market)
            ).text
            for by in ("department", "matter", "area")
        ],
        ("GET", "/api/v1/public/progress"): progress,
        ("GET", "/open311/v2/requests.{fmt}"): open311,
        ("GET", "/open311/v2/requests/{number}.{fmt}"): open311,
        ("WS", "/ws"): lambda: _socket_frames(scene, "market"),
    }


# Reachable by a department user but never carrying a caller's data: the knowledge base, the
# service catalogue, the static pages, operations and the API description. Listed, so that a
# new route is a decision.
WITHOUT_CALLER_DATA = {
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/password"),  # the caller's own password, answered with a token
    ("GET", "/api/v1/calendar/{day}"),  # whether a day is worked: no ticket data
    ("GET", "/api/v1/calendar/months/{year}/{month}"),  # a month of such days: no ticket data
    ("GET", "/api/v1/kb/search"),
    ("GET", "/api/v1/kb/articles/{key}"),
    ("GET", "/open311/v2/services.{fmt}"),
    ("GET", "/open311/v2/services/{code}.{fmt}"),
    ("POST", "/open311/v2/requests.{fmt}"),  # answers with the new number and a notice only
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("MOUNT", "/static"),
    ("MOUNT", "/static-offline-docs"),  # Swagger UI and ReDoc assets
    *(("GET", page) for page in ("/", "/login", "/console", "/wall", "/desk", "/inbox")),
    *(("GET", page) for page in ("/kb", "/admin", "/favicon.ico")),
    *(("GET", page) for page in ("/reports", "/reports/print")),  # the oversight's pages
    # the citizens' portal: pickers, codes, new numbers and tokens, a page shell, photos
    # (pixels only: re-encoded without EXIF), the published knowledge base, the web app files
    ("GET", "/api/v1/portal/places"),
    ("GET", "/api/v1/portal/suggest"),
    ("POST", "/api/v1/portal/codes"),  # answers the phone masked
    ("POST", "/api/v1/portal/codes/verify"),
    ("POST", "/api/v1/portal/requests"),
    ("POST", "/api/v1/portal/lookup"),
    ("GET", "/api/v1/portal/track/photos/{photo_id}"),
    ("GET", "/api/v1/portal/photos/{photo_id}"),
    *(("GET", page) for page in ("/m", "/m/submit", "/m/track", "/m/t/{token}", "/m/kb")),
    *(("GET", page) for page in ("/m/kb/{key}", "/m/manifest.webmanifest", "/m/sw.js")),
}


def _department_reachable() -> set[tuple[str, str]]:
    from hotline.app import create_app

    reachable = set()
    for route in route_table(create_app()):
        expect = EXPECTED.get(route)
        if expect is None:
            assert route in OUTSIDE_API, f"{route} is in neither list of the role matrix"
            reachable.add(route)  # outside /api/v1 everything is public
        elif expect.allows("department") and not expect.cti:
            reachable.add(route)
    return reachable


def test_every_route_a_department_reaches_is_checked_for_leaks(scene):
    checked = set(_department_calls(scene))
    reachable = _department_reachable()
    unchecked = sorted(reachable - checked - WITHOUT_CALLER_DATA)
    assert not unchecked, f"routes a department reaches, not checked for callers' data: {unchecked}"
    stale = sorted((checked | WITHOUT_CALLER_DATA) - reachable)
    assert not stale, f"entries for routes a department cannot reach: {stale}"


def test_no_department_route_shows_a_callers_personal_data(scene):
    answers = {route: read() for route, read in _department_calls(scene).items()}
    for method, path in sorted(WITHOUT_CALLER_DATA):
        if method == "GET" and "{" not in path:  # the others need a real key or code
            response = scene.client.get(path, headers=scene.headers["market"])
            answers[(method, path)] = [response.text or "(empty)"]
    for route, texts in answers.items():
        assert texts and all(texts), route
        for text in texts:
            assert not leaks(text), (route, leaks(text), text[:2000])
    # ... and the masks are there: the department still learns how to reach the caller.
    detail = json.loads(answers[("GET", "/api/v1/tickets/{number}")][0])
    assert detail["caller_phone"] == "138****9999"
    assert detail["caller_name"] == "张**"
    assert "138****9999" in detail["content"] and "4404**********1234" in detail["content"]
    assert "z***@example.com" in detail["content"] and "0756-***3456" in detail["content"]
    assert detail["number"] == scene.api_ticket and "138****8888" in detail["reply"]
    trail = {entry["action"]: entry["detail"] for entry in detail["trail"]}
    assert trail["supervise"]["note"] == "尽快联系138****9999，身份证4404**********1234"
    assert trail["request-extension"]["reason"] == "市民139****6666要求现场核查"
    open311 = json.loads(
        _ok(
            scene.client.get(
                f"/api/v1/tickets/{scene.open311_ticket}", headers=scene.headers["agent"]
            )
        ).text
    )
    submitted = next(e for e in open311["trail"] if e["action"] == "open311_submitted")
    assert submitted["detail"]["email"] == "li.si@example.org", "hotline staff see it"
    as_department = json.loads(answers[("GET", "/api/v1/tickets/{number}")][1])
    masked = next(e for e in as_department["trail"] if e["action"] == "open311_submitted")
    assert masked["detail"]["email"] == "l***@example.org"


def test_a_department_cannot_search_for_a_callers_personal_data(scene):
    """The inbox's search (``q``) matches what the department is shown, not the originals:
    otherwise a search for a phone number would tell which ticket holds it."""
    every = "pending_dispatch,dispatched,accepted,replied,visited,closed"

    def search(who: str, q: str) -> list[str]:
        params = {"q": q, "status": every, "limit": 200}
        answer = _ok(scene.client.get("/api/v1/tickets", params=params, headers=scene.headers[who]))
        return [t["number"] for t in answer.json()]

    probes = [*ORIGINALS, CALLER_NAME, "张三丰", CALLER_PHONE[-8:], "zhang.san", "440402199001"]
    for probe in probes:
        assert search("market", probe) == [], probe
    assert scene.api_ticket in search("agent", CALLER_PHONE)  # hotline staff search by phone
    assert scene.api_ticket in search("market", "商家拒绝退款")
    assert search("market", scene.api_ticket) == [scene.api_ticket]


@pytest.mark.parametrize("who", ["agent", "dispatcher", "supervisor"])
def test_hotline_roles_see_the_originals(scene, who):
    headers = scene.headers[who]
    detail = _ok(scene.client.get(f"/api/v1/tickets/{scene.api_ticket}", headers=headers)).json()
    assert detail["caller_phone"] == CALLER_PHONE and detail["caller_name"] == CALLER_NAME
    assert detail["content"].endswith(PERSONAL)
    assert "138 1234 8888" in detail["reply"]
    events = _ok(scene.client.get("/api/v1/events", headers=headers)).json()["events"]
    noted = next(e for e in events if e["type"] == "ticket.noted")
    assert noted["data"]["content"] == PERSONAL
    frames = _socket_frames(scene, who)
    assert any(PERSONAL in text for text in frames)


def _socket_frames(scene: Scene, who: str) -> list[str]:
    """Every frame ``who`` receives over a real websocket: the replay from the first event,
    then a live event carrying a caller's data."""
    with db.transaction() as session:
        replay_end = last_event_id(session)
    frames: list[str] = []
    url = f"/ws?token={scene.token(who)}&last_id=0"
    with scene.client.websocket_connect(url) as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        with db.transaction() as session:
            publish_after_commit(
                session,
                f"tickets.dept.{MARKET}",
                "ticket.noted",
                {"content": PERSONAL, "caller_phone": CALLER_PHONE, "live": True},
            )
        while True:
            text = ws.receive_text()
            frames.append(text)
            message = json.loads(text)
            if message["type"] == "event" and message["data"].get("live"):
                break
    ids = [json.loads(t)["id"] for t in frames if json.loads(t)["type"] == "event"]
    assert ids and ids[-1] > replay_end, "the replay and the live event both arrived"
    assert len([i for i in ids if i <= replay_end]) >= 5, "the replay reached the client"
    return frames


def test_department_events_are_masked_on_the_socket_and_in_the_catch_up(scene):
    frames = _socket_frames(scene, "market")
    events = [json.loads(text) for text in frames]
    noted = [e for e in events if e.get("event") == "ticket.noted"]
    assert len(noted) == 2, "the replayed one and the live one"
    for event in noted:
        assert event["data"]["caller_phone"] == "138****9999"
        assert "138****9999" in event["data"]["content"]
    for text in frames:
        assert not leaks(text), text
    catch_up = _ok(scene.client.get("/api/v1/events", headers=scene.headers["market"])).text
    assert "ticket.noted" in catch_up and not leaks(catch_up)


def test_the_gateway_encodes_an_event_at_most_twice_whatever_the_number_of_sockets(
    monkeypatch,
):
    """One plain and one masked encoding per event, made when the first socket of each kind
    takes it; none for a kind no socket needs."""
    import asyncio

    from agents_ui import gateway as gateway_module

    encoded: list[str] = []
    real_encode = gateway_module.encode

    def counting_encode(message):
        text = real_encode(message)
        encoded.append(text)
        return text

    monkeypatch.setattr(gateway_module, "encode", counting_encode)

    def principal(name: str, *roles: str) -> Principal:
        return Principal(1, name, frozenset(roles), frozenset({MARKET}))

    topic = f"tickets.dept.{MARKET}"
    departments = [
        gateway_module.Client(principal(f"d{n}", "department"), [topic], asyncio.Queue(10))
        for n in range(5)
    ]
    agents = [
        gateway_module.Client(principal(f"a{n}", "agent"), ["tickets."], asyncio.Queue(10))
        for n in range(5)
    ]
    gateway = gateway_module.Gateway()
    for client in [*departments, *agents]:
        gateway.add(client)
    data = {"content": PERSONAL, "caller_phone": CALLER_PHONE}
    gateway._fan_out({"id": 1, "topic": topic, "type": "ticket.noted", "data": data, "at": None})
    gateway._fan_out({"id": 2, "topic": "tickets.by.a0", "type": "x", "data": data, "at": None})
    assert encoded == [], "nothing is encoded before a socket sends it"

    def sent(client) -> list[str]:
        frames = []
        while not client.queue.empty():
            frames.append(gateway_module.frame_text(client.queue.get_nowait(), client.principal))
        return frames

    to_departments = [sent(c) for c in departments]
    assert len(encoded) == 1
    to_agents = [sent(c) for c in agents]
    assert len(encoded) == 3, "event 1 twice (masked, plain), event 2 once (plain only)"
    assert all(frames == to_departments[0] for frames in to_departments)
    assert all(frames == to_agents[0] for frames in to_agents)
    (masked,) = to_departments[0]
    assert not leaks(masked) and json.loads(masked)["data"]["caller_phone"] == "138****9999"
    assert [json.loads(f)["data"]["caller_phone"] for f in to_agents[0]] == [CALLER_PHONE] * 2
