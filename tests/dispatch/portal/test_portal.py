"""The citizens' portal API: phone codes through the development SMS outbox, submissions that
become ordinary `app` tickets, the private tracking view, the citizen's 回访, the limits."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from dispatch.portal.models import Photo
from dispatch.routing import service as routing_service
from dispatch.tickets.models import Ticket
from hotline.core import db, sms
from hotline.core.settings import get_settings

MARKET = "XZ-MARKET"
PHONE = "13812345678"
OTHER = "13987654321"
CONTENT = "商家拒绝退款，买的电饭煲坏了不给退"
GPS_IFD, MAKE = 0x8825, 0x010F


@pytest.fixture
def portal(client, make_user):
    with db.transaction() as session:
        routing_service.seed_reference(session)
    return {
        "client": client,
        "agent": make_user("agent", "agent"),
        "supervisor": make_user("sup", "supervisor"),
        "market": make_user("market", "department", departments=(MARKET,)),
        "outsider": make_user("gx", "department", departments=("GX-MARKET",)),
    }


def last_code(phone: str) -> str:
    texts = sms.read_outbox(sms.outbox_path(), phone)
    assert texts, f"no text message to {phone}"
    return texts[-1].split("验证码是")[1][:6]


def verified(client, phone: str = PHONE) -> dict[str, str]:
    sent = client.post("/api/v1/portal/codes", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    assert sent.json()["phone"] == phone[:3] + "****" + phone[-4:]
    answer = client.post(
        "/api/v1/portal/codes/verify", json={"phone": phone, "code": last_code(phone)}
    )
    assert answer.status_code == 200, answer.text
    return {"X-Phone-Token": answer.json()["phone_token"]}


def photo_bytes(fmt: str = "JPEG", *, gps: bool = True) -> bytes:
    image = Image.new("RGB", (64, 48), "orange")
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker X"
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (22.0, 16.0, 30.0), 3: "E", 4: (113.0, 34.0, 0.0)}
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


def submit(client, headers, *, content: str = CONTENT, photos=(), **fields: Any):
    data = {
        "content": content,
        "name": "陈先生",
        "matter_code": "SC-01",
        "area_code": "XZ",
        "town_code": "440402005",
        "address": "夏湾路88号",
        **fields,
    }
    files = [("photo", (f"p{i}.jpg", raw, "image/jpeg")) for i, raw in enumerate(photos)]
    return client.post("/api/v1/portal/requests", data=data, files=files or None, headers=headers)


def track(client, token: str):
    return client.get("/api/v1/portal/track", headers={"X-Tracking-Token": token})


def test_a_citizen_submits_follows_and_rates_the_same_way_an_agent_visits(portal):
    client = portal["client"]
    headers = verified(client)
    created = submit(client, headers, photos=[photo_bytes()])
    assert created.status_code == 201, created.text
    number, token = created.json()["number"], created.json()["token"]
    assert created.json()["merged"] is False and len(token) >= 32

    # An ordinary ticket: channel app, the verified phone, routed and dispatched like any other.
    detail = client.get(f"/api/v1/tickets/{number}", headers=portal["agent"]).json()
    assert detail["channel"] == "app" and detail["caller_phone"] == PHONE
    assert detail["lead_department"] == MARKET and detail["status"] == "dispatched"
    assert detail["address"] == "香洲区拱北街道夏湾路88号"
    submitted = next(e for e in detail["trail"] if e["action"] == "portal_submitted")
    (photo_id,) = submitted["detail"]["photos"]

    # The photo, for staff and the department: re-encoded, the place and the phone make gone.
    for who in ("agent", "market"):
        photo = client.get(f"/api/v1/portal/photos/{photo_id}", headers=portal[who])
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    exif = Image.open(io.BytesIO(photo.content)).getexif()
    assert not exif.get_ifd(GPS_IFD) and MAKE not in exif
    assert (
        client.get(f"/api/v1/portal/photos/{photo_id}", headers=portal["outsider"]).status_code
        == 404
    )
    assert client.get(f"/api/v1/portal/photos/{photo_id}").status_code == 401

    view = track(client, token).json()
    assert view["number"] == number and view["status"] == "dispatched"
    assert view["department"] == "香洲区市场监督管理局" and view["accept_deadline"]
    assert [s["step"] for s in view["timeline"]] == ["received", "dispatched"]
    assert view["photos"] == [photo_id] and not view["can_rate"]

    act = lambda who, action, **body: client.post(  # noqa: E731
        f"/api/v1/tickets/{number}/{action}", json=body, headers=portal[who]
    )
    assert act("market", "accept").status_code == 200
    assert (
        act("market", "request-extension", working_days=2, reason="内部：等候质检报告").status_code
        == 200
    )
    assert act("supervisor", "supervise", note="内部督办意见").status_code == 200
    assert act("market", "reply", reply=f"已协调商家退款，请联系{PHONE}核实").status_code == 200

    view = track(client, token).json()
    assert view["status"] == "replied" and view["can_rate"]
    assert view["reply"] == "已协调商家退款，请联系138****5678核实"
    assert [s["step"] for s in view["timeline"]] == [
        "received",
        "dispatched",
        "accepted",
        "replied",
    ]
    text = str(view)
    assert (
        "内部" not in text and "market" not in text and PHONE not in text and "陈先生" not in text
    )

    rated = client.post(
        "/api/v1/portal/track/rating",
        json={"satisfaction": "unsatisfied", "resolved": False},
        headers={"X-Tracking-Token": token},
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["status"] == "accepted" and rated.json()["reopen_count"] == 1
    assert "重办" in rated.json()["timeline"][-1]["text"]
    again = client.post(
        "/api/v1/portal/track/rating",
        json={"satisfaction": "satisfied"},
        headers={"X-Tracking-Token": token},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "portal.not_ratable"

    # The same 回访 as an agent's: reopened for the same department with a new deadline, and
    # recorded with its own source so oversight counts it apart.
    detail = client.get(f"/api/v1/tickets/{number}", headers=portal["agent"]).json()
    assert detail["status"] == "accepted" and detail["reopen_count"] == 1
    assert detail["satisfaction"] == "unsatisfied" and detail["visit_source"] == "app"
    assert detail["finish_deadline"] and detail["lead_department"] == MARKET
    visit = [e for e in detail["trail"] if e["action"] == "visit"][-1]
    assert visit["actor"] == "citizen:app" and visit["detail"]["source"] == "app"
    period = {"start": "2000-01-01T00:00:00", "end": "2099-01-01T00:00:00"}
    (row,) = client.get("/api/v1/reports/tickets", params=period, headers=portal["agent"]).json()
    assert row["key"] == MARKET and row["visited"] == 1 and row["visited_in_app"] == 1

    # ... and the agent's next 回访 is told apart.
    assert act("market", "reply", reply="已退款").status_code == 200
    assert act("agent", "visit", satisfaction="satisfied").status_code == 200
    detail = client.get(f"/api/v1/tickets/{number}", headers=portal["agent"]).json()
    assert detail["visit_source"] == "hotline" and detail["status"] == "visited"


def test_the_photos_location_is_kept_only_when_the_citizen_allows_it(portal):
    client = portal["client"]
    created = submit(client, verified(client), photos=[photo_bytes()], keep_photo_location="1")
    assert created.status_code == 201, created.text
    with db.transaction() as session:
        photo = session.scalars(select(Photo)).one()
        exif = Image.open(io.BytesIO(photo.data)).getexif()
        assert photo.location_kept and exif.get_ifd(GPS_IFD)[1] == "N"
        assert MAKE not in exif


@pytest.mark.parametrize(
    ("raw", "code", "status"),
    [
        (b"not an image at all", "portal.bad_photo", 400),
        (b"GIF89a" + b"\0" * 100, "portal.bad_photo", 400),
    ],
)
def test_what_is_not_a_photo_is_refused(portal, raw, code, status):
    client = portal["client"]
    answer = submit(client, verified(client), photos=[raw])
    assert answer.status_code == status and answer.json()["error"]["code"] == code


def test_photo_size_and_count_limits(portal, settings_env):
    settings_env(portal_max_photo_bytes="2048", portal_max_photos="1")
    client = portal["client"]
    headers = verified(client)
    big = photo_bytes() + b"\0" * 4096
    answer = submit(client, headers, photos=[big])
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] in ("portal.photo_too_large", "request.too_large")
    two = submit(client, headers, photos=[photo_bytes(), photo_bytes()])
    assert two.status_code == 400, two.text


def test_a_repeated_submission_is_merged_into_the_first(portal):
    client = portal["client"]
    headers = verified(client)
    first = submit(client, headers).json()
    second = submit(client, headers, content=CONTENT + "  ").json()
    assert second["merged"] and second["number"] == first["number"]
    assert second["token"] != first["token"]
    assert track(client, second["token"]).json()["number"] == first["number"]
    other = submit(client, headers, content="小区门口的路灯坏了一个星期").json()
    assert not other["merged"] and other["number"] != first["number"]
    with db.transaction() as session:
        assert session.scalar(select(Ticket.id).where(Ticket.channel == "app").limit(5)) is not None
        assert len(session.scalars(select(Ticket).where(Ticket.channel == "app")).all()) == 2


def test_another_citizen_sees_nothing_of_the_first(portal):
    client = portal["client"]
    mine = submit(client, verified(client)).json()
    theirs = verified(client, OTHER)
    # A wrong number and another person's number answer alike.
    for number in (mine["number"], "ZH20990101000001"):
        found = client.post("/api/v1/portal/lookup", json={"number": number}, headers=theirs)
        assert found.status_code == 404 and found.json()["error"]["code"] == "portal.not_found"
    for token in ("x" * 32, mine["token"][:-1] + "A", ""):
        answer = track(client, token)
        assert answer.status_code in (404, 422) and mine["number"] not in answer.text
    rated = client.post(
        "/api/v1/portal/track/rating", json={"satisfaction": "unsatisfied"},
        headers={"X-Tracking-Token": "y" * 32},
    )  # fmt: skip
    assert rated.status_code == 404
    # The owner, by number and a newly verified phone, gets a fresh link.
    found = client.post(
        "/api/v1/portal/lookup", json={"number": mine["number"].lower()}, headers=verified(client)
    )
    assert found.status_code == 200 and track(client, found.json()["token"]).status_code == 200


def test_a_phone_callers_ticket_is_followed_with_number_and_phone(portal):
    client = portal["client"]
    ticket = client.post(
        "/api/v1/tickets",
        json={
            "channel": "phone",
            "content": CONTENT,
            "address": "香洲区拱北",
            "caller_phone": PHONE,
            "matter_code": "SC-01",
        },
        headers=portal["agent"],
    ).json()
    found = client.post(
        "/api/v1/portal/lookup", json={"number": ticket["number"]}, headers=verified(client)
    )
    assert found.status_code == 200, found.text
    assert track(client, found.json()["token"]).json()["status"] == "dispatched"


def test_codes_are_single_use_and_five_wrong_guesses_void_them(portal):
    client = portal["client"]
    assert client.post("/api/v1/portal/codes", json={"phone": PHONE}).status_code == 202
    code = last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        answer = client.post("/api/v1/portal/codes/verify", json={"phone": PHONE, "code": wrong})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "portal.bad_code"
    late = client.post("/api/v1/portal/codes/verify", json={"phone": PHONE, "code": code})
    assert late.status_code == 400, "the code was voided by the wrong guesses"
    headers = verified(client)
    assert submit(client, headers).status_code == 201
    reused = client.post(
        "/api/v1/portal/codes/verify", json={"phone": PHONE, "code": last_code(PHONE)}
    )
    assert reused.status_code == 400
    assert client.post("/api/v1/portal/codes", json={"phone": "0756-2123456"}).status_code == 400


def test_a_submission_needs_a_verified_phone(portal):
    client = portal["client"]
    for headers in ({}, {"X-Phone-Token": "forged"}):
        answer = submit(client, headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "portal.phone_unverified"
    # An access token is no phone token, and a phone token is no access token.
    assert (
        submit(client, {"X-Phone-Token": portal["agent"]["Authorization"][7:]}).status_code == 401
    )
    phone_token = verified(client)["X-Phone-Token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {phone_token}"})
    assert me.status_code == 401


def test_content_limits(portal):
    client = portal["client"]
    headers = verified(client)
    short = submit(client, headers, content="坏了")
    assert short.json()["error"]["code"] == "portal.content_too_short"
    long = submit(client, headers, content="很" * 2001)
    assert long.status_code == 400 and long.json()["error"]["code"] == "portal.too_long"
    nowhere = submit(client, headers, area_code="", town_code="", address="")
    assert nowhere.json()["error"]["code"] == "portal.place_required"
    wrong_town = submit(client, headers, area_code="DM")
    assert wrong_town.json()["error"]["code"] == "portal.bad_place"


def test_limits_per_phone_per_address_and_global_say_which(portal, settings_env):
    client = portal["client"]
    settings_env(portal_codes_per_phone_hour="2")
    for _ in range(2):
        assert client.post("/api/v1/portal/codes", json={"phone": PHONE}).status_code == 202
    limited = client.post("/api/v1/portal/codes", json={"phone": PHONE})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "request.rate_limited"
    assert limited.json()["error"]["details"]["scope"] == "phone"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600

    settings_env(portal_codes_per_phone_hour="100", portal_requests_per_address_hour="3")
    statuses = [
        client.post("/api/v1/portal/codes", json={"phone": f"1390000000{i}"}).status_code
        for i in range(4)
    ]
    assert statuses[-1] == 429, statuses
    settings_env(portal_requests_per_address_hour="100", portal_requests_global_minute="1")
    from hotline.core.redis import get_redis

    get_redis().flushdb()
    assert client.post("/api/v1/portal/codes", json={"phone": OTHER}).status_code == 202
    busy = client.post("/api/v1/portal/codes", json={"phone": PHONE})
    assert busy.status_code == 429 and busy.json()["error"]["details"]["scope"] == "global"


def test_suggestions_and_places_for_the_pickers(portal):
    client = portal["client"]
    answer = client.get("/api/v1/portal/suggest", params={"q": "超市卖过期食品"}).json()
    assert 1 <= len(answer["matters"]) <= 4 and all(m["name"] for m in answer["matters"])
    places = client.get("/api/v1/portal/places").json()
    xz = next(a for a in places if a["code"] == "XZ")
    assert {"code": "440402005", "name": "拱北街道"} in xz["towns"]
    gx = next(a for a in places if a["code"] == "GX")
    assert any(t["name"] == "唐家湾镇" for t in gx["towns"])


def test_the_wall_counts_requests_by_channel(portal):
    client = portal["client"]
    submit(client, verified(client))
    client.post(
        "/api/v1/tickets",
        json={"channel": "phone", "content": "噪音扰民", "address": "香洲区拱北"},
        headers=portal["agent"],
    )
    wall = client.get("/api/v1/kpi/wall", headers=portal["supervisor"]).json()
    assert wall["tickets_by_channel"]["app"] == 1 and wall["tickets_by_channel"]["phone"] == 1


def test_the_development_sender_never_leaves_the_machine():
    assert get_settings().sms_sender == "outbox"
    assert isinstance(sms.sender(), sms.OutboxSender)
