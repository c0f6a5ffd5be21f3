"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis): no input gives a 5xx.

Schemathesis generates valid and invalid requests for every operation of ``/openapi.json``
and sends them to the ASGI app in-process. Every request carries an admin's token, which
passes every role guard, and the X-CTI-Token, so the telephony routes (call events, agent
states, the 110 link) reach their handlers too. The routes each other role may use are
fuzzed again with that role's token (department, agent, supervisor, dispatcher, editor), with
fewer examples: handlers branch on the caller's role (masking, own tickets only). Path
parameters are replaced by the keys of real rows in half of the examples, so the handlers run
past their "not found" checks; the last test proves that the requests got through the auth layer.

``scripts/fuzz`` (``FUZZ_EXAMPLES=200 FUZZ_SEED=random`` by default) searches deeper than the
bounded CI run, on the configured backend.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from hotline.app import create_app

# 25 examples per operation as admin, 6 in each of the five other roles' passes, keep the
# module within about two minutes on the loaded 2-core CI machine (it was 25 + 12 + 12 for
# three roles).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The same examples on every CI run (a red build is reproducible); FUZZ_SEED=random varies.
    derandomize=os.environ.get("FUZZ_SEED") != "random",
    suppress_health_check=list(HealthCheck),
    database=None,
)
# The passes as other roles repeat the admin's operations on other branches: a quarter.
FUZZ_AS_ROLE = settings(FUZZ, max_examples=max(4, EXAMPLES // 4))


class _NoLifespan:
    """The app as schemathesis sees it: ``populated_world`` runs the real lifespan once."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return  # declined before the first message: "no lifespan" to the caller
        await self.app(scope, receive, send)


# Read at import time: schemathesis' fixture-based loader (``schemathesis.pytest.from_fixture``)
# fails under pytest 9, which no longer has the ``Function._nodeid`` it reads.
APP = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", _NoLifespan(APP))

# operation -> status codes answered, over all passes; read by the last test.
STATUSES: dict[str, Counter] = defaultdict(Counter)


@pytest.fixture(scope="module")
def world(populated_world):
    with populated_world(APP) as populated:
        yield populated


def error_shape(ctx, response, case) -> None:
    """Every JSON refusal is ``{"error": {"code", "message"}}`` with a stable code."""
    STATUSES[f"{case.method} {case.path}"][response.status_code] += 1
    if response.status_code < 400 or case.path.startswith("/open311/"):
        return  # Open311 answers in its own GeoReport format
    if "json" not in (response.headers.get("content-type") or [""])[0]:
        return
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body


def _call(case, world, use_real: bool, role: str) -> None:
    if use_real:
        for name in list(case.path_parameters or {}):
            value = world.path_value(case.path, name)
            if value is not None:
                case.path_parameters[name] = value
    case.call_and_validate(
        headers={**world.headers[role], **world.cti},
        checks=[not_a_server_error, error_shape],
    )


@schema.parametrize()
@schema.given(use_real=st.booleans())
@FUZZ
def test_no_server_errors_as_admin(case, use_real, world):
    _call(case, world, use_real, "admin")


@schema.include(path_regex=r"^/api/v1/(tickets|reports|events|kb/articles/\{key\}$)").parametrize()
@schema.given(use_real=st.booleans())
@FUZZ_AS_ROLE
def test_no_server_errors_as_department(case, use_real, world):
    """Departments see their own inbox, masked callers and only their tickets' reports."""
    _call(case, world, use_real, "department")


@schema.include(
    path_regex=r"^/api/v1/(tickets|calls|agents|callers|kb|ivr|police-link)"
).parametrize()
@schema.given(use_real=st.booleans())
@FUZZ_AS_ROLE
def test_no_server_errors_as_agent(case, use_real, world):
    _call(case, world, use_real, "agent")


@schema.include(
    path_regex=r"^/api/v1/(tickets|reports|calls|agents|callers|kpi|ivr|police-link|calendar)"
).parametrize()
@schema.given(use_real=st.booleans())
@FUZZ_AS_ROLE
def test_no_server_errors_as_supervisor(case, use_real, world):
    _call(case, world, use_real, "supervisor")


@schema.include(path_regex=r"^/api/v1/(tickets|reports|routing|calls/\{|callers)").parametrize()
@schema.given(use_real=st.booleans())
@FUZZ_AS_ROLE
def test_no_server_errors_as_dispatcher(case, use_real, world):
    _call(case, world, use_real, "dispatcher")


@schema.include(path_regex=r"^/api/v1/kb/").parametrize()
@schema.given(use_real=st.booleans())
@FUZZ_AS_ROLE
def test_no_server_errors_as_editor(case, use_real, world):
    """Editors write and review articles, resolve error reports and keep synonyms."""
    _call(case, world, use_real, "editor")


# Operations whose every fuzzed request may be refused after the guard. An entry here needs
# a reason.
NEVER_PAST_THE_GUARD: dict[str, str] = {
    "POST /api/v1/portal/requests": "needs a citizen's phone token (a texted code), which "
    "the fuzzer cannot make; tests/dispatch/portal goes past it",
    "POST /api/v1/portal/lookup": "the same phone token",
}


def test_fuzzing_reached_the_handlers():
    """A fuzzer that only ever hears 401/403 tests the auth layer, not the handlers."""
    if not STATUSES:
        pytest.skip("the fuzzing tests of this module did not run (deselected)")
    operations = {f"{op.method.upper()} {op.path}" for op in _operations()}
    assert operations, "the schema lists no operations"
    missing = operations - set(STATUSES)
    assert not missing, f"never fuzzed (run the whole module): {sorted(missing)}"
    stuck = {
        op: dict(codes)
        for op, codes in STATUSES.items()
        if op not in NEVER_PAST_THE_GUARD and not set(codes) - {401, 403}
    }
    assert not stuck, f"only refused by the auth layer: {stuck}"
    assert STATUSES["POST /api/v1/calls/events"][200] > 0, "no call event was ever accepted"


def _operations():
    for result in schema.get_all_operations():
        yield result.ok()
