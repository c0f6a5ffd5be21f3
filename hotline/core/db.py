"""Database engine, the declarative base and the one-transaction-per-unit-of-work helpers.

Services ``flush()`` and never ``commit()``: the request (``session_dependency``) or the job
(``transaction()``) that owns the unit of work commits once, so a failure anywhere rolls the
whole unit back, outbox rows included.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from hotline.core.concurrency import MAX_CONCURRENT_REQUESTS
from hotline.core.settings import get_settings

# A fixed naming convention keeps constraint names identical on SQLite and PostgreSQL, which
# is what lets alembic's autogenerate compare them and batch-mode migrations alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL.

    SQLite has no time zones; storing naive UTC and re-attaching UTC on the way out makes both
    backends return the same values, so deadlines compare correctly everywhere.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_engine: Engine | None = None
_engine_url: str | None = None
_session_factory: sessionmaker[Session] | None = None
_lock = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # The driver's own BEGIN handling is switched off so that we can issue BEGIN IMMEDIATE:
        # a writer then waits for the lock up front instead of failing on upgrade mid-transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# Connections past pool_size are closed when they are returned. Every admitted request holds
# one, a ticket request briefly a second (hotline.core.concurrency), and the outbox relay,
# websocket log-ins and health checks take theirs outside that limit. With 10 kept, a typhoon
# peak opened and closed a PostgreSQL backend for most requests: 361 backends in a 200 s run
# against 53 with this size, and the fork and log-in cost more PostgreSQL CPU than the SQL.
BACKGROUND_CONNECTIONS = 8
POOL_KEPT = MAX_CONCURRENT_REQUESTS + BACKGROUND_CONNECTIONS
POOL_OVERFLOW = MAX_CONCURRENT_REQUESTS  # room for every admitted request to hold two


def make_engine(url: str) -> Engine:
    """Build an engine with the settings this project relies on for ``url``."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # NullPool: SQLite connections are cheap and a pooled one would pin WAL snapshots.
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 10})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_KEPT, max_overflow=POOL_OVERFLOW)


def get_engine() -> Engine:
    """The process-wide engine for the configured database (rebuilt if the URL changed)."""
    global _engine, _engine_url, _session_factory
    url = get_settings().sqlalchemy_url
    with _lock:
        if _engine is None or _engine_url != url:
            if _engine is not None:
                _engine.dispose()
            _engine = make_engine(url)
            _engine_url = url
            _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def _forget_engine_in_child() -> None:
    # A forked rq work-horse must not share pooled connections with its parent; close=False
    # leaves the parent's sockets alone while the child opens its own.
    global _engine, _engine_url, _session_factory
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = _engine_url = _session_factory = None


os.register_at_fork(after_in_child=_forget_engine_in_child)


def dispose_engine() -> None:
    global _engine, _engine_url, _session_factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = _engine_url = _session_factory = None


def new_session() -> Session:
    get_engine()
    assert _session_factory is not None
    return _session_factory()


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def session_dependency() -> AsyncIterator[Session]:
    """FastAPI dependency: one transaction per request, committed before the response is sent.

    Use it as ``Depends(session_dependency, scope="function")`` so a failed commit turns into an
    error response rather than a success the database never saw.

    Async, with the commit in one trip to the thread pool: opening a session does no I/O (the
    connection is taken at the first statement), and as a sync generator it cost two trips,
    one to open and one to close, per request. Shielded: a client that hangs up mid-request
    must not leave the transaction open or the connection out of the pool.
    """
    session = new_session()
    succeeded = False
    try:
        yield session
        succeeded = True
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_finish, session, succeeded)


def _finish(session: Session, succeeded: bool) -> None:
    try:
        if succeeded:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
