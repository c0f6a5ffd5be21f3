"""HTTP routes of the citizens' portal (``/api/v1/portal``): public, limited, and leaking nothing.

No user account: a citizen proves a phone with a texted code (``/codes``, ``/codes/verify`` →
a phone token sent back as ``X-Phone-Token``), and follows a ticket with its tracking token
(``X-Tracking-Token``, a header rather than a URL so it stays out of access logs). Staff read a
request's photos at ``/photos/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, Header, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from dispatch.portal import service
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import AppError
from hotline.core.limits import LimiterUnavailable
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings

router = APIRouter(prefix="/api/v1/portal", tags=["citizens' portal"])
PhotoReader = Annotated[
    Principal, Depends(require_roles("agent", "dispatcher", "supervisor", "department"))
]
MAX_TEXT_FIELD = 4000
# The whole submission: the photos plus the text fields (the app's body limit uses it).
FORM_OVERHEAD = 64 * 1024


def submission_body_limit() -> int:
    s = get_settings()
    return s.portal_max_photos * s.portal_max_photo_bytes + FORM_OVERHEAD


def _limiter() -> redis.Redis:
    try:
        return get_redis()
    except RuntimeError as exc:  # the embedded Redis could not be started
        raise LimiterUnavailable() from exc


Limiter = Annotated[redis.Redis, Depends(_limiter)]


def _address(request: Request) -> str:
    # The peer, or the client a trusted proxy names (HOTLINE_FORWARDED_ALLOW_IPS via uvicorn).
    return request.client.host if request.client else "unknown"


class Place(BaseModel):
    code: str
    name: str


class Area(Place):
    towns: list[Place]


@router.get("/places", response_model=list[Area])
def portal_places(session: SessionDep) -> list[dict[str, Any]]:
    """Districts and functional areas with their towns, for the place pickers."""
    return service.places(session)


class Suggestions(BaseModel):
    low_confidence: bool
    matters: list[Place]


@router.get("/suggest", response_model=Suggestions)
def portal_suggest(
    request: Request,
    session: SessionDep,
    limiter: Limiter,
    q: Annotated[str, Query(max_length=service.MAX_CONTENT)],
) -> dict[str, Any]:
    """The matters the request's text most likely is, for the citizen to confirm."""
    service.limit_lookups(limiter, _address(request))
    return service.suggest(session, q)


class CodeRequest(BaseModel):
    phone: str = Field(max_length=32)


class CodeSent(BaseModel):
    phone: str = Field(description="masked")
    expires_in: int


@router.post("/codes", response_model=CodeSent, status_code=202)
def portal_send_code(body: CodeRequest, request: Request, limiter: Limiter) -> dict[str, Any]:
    """Text a verification code to a mobile phone (limited per phone, address and globally)."""
    return service.send_code(limiter, phone=body.phone, address=_address(request))


class CodeCheck(BaseModel):
    phone: str = Field(max_length=32)
    code: str = Field(max_length=12)


class PhoneToken(BaseModel):
    phone_token: str


@router.post("/codes/verify", response_model=PhoneToken)
def portal_verify_code(body: CodeCheck, limiter: Limiter) -> dict[str, Any]:
    """The phone token for the right code (30 minutes); five wrong codes void it."""
    return {"phone_token": service.verify_code(limiter, phone=body.phone, code=body.code)}


class Submitted(BaseModel):
    number: str
    token: str = Field(description="the private tracking token; the page is /m/t/{token}")
    merged: bool = Field(description="the same text from the same phone a moment ago")


def _text(form, name: str, limit: int = MAX_TEXT_FIELD) -> str:
    value = form.get(name) or ""
    if not isinstance(value, str):
        raise AppError("portal.bad_field", f"{name} must be text")
    if len(value) > limit:
        raise AppError("portal.too_long", f"{name} is longer than {limit} characters")
    return value


def _coordinate(value: str, bound: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise AppError("portal.bad_location", "a coordinate must be a number") from None
    if not -bound <= number <= bound:
        raise AppError("portal.bad_location", "the coordinate is out of range")
    return number


@router.post(
    "/requests",
    response_model=Submitted,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["content"],
                        "properties": {
                            "content": {"type": "string", "maxLength": service.MAX_CONTENT},
                            "name": {"type": "string", "maxLength": service.MAX_NAME},
                            "matter_code": {"type": "string", "maxLength": 16},
                            "area_code": {"type": "string", "maxLength": 16},
                            "town_code": {"type": "string", "maxLength": 12},
                            "address": {"type": "string", "maxLength": service.MAX_ADDRESS},
                            "lat": {"type": "string", "maxLength": 32},
                            "long": {"type": "string", "maxLength": 32},
                            "keep_photo_location": {"type": "string", "enum": ["", "1"]},
                            "photo": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def portal_submit(
    request: Request,
    session: SessionDep,
    limiter: Limiter,
    phone_token: Annotated[str | None, Header(alias="X-Phone-Token", max_length=2000)] = None,
) -> dict[str, Any]:
    """Submit a request (multipart form, photos as ``photo`` files) with a verified phone:
    a ticket of channel ``app``, routed and dispatched like every other."""
    phone = service.phone_from_token(phone_token)
    settings = get_settings()
    max_files = settings.portal_max_photos
    try:
        form = await request.form(max_files=max_files, max_fields=20)
    except Exception as exc:  # python-multipart's and Starlette's refusals of a bad form
        if getattr(exc, "status_code", None) == 413:
            raise
        raise AppError("portal.bad_form", "send the request as a multipart form") from exc
    try:
        photos = []
        for item in form.getlist("photo"):
            if not isinstance(item, StarletteUpload | UploadFile):
                raise AppError("portal.bad_photo", "photo must be a file")
            if item.size == 0 and not item.filename:
                continue  # an empty file input
            photos.append(await item.read(settings.portal_max_photo_bytes + 1))
        sub = service.Submission(
            content=_text(form, "content"),
            name=_text(form, "name", service.MAX_NAME),
            matter_code=_text(form, "matter_code", 16) or None,
            area_code=_text(form, "area_code", 16) or None,
            town_code=_text(form, "town_code", 12) or None,
            address=_text(form, "address", service.MAX_ADDRESS),
            lat=_coordinate(_text(form, "lat", 32), 90),
            long=_coordinate(_text(form, "long", 32), 180),
            keep_photo_location=_text(form, "keep_photo_location", 1) == "1",
            photos=photos,
        )
    finally:
        await form.close()
    # Routing, the database and re-encoding photos are blocking work: in the thread pool, as
    # FastAPI runs plain handlers, so that one submission never stalls the process's loop.
    return await run_in_threadpool(
        service.submit, session, limiter, phone=phone, address=_address(request), sub=sub
    )


class Lookup(BaseModel):
    number: str = Field(max_length=32)


class Found(BaseModel):
    number: str
    token: str


@router.post("/lookup", response_model=Found)
def portal_lookup(
    body: Lookup,
    request: Request,
    session: SessionDep,
    limiter: Limiter,
    phone_token: Annotated[str | None, Header(alias="X-Phone-Token", max_length=2000)] = None,
) -> dict[str, Any]:
    """A new tracking token for a ticket whose caller's phone was just verified (any channel)."""
    phone = service.phone_from_token(phone_token)
    return service.lookup(
        session, limiter, number=body.number, phone=phone, address=_address(request)
    )


class Step(BaseModel):
    step: str
    at: str | None
    text: str
    reply: str | None = None
    reopened: bool | None = None


class Tracked(BaseModel):
    number: str
    status: str
    status_text: str
    open: bool
    matter: str
    department: str
    content: str
    address: str
    received_at: str | None
    accept_deadline: str | None
    finish_deadline: str | None
    reply: str | None
    satisfaction: str | None
    can_rate: bool
    reopen_count: int
    photos: list[int]
    timeline: list[Step]


# Optional here so that a missing token answers as a wrong one does (404), not with a 422.
TrackingToken = Annotated[str | None, Header(alias="X-Tracking-Token", max_length=64)]


@router.get("/track", response_model=Tracked)
def portal_track(
    request: Request, session: SessionDep, limiter: Limiter, token: TrackingToken = None
) -> dict[str, Any]:
    """The ticket behind a tracking token: status, public timeline, reply, deadlines."""
    service.limit_lookups(limiter, _address(request))
    return service.view(session, token)


@router.get("/track/photos/{photo_id}", response_class=Response)
def portal_track_photo(
    photo_id: int,
    request: Request,
    session: SessionDep,
    limiter: Limiter,
    token: TrackingToken = None,
) -> Response:
    """One of the ticket's photos, for the citizen holding its tracking token."""
    service.limit_lookups(limiter, _address(request))
    photo = service.photo_for_link(session, token, photo_id)
    return Response(photo.data, media_type=photo.content_type, headers=_PHOTO_HEADERS)


class Rating(BaseModel):
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    resolved: bool | None = None


@router.post("/track/rating", response_model=Tracked)
def portal_rate(
    body: Rating,
    request: Request,
    session: SessionDep,
    limiter: Limiter,
    token: TrackingToken = None,
) -> dict[str, Any]:
    """The citizen's 回访 of the reply: unsatisfied reopens the ticket (重办)."""
    service.limit_lookups(limiter, _address(request))
    return service.rate(
        session, token=token, satisfaction=body.satisfaction, resolved=body.resolved
    )


_PHOTO_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
}


@router.get("/photos/{photo_id}", response_class=Response)
def portal_photo(photo_id: int, session: SessionDep, principal: PhotoReader) -> Response:
    """A photo a citizen sent, for hotline staff and the departments on its ticket."""
    photo = service.photo_for_staff(session, principal, photo_id)
    return Response(photo.data, media_type=photo.content_type, headers=_PHOTO_HEADERS)
