"""Run the project's alembic migrations programmatically (``hotline db``, ``serve``, tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hotline.core.db import get_engine
from hotline.core.settings import get_settings


def migrations_dir() -> Path:
    spec = importlib.util.find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `migrations` package is not installed alongside hotline")
    return Path(next(iter(spec.submodule_search_locations)))


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url or get_settings().sqlalchemy_url)
    return config


def upgrade(revision: str = "heads", url: str | None = None) -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision() -> str | None:
    with get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class SchemaBehind(RuntimeError):
    """The PostgreSQL schema is older than the code and must be upgraded by an operator."""


def prepare_database(*, upgrade_postgres: bool = False) -> None:
    """Bring an embedded SQLite schema to head; PostgreSQL only when asked to (an operator's
    decision, `hotline db upgrade`), otherwise refuse to run against an old schema."""
    if get_settings().sqlalchemy_url.startswith("sqlite") or upgrade_postgres:
        upgrade()
        return
    current, head = current_revision(), head_revision()
    if current != head:
        raise SchemaBehind(
            f"database schema is at {current}, the code needs {head}: run `hotline db upgrade`"
        )
