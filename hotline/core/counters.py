"""Named counters that many processes may bump at once without losing or repeating a value."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hotline.core.models import Counter


def _build_upsert(dialect: str):
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Counter).values(name=bindparam("name"), value=bindparam("by"))
    return statement.on_conflict_do_update(
        index_elements=[Counter.name], set_={"value": Counter.value + bindparam("by")}
    ).returning(Counter.value)


# Built once: constructing the statement costs more than running it on a warm connection.
_UPSERT = {dialect: _build_upsert(dialect) for dialect in ("postgresql", "sqlite")}


def increment(session: Session | Connection, name: str, by: int = 1) -> int:
    """Add ``by`` to the counter ``name`` (created at 0) and return its new value.

    One upsert statement: two transactions creating the same counter at once both succeed,
    and the row lock it takes orders concurrent incrementers until their commits.
    """
    bind = session if isinstance(session, Connection) else session.get_bind()
    return session.execute(_UPSERT[bind.dialect.name], {"name": name, "by": by}).scalar_one()


def increment_committed(engine: Engine, name: str, by: int = 1) -> int:
    """:func:`increment` as a statement committed on its own, whatever the caller's
    transaction does: the row is locked for one statement, not until the caller commits.

    One round trip (autocommit) on a pooled connection, instead of BEGIN, upsert, COMMIT.
    """
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        statement = _UPSERT[engine.dialect.name]
        return connection.execute(statement, {"name": name, "by": by}).scalar_one()
