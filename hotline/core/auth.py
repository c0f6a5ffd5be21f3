"""People, passwords, tokens and role guards for HTTP and websocket routes.

Passwords are hashed with argon2id (argon2-cffi). Access tokens are signed JWTs carrying the
user name; roles and departments are re-read from the database on every request so that a
revoked role or a deactivated account takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.db import session_dependency, utcnow
from hotline.core.errors import AppError
from hotline.core.models import ROLES, User, UserDepartment, UserRole
from hotline.core.settings import get_settings

_hasher = PasswordHasher()
_ALGORITHM = "HS256"
TOKEN_URL = "/api/v1/auth/token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

# A hash to verify against when the user does not exist, so that timing does not reveal
# which user names are valid.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller as the domains see it."""

    user_id: int
    username: str
    roles: frozenset[str]
    departments: frozenset[str]

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    roles: list[str],
    departments: list[str] | None = None,
    full_name: str = "",
) -> User:
    """Create a user, or update the password, roles and departments of an existing one."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise AppError("auth.unknown_role", f"unknown role(s) {unknown}; known: {list(ROLES)}")
    if not username or len(username) > 64:
        raise AppError("auth.bad_username", "user name must be 1 to 64 characters")
    if len(password) < 8:
        raise AppError("auth.weak_password", "password must be at least 8 characters")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, password_hash=hash_password(password), full_name=full_name)
        session.add(user)
    else:
        user.password_hash = hash_password(password)
        user.full_name = full_name or user.full_name
    user.roles = [UserRole(role=r) for r in sorted(set(roles))]
    user.departments = [UserDepartment(department_code=d) for d in sorted(set(departments or []))]
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def create_access_token(username: str, *, minutes: int | None = None) -> str:
    settings = get_settings()
    now = utcnow()
    claims = {
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes or settings.access_token_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=_ALGORITHM)


class AuthError(AppError):
    status_code = 401


def principal_from_token(session: Session, token: str | None) -> Principal:
    """Check a bearer token and load the caller; raises ``AuthError`` (401) when it is not valid."""
    if not token:
        raise AuthError("auth.unauthenticated", "a bearer token is required")
    try:
        claims = jwt.decode(
            token, get_settings().secret_key.get_secret_value(), algorithms=[_ALGORITHM]
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("auth.token_expired", "the token has expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("auth.invalid_token", "the token is not valid") from exc
    user = session.scalar(select(User).where(User.username == claims.get("sub")))
    if user is None or not user.is_active:
        raise AuthError("auth.invalid_token", "the token's user no longer exists or is inactive")
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(user.role_names),
        departments=frozenset(user.department_codes),
    )


SessionDep = Annotated[Session, Depends(session_dependency, scope="function")]


def current_principal(
    session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    try:
        return principal_from_token(session, token)
    except AuthError as exc:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=exc.message,
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


def require_roles(*roles: str):
    """A dependency that lets through only callers holding one of ``roles`` (admin always)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles in guard: {unknown}")

    def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(*roles, "admin"):
            raise AppError(
                "auth.forbidden",
                f"this action needs one of the roles {sorted(roles)}",
                status_code=403,
            )
        return principal

    guard.__name__ = f"require_{'_or_'.join(roles) or 'any'}"
    return guard


def websocket_principal(session: Session, token: str | None, *roles: str) -> Principal:
    """The websocket counterpart of ``require_roles``: raises ``AuthError`` or a 403 AppError."""
    principal = principal_from_token(session, token)
    if roles and not principal.has_any(*roles, "admin"):
        raise AppError("auth.forbidden", "role not allowed on this socket", status_code=403)
    return principal
