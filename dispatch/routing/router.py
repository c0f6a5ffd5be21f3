"""HTTP routes of routing: the preview the console shows, and the admins' rule editing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from dispatch.routing import models as m
from dispatch.routing import service, training
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import NotFound
from hotline.core.models import AuditEntry
from hotline.core.moments import Day, Moment

router = APIRouter(prefix="/api/v1/routing", tags=["routing"])

HotlineStaff = Annotated[
    Principal, Depends(require_roles("agent", "dispatcher", "supervisor", "admin"))
]
Admin = Annotated[Principal, Depends(require_roles("admin"))]


class PreviewRequest(BaseModel):
    text: str = Field("", max_length=5000, description="what the citizen said")
    address: str = Field("", max_length=500, description="where it happened")
    matter_code: str | None = Field(None, max_length=16, description="omit to use the best guess")
    received_at: Moment | None = Field(None, description="default: now")
    major: bool = Field(False, description="重大: escalate to the city department")
    multi_area: bool = Field(False, description="spans several areas: escalate to the city")


class Ref(BaseModel):
    code: str
    name: str


class Location(BaseModel):
    town: Ref | None
    area: Ref | None
    ambiguous: list[Ref]
    outside: bool
    source: str | None
    matched: list[str]


class Step(BaseModel):
    step: int
    code: str
    message: str


class Suggestion(BaseModel):
    code: str
    name: str
    score: float = Field(description="calibrated confidence in [0, 1]")
    urgent: bool = Field(False, description="an urgent matter: shown even when less likely")
    low_confidence: bool = Field(
        False, description="the best matter is unsure: the catch-all matter is offered too"
    )


class TownChoice(BaseModel):
    town: Ref
    department: Ref
    explanation: list[Step]


class Decision(BaseModel):
    matter: Ref
    level: str
    location: Location
    department: Ref
    rule_version: str
    escalated: bool
    reason_code: str | None
    candidates: list[Ref]
    explanation: list[Step]
    suggestions: list[Suggestion]
    needs_confirmation: bool
    low_confidence: bool = False
    suggested_by: str = Field("none", description="model, keywords (fallback) or none")
    by_town: list[TownChoice] = Field(
        default_factory=list,
        description="for each candidate town of an ambiguous place: the department the rules "
        "choose with that town fixed",
    )


@router.post("/preview", response_model=Decision)
def preview(body: PreviewRequest, session: SessionDep, _user: HotlineStaff) -> dict:
    """Where this request would go, why (each step, in Chinese, with codes), and suggestions."""
    return service.decide(
        session,
        text=body.text,
        address=body.address,
        matter_code=body.matter_code,
        received_at=body.received_at,
        major=body.major,
        multi_area=body.multi_area,
    )


@router.get("/suggest", response_model=list[Suggestion])
def suggest(
    session: SessionDep,
    _user: HotlineStaff,
    q: Annotated[str, Query(max_length=2000)],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[dict]:
    """Matters that fit a free text best (for suggestions as the agent types)."""
    understanding = service.current_routing(session).suggester.understand(q, limit=limit)
    return [
        {
            "code": s.code,
            "name": s.name,
            "score": round(s.score, 4),
            "urgent": s.urgent,
            "low_confidence": understanding.low_confidence,
        }
        for s in understanding.suggestions
    ]


class ModelVersion(BaseModel):
    id: int
    created_at: datetime
    created_by: str
    kind: str
    trained_on: dict[str, int]
    metrics: dict[str, float]
    active: bool


class TrainingRequested(BaseModel):
    job_id: str


@router.get("/models", response_model=list[ModelVersion])
def list_models(session: SessionDep, _admin: Admin) -> list[dict]:
    """The trained versions of the matter classifier, newest first; one is active."""
    return [training.describe(v) for v in training.list_versions(session)]


@router.post("/models/train", response_model=TrainingRequested, status_code=202)
def train_model(session: SessionDep, admin: Admin) -> dict:
    """Retrain the matter classifier now, in a worker; the new version becomes active."""
    return {"job_id": training.request_training(session, actor=admin.username)}


@router.post("/models/{version_id}/activate", response_model=ModelVersion)
def activate_model(
    session: SessionDep, admin: Admin, version_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> dict:
    """Suggest with this version from now on (rollback to an earlier one, or forward again)."""
    version = training.activate(session, version_id=version_id, actor=admin.username)
    return training.describe(version)


class MatterRead(BaseModel):
    code: str
    name: str
    category: str
    subcategory: str
    kind: str
    urgent: bool
    keywords: list[str]
    level: str
    type: str
    rule_version: str


MatterKind = Literal["咨询", "求助", "投诉", "举报", "建议"]


class MatterLeaf(BaseModel):
    code: str
    name: str
    kind: str
    urgent: bool
    level: str
    type: str


class SubcategoryNode(BaseModel):
    name: str
    count: int
    matters: list[MatterLeaf]


class CategoryNode(BaseModel):
    name: str
    count: int
    subcategories: list[SubcategoryNode]


class MatterTree(BaseModel):
    count: int = Field(description="matters in the tree")
    categories: list[CategoryNode]


@router.get("/matters/tree", response_model=MatterTree)
def matter_tree(
    session: SessionDep,
    _user: HotlineStaff,
    kind: Annotated[MatterKind | None, Query(description="only matters of this kind")] = None,
) -> dict:
    """The matter catalogue as a tree (category -> subcategory -> matter) with the number of
    matters under each node, in catalogue order, for browsing when the suggestions miss."""
    return service.matter_tree(session, kind=kind)


@router.get("/matters", response_model=list[MatterRead])
def list_matters(session: SessionDep, _user: HotlineStaff) -> list[dict]:
    """The matter catalogue with the rule in force today."""
    routing = service.current_routing(session)
    today = service.local_today()
    result = []
    for matter in routing.ruleset.matters:
        rule = matter.rule_on(today)
        result.append(
            {
                "code": matter.code,
                "name": matter.name,
                "category": matter.category,
                "subcategory": matter.subcategory,
                "kind": matter.kind,
                "urgent": matter.urgent,
                "keywords": list(matter.keywords),
                "level": rule.level,
                "type": rule.type,
                "rule_version": f"{matter.code}/v{rule.version}",
            }
        )
    return result


class RuleRead(BaseModel):
    version: int
    level: str
    type: str
    valid_from: date | None
    valid_until: date | None
    created_by: str
    note: str | None


@router.get("/matters/{code}/rules", response_model=list[RuleRead])
def matter_rules(code: str, session: SessionDep, _user: HotlineStaff) -> list[m.MatterRule]:
    """Every version of a matter's rule, oldest first."""
    rules = session.scalars(
        select(m.MatterRule).where(m.MatterRule.matter_code == code).order_by(m.MatterRule.version)
    ).all()
    if not rules:
        raise NotFound("routing.unknown_matter", f"unknown matter code {code!r}")
    return list(rules)


class RuleChange(BaseModel):
    level: Literal["city", "area", "town"]
    type: str = Field(max_length=32, description="department type code, e.g. market")
    effective_from: Day
    note: str | None = Field(None, max_length=1000)


@router.post("/matters/{code}/rules", response_model=RuleRead, status_code=201)
def change_rule(code: str, body: RuleChange, session: SessionDep, admin: Admin) -> m.MatterRule:
    """Open a new rule version from ``effective_from`` (audited; earlier requests keep the old)."""
    return service.change_matter_rule(
        session,
        actor=admin.username,
        matter_code=code,
        level=body.level,
        type=body.type,
        effective_from=body.effective_from,
        note=body.note,
    )


class DepartmentRead(BaseModel):
    code: str
    name: str
    level: str
    area: str | None
    town: str | None
    types: list[str]
    type_names: list[str] = Field(
        default_factory=list, description="the types' Chinese names, in the order of types"
    )
    active: bool


class DepartmentWrite(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    level: Literal["city", "area", "town", "desk"]
    types: list[str] = Field(default_factory=list)
    area: str | None = None
    town: str | None = None
    active: bool = True


@router.get("/departments", response_model=list[DepartmentRead])
def list_departments(session: SessionDep, _user: HotlineStaff) -> list[DepartmentRead]:
    names = {t.code: t.name for t in session.scalars(select(m.DepartmentType))}
    return [
        DepartmentRead.model_validate(d, from_attributes=True).model_copy(
            update={"type_names": [names.get(t, t) for t in d.types]}
        )
        for d in session.scalars(select(m.Department).order_by(m.Department.code))
    ]


@router.put("/departments/{code}", response_model=DepartmentRead)
def put_department(
    code: Annotated[str, Path(max_length=32)],
    body: DepartmentWrite,
    session: SessionDep,
    admin: Admin,
) -> m.Department:
    """Create or change a department (audited); refused if it would break the rules."""
    return service.save_department(session, actor=admin.username, code=code, **body.model_dump())


class PlaceWrite(BaseModel):
    town: str | None = Field(None, max_length=12)
    area: str | None = Field(None, max_length=16)
    ambiguous: list[Annotated[str, Field(max_length=12)]] = Field(
        default_factory=list, max_length=20, description="town codes the name may stand for"
    )
    note: str | None = Field(None, max_length=1000)


class PlaceRead(PlaceWrite):
    name: str


@router.put("/places/{name}", response_model=PlaceRead)
def put_place(
    name: Annotated[str, Path(max_length=64)], body: PlaceWrite, session: SessionDep, admin: Admin
) -> m.Place:
    """Create or change a place name of the gazetteer (audited)."""
    return service.save_place(session, actor=admin.username, name=name, **body.model_dump())


class AuditRead(BaseModel):
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict


@router.get("/audit", response_model=list[AuditRead])
def audit_log(
    session: SessionDep, _admin: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[AuditEntry]:
    """The latest changes to the routing rules, newest first."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.startswith("routing."))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
