"""Admitting fewer requests than there are threads keeps a lock holder able to finish."""

import asyncio
import threading

import anyio.to_thread
import httpx
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from hotline.app import create_app
from hotline.core.concurrency import RequestConcurrencyLimit


class Answer(BaseModel):
    ok: bool


def lock_holding_app(row_lock: threading.Lock) -> FastAPI:
    """Each request takes a lock in a sync dependency and releases it in the exit, which
    FastAPI runs only after validating the response in the thread pool: as a transaction
    holding a row lock until its commit."""

    def hold_the_row():
        row_lock.acquire()
        try:
            yield
        finally:
            row_lock.release()

    app = FastAPI()

    @app.get("/work", response_model=Answer, dependencies=[Depends(hold_the_row)])
    def work() -> dict:
        return {"ok": True}

    return app


def test_lock_holders_finish_when_every_thread_would_be_waiting():
    async def scenario() -> list[int]:
        # Three threads and six requests: unlimited, the five waiters take every thread and
        # the holder can never validate its response (a deadlock, fastapi#12066).
        anyio.to_thread.current_default_thread_limiter().total_tokens = 3
        app = RequestConcurrencyLimit(lock_holding_app(threading.Lock()), limit=2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.wait_for(
                asyncio.gather(*(client.get("/work") for _ in range(6))), timeout=20
            )
        return [a.status_code for a in answers]

    assert asyncio.run(scenario()) == [200] * 6


def test_the_application_admits_a_bounded_number_of_requests():
    app = create_app()
    assert RequestConcurrencyLimit in [m.cls for m in app.user_middleware]
