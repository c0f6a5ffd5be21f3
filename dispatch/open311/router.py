"""HTTP routes of the citizen channels: Open311 GeoReport v2, its API keys, the progress lookup.

One ``router`` carries every route (absolute paths, no prefix):

* ``/open311/v2/…`` — GeoReport v2 in JSON or XML, chosen by the extension as the
  specification says (``services.json``, ``requests/{id}.xml``); errors in its own format,
  ``[{"code": 400, "description": "…"}]`` or ``<errors><error>…</error></errors>``.
* ``/api/v1/open311/keys`` — admins issue, list and revoke API keys.
* ``/api/v1/public/progress`` — a citizen checks a ticket with its number and phone digits.
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from dispatch.open311 import service
from dispatch.open311.models import Open311ApiKey
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.redis import get_redis

FORMATS = {"json": "application/json; charset=utf-8", "xml": "application/xml; charset=utf-8"}
# Lists in the specification's XML: the element of each item, by the element of the list.
_XML_ITEM = {"attributes": "attribute", "values": "value"}
# Characters XML 1.0 cannot carry at all; dropped so that every answer is well-formed.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# -- rendering -------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        child_tag = _XML_ITEM.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, child_tag), item)
    else:
        element.text = _text(value)


def to_xml(root_tag: str, item_tag: str | None, body: Any) -> bytes:
    """``body`` as XML under ``root_tag``; a list puts each item in an ``item_tag`` element."""
    root = ET.Element(root_tag)
    if item_tag is None:
        _fill(root, body)
    else:
        for item in body:
            _fill(ET.SubElement(root, item_tag), item)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _answer(fmt: str, root_tag: str, item_tag: str | None, body: Any, status: int = 200):
    if fmt == "xml":
        content = to_xml(root_tag, item_tag, body)
    else:
        content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type=FORMATS[fmt])


def _error(fmt: str, status: int, description: str) -> Response:
    return _answer(fmt, "errors", "error", [{"code": status, "description": description}], status)


def _georeport(endpoint: Callable[..., Response]) -> Callable[..., Response]:
    """Check the format, and answer ``Open311Error`` in the specification's error format.

    The transaction is rolled back by hand: an exception turned into a response before the
    session dependency sees it (in a route class, say) would let the request commit.
    """

    @functools.wraps(endpoint)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        fmt = kwargs["fmt"]
        try:
            if fmt not in FORMATS:
                raise service.Open311Error(404, f"unknown format {fmt!r}; use .json or .xml")
            return endpoint(*args, **kwargs)
        except service.Open311Error as exc:
            kwargs["session"].rollback()
            return _error(fmt if fmt in FORMATS else "json", exc.status_code, exc.message)

    return guarded


# -- GeoReport v2 ----------------------------------------------------------------------------------

georeport_router = APIRouter(prefix="/open311/v2", tags=["open311"])
Fmt = Annotated[str, Path(description="the answer's format: `json` or `xml`")]


@georeport_router.get("/services.{fmt}")
@_georeport
def open311_services(fmt: Fmt, session: SessionDep) -> Response:
    """Every service (one per matter of the catalogue) with its group and keywords."""
    return _answer(fmt, "services", "service", service.services(session))


@georeport_router.get("/services/{code}.{fmt}")
@_georeport
def open311_service_definition(code: str, fmt: Fmt, session: SessionDep) -> Response:
    """The service definition (its attributes; none here, so an empty list)."""
    return _answer(fmt, "service_definition", None, service.service_definition(session, code))


async def _form_items(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    # Uploaded files (a "media" part) are not kept: media_url is the way to attach a photo.
    return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]


@georeport_router.post("/requests.{fmt}")
@_georeport
def open311_post_request(
    fmt: Fmt,
    session: SessionDep,
    items: Annotated[list[tuple[str, str]], Depends(_form_items)],
) -> Response:
    """Create a service request from a form: api_key, service_code, description, a location
    (address_string or lat and long), phone, first_name/last_name or name, email,
    media_url and attribute[…]. The ticket is routed like one from any other channel."""
    item = service.submit(session, items)
    return _answer(fmt, "service_requests", "request", [item])


@georeport_router.get("/requests.{fmt}")
@_georeport
def open311_requests(
    fmt: Fmt,
    session: SessionDep,
    service_request_id: Annotated[str | None, Query(description="comma list")] = None,
    service_code: Annotated[str | None, Query(description="comma list")] = None,
    start_date: Annotated[str | None, Query(description="ISO 8601")] = None,
    end_date: Annotated[str | None, Query(description="ISO 8601, ≤ 90 days after")] = None,
    status: Annotated[str | None, Query(description="open, closed or both")] = None,
) -> Response:
    """Service requests received in a window of at most 90 days (default: the last 90 days)."""
    found = service.find_requests(
        session,
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
    )
    return _answer(fmt, "service_requests", "request", found)


@georeport_router.get("/requests/{number}.{fmt}")
@_georeport
def open311_request(number: str, fmt: Fmt, session: SessionDep) -> Response:
    """One service request, as a list of one (the specification's shape)."""
    return _answer(fmt, "service_requests", "request", [service.get_request(session, number)])


# -- API keys --------------------------------------------------------------------------------------

keys_router = APIRouter(prefix="/api/v1/open311/keys", tags=["open311"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="who the key is for")


class KeyRead(BaseModel):
    prefix: str
    name: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None
    active: bool


class KeyCreated(KeyRead):
    key: str = Field(description="shown this once; only its hash is stored")


def _key_read(row: Open311ApiKey) -> dict[str, Any]:
    return KeyRead.model_validate(row, from_attributes=True).model_dump()


@keys_router.post("", response_model=KeyCreated, status_code=201)
def open311_create_key(body: KeyCreate, session: SessionDep, admin: Admin) -> dict[str, Any]:
    """Issue an API key for an Open311 client; the key is in this answer and nowhere else."""
    row, key = service.create_key(session, name=body.name, actor=admin.username)
    return {**_key_read(row), "key": key}


@keys_router.get("", response_model=list[KeyRead])
def open311_list_keys(session: SessionDep, _admin: Admin) -> list[dict[str, Any]]:
    """Every key, newest first, revoked ones included (never the keys themselves)."""
    return [_key_read(row) for row in service.list_keys(session)]


@keys_router.delete("/{prefix}", response_model=KeyRead)
def open311_revoke_key(prefix: str, session: SessionDep, admin: Admin) -> dict[str, Any]:
    """Revoke a key at once; its client gets 403 from its next request on."""
    return _key_read(service.revoke_key(session, prefix=prefix, actor=admin.username))


# -- public progress lookup ------------------------------------------------------------------------

progress_router = APIRouter(prefix="/api/v1/public", tags=["public"])


class Progress(BaseModel):
    number: str
    status: str
    status_text: str
    open: bool
    service_name: str
    agency_responsible: str
    received_at: str
    expected_at: str | None
    replied_at: str | None
    closed_at: str | None
    reply: str | None = Field(description="the department's public reply")


@progress_router.get(
    "/progress",
    response_model=Progress,
    responses={404: {"description": "no match"}, 429: {"description": "rate limited"}},
)
def public_progress(
    request: Request,
    session: SessionDep,
    number: Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")],
    phone_last4: Annotated[str, Query(pattern=r"^[0-9]{4}$")],
) -> dict[str, Any]:
    """A ticket's status and public reply, for whoever knows its number and the caller's
    phone's last four digits. A wrong guess and an unknown number answer the same 404."""
    # Behind a reverse proxy this is the client's address only if uvicorn trusts the proxy
    # (--forwarded-allow-ips); otherwise every citizen would share the proxy's limit.
    client_ip = request.client.host if request.client else "unknown"
    try:
        limiter = get_redis()
    except RuntimeError as exc:  # the embedded Redis could not be started
        raise service.LookupUnavailable(
            "public.unavailable", "the progress lookup is unavailable; try again later"
        ) from exc
    try:
        return service.progress(
            session, limiter, number=number, phone_last4=phone_last4, client_ip=client_ip
        )
    except service.RateLimited as exc:
        raise HTTPException(
            status_code=429, detail=exc.message, headers={"Retry-After": str(exc.retry_after)}
        ) from exc


router = APIRouter()
router.include_router(georeport_router)
router.include_router(keys_router)
router.include_router(progress_router)
