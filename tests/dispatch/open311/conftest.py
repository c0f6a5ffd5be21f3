"""Fixtures of the citizen channels: the routes mounted, reference data, an API key."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dispatch.open311.cli import open311_app
from dispatch.routing import service as routing_service
from hotline.core import db


@pytest.fixture
def app(app):
    """The application with the Open311 routes, mounted here until the composition root does."""
    from starlette.routing import NoMatchFound

    from dispatch.open311.router import router

    try:
        app.url_path_for("open311_services", fmt="json")  # finds routes in included routers too
    except NoMatchFound:
        app.include_router(router)
    return app


@pytest.fixture
def seeded(database) -> None:
    with db.transaction() as session:
        routing_service.seed_reference(session)


@pytest.fixture
def api_key(seeded) -> str:
    """A key issued the way an operator issues one: `hotline open311 key create`."""
    result = CliRunner().invoke(open311_app, ["key", "create", "珠海城市App"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]
