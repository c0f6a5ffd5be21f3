"""The public progress lookup: number + the phone's last 4 digits, rate-limited, no enumeration."""

from __future__ import annotations

import pytest

from dispatch.open311 import service
from dispatch.tickets import service as tickets_service
from hotline.core import db
from hotline.core.auth import Principal

pytestmark = pytest.mark.usefixtures("seeded")

URL = "/api/v1/public/progress"
PHONE = "13812345678"
CALLER = "张三丰"
DEPARTMENT = "GX-MARKET"


def _phone_ticket(phone: str = PHONE) -> str:
    with db.transaction() as session:
        ticket, _ = tickets_service.create(
            session,
            actor="agent1",
            channel="phone",
            content=f"{CALLER}反映金鼎市场有商家卖过期食品",
            address="香洲区唐家湾镇",
            caller_name=CALLER,
            caller_phone=phone,
            matter_code="SC-02",
        )
        return ticket.number


def _act(number: str, action: str, body: dict, roles: set[str], departments=frozenset()):
    principal = Principal(0, "someone", frozenset(roles), frozenset(departments))
    with db.transaction() as session:
        tickets_service.act(session, principal, number, action, body)


def _lookup(client, number: str, last4: str):
    return client.get(URL, params={"number": number, "phone_last4": last4})


def test_the_right_digits_show_status_and_the_public_reply_only(client):
    number = _phone_ticket()
    _act(number, "supervise", {"note": "内部督办意见"}, {"supervisor"})
    _act(number, "accept", {}, {"department"}, {DEPARTMENT})
    _act(number, "reply", {"reply": "已下架过期食品并立案。"}, {"department"}, {DEPARTMENT})

    response = _lookup(client, number, "5678")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == number
    assert body["status"] == "replied" and body["open"] is True
    assert body["status_text"] == "承办单位已答复"
    assert body["reply"] == "已下架过期食品并立案。"
    assert body["service_name"] == "食品安全举报"
    assert body["replied_at"] and body["received_at"].endswith("+08:00")
    for secret in (CALLER, PHONE, "5678", "内部督办意见", "商家卖", "agent1", "someone"):
        assert secret not in response.text  # no name, phone, note, content or actor
    assert set(body) == {
        "number",
        "status",
        "status_text",
        "open",
        "service_name",
        "agency_responsible",
        "received_at",
        "expected_at",
        "replied_at",
        "closed_at",
        "reply",
    }


def test_a_wrong_ending_and_an_unknown_number_answer_alike(client):
    number = _phone_ticket()
    wrong = _lookup(client, number, "0000")
    unknown = _lookup(client, "ZH20000101999999", "5678")
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "public.not_found"


def test_a_ticket_without_a_phone_cannot_be_looked_up(client):
    number = _phone_ticket(phone="")
    assert _lookup(client, number, "0000").status_code == 404


def test_malformed_queries_are_refused_before_any_lookup(client):
    assert _lookup(client, "ZH1", "12345").status_code == 422
    assert _lookup(client, "ZH 1", "1234").status_code == 422
    assert client.get(URL, params={"number": "ZH1"}).status_code == 422


def test_five_wrong_endings_lock_the_number_for_an_hour(client, monkeypatch):
    number, other = _phone_ticket(), _phone_ticket(phone="13900001111")
    # Only the per-number limit is under test here; each lookup gets its own address.
    addresses = iter(f"10.0.0.{i}" for i in range(1, 100))
    monkeypatch.setattr(service, "_count", _per_address(service._count, addresses), raising=True)
    for ending in ("0001", "0002", "0003", "0004", "0005"):
        assert _lookup(client, number, ending).status_code == 404
    locked = _lookup(client, number, "5678")  # even the right ending now waits
    assert locked.status_code == 429
    assert 3500 < int(locked.headers["Retry-After"]) <= 3600
    assert locked.json()["error"]["code"] == "rate_limited"
    assert _lookup(client, other, "1111").status_code == 200  # other numbers are unaffected


def _per_address(count, addresses):
    """Give every lookup a fresh client address, so the per-IP limit stays out of the way."""

    def counting(client, key, window):
        if key.startswith("progress:ip:"):
            key = f"progress:ip:{next(addresses)}"
        return count(client, key, window)

    return counting


def test_ten_lookups_per_address_in_ten_minutes(client):
    number = _phone_ticket()
    for _ in range(service.PROGRESS_LOOKUPS_PER_IP):
        assert _lookup(client, number, "5678").status_code == 200
    limited = _lookup(client, number, "5678")
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 600


def test_without_redis_the_lookup_refuses_rather_than_go_unlimited(client, monkeypatch):
    import redis

    number = _phone_ticket()

    class Down:
        def pipeline(self):
            raise redis.ConnectionError("down")

    monkeypatch.setattr("dispatch.open311.router.get_redis", lambda: Down())
    response = _lookup(client, number, "5678")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "public.unavailable"
