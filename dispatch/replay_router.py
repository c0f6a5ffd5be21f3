"""HTTP routes for a draft of routing rules: replay it on past tickets, then publish it.

The draft is what ``hotline route replay`` reads from YAML (``dispatch.replay``), sent as
JSON: the admins' page keeps it while it is being edited and replays it as often as needed.
Publishing opens a new version of each changed matter's rule from the day given, the same
audited change as ``POST /api/v1/routing/matters/{code}/rules``, all of them or none.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from dispatch import replay
from dispatch.routing import service as routing_service
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import AppError
from hotline.core.moments import Day

router = APIRouter(prefix="/api/v1/routing/draft", tags=["routing"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]

MAX_DRAFT_ROWS = 500
DEFAULT_REPLAY_DAYS = 90


class DraftMatter(BaseModel):
    code: str = Field(min_length=1, max_length=16)
    level: Literal["city", "area", "town"]
    type: str = Field(min_length=1, max_length=32, description="department type code")


class DraftDepartment(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field("", max_length=128)
    level: Literal["city", "area", "town", "desk"]
    area: str | None = Field(None, max_length=16)
    town: str | None = Field(None, max_length=12)
    types: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=50)
    active: bool = True


class Draft(BaseModel):
    matters: list[DraftMatter] = Field(default_factory=list, max_length=MAX_DRAFT_ROWS)
    departments: list[DraftDepartment] = Field(default_factory=list, max_length=MAX_DRAFT_ROWS)


class ReplayRequest(Draft):
    since: Day | None = Field(None, description=f"default: {DEFAULT_REPLAY_DAYS} days ago")


class ReplayRead(BaseModel):
    since: date
    tickets: int = Field(description="tickets replayed")
    moved: int = Field(description="of them, routed elsewhere under the draft")
    per_department: dict[str, dict[str, int]]
    moves: list[dict[str, Any]]
    moved_tickets: list[dict[str, Any]] = Field(
        description=f"the first {replay.MOVED_TICKETS_LISTED} tickets that would move"
    )
    names: dict[str, str] = Field(description="department names by code")


class PublishRequest(BaseModel):
    matters: list[DraftMatter] = Field(min_length=1, max_length=MAX_DRAFT_ROWS)
    effective_from: Day
    note: str | None = Field(None, max_length=1000)


class Published(BaseModel):
    matter_code: str
    version: int
    level: str
    type: str
    valid_from: date | None


def _draft_document(draft: Draft) -> dict[str, Any]:
    codes = [m.code for m in draft.matters]
    if len(set(codes)) != len(codes):
        raise AppError("replay.duplicate_matter", "the draft names a matter more than once")
    return {
        "matters": [m.model_dump() for m in draft.matters],
        "departments": [d.model_dump() for d in draft.departments],
    }


@router.post("/replay", response_model=ReplayRead)
def replay_draft(body: ReplayRequest, session: SessionDep, _admin: Admin) -> dict[str, Any]:
    """What-if: route every ticket received since ``since`` under the draft and report which
    would go to another department (nothing is changed)."""
    since = body.since or routing_service.local_today() - timedelta(days=DEFAULT_REPLAY_DAYS)
    report = replay.replay(session, _draft_document(body), since)
    involved = set(report.per_department)
    return {
        **report.as_dict(),
        "since": since,
        "names": {code: name for code, name in report.names.items() if code in involved},
    }


@router.post("/publish", response_model=list[Published])
def publish_draft(body: PublishRequest, session: SessionDep, admin: Admin) -> list[dict[str, Any]]:
    """Open a new rule version of each matter in the draft from ``effective_from`` (each
    audited as ``routing.rule_changed``); one refused matter refuses them all."""
    document = _draft_document(Draft(matters=body.matters))
    # Checked as a whole first: a draft that makes the rule set inconsistent changes nothing.
    replay.draft_ruleset(routing_service.current_routing(session).ruleset, document)
    published = []
    for matter in body.matters:
        rule = routing_service.change_matter_rule(
            session,
            actor=admin.username,
            matter_code=matter.code,
            level=matter.level,
            type=matter.type,
            effective_from=body.effective_from,
            note=body.note,
        )
        published.append(
            {
                "matter_code": matter.code,
                "version": rule.version,
                "level": rule.level,
                "type": rule.type,
                "valid_from": rule.valid_from,
            }
        )
    return published
