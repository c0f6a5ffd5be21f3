"""Named counters that many processes may bump at once without losing or repeating a value."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, bindparam, text
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


# The same upsert, with the commit of its own implicit transaction not waiting for the WAL
# flush (set_config(..., true) lasts until that transaction ends, so the connection's setting
# is untouched). See increment_committed for when that is safe.
_UPSERT_UNFLUSHED_POSTGRESQL = text(
    """
    INSERT INTO counters (name, value)
    SELECT :name, :by FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed
    ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
    RETURNING value
    """
)


def increment_committed(engine: Engine, name: str, by: int = 1, *, flushed: bool = True) -> int:
    """:func:`increment` as a statement committed on its own, whatever the caller's
    transaction does: the row is locked for one statement, not until the caller commits.

    One round trip (autocommit) on a pooled connection, instead of BEGIN, upsert, COMMIT.

    ``flushed=False`` (PostgreSQL) lets the commit return before its WAL record is on disk, so
    the next incrementer does not queue behind this one's fsync. Only for a value that
    matters once a later, ordinary commit uses it: that commit's flush covers this one (the WAL
    is written in order), and a crash before it loses both, the value and its only user.
    """
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        if not flushed and engine.dialect.name == "postgresql":
            statement = _UPSERT_UNFLUSHED_POSTGRESQL
        else:
            statement = _UPSERT[engine.dialect.name]
        return connection.execute(statement, {"name": name, "by": by}).scalar_one()
