"""The one alembic environment of the project: the only place the schema is defined.

Every domain's models are imported here so that autogenerate (and ``alembic check``) see the
whole schema. SQLite gets batch mode so that columns and constraints can be altered.
"""

from __future__ import annotations

from alembic import context

import dispatch.models  # noqa: F401 - registers the dispatch tables
import knowledgebase.models  # noqa: F401 - registers the knowledge-base tables
from hotline.calls import models as calls_models  # noqa: F401 - registers the hotline tables
from hotline.core import models as core_models  # noqa: F401 - registers the core tables
from hotline.core.db import Base, make_engine
from hotline.core.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().sqlalchemy_url


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(_url())
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
