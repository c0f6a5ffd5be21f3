"""Shared fixtures: a real database (SQLite file or PostgreSQL), a real Redis, real workers.

The backend follows the environment, as in production: ``HOTLINE_DATABASE_URL`` and
``HOTLINE_REDIS_URL`` select PostgreSQL and a Redis server; without them every run gets a fresh
SQLite file and an embedded redis-server in a temporary data dir. Tests that use the
database request the ``database`` fixture (directly or through ``client``, ``make_user``,
``run_jobs``), which empties every table and the Redis database first.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rq import Queue, SimpleWorker
from sqlalchemy import text

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hotline-test-"))
os.environ["HOTLINE_DATA_DIR"] = str(_SESSION_DIR)
os.environ["HOTLINE_ENV"] = "test"
os.environ.setdefault("HOTLINE_LOG_LEVEL", "WARNING")

from hotline.core import db, migrate  # noqa: E402 - the environment above must be set first
from hotline.core.redis import get_redis, reset_clients, stop_embedded_redis  # noqa: E402
from hotline.core.settings import get_settings  # noqa: E402

IN_CI = os.environ.get("CI") == "true"
MISSING_DEPENDENCY = "missing system dependency"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip for a missing system dependency is a failure, not a pass."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and MISSING_DEPENDENCY in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"


# Tests stop the processes they start with SIGINT, as a person's Ctrl+C. A suite started in the
# background by a non-interactive shell (or by CI) ignores SIGINT, and an ignored signal stays
# ignored across exec: every `hotline demo` or `serve` a test started then ignored the Ctrl+C
# and was killed after its timeout. The suite's processes start as a terminal's would.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signals_as_a_terminal_leaves_them() -> Iterator[None]:
    """A test that changes how this process takes SIGINT or SIGTERM (rq's worker code installs
    its own handlers) must not change it for the processes later tests start."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) != handler:
            signal.signal(sig, handler)


@pytest.fixture(scope="session", autouse=True)
def _schema() -> Iterator[None]:
    get_settings.cache_clear()
    db.dispose_engine()
    migrate.upgrade()
    yield
    db.dispose_engine()
    reset_clients()
    if get_settings().uses_embedded_redis:
        stop_embedded_redis(get_settings().resolved_data_dir)


def _table_names() -> list[str]:
    return [t.name for t in reversed(db.Base.metadata.sorted_tables)]


@pytest.fixture
def database() -> Iterator[None]:
    """Empty tables and an empty Redis database for a test that uses them.

    Not autouse: pure tests (routing engine, calendars, staffing) need neither and run faster.
    """
    engine = db.get_engine()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(_table_names())} RESTART IDENTITY CASCADE"))
        else:
            for name in _table_names():
                conn.execute(text(f"DELETE FROM {name}"))
    get_redis().flushdb()
    from dispatch.routing.service import forget_cached_rules

    forget_cached_rules()  # the revision counter restarts with the emptied tables
    from hotline.kpi.service import forget_wall_snapshot

    forget_wall_snapshot()
    yield


@pytest.fixture
def app(database):
    from hotline.app import create_app

    return create_app()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def settings_env(monkeypatch) -> Iterator[Callable[..., None]]:
    """Change HOTLINE_* settings for one test; the cached settings are rebuilt around it."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"HOTLINE_{name.upper()}", value)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_clients()


@pytest.fixture
def make_user(database) -> Callable[..., dict[str, str]]:
    """Create a user and return the Authorization header of a fresh token for it."""
    from hotline.core.auth import create_access_token, create_user

    def factory(
        username: str, *roles: str, departments: tuple[str, ...] = (), password: str = "pw-12345678"
    ) -> dict[str, str]:
        with db.transaction() as session:
            user = create_user(
                session,
                username=username,
                password=password,
                roles=list(roles),
                departments=list(departments),
            )
            version = user.token_version
        return {"Authorization": f"Bearer {create_access_token(username, version=version)}"}

    return factory


@pytest.fixture
def run_jobs(database) -> Callable[[], int]:
    """Run every queued and due scheduled job with a real rq worker; returns how many succeeded."""
    from hotline.core.outbox import relay_once
    from hotline.core.worker import QUEUES

    def run() -> int:
        relay_once()
        connection = get_redis()
        queues = [Queue(q, connection=connection) for q in QUEUES]

        def finished() -> int:
            return sum(q.finished_job_registry.count for q in queues)

        before = finished()
        SimpleWorker(queues, connection=connection).work(burst=True, with_scheduler=True)
        return finished() - before

    return run
