"""HTTP routes for administrators: user accounts and the audit log.

Until these existed, accounts were managed only with ``hotline user …``; the routes call the
same functions of ``hotline.core.auth`` (every change audited with the admin as actor; a new
password, a change of roles or departments and disabling end the user's sessions at once).

The core owns users but not departments (the dispatch domain does): whether a department
code exists is asked of a checker the composition root registers (``set_department_check``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core import auth
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import AppError
from hotline.core.models import ROLES, AuditEntry, User, UserDepartment, UserRole
from hotline.core.moments import Moment

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]

UserName = Annotated[str, Path(min_length=1, max_length=64)]
RoleName = Annotated[str, Field(min_length=1, max_length=32)]
DepartmentCode = Annotated[str, Field(min_length=1, max_length=32)]

# Returns the codes among the given ones that name no department (dispatch owns departments).
DepartmentCheck = Callable[[Session, list[str]], list[str]]
_department_check: DepartmentCheck | None = None


def set_department_check(check: DepartmentCheck | None) -> None:
    """Register how unknown department codes are found (``hotline.app`` does, at start)."""
    global _department_check
    _department_check = check


def _check_departments(session: Session, codes: list[str] | None) -> None:
    if not codes or _department_check is None:
        return
    unknown = _department_check(session, codes)
    if unknown:
        raise AppError(
            "auth.unknown_department",
            f"unknown department(s) {sorted(unknown)}",
            status_code=422,
        )


class UserRead(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    departments: list[str]
    active: bool
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    full_name: str = Field("", max_length=128)
    password: str = Field(min_length=8, max_length=1024)
    roles: list[RoleName] = Field(min_length=1, max_length=len(ROLES))
    departments: list[DepartmentCode] = Field(default_factory=list, max_length=20)


class UserChange(BaseModel):
    """Only what is given changes."""

    full_name: str | None = Field(None, max_length=128)
    roles: list[RoleName] | None = Field(None, min_length=1, max_length=len(ROLES))
    departments: list[DepartmentCode] | None = Field(None, max_length=20)
    active: bool | None = Field(None, description="false: disabled, its sessions end at once")


class PasswordReset(BaseModel):
    password: str = Field(min_length=8, max_length=1024)


class SessionsEnd(BaseModel):
    reason: str = Field("", max_length=200)


def _read(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "roles": user.role_names,
        "departments": user.department_codes,
        "active": user.is_active,
        "created_at": user.created_at,
    }


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AppError("auth.unknown_user", f"no user {username!r}", status_code=404)
    return user


@router.get("/users", response_model=list[UserRead])
def list_users(
    session: SessionDep,
    _admin: Admin,
    q: Annotated[str | None, Query(max_length=64, description="part of name or full name")] = None,
    role: Annotated[str | None, Query(max_length=32)] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[dict[str, Any]]:
    """Accounts by user name, with roles, departments and whether they may log in."""
    query = select(User).order_by(User.username).limit(limit)
    if q:
        pattern = f"%{q}%"
        query = query.where(User.username.ilike(pattern) | User.full_name.ilike(pattern))
    if role:
        query = query.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role)))
    if department:
        query = query.where(
            User.id.in_(
                select(UserDepartment.user_id).where(UserDepartment.department_code == department)
            )
        )
    if active is not None:
        query = query.where(User.is_active == active)
    return [_read(user) for user in session.scalars(query)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, session: SessionDep, admin: Admin) -> dict[str, Any]:
    """A new account (``auth.user_exists`` 409 if the name is taken; ``auth.unknown_role``,
    ``auth.department_required`` (the department role needs a department),
    ``auth.unknown_department``, ``auth.weak_password``: 400/422)."""
    _check_departments(session, body.departments)
    user = auth.add_user(
        session,
        username=body.username,
        password=body.password,
        roles=body.roles,
        departments=body.departments,
        full_name=body.full_name,
        actor=admin.username,
    )
    return _read(user)


@router.get("/users/{username}", response_model=UserRead)
def get_user(username: UserName, session: SessionDep, _admin: Admin) -> dict[str, Any]:
    return _read(_user(session, username))


@router.patch("/users/{username}", response_model=UserRead)
def change_user(
    username: UserName, body: UserChange, session: SessionDep, admin: Admin
) -> dict[str, Any]:
    """Change full name, roles, departments or whether the account is active. A change of
    roles or departments, and disabling, end the user's sessions at once. An admin cannot
    disable their own account or take their own admin role (``admin.self_lockout``)."""
    user = _user(session, username)
    if user.username == admin.username and (
        body.active is False or (body.roles is not None and "admin" not in body.roles)
    ):
        raise AppError(
            "admin.self_lockout",
            "you cannot disable your own account or remove your own admin role",
            status_code=409,
        )
    if body.roles is not None or body.departments is not None:
        roles = body.roles if body.roles is not None else user.role_names
        departments = body.departments if body.departments is not None else user.department_codes
        if "department" in roles and not departments:
            raise AppError(
                "auth.department_required", "the department role needs at least one department"
            )
        _check_departments(session, body.departments)
    if body.roles is not None or body.departments is not None or body.full_name is not None:
        user = auth.update_user(
            session,
            username=username,
            roles=body.roles,
            departments=body.departments,
            full_name=body.full_name,
            actor=admin.username,
        )
        if body.full_name is not None and body.full_name != user.full_name:
            user.full_name = body.full_name  # update_user ignores an empty name
    if body.active is not None:
        user = auth.set_user_active(session, username, body.active, actor=admin.username)
    session.flush()
    return _read(user)


@router.post("/users/{username}/password", response_model=UserRead)
def reset_password(
    username: UserName, body: PasswordReset, session: SessionDep, admin: Admin
) -> dict[str, Any]:
    """Set a new password for the user (tell them; they may change it themselves); every
    session of the user ends."""
    _user(session, username)
    return _read(
        auth.change_password(
            session, username=username, new_password=body.password, actor=admin.username
        )
    )


@router.post("/users/{username}/sessions/end", response_model=UserRead)
def end_sessions(
    username: UserName, body: SessionsEnd, session: SessionDep, admin: Admin
) -> dict[str, Any]:
    """Log the user out everywhere now (a lost phone, a shared screen); audited."""
    user = _user(session, username)
    auth.revoke_sessions(session, user)
    session.add(
        AuditEntry(
            actor=admin.username,
            action="user.sessions_ended",
            entity="user",
            entity_id=user.username,
            detail={"reason": body.reason},
        )
    )
    session.flush()
    return _read(user)


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditRead]
    next_before: int | None = Field(description="pass as before_id for the next (older) page")


@router.get("/audit", response_model=AuditPage)
def audit_log(
    session: SessionDep,
    _admin: Admin,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="an action, or a prefix ending in '.'")
    ] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[Moment | None, Query(description="from this moment on")] = None,
    until: Annotated[Moment | None, Query(description="before this moment")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Every audited change (users, routing, calendar, Open311 keys, prompts, articles …),
    newest first, filtered by who, what and when."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        if action.endswith("."):
            query = query.where(AuditEntry.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == action)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "entries": [AuditRead.model_validate(row, from_attributes=True) for row in rows],
        "next_before": rows[-1].id if more and rows else None,
    }


__all__ = ["router", "set_department_check"]
