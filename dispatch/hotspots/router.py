"""HTTP routes of hot spots: the list the wall and the desk show, merging and dismissing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from dispatch.hotspots import service
from hotline.core.auth import Principal, SessionDep, current_principal
from hotline.core.moments import Moment

router = APIRouter(prefix="/api/v1", tags=["hotspots"])

Caller = Annotated[Principal, Depends(current_principal)]
# A string, so a caller without the role hears 403 before anyone tells it the id is malformed.
HotspotId = Annotated[str, Path(max_length=20)]


def _id(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 19 else 0


class HotspotRead(BaseModel):
    id: int
    kind: Literal["surge", "incident"]
    status: str
    matter_code: str
    town_code: str | None
    area_code: str | None
    place_name: str = Field(description="the town's or area's name")
    ticket_numbers: list[str]
    first_at: datetime
    last_at: datetime
    score: float = Field(description="incident: its requests; surge: −log10 of the Poisson p")
    expected: float | None = Field(description="surge: the usual count of the hour")
    summary: str
    parent: str | None = Field(description="once merged: the parent ticket")


class HotspotTicketRead(BaseModel):
    number: str
    status: str
    content: str
    address: str
    matter_code: str
    lead_department: str
    received_at: datetime
    parent: str | None


class HotspotDetail(HotspotRead):
    tickets: list[HotspotTicketRead]


class MergeBody(BaseModel):
    parent: str | None = Field(None, max_length=24, description="default: the earliest open ticket")


class DismissBody(BaseModel):
    note: str = Field("", max_length=500)


@router.get("/hotspots", response_model=list[HotspotRead])
def list_hotspots(
    session: SessionDep,
    principal: Caller,
    since: Annotated[Moment | None, Query(description="default: the last 24 hours")] = None,
    status: Annotated[Literal["open", "merged", "dismissed"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Hot spots (热点) active since ``since``: surges and incidents. Hotline staff only."""
    return service.list_hotspots(session, principal, since=since, status=status, limit=limit)


@router.get("/hotspots/{hotspot_id}", response_model=HotspotDetail)
def get_hotspot(hotspot_id: HotspotId, session: SessionDep, principal: Caller) -> dict:
    return service.detail(session, principal, _id(hotspot_id))


@router.post("/hotspots/{hotspot_id}/merge", response_model=HotspotDetail)
def merge_hotspot(
    hotspot_id: HotspotId,
    session: SessionDep,
    principal: Caller,
    body: Annotated[MergeBody | None, Body()] = None,
) -> dict:
    """并单: the hot spot's open tickets go under one parent (dispatcher, supervisor)."""
    return service.merge(session, principal, _id(hotspot_id), parent=(body or MergeBody()).parent)


@router.post("/hotspots/{hotspot_id}/unmerge", response_model=HotspotDetail)
def unmerge_hotspot(hotspot_id: HotspotId, session: SessionDep, principal: Caller) -> dict:
    return service.unmerge(session, principal, _id(hotspot_id))


@router.post("/hotspots/{hotspot_id}/dismiss", response_model=HotspotDetail)
def dismiss_hotspot(
    hotspot_id: HotspotId,
    session: SessionDep,
    principal: Caller,
    body: Annotated[DismissBody | None, Body()] = None,
) -> dict:
    return service.dismiss(session, principal, _id(hotspot_id), (body or DismissBody()).note)
