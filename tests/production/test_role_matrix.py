"""The role matrix: every route of the app against every role and against anonymous callers.

The routes come from the app's route table, not from a list typed here; ``EXPECTED`` says who
may call each one. A route without an entry fails, so whoever adds a route decides who may
call it. A role that may call a route must get past its guard (any answer but 401/403, and
never a 5xx); a role that may not gets 403, a caller without a token 401. Department users
see only their own departments' tickets: on another department's ticket every ticket route
answers exactly as it does for a ticket that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from hotline.app import create_app
from tests.production.routes import route_table

ROLES = ("agent", "supervisor", "dispatcher", "department", "editor", "admin")
STAFF = ("agent", "dispatcher", "supervisor")  # the hotline's own people


@dataclass(frozen=True)
class Expect:
    """Who may call a route. ``admin`` passes every role guard, so it is always allowed."""

    roles: frozenset[str] = frozenset()
    public: bool = False  # no token needed
    cti: bool = False  # the telephony system's X-CTI-Token, never a user's bearer token
    # a citizen's X-Phone-Token or X-Tracking-Token (the portal), never a user's bearer token
    citizen: bool = False
    hidden: frozenset[str] = frozenset()  # roles answered 404: they cannot see the row
    body: Any = None  # a request body where the handler (not the guard) checks the role
    query: dict[str, Any] = field(default_factory=dict)

    def allows(self, role: str) -> bool:
        return self.public or role == "admin" or role in self.roles


def roles(*names: str, **extra: Any) -> Expect:
    return Expect(roles=frozenset(names), **extra)


PUBLIC = Expect(public=True)
ANY_USER = roles(*ROLES)
CTI = Expect(cti=True)
CITIZEN = Expect(public=True, citizen=True)
CITIZEN_CODES = ("portal.phone_unverified", "portal.not_found")
ADMIN = roles()

# (method, path) -> Expect. Probes run in this order per route: anonymous, then ROLES.
EXPECTED: dict[tuple[str, str], Expect] = {
    # core
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("GET", "/api/v1/auth/me"): ANY_USER,
    # Probed without a body (422): a real change would end the shared world's sessions.
    ("POST", "/api/v1/auth/password"): ANY_USER,
    ("GET", "/api/v1/events"): ANY_USER,
    # admin: accounts and the audit log (every change needs a body: probed without, 422)
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("POST", "/api/v1/admin/users"): ADMIN,
    ("GET", "/api/v1/admin/users/{username}"): ADMIN,
    ("PATCH", "/api/v1/admin/users/{username}"): ADMIN,
    ("POST", "/api/v1/admin/users/{username}/password"): ADMIN,
    ("POST", "/api/v1/admin/users/{username}/sessions/end"): ADMIN,
    ("GET", "/api/v1/admin/audit"): ADMIN,
    # routing
    ("POST", "/api/v1/routing/preview"): roles(*STAFF),
    ("GET", "/api/v1/routing/suggest"): roles(*STAFF, query={"q": "噪音"}),
    ("GET", "/api/v1/routing/matters"): roles(*STAFF),
    ("GET", "/api/v1/routing/matters/tree"): roles(*STAFF),
    ("GET", "/api/v1/routing/matters/{code}/rules"): roles(*STAFF),
    ("POST", "/api/v1/routing/matters/{code}/rules"): ADMIN,
    ("GET", "/api/v1/routing/departments"): roles(*STAFF),
    ("PUT", "/api/v1/routing/departments/{code}"): ADMIN,
    ("PUT", "/api/v1/routing/places/{name}"): ADMIN,
    ("GET", "/api/v1/routing/audit"): ADMIN,
    ("GET", "/api/v1/routing/models"): ADMIN,
    ("POST", "/api/v1/routing/draft/replay"): ADMIN,
    ("POST", "/api/v1/routing/draft/publish"): ADMIN,
    ("POST", "/api/v1/routing/models/train"): ADMIN,
    ("POST", "/api/v1/routing/models/{version_id}/activate"): ADMIN,
    # tickets: the handlers decide by role and department, so the probes send real bodies
    ("POST", "/api/v1/tickets"): roles(*STAFF),
    ("GET", "/api/v1/tickets"): ANY_USER,
    ("GET", "/api/v1/tickets/{number}"): roles(*STAFF, "department", hidden=frozenset({"editor"})),
    ("POST", "/api/v1/tickets/{number}/link"): roles(*STAFF, body={"parent": "20990101000001"}),
    ("POST", "/api/v1/tickets/{number}/unlink"): roles(*STAFF),
    # hot spots (热点): hotline staff read them, dispatchers and supervisors merge (并单)
    ("GET", "/api/v1/hotspots"): roles(*STAFF),
    ("GET", "/api/v1/hotspots/{hotspot_id}"): roles(*STAFF),
    ("POST", "/api/v1/hotspots/{hotspot_id}/merge"): roles("dispatcher", "supervisor"),
    ("POST", "/api/v1/hotspots/{hotspot_id}/unmerge"): roles("dispatcher", "supervisor"),
    ("POST", "/api/v1/hotspots/{hotspot_id}/dismiss"): roles("dispatcher", "supervisor"),
    # the probe's action is "accept", which only the lead department may do
    ("POST", "/api/v1/tickets/{number}/{action}"): roles(
        "department", hidden=frozenset({"editor"}), body={}
    ),
    ("GET", "/api/v1/reports/tickets"): roles(
        *ROLES, query={"start": "2026-01-01T00:00:00", "end": "2027-01-01T00:00:00"}
    ),
    # oversight (效能监察): supervisors compare the departments
    ("GET", "/api/v1/oversight/departments"): roles("supervisor"),
    ("GET", "/api/v1/oversight/trends"): roles("supervisor"),
    ("GET", "/api/v1/oversight/matters-by-area"): roles("supervisor"),
    ("GET", "/api/v1/oversight/drill"): roles("supervisor", query={"figure": "received"}),
    ("GET", "/api/v1/oversight/export.xlsx"): roles("supervisor"),
    ("GET", "/api/v1/oversight/export.csv"): roles("supervisor"),
    ("PUT", "/api/v1/calendar/{day}"): ADMIN,
    ("GET", "/api/v1/calendar/{day}"): ANY_USER,
    ("DELETE", "/api/v1/calendar/{day}"): ADMIN,
    ("GET", "/api/v1/calendar/months/{year}/{month}"): ANY_USER,
    ("GET", "/api/v1/calendar/years/{year}"): roles("supervisor", "dispatcher"),
    # calls
    ("POST", "/api/v1/calls/events"): CTI,
    ("GET", "/api/v1/calls/queues"): roles(*STAFF),
    ("GET", "/api/v1/calls/{call_id}"): roles(*STAFF),
    ("GET", "/api/v1/callers/{phone}/history"): roles(*STAFF),
    ("GET", "/api/v1/agents"): roles(*STAFF),
    ("PUT", "/api/v1/agents/me/state"): roles("agent"),
    ("PUT", "/api/v1/agents/{username}/state"): CTI,
    ("PUT", "/api/v1/agents/{username}/skills"): roles("supervisor"),
    # kpi
    ("GET", "/api/v1/kpi/answer-rate"): roles(*STAFF),
    ("GET", "/api/v1/kpi/answer-rate/calls"): roles(*STAFF),
    ("GET", "/api/v1/kpi/rolling"): roles(*STAFF),
    ("GET", "/api/v1/kpi/wall"): roles(*STAFF),
    ("GET", "/api/v1/kpi/staffing"): roles(*STAFF),
    # open311 keys and the public progress lookup
    ("POST", "/api/v1/open311/keys"): ADMIN,
    ("GET", "/api/v1/open311/keys"): ADMIN,
    ("DELETE", "/api/v1/open311/keys/{prefix}"): ADMIN,
    ("GET", "/api/v1/public/progress"): PUBLIC,
    # knowledge base
    ("GET", "/api/v1/kb/search"): PUBLIC,
    ("GET", "/api/v1/kb/articles/{key}"): PUBLIC,
    ("GET", "/api/v1/kb/suggest"): roles(*STAFF),
    ("POST", "/api/v1/kb/articles/{key}/views"): roles(*STAFF),
    ("POST", "/api/v1/kb/articles/{key}/votes"): roles(*STAFF, "editor"),
    ("GET", "/api/v1/kb/articles/{key}/counters"): roles(*STAFF, "editor"),
    ("POST", "/api/v1/kb/articles/{key}/flags"): roles(*STAFF),
    ("GET", "/api/v1/kb/flags"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/flags/{flag_id}/resolve"): roles("editor"),
    ("POST", "/api/v1/kb/flags/{flag_id}/decline"): roles("editor"),
    ("GET", "/api/v1/kb/articles"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/articles"): roles("editor"),
    ("PUT", "/api/v1/kb/articles/{key}"): roles("editor"),
    ("POST", "/api/v1/kb/articles/{key}/submit"): roles("editor"),
    ("POST", "/api/v1/kb/articles/{key}/approve"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/articles/{key}/reject"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/articles/{key}/publish"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/articles/{key}/retire"): roles("editor"),
    ("POST", "/api/v1/kb/articles/{key}/rollback"): roles("editor"),
    ("GET", "/api/v1/kb/articles/{key}/history"): roles("editor", "supervisor"),
    ("GET", "/api/v1/kb/articles/{key}/versions/{number}"): roles("editor", "supervisor"),
    ("GET", "/api/v1/kb/articles/{key}/diff"): roles("editor", "supervisor"),
    ("GET", "/api/v1/kb/categories"): roles("editor", "supervisor"),
    ("POST", "/api/v1/kb/preview"): roles("editor"),
    ("GET", "/api/v1/kb/usage"): roles("editor", "supervisor"),
    ("GET", "/api/v1/kb/import"): roles("editor"),
    ("POST", "/api/v1/kb/import"): roles("editor"),
    ("GET", "/api/v1/kb/synonyms"): roles(*STAFF, "editor"),
    ("PUT", "/api/v1/kb/synonyms/{term}"): roles("editor"),
    ("DELETE", "/api/v1/kb/synonyms/{term}"): roles("editor"),
    # IVR prompts and the 110 link (the audio is for the PBX's X-CTI-Token or staff)
    ("GET", "/api/v1/ivr/prompts"): roles(*STAFF),
    ("PUT", "/api/v1/ivr/prompts/{key}"): roles("supervisor"),
    ("GET", "/api/v1/ivr/prompts/{key}.wav"): roles(*STAFF),
    ("GET", "/api/v1/ivr/articles/{article_key}.wav"): roles(*STAFF),
    ("GET", "/api/v1/police-link/matters"): roles(*STAFF),
    ("PUT", "/api/v1/police-link/matters"): roles("supervisor"),
    ("POST", "/api/v1/calls/{call_id}/handover-110"): roles("agent"),
    ("POST", "/api/v1/police-link/from-110"): CTI,
    # the citizens' portal: public, or a citizen's own phone or tracking token
    ("GET", "/api/v1/portal/places"): PUBLIC,
    ("GET", "/api/v1/portal/suggest"): Expect(public=True, query={"q": "噪音"}),
    ("POST", "/api/v1/portal/codes"): PUBLIC,
    ("POST", "/api/v1/portal/codes/verify"): PUBLIC,
    ("POST", "/api/v1/portal/requests"): CITIZEN,
    ("POST", "/api/v1/portal/lookup"): Expect(public=True, citizen=True, body={"number": "ZH1"}),
    ("GET", "/api/v1/portal/track"): CITIZEN,
    ("GET", "/api/v1/portal/track/photos/{photo_id}"): CITIZEN,
    ("POST", "/api/v1/portal/track/rating"): Expect(
        public=True, citizen=True, body={"satisfaction": "satisfied"}
    ),
    ("GET", "/api/v1/portal/photos/{photo_id}"): roles(*STAFF, "department"),
}

# Outside /api/v1, everything is public by design: health and metrics for operators, Open311
# (its own API keys), the API docs and the browser pages (which log in through the API).
# Listed so that a new route outside /api/v1 is a decision too.
OUTSIDE_API = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("MOUNT", "/static-offline-docs"),
    ("GET", "/open311/v2/services.{fmt}"),
    ("GET", "/open311/v2/services/{code}.{fmt}"),
    ("POST", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/requests/{number}.{fmt}"),
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/console"),
    ("GET", "/wall"),
    ("GET", "/desk"),
    ("GET", "/inbox"),
    ("GET", "/kb"),
    ("GET", "/admin"),
    ("GET", "/reports"),
    ("GET", "/reports/print"),
    ("GET", "/favicon.ico"),
    ("WS", "/ws"),
    ("MOUNT", "/static"),
    # the citizens' portal: its pages, the knowledge rendered for citizens, the web app files
    ("GET", "/m"),
    ("GET", "/m/submit"),
    ("GET", "/m/track"),
    ("GET", "/m/t/{token}"),
    ("GET", "/m/kb"),
    ("GET", "/m/kb/{key}"),
    ("GET", "/m/manifest.webmanifest"),
    ("GET", "/m/sw.js"),
}


ROUTES = route_table(create_app())
API_ROUTES = [r for r in ROUTES if r[1].startswith("/api/v1/")]


def test_the_route_table_is_complete():
    """The enumeration itself: it must see every documented operation, or the matrix below
    would quietly test nothing for the routes it missed."""
    app = create_app()
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= set(ROUTES), sorted(documented - set(ROUTES))
    assert len(API_ROUTES) >= 70


def test_every_route_has_an_expectation():
    unlisted = [r for r in API_ROUTES if r not in EXPECTED]
    outside = [r for r in ROUTES if not r[1].startswith("/api/v1/") and r not in OUTSIDE_API]
    assert not unlisted, f"routes without an entry in EXPECTED: {unlisted}"
    assert not outside, f"routes outside /api/v1 not listed in OUTSIDE_API: {outside}"
    stale = [r for r in [*EXPECTED, *OUTSIDE_API] if r not in ROUTES]
    assert not stale, f"entries for routes that no longer exist: {stale}"


def _probe(world, method: str, path: str, expect: Expect, headers: dict[str, str]):
    return world.client.request(
        method,
        world.fill(path),
        headers=headers,
        params=expect.query,
        json=expect.body,
    )


def _code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.parametrize(("method", "path"), API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
def test_role_matrix(world, method: str, path: str):
    expect = EXPECTED.get((method, path))
    assert expect is not None, f"{method} {path} has no entry in EXPECTED"
    seen: dict[str, int] = {}

    anonymous = _probe(world, method, path, expect, {})
    seen["anonymous"] = anonymous.status_code
    if expect.citizen:
        # Without the citizen's token: refused as a wrong token would be, whoever asks.
        for who, headers in [("anonymous", {}), *((r, world.headers[r]) for r in ROLES)]:
            response = _probe(world, method, path, expect, headers)
            assert response.status_code in (401, 404), f"{who}: {response.text}"
            assert _code(response) in CITIZEN_CODES, f"{who}: {response.text}"
        return
    if expect.public:
        assert anonymous.status_code not in (401, 403), anonymous.text
    else:
        assert anonymous.status_code == 401, anonymous.text
        assert _code(anonymous) in ("auth.unauthenticated", "calls.bad_cti_token"), anonymous.text

    for role in ROLES:
        response = _probe(world, method, path, expect, world.headers[role])
        seen[role] = response.status_code
        assert response.status_code < 500, f"{role}: {response.text}"
        if expect.cti:
            # A user's token never stands in for the telephony system's.
            assert response.status_code == 401, f"{role}: {response.text}"
            assert _code(response) == "calls.bad_cti_token", f"{role}: {response.text}"
        elif role in expect.hidden:
            assert response.status_code == 404, f"{role}: {response.text}"
        elif expect.allows(role):
            assert response.status_code not in (401, 403), f"{role}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} got {response.status_code}: {seen}"
            assert _code(response) in ("auth.forbidden", "ticket.not_lead"), response.text

    if expect.cti:
        passed = _probe(world, method, path, expect, world.cti)
        assert passed.status_code not in (401, 403) and passed.status_code < 500, passed.text


TICKET_ROUTES = [r for r in API_ROUTES if r[1].startswith("/api/v1/tickets/{number}")]


@pytest.mark.parametrize(
    ("method", "path"), TICKET_ROUTES, ids=[f"{m} {p}" for m, p in TICKET_ROUTES]
)
def test_another_departments_ticket_is_as_good_as_missing(world, method: str, path: str):
    """GX-MARKET's user learns nothing of XZ-MARKET's ticket: the same answer as for a ticket
    number that does not exist (404 wherever the route looks the ticket up)."""
    expect = EXPECTED[(method, path)]
    outsider = world.headers["outsider"]
    real = _probe(world, method, path, expect, outsider)
    missing = world.client.request(
        method,
        world.fill(path).replace(world.market_ticket, "20990101000001"),
        headers=outsider,
        json=expect.body,
    )
    assert (real.status_code, _code(real)) == (missing.status_code, _code(missing)), real.text
    if "department" in expect.roles:
        assert real.status_code == 404 and _code(real) == "ticket.not_found", real.text
    # ... while the ticket is there for the department that leads it
    own = world.client.get(
        f"/api/v1/tickets/{world.market_ticket}", headers=world.headers["department"]
    )
    assert own.status_code == 200, own.text


def test_other_departments_tickets_stay_out_of_lists_and_reports(world):
    def numbers(role: str) -> set[str]:
        response = world.client.get("/api/v1/tickets", headers=world.headers[role])
        assert response.status_code == 200, response.text
        return {t["number"] for t in response.json()}

    assert world.market_ticket in numbers("department")
    assert world.market_ticket not in numbers("outsider")
    assert numbers("outsider") == set()

    query = {"start": "2000-01-01T00:00:00", "end": "2099-01-01T00:00:00"}
    report = world.client.get(
        "/api/v1/reports/tickets", params=query, headers=world.headers["outsider"]
    )
    assert report.status_code == 200, report.text
    assert sum(row["received"] for row in report.json()) == 0


def test_websocket_roles(world):
    """Anonymous and bad tokens are closed with 4401 and the reason code; every role gets in."""
    with pytest.raises(WebSocketDisconnect) as refused, world.client.websocket_connect("/ws"):
        pass
    assert refused.value.code == 4401
    for role in ROLES:
        token = world.headers[role]["Authorization"].removeprefix("Bearer ")
        with world.client.websocket_connect(f"/ws?token={token}") as ws:
            hello = ws.receive_json()
            assert hello["type"] == "hello" and hello["user"] == role, hello
