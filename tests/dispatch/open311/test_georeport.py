"""The Open311 GeoReport v2 endpoint over real HTTP, driven by third-party and spec clients.

Reads go through ``georeport`` (PyPI), a GeoReport v2 client library, in JSON and in XML.
It cannot post a service request (its own documentation says so) and only raises on an
error answer, so posting and the error bodies go through ``SpecConformanceClient``, a
small client written in this file from the specification — not a library.
The other Open311 clients on PyPI (``open311`` 1.1, ``three`` 0.8) are Python 2 only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from georeport import GeoReport
from typer.testing import CliRunner

from dispatch.open311.cli import open311_app
from dispatch.routing import service as routing_service
from dispatch.tickets import service as tickets_service
from hotline.core import db
from hotline.core.auth import Principal
from hotline.core.db import utcnow
from hotline.core.settings import get_settings

pytestmark = pytest.mark.usefixtures("seeded")

FOOD = {
    "service_code": "SC-02",
    "description": "金鼎市场有商家卖过期食品",
    "address_string": "香洲区唐家湾镇",
}
FOOD_DEPARTMENT = "GX-MARKET"
CALLER_PHONE = "13812345678"
AGENT = Principal(0, "agent1", frozenset({"agent"}), frozenset())


@pytest.fixture
def live_server(app):
    """The application on a real socket (uvicorn in a thread), for clients that need HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        thread.join(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


class SpecConformanceClient:
    """A GeoReport v2 client written from the specification for these tests (not a library).

    It checks what the specification asks of every answer (the media type of the format,
    well-formed XML, the documented root elements) and returns the status with the body as
    Python data: a list of dicts for ``services``, ``service_requests`` and ``errors``.
    """

    ROOTS = {"services": "service", "service_requests": "request", "errors": "error"}

    def __init__(self, base_url: str, fmt: str) -> None:
        self.base_url, self.fmt = base_url, fmt

    def _parse(self, response: httpx.Response) -> Any:
        media_type = response.headers["content-type"].split(";")[0]
        if self.fmt == "json":
            assert media_type == "application/json"
            return response.json()
        assert media_type in ("application/xml", "text/xml")
        root = ET.fromstring(response.content)  # raises on ill-formed XML
        if root.tag == "service_definition":
            return {
                "service_code": root.findtext("service_code"),
                "attributes": [
                    {child.tag: child.text for child in attribute}
                    for attribute in root.iterfind("attributes/attribute")
                ],
            }
        assert root.tag in self.ROOTS, root.tag
        items = list(root)
        assert all(item.tag == self.ROOTS[root.tag] for item in items)
        return [{child.tag: child.text for child in item} for item in items]

    def get(self, path: str, **params: str) -> tuple[int, Any]:
        response = httpx.get(f"{self.base_url}/{path}.{self.fmt}", params=params, timeout=10)
        return response.status_code, self._parse(response)

    def post_request(self, **fields: str) -> tuple[int, Any]:
        response = httpx.post(f"{self.base_url}/requests.{self.fmt}", data=fields, timeout=10)
        return response.status_code, self._parse(response)


@pytest.fixture(params=["json", "xml"])
def fmt(request) -> str:
    return request.param


@pytest.fixture
def endpoint(live_server) -> str:
    return f"{live_server}/open311/v2"


@pytest.fixture
def library(endpoint, fmt) -> GeoReport:
    return GeoReport(endpoint, output_format=fmt)


@pytest.fixture
def spec(endpoint, fmt) -> SpecConformanceClient:
    return SpecConformanceClient(endpoint, fmt)


def _as_list(value: Any) -> list:
    # xmltodict gives one element as a dict and several as a list.
    return value if isinstance(value, list) else [value]


def _department_name(code: str) -> str:
    with db.transaction() as session:
        return routing_service.current_routing(session).ruleset.department(code).name


def _post(spec: SpecConformanceClient, api_key: str, **fields: str) -> dict[str, Any]:
    status, body = spec.post_request(api_key=api_key, **{**FOOD, **fields})
    assert status == 200, body
    assert len(body) == 1
    return body[0]


def _act(number: str, action: str, body: dict | None = None, department: str = FOOD_DEPARTMENT):
    principal = Principal(
        user_id=0, username="dept-user", roles=frozenset({"department"}),
        departments=frozenset({department}),
    )  # fmt: skip
    if action in ("close", "supervise"):
        principal = Principal(0, "boss", frozenset({"supervisor"}), frozenset())
    with db.transaction() as session:
        tickets_service.act(session, principal, number, action, body or {})


# -- services ----------------------------------------------------------------------------------


def test_services_list_every_matter_in_both_formats(library):
    services = library.get_service_list()
    by_code = {s["service_code"]: s for s in services}
    with db.transaction() as session:
        matters = routing_service.current_routing(session).ruleset.matters
    assert set(by_code) == {m.code for m in matters}
    food = by_code["SC-02"]
    assert food["service_name"] == "食品安全举报"
    assert food["group"] == "市场监管"
    assert food["keywords"].split(",")[:2] == ["过期食品", "变质"]
    assert food["type"] == "realtime"
    # JSON carries a boolean, XML the text of one
    assert food["metadata"] in (False, "false")
    assert food["description"]


def test_service_definition_has_an_empty_attribute_list(library, spec):
    definition = library.get_service_definition("SC-02")
    assert definition["service_code"] == "SC-02"
    assert not definition["attributes"]  # [] in JSON, an empty <attributes/> in XML
    status, body = spec.get("services/SC-02")
    assert status == 200 and body == {"service_code": "SC-02", "attributes": []}


def test_unknown_service_is_a_404_in_the_error_format(library, spec):
    with pytest.raises(requests.HTTPError) as raised:
        library.get_service_definition("NOPE")
    assert raised.value.response.status_code == 404
    status, body = spec.get("services/NOPE")
    assert status == 404
    assert [int(e["code"]) for e in body] == [404] and "NOPE" in body[0]["description"]


# -- posting and reading back ---------------------------------------------------------------


def test_post_creates_a_routed_open311_ticket_and_reads_back_without_personal_data(
    library, spec, api_key
):
    answer = _post(
        spec,
        api_key,
        description=f"金鼎市场有商家卖过期食品，请回电{CALLER_PHONE}",
        first_name="三",
        last_name="张",
        phone="138-1234-5678",
        email="zhang@example.com",
    )
    number = answer["service_request_id"]
    assert number.startswith("ZH")
    assert answer["account_id"] is None
    department = _department_name(FOOD_DEPARTMENT)
    assert department in answer["service_notice"]

    with db.transaction() as session:
        ticket = tickets_service.get(session, AGENT, number)
        assert ticket.channel == "open311"
        assert ticket.lead_department == FOOD_DEPARTMENT and ticket.status == "dispatched"
        assert ticket.caller_name == "张三" and ticket.caller_phone == CALLER_PHONE
        accept_deadline = ticket.accept_deadline

    read = library.get_service_request(number)
    assert read["service_request_id"] == number
    assert read["status"] == "open"
    assert read["service_code"] == "SC-02" and read["service_name"] == "食品安全举报"
    assert read["agency_responsible"] == department
    assert read["address"] == "香洲区唐家湾镇"
    assert not read["status_notes"]
    assert read["requested_datetime"].endswith("+08:00")
    expected = accept_deadline.astimezone(get_settings().tz)
    assert read["expected_datetime"] == expected.isoformat(timespec="seconds")
    raw = httpx.get(f"{library.root_address}/requests/{number}.{library.output_format}").text
    for secret in ("张三", CALLER_PHONE, "138-1234-5678", "zhang@example.com"):
        assert secret not in raw
    assert "138****5678" in read["description"]


def test_post_answers_in_xml_with_the_documented_elements(endpoint, api_key):
    response = httpx.post(f"{endpoint}/requests.xml", data={"api_key": api_key, **FOOD})
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    (request,) = list(root)
    assert request.tag == "request"
    assert [child.tag for child in request] == [
        "service_request_id",
        "service_notice",
        "account_id",
    ]
    assert request.findtext("service_request_id").startswith("ZH")
    assert request.findtext("account_id") in (None, "")


def test_lat_long_without_address_is_routed_by_the_text_and_says_so(library, spec, api_key):
    answer = _post(
        spec,
        api_key,
        address_string="",
        description="唐家湾镇金鼎市场有商家卖过期食品",
        lat="22.3561",
        long="113.5872",
        media_url="https://example.com/photo.jpg",
    )
    assert "按诉求描述文字定位" in answer["service_notice"]
    read = library.get_service_request(answer["service_request_id"])
    assert float(read["lat"]) == pytest.approx(22.3561)
    assert float(read["long"]) == pytest.approx(113.5872)
    assert read["media_url"] == "https://example.com/photo.jpg"
    assert read["agency_responsible"] == _department_name(FOOD_DEPARTMENT)
    with db.transaction() as session:
        ticket = tickets_service.get(session, AGENT, read["service_request_id"])
        trail = tickets_service.trail(session, ticket)
        note = [a for a in trail if a.action == "open311_submitted"]
        assert note[0].detail["lat"] == pytest.approx(22.3561)
        assert note[0].detail["located_by"] == "text"
        version = ticket.version
    # The note did not touch the ticket row: same version as a ticket created directly, which
    # is the version the "created" event announced.
    direct = _open311_ticket_received(0)
    with db.transaction() as session:
        assert tickets_service.get(session, AGENT, direct).version == version


def test_the_reply_becomes_status_notes_and_closing_closes(library, spec, api_key):
    number = _post(spec, api_key)["service_request_id"]
    _act(number, "supervise", {"note": "内部督办：请加快"})
    _act(number, "accept")
    _act(number, "reply", {"reply": "已现场检查并下架过期食品，对商家立案调查。"})
    read = library.get_service_request(number)
    assert read["status"] == "open"
    assert read["status_notes"] == "已现场检查并下架过期食品，对商家立案调查。"
    raw = httpx.get(f"{library.root_address}/requests/{number}.{library.output_format}").text
    assert "内部督办" not in raw
    _act(number, "close", {"note": "内部备注"})
    closed = _as_list(library.get_service_requests(status="closed"))
    assert [r["service_request_id"] for r in closed] == [number]
    assert closed[0]["status"] == "closed"
    # (georeport cannot read an empty XML list, so the empty answers are read with the spec client)
    assert spec.get("requests", status="open") == (200, [])


# -- bad keys ------------------------------------------------------------------------------------


def test_missing_wrong_and_revoked_keys_are_refused_with_403(spec, api_key):
    status, body = spec.post_request(**FOOD)
    assert status == 403 and int(body[0]["code"]) == 403
    status, body = spec.post_request(api_key="not-a-key", **FOOD)
    assert status == 403 and int(body[0]["code"]) == 403 and body[0]["description"]

    assert _post(spec, api_key)["service_request_id"]
    result = CliRunner().invoke(open311_app, ["key", "revoke", api_key[:8]])
    assert result.exit_code == 0, result.output
    status, body = spec.post_request(api_key=api_key, **FOOD)
    assert status == 403 and "revoked" in body[0]["description"]
    assert len(spec.get("requests")[1]) == 1  # only the request made before the revocation


def test_a_bad_key_is_refused_before_the_form_is_judged(spec):
    status, body = spec.post_request(api_key="wrong")  # no service_code, no location either
    assert status == 403


# -- bad codes and parameters ------------------------------------------------------------------


def test_bad_service_codes_are_400_and_unknown_requests_404(library, spec, api_key):
    status, body = spec.post_request(api_key=api_key, **{**FOOD, "service_code": "NOPE"})
    assert status == 400 and int(body[0]["code"]) == 400 and "NOPE" in body[0]["description"]
    with pytest.raises(requests.HTTPError) as raised:
        library.get_service_requests(service_code="SC-02,NOPE")
    assert raised.value.response.status_code == 400
    with pytest.raises(requests.HTTPError) as raised:
        library.get_service_request("ZH20000101999999")
    assert raised.value.response.status_code == 404
    status, body = spec.get("requests/ZH20000101999999")
    assert status == 404 and int(body[0]["code"]) == 404


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"service_code": ""}, "service_code"),
        ({"address_string": ""}, "location"),
        ({"address_string": "", "address_id": "42"}, "address_id"),
        ({"lat": "22.3"}, "together"),
        ({"lat": "north", "long": "113.5"}, "lat"),
        ({"lat": "95", "long": "113.5"}, "lat"),
        ({"phone": "call me"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"description": "长" * 4001}, "description"),
        ({"media_url": "ftp://x"}, "media_url"),
    ],
)
def test_bad_parameters_are_400_and_create_nothing(spec, api_key, fields, words):
    status, body = spec.post_request(api_key=api_key, **{**FOOD, **fields})
    assert status == 400, body
    assert int(body[0]["code"]) == 400 and words in body[0]["description"]
    assert spec.get("requests")[1] == []


def test_unknown_format_is_a_404(endpoint):
    response = httpx.get(f"{endpoint}/services.yaml")
    assert response.status_code == 404
    assert json.loads(response.content)[0]["code"] == 404


def test_control_characters_never_break_the_xml(endpoint, api_key):
    fields = {**FOOD, "description": "过期食品\x01\x1f见附件", "api_key": api_key}
    number = httpx.post(f"{endpoint}/requests.json", data=fields).json()[0]["service_request_id"]
    response = httpx.get(f"{endpoint}/requests/{number}.xml")
    request = ET.fromstring(response.content).find("request")
    assert request.findtext("description") == "过期食品见附件"


# -- dates, filters, privacy -------------------------------------------------------------------


def _open311_ticket_received(days_ago: int) -> str:
    with db.transaction() as session:
        ticket, _ = tickets_service.create(
            session,
            actor="test",
            channel="open311",
            content="金鼎市场有商家卖过期食品",
            address="香洲区唐家湾镇",
            matter_code="SC-02",
            received_at=utcnow() - timedelta(days=days_ago),
        )
        return ticket.number


def test_date_ranges_default_to_90_days_and_may_not_be_longer(library, spec):
    recent, old = _open311_ticket_received(1), _open311_ticket_received(120)
    found = _as_list(library.get_service_requests())
    assert [r["service_request_id"] for r in found] == [recent]

    now = utcnow()
    start, end = now - timedelta(days=130), now - timedelta(days=100)
    found = _as_list(
        library.get_service_requests(
            start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end_date=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )
    assert [r["service_request_id"] for r in found] == [old]

    with pytest.raises(requests.HTTPError) as raised:
        library.get_service_requests(
            start_date=(now - timedelta(days=91)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            end_date=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    assert raised.value.response.status_code == 400
    status, body = spec.get(
        "requests", start_date="2026-01-01T00:00:00+08:00", end_date="2026-04-01T00:00:01+08:00"
    )
    assert status == 400 and "90 days" in body[0]["description"]
    status, body = spec.get("requests", start_date="2026-02-01", end_date="2026-01-01")
    assert status == 400 and "before" in body[0]["description"]
    status, body = spec.get("requests", start_date="last tuesday")
    assert status == 400 and "ISO 8601" in body[0]["description"]
    status, body = spec.get("requests", status="pending")
    assert status == 400


def test_request_ids_override_the_other_filters(library):
    recent, old = _open311_ticket_received(1), _open311_ticket_received(120)
    found = _as_list(
        library.get_service_requests(service_request_id=f"{old},{recent}", status="closed")
    )
    assert {r["service_request_id"] for r in found} == {old, recent}


def test_tickets_of_private_channels_are_not_readable(library, spec):
    with db.transaction() as session:
        ticket, _ = tickets_service.create(
            session,
            actor="agent1",
            channel="phone",
            content="金鼎市场有商家卖过期食品",
            address="香洲区唐家湾镇",
            caller_phone=CALLER_PHONE,
            matter_code="SC-02",
        )
        number = ticket.number
    status, _ = spec.get(f"requests/{number}")
    assert status == 404
    assert spec.get("requests", service_request_id=number) == (200, [])
    assert spec.get("requests") == (200, [])
