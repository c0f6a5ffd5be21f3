"""HTTP routes of the 110 linkage: the two lists, an agent's handover, 110's transfers.

``POST /api/v1/police-link/from-110`` is called by the 110 system, another system, with the
shared ``X-CTI-Token`` header, like the telephony system's call events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from hotline.calls import police
from hotline.calls.router import require_cti
from hotline.core.auth import Principal, SessionDep, require_roles

router = APIRouter(prefix="/api/v1", tags=["police-link"])

HotlineStaff = Annotated[Principal, Depends(require_roles("agent", "dispatcher", "supervisor"))]
Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]
Agent = Annotated[Principal, Depends(require_roles("agent"))]


class Matter(BaseModel):
    name: str = Field(min_length=1, max_length=police.MAX_NAME_CHARS)
    keywords: list[str] = Field(default_factory=list, max_length=police.MAX_KEYWORDS)


class MatterLists(BaseModel):
    to_110: list[Matter]
    from_110: list[Matter]


class MatterListChange(BaseModel):
    direction: Literal["to_110", "from_110"]
    matters: list[Matter] = Field(min_length=1, max_length=200)


@router.get("/police-link/matters", response_model=MatterLists)
def get_matters(session: SessionDep, _user: HotlineStaff) -> dict[str, Any]:
    """What goes to 110 (``to_110``) and what 110 passes to 12345 (``from_110``)."""
    return police.matters(session)


@router.put("/police-link/matters", response_model=MatterLists)
def put_matters(
    body: MatterListChange, session: SessionDep, principal: Supervisor
) -> dict[str, Any]:
    """Replace one direction's whole list (audited); the other list stays as it is."""
    return police.replace_matters(
        session, body.direction, [m.model_dump() for m in body.matters], principal.username
    )


class HandoverIn(BaseModel):
    matter: str = Field(min_length=1, max_length=police.MAX_NAME_CHARS)
    note: str = Field("", max_length=2000)


class HandoverRead(BaseModel):
    id: int
    call_id: str
    matter: str
    note: str
    agent: str
    at: str


@router.post("/calls/{call_id}/handover-110", response_model=HandoverRead, status_code=201)
def post_handover(
    call_id: str, body: HandoverIn, session: SessionDep, principal: Agent
) -> dict[str, Any]:
    """The agent hands the call over to 110 for a matter of the ``to_110`` list."""
    return police.hand_over(
        session, call_id=call_id, matter=body.matter, note=body.note, agent=principal.username
    )


class TransferFrom110(BaseModel):
    police_ref: str = Field(min_length=1, max_length=64, description="110's incident number")
    content: str = Field(min_length=1, max_length=5000)
    address: str = Field("", max_length=500)
    caller_name: str = Field("", max_length=64)
    caller_phone: str = Field("", max_length=32, pattern=r"^[0-9+\-]*$")
    matter_code: str | None = Field(None, max_length=16, description="omit to use the best guess")


class TransferReceived(BaseModel):
    number: str
    police_ref: str
    repeated: bool
    possible_duplicates: list[str]
    listed_matter: str | None
    department: str


@router.post(
    "/police-link/from-110",
    response_model=TransferReceived,
    status_code=201,
    dependencies=[Depends(require_cti)],
    responses={200: {"description": "sent before: the ticket made the first time"}},
)
def post_from_110(body: TransferFrom110, session: SessionDep, response: Response) -> dict:
    """A non-emergency matter from the 110 desk becomes a ticket of channel 110 (201); the
    same ``police_ref`` again returns that ticket (200)."""
    result, created = police.receive_from_110(session, **body.model_dump())
    if not created:
        response.status_code = 200
    return result
