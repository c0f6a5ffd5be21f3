"""People, passwords, tokens and role guards for HTTP and websocket routes.

Passwords are hashed with argon2id (argon2-cffi). Access tokens are signed JWTs carrying the
user name, an expiry and the user's token version; roles and departments are re-read from the
database on every request so that a revoked role or a deactivated account takes effect at once.
A new password, a role or department change and disabling the account raise the version, which
ends every token issued before (and, through an ``auth.sessions`` event, every open websocket).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import jwt
import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.db import session_dependency, utcnow
from hotline.core.errors import AppError
from hotline.core.events import publish_after_commit
from hotline.core.models import ROLES, AuditEntry, User, UserDepartment, UserRole
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
_ALGORITHM = "HS256"
TOKEN_URL = "/api/v1/auth/token"
# Published (after commit) when a user's tokens stop being valid; no role may subscribe to it.
SESSIONS_TOPIC = "auth.sessions"
# Every token must carry these; one without an expiry or a version would never die.
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "ver"]
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
    token_version: int = 0

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_user_fields(
    username: str, password: str | None, roles: list[str] | None, departments: list[str] | None
) -> None:
    if roles is not None:
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise AppError("auth.unknown_role", f"unknown role(s) {unknown}; known: {list(ROLES)}")
        if "department" in roles and not departments:
            raise AppError(
                "auth.department_required", "the department role needs at least one department"
            )
    if not username or len(username) > 64:
        raise AppError("auth.bad_username", "user name must be 1 to 64 characters")
    if password is not None and len(password) < 8:
        raise AppError("auth.weak_password", "password must be at least 8 characters")
    if password is not None and len(password) > 1024:
        raise AppError("auth.bad_password", "password must be at most 1024 characters")


def _audit(session: Session, actor: str, action: str, user: User, **detail: object) -> None:
    session.add(
        AuditEntry(
            actor=actor, action=action, entity="user", entity_id=user.username, detail=detail
        )
    )


def revoke_sessions(session: Session, user: User) -> None:
    """End every token ``user`` holds: they carry the old version; open sockets close too."""
    user.token_version = (user.token_version or 0) + 1
    session.flush()
    publish_after_commit(
        session,
        SESSIONS_TOPIC,
        "sessions.revoked",
        {"user_id": user.id, "version": user.token_version},
    )


def add_user(
    session: Session,
    *,
    username: str,
    password: str,
    roles: list[str],
    departments: list[str] | None = None,
    full_name: str = "",
    actor: str = "system",
) -> User:
    """Create a new user; an existing name is refused (``auth.user_exists``, 409)."""
    _check_user_fields(username, password, roles, departments)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AppError("auth.user_exists", f"user {username!r} exists already", status_code=409)
    user = User(username=username, password_hash=hash_password(password), full_name=full_name)
    user.roles = [UserRole(role=r) for r in sorted(set(roles))]
    user.departments = [UserDepartment(department_code=d) for d in sorted(set(departments or []))]
    session.add(user)
    session.flush()
    _audit(
        session,
        actor,
        "user.created",
        user,
        roles=user.role_names,
        departments=user.department_codes,
    )
    return user


def update_user(
    session: Session,
    *,
    username: str,
    password: str | None = None,
    roles: list[str] | None = None,
    departments: list[str] | None = None,
    full_name: str | None = None,
    actor: str = "system",
) -> User:
    """Change what is given of an existing user; a new password or a change of roles or
    departments ends the user's sessions. Giving the same values again changes nothing."""
    user = _get_user(session, username)
    _check_user_fields(
        username,
        password,
        roles,
        departments if departments is not None else user.department_codes,
    )
    changed: list[str] = []
    if password is not None and not verify_password(user.password_hash, password):
        user.password_hash = hash_password(password)
        changed.append("password")
    if roles is not None and sorted(set(roles)) != user.role_names:
        user.roles = [UserRole(role=r) for r in sorted(set(roles))]
        changed.append("roles")
    if departments is not None and sorted(set(departments)) != user.department_codes:
        user.departments = [UserDepartment(department_code=d) for d in sorted(set(departments))]
        changed.append("departments")
    if full_name:
        user.full_name = full_name
    session.flush()
    if changed:
        revoke_sessions(session, user)
        _audit(
            session,
            actor,
            "user.updated",
            user,
            changed=changed,
            roles=user.role_names,
            departments=user.department_codes,
        )
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    roles: list[str],
    departments: list[str] | None = None,
    full_name: str = "",
) -> User:
    """Create a user, or bring an existing one to these values (demo seeding, tests)."""
    if session.scalar(select(User.id).where(User.username == username)) is None:
        return add_user(
            session,
            username=username,
            password=password,
            roles=roles,
            departments=departments,
            full_name=full_name,
        )
    return update_user(
        session,
        username=username,
        password=password,
        roles=roles,
        departments=departments or [],
        full_name=full_name,
    )


def _get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AppError("auth.unknown_user", f"no user {username!r}", status_code=404)
    return user


def set_user_active(
    session: Session, username: str, active: bool, *, actor: str = "system"
) -> User:
    """Enable or disable a user; disabling ends its sessions at once."""
    user = _get_user(session, username)
    if user.is_active != active:
        user.is_active = active
        revoke_sessions(session, user)
        _audit(session, actor, "user.enabled" if active else "user.disabled", user)
    return user


def change_password(
    session: Session, *, username: str, new_password: str, actor: str = "system"
) -> User:
    """Set a new password (the caller has checked the old one, or is an operator); every
    session of the user ends, the one asking included."""
    user = _get_user(session, username)
    _check_user_fields(username, new_password, None, None)
    user.password_hash = hash_password(new_password)
    revoke_sessions(session, user)
    _audit(session, actor, "user.password_changed", user)
    return user


def valid_token_versions(session: Session, user_ids: Iterable[int]) -> dict[int, int]:
    """The token version of each of ``user_ids`` that may still hold sessions (exists, active):
    a connection whose token has another version, or whose user is missing, is revoked. One
    statement for them all, however many connections ask."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.token_version).where(User.id.in_(ids), User.is_active)
    ).all()
    return {r.id: r.token_version for r in rows}


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


def create_access_token(username: str, *, minutes: int | None = None, version: int = 0) -> str:
    """A token for ``username`` at token ``version`` (``User.token_version``: a token of an
    older version is refused)."""
    settings = get_settings()
    now = utcnow()
    claims = {
        "sub": username,
        "ver": version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes or settings.access_token_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=_ALGORITHM)


class AuthError(AppError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class LoginThrottled(AppError):
    """Too many failed log-ins for this user name or from this address; ``retry_after`` in s."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "auth.throttled",
            "too many failed log-ins; wait before trying again",
            retry_after=retry_after,
        )
        self.retry_after = max(1, retry_after)
        self.headers = {"Retry-After": str(self.retry_after)}


# -- log-in throttling -------------------------------------------------------------------------
# Failures are counted in Redis, so the limit holds across every API process. A window starts
# with its first failure and lasts ``login_failure_window_minutes``. Counted per user name
# (guessing one person's password) and per client address (trying many names), the address
# with a higher limit: a call centre's agents usually share one address behind its NAT.


def _login_keys(username: str, address: str) -> tuple[str, str]:
    # Hashed: a user name is whatever a client typed, of any length and any characters.
    name = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"login:fail:user:{name}", f"login:fail:addr:{address}"


def _limits() -> tuple[int, int, int]:
    settings = get_settings()
    return (
        settings.login_max_failures,
        settings.login_max_failures_per_address,
        settings.login_failure_window_minutes * 60,
    )


def login_retry_after(username: str, address: str) -> int | None:
    """Seconds until ``username`` may try again from ``address``, or None when it may now."""
    per_user, per_address, window = _limits()
    user_key, address_key = _login_keys(username, address)
    client = get_redis()
    waits = []
    for key, limit in ((user_key, per_user), (address_key, per_address)):
        if int(client.get(key) or 0) >= limit:
            ttl = client.ttl(key)
            waits.append(int(ttl) if ttl and ttl > 0 else window)
    return max(waits) if waits else None


def record_login_failure(username: str, address: str) -> None:
    _per_user, _per_address, window = _limits()
    pipe = get_redis().pipeline()
    for key in _login_keys(username, address):
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
    pipe.execute()


def reset_login_failures(username: str) -> None:
    """A successful log-in forgets the user name's failures (not the address's: a guesser
    holding one valid account must not be able to wipe the count of the names they try)."""
    get_redis().delete(_login_keys(username, "")[0])


def log_in(session: Session, username: str, password: str, *, address: str) -> User:
    """Check a user name and password, throttled; raises ``LoginThrottled`` (429) or
    ``AuthError`` (401, ``auth.bad_credentials``).

    Without Redis the throttle is skipped (and logged): an outage of Redis must not lock the
    whole hotline out, and argon2 still makes each guess cost the guesser half a second.
    """
    counting = True
    try:
        retry_after = login_retry_after(username, address)
        if retry_after is not None:
            # Refused before the password is checked: a throttled guess learns nothing.
            raise LoginThrottled(retry_after)
    except (redis.RedisError, OSError, RuntimeError) as exc:
        log.warning("log-in throttle unavailable, not applied: %s", exc)
        counting = False
    user = authenticate(session, username, password)
    try:
        if counting and user is None:
            record_login_failure(username, address)
        elif counting:
            reset_login_failures(username)
    except (redis.RedisError, OSError, RuntimeError) as exc:
        log.warning("log-in throttle unavailable, not counted: %s", exc)
    if user is None:
        raise AuthError("auth.bad_credentials", "wrong user name or password")
    return user


def principal_from_token(session: Session, token: str | None) -> Principal:
    """Check a bearer token and load the caller; raises ``AuthError`` (401) when it is not valid."""
    if not token:
        raise AuthError("auth.unauthenticated", "a bearer token is required")
    try:
        claims = jwt.decode(
            token,
            get_settings().secret_key.get_secret_value(),
            algorithms=[_ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("auth.token_expired", "the token has expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("auth.invalid_token", "the token is not valid") from exc
    # One statement for the user, its roles and its departments (every request pays it;
    # loading the ORM object and its two collections took three).
    username = claims.get("sub")
    rows = session.execute(
        select(
            User.id,
            User.is_active,
            User.token_version,
            UserRole.role,
            UserDepartment.department_code,
        )
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .outerjoin(UserDepartment, UserDepartment.user_id == User.id)
        .where(User.username == username)
    ).all()
    if not rows or not rows[0].is_active:
        raise AuthError("auth.invalid_token", "the token's user no longer exists or is inactive")
    if claims.get("ver") != rows[0].token_version:
        raise AuthError(
            "auth.token_revoked", "the token was revoked (password or role change); log in again"
        )
    return Principal(
        user_id=rows[0].id,
        username=username,
        roles=frozenset(r.role for r in rows if r.role),
        departments=frozenset(r.department_code for r in rows if r.department_code),
        token_version=rows[0].token_version,
    )


SessionDep = Annotated[Session, Depends(session_dependency, scope="function")]


def current_principal(
    session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller of an HTTP route; a 401 says why (``auth.token_expired`` …) in its code."""
    return principal_from_token(session, token)


def require_roles(*roles: str):
    """A dependency that lets through only callers holding one of ``roles`` (admin always)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles in guard: {unknown}")

    # async: it only reads the principal, and a sync dependency costs a trip to the thread pool.
    async def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
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
