"""The PostgreSQL connection pool keeps what a busy API process uses at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from hotline.core import db
from hotline.core.concurrency import MAX_CONCURRENT_REQUESTS
from hotline.core.settings import get_settings

# What one process holds at its busiest, short of the overflow: every admitted request with a
# connection, and the background connections outside the limit.
BUSY = MAX_CONCURRENT_REQUESTS + db.BACKGROUND_CONNECTIONS


def test_a_busy_process_reuses_its_connections_instead_of_opening_new_ones():
    url = get_settings().sqlalchemy_url
    if not url.startswith("postgresql"):
        pytest.skip("SQLite is not pooled (NullPool): every session opens its file")
    engine = db.make_engine(url)
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    try:
        for _round in range(3):
            all_held = threading.Barrier(BUSY)

            def hold_one(all_held: threading.Barrier) -> None:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                    all_held.wait(timeout=30)

            threads = [threading.Thread(target=hold_one, args=(all_held,)) for _ in range(BUSY)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        # Connections beyond the pool's size are closed on return and opened again next time.
        assert len(opened) == BUSY
    finally:
        engine.dispose()
