"""Named counters that many processes may bump at once without losing or repeating a value."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hotline.core.models import Counter


def increment(session: Session, name: str, by: int = 1) -> int:
    """Add ``by`` to the counter ``name`` (created at 0) and return its new value.

    One upsert statement: two transactions creating the same counter at once both succeed,
    and the row lock it takes orders concurrent incrementers until their commits.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(Counter).values(name=name, value=by)
    statement = statement.on_conflict_do_update(
        index_elements=[Counter.name], set_={"value": Counter.value + by}
    ).returning(Counter.value)
    return session.execute(statement).scalar_one()
