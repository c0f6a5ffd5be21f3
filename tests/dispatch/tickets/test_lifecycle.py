"""The ticket lifecycle over HTTP: every transition, every refusal, versions and races.

The table of allowed actions below is written from the specification, not imported from the
service, so that a change to the service's table shows up here as a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dispatch.tickets import service as ticket_service
from hotline.core import db

MARKET = "XZ-MARKET"
GX_MARKET = "GX-MARKET"

pytestmark = pytest.mark.usefixtures("desk")

OPEN_STATUSES = ("pending_dispatch", "dispatched", "accepted", "replied", "visited")
ALL_STATUSES = (*OPEN_STATUSES, "closed")

# action -> the statuses it is allowed from (the specification's transition table)
ALLOWED = {
    "dispatch": ("pending_dispatch", "dispatched"),
    "accept": ("dispatched",),
    "return": ("dispatched",),
    "request-extension": ("accepted",),
    "decide-extension": ("accepted",),
    "reply": ("accepted",),
    "visit": ("replied",),
    "close": ("replied", "visited"),
    "supervise": OPEN_STATUSES,
    "answer-directly": ("pending_dispatch", "dispatched"),
}

# A body each action would accept, so that a refusal can only come from the status.
VALID_BODY = {
    "dispatch": {"department": MARKET},
    "accept": {},
    "return": {"reason": "不属于本单位职责"},
    "request-extension": {"reason": "需现场核查", "working_days": 2},
    "decide-extension": {"approve": True},
    "reply": {"reply": "已协调商家退款"},
    "visit": {"satisfaction": "satisfied"},
    "close": {},
    "supervise": {"note": "请加快办理"},
    "answer-directly": {"answer": "已告知消费者维权途径"},
}


def trail_actions(ticket: dict) -> list[str]:
    return [entry["action"] for entry in ticket["trail"]]


# -- the closed loop ----------------------------------------------------------------------------


def test_the_closed_loop_from_intake_to_closing_publishes_every_change(desk, events, last_event):
    mark = last_event()
    created = desk.create()
    number = created["number"]
    assert created["status"] == "dispatched"
    assert created["lead_department"] == MARKET
    assert created["accept_deadline"] is not None and created["finish_deadline"] is None
    assert created["possible_duplicates"] == []
    created_events = [e for e in events(mark) if e["data"]["number"] == number]
    # The department's inbox and the console of the agent who took the request.
    assert [(e["topic"], e["type"]) for e in created_events] == [
        (f"tickets.dept.{MARKET}", "ticket.created"),
        ("tickets.by.agent", "ticket.created"),
    ]

    steps = [
        ("accept", "market", {}, "accepted"),
        ("request-extension", "market", {"reason": "需现场核查", "working_days": 2}, "accepted"),
        ("decide-extension", "dispatcher", {"approve": False, "comment": "时限充足"}, "accepted"),
        ("supervise", "supervisor", {"note": "群众多次来电，请加快"}, "accepted"),
        ("reply", "market", {"reply": "已协调商家退款"}, "replied"),
        ("visit", "agent", {"satisfaction": "satisfied"}, "visited"),
        ("close", "agent", {}, "closed"),
    ]
    version = created["version"]
    for action, actor, body, status in steps:
        mark = last_event()
        answer = desk.act(number, action, actor, **body)
        assert answer["status"] == status, action
        assert answer["version"] > version, f"{action} must move the version"
        version = answer["version"]
        published = [e for e in events(mark) if e["data"]["number"] == number]
        event_type = f"ticket.{action.replace('-', '_')}"
        assert [(e["topic"], e["type"]) for e in published] == [
            (f"tickets.dept.{MARKET}", event_type),
            ("tickets.by.agent", event_type),
        ], action
        assert published[0]["data"]["status"] == status
        assert published[0]["data"]["version"] == version

    ticket = desk.get(number)
    assert ticket["status"] == "closed"
    assert ticket["reply"] == "已协调商家退款"
    assert ticket["satisfaction"] == "satisfied"
    assert ticket["supervise_count"] == 1
    assert ticket["due_at"] is None and ticket["deadline_status"] is None
    assert trail_actions(ticket) == ["create", *(s[0] for s in steps)]
    assert [(e["from_status"], e["to_status"]) for e in ticket["trail"]] == [
        (None, "dispatched"),
        ("dispatched", "accepted"),
        ("accepted", "accepted"),
        ("accepted", "accepted"),
        ("accepted", "accepted"),
        ("accepted", "replied"),
        ("replied", "visited"),
        ("visited", "closed"),
    ]
    assert [e["actor"] for e in ticket["trail"]] == [
        "agent",
        "market",
        "market",
        "dispatcher",
        "supervisor",
        "market",
        "agent",
        "agent",
    ]
    assert desk.numbers("market") == [], "a closed ticket leaves the inbox"


def test_a_ticket_nobody_can_place_waits_at_the_desk_until_a_dispatcher_sends_it(
    desk, events, last_event
):
    waiting = desk.create(address="", content="商家拒绝退款")
    number = waiting["number"]
    assert waiting["status"] == "pending_dispatch"
    assert waiting["lead_department"] == "DESK"
    assert waiting["accept_deadline"] is None and waiting["due_at"] is None
    assert number in desk.numbers("dispatcher", status="pending_dispatch")
    assert desk.numbers("market") == []
    desk.get(number, as_="market", expect=404)

    mark = last_event()
    sent = desk.act(number, "dispatch", "dispatcher", department=MARKET, note="拱北辖区")
    assert sent["status"] == "dispatched"
    assert sent["lead_department"] == MARKET
    assert sent["accept_deadline"] is not None
    assert desk.numbers("market") == [number]
    assert (f"tickets.dept.{MARKET}", "ticket.dispatch") in [
        (e["topic"], e["type"]) for e in events(mark)
    ]
    dispatch = desk.get(number)["trail"][-1]
    assert dispatch["detail"]["from"] == "DESK" and dispatch["detail"]["to"] == MARKET


def test_redispatch_before_acceptance_moves_the_ticket_to_the_new_department(desk):
    number = desk.create()["number"]
    seen = desk.get(number)["version"]  # a 改派 says which dispatch it replaces
    moved = desk.act(number, "dispatch", "dispatcher", department=GX_MARKET, version=seen)
    assert moved["status"] == "dispatched" and moved["lead_department"] == GX_MARKET
    desk.get(number, as_="market", expect=404)
    assert desk.numbers("market") == []
    assert desk.numbers("gx_market") == [number]
    desk.refused(number, "accept", "market", 404, "ticket.not_found")
    desk.act(number, "accept", "gx_market")
    desk.refused(
        number, "dispatch", "dispatcher", 409, "ticket.invalid_transition", department=MARKET
    )


def test_redispatch_tells_the_department_that_loses_the_ticket(desk, events, last_event):
    """Like a return, a 改派 must reach the old department's console so its inbox drops it."""
    number = desk.create()["number"]
    mark = last_event()
    seen = desk.get(number)["version"]
    desk.act(number, "dispatch", "dispatcher", department=GX_MARKET, version=seen)
    topics = {e["topic"] for e in events(mark) if e["data"]["number"] == number}
    assert f"tickets.dept.{GX_MARKET}" in topics
    assert f"tickets.dept.{MARKET}" in topics, "the department that lost the ticket is not told"


def test_return_needs_a_reason_and_sends_the_ticket_back_to_the_desk(desk, events, last_event):
    number = desk.create()["number"]
    desk.refused(number, "return", "market", 400, "ticket.reason_required")
    desk.refused(number, "return", "market", 400, "ticket.reason_required", reason="   ")

    mark = last_event()
    returned = desk.act(number, "return", "market", reason="该商户位于斗门，不属本辖区")
    assert returned["status"] == "pending_dispatch"
    assert returned["lead_department"] == "DESK"
    assert returned["return_count"] == 1
    assert returned["accept_deadline"] is None and returned["due_at"] is None
    published = [(e["topic"], e["type"]) for e in events(mark) if e["data"]["number"] == number]
    assert (f"tickets.dept.{MARKET}", "ticket.returned_away") in published
    assert ("tickets.dept.DESK", "ticket.return") in published
    assert desk.numbers("market") == []
    assert number in desk.numbers("dispatcher", status="pending_dispatch")
    entry = desk.get(number)["trail"][-1]
    assert entry["action"] == "return" and entry["actor"] == "market"
    assert entry["detail"]["reason"] == "该商户位于斗门，不属本辖区"
    assert entry["detail"]["returned_by"] == MARKET


def test_after_a_final_ruling_that_department_cannot_return_the_ticket_again(desk):
    number = desk.create()["number"]
    desk.act(number, "return", "market", reason="不属本单位")
    desk.act(number, "dispatch", "dispatcher", department=MARKET, final_ruling=True)
    refusal = desk.refused(number, "return", "market", 409, "ticket.final_ruling", reason="仍不属")
    assert "审定" in refusal["error"]["message"]
    assert desk.get(number)["trail"][-1]["detail"]["final_ruling"] is True

    # The ruling binds that department only: another one may still return the ticket.
    seen = desk.get(number)["version"]
    desk.act(number, "dispatch", "dispatcher", department=GX_MARKET, version=seen)
    desk.act(number, "return", "gx_market", reason="不属高新区")
    # ... and the ruling stays with the department it was made for.
    desk.act(number, "dispatch", "dispatcher", department=MARKET)
    desk.refused(number, "return", "market", 409, "ticket.final_ruling", reason="再退")
    assert desk.act(number, "accept", "market")["status"] == "accepted"


def test_a_satisfied_visit_marks_the_ticket_visited_and_it_can_be_closed(desk):
    for satisfaction in ("satisfied", "basically_satisfied"):
        number = desk.ticket_in("replied")
        visited = desk.act(number, "visit", "agent", satisfaction=satisfaction, note="市民认可")
        assert visited["status"] == "visited" and visited["satisfaction"] == satisfaction
        assert desk.act(number, "close", "supervisor")["status"] == "closed"


def test_an_unsatisfied_visit_reopens_the_ticket_to_the_same_department(desk, events, last_event):
    number = desk.ticket_in("replied")
    assert desk.numbers("market") == [], "a replied ticket is no longer in the inbox"
    first_finish = desk.get(number)["finish_deadline"]
    mark = last_event()
    reopened = desk.act(number, "visit", "agent", satisfaction="unsatisfied", note="商家未退款")
    assert reopened["status"] == "accepted"
    assert reopened["lead_department"] == MARKET
    assert reopened["reopen_count"] == 1
    assert reopened["satisfaction"] == "unsatisfied"
    assert reopened["finish_deadline"] is not None
    assert reopened["finish_deadline"] >= first_finish
    assert reopened["due_at"] == reopened["finish_deadline"]
    assert desk.numbers("market") == [number], "重办 puts it back into the department's inbox"
    assert (f"tickets.dept.{MARKET}", "ticket.visit") in [
        (e["topic"], e["type"]) for e in events(mark)
    ]
    # The department handles it again, and the loop can close this time.
    desk.act(number, "reply", "market", reply="已督促商家退款到账")
    desk.act(number, "visit", "agent", satisfaction="basically_satisfied")
    closed = desk.act(number, "close", "agent")
    assert closed["status"] == "closed" and closed["reopen_count"] == 1


def test_a_replied_ticket_can_be_closed_without_a_visit(desk):
    number = desk.ticket_in("replied")
    closed = desk.act(number, "close", "dispatcher", note="市民表示无需回访")
    assert closed["status"] == "closed" and closed["satisfaction"] is None


def test_a_supervisor_can_supervise_any_open_ticket(desk, events, last_event):
    for status in OPEN_STATUSES:
        number = desk.ticket_in(status)
        desk.refused(number, "supervise", "supervisor", 400, "ticket.note_required")
        mark = last_event()
        answer = desk.act(number, "supervise", "supervisor", note="请加快办理")
        assert answer["status"] == status
        assert answer["supervise_count"] == 1
        lead = answer["lead_department"]
        assert (f"tickets.dept.{lead}", "ticket.supervise") in [
            (e["topic"], e["type"]) for e in events(mark)
        ], status


def test_answering_directly_closes_the_ticket_at_once(desk):
    for status in ("pending_dispatch", "dispatched"):
        number = desk.ticket_in(status)
        desk.refused(number, "answer-directly", "agent", 400, "ticket.answer_required")
        answered = desk.act(
            number, "answer-directly", "agent", answer="已告知维权途径", article_key="kb-001"
        )
        assert answered["status"] == "closed"
        assert answered["first_contact_resolution"] is True
        assert answered["reply"] == "已告知维权途径"
        assert answered["due_at"] is None
        assert desk.get(number)["trail"][-1]["detail"]["article"] == "kb-001"
    assert desk.numbers("market") == []


# -- refusals -----------------------------------------------------------------------------------


def outcome(response) -> tuple[int, str | None]:
    body = response.json()
    return response.status_code, body["error"]["code"] if "error" in body else None


def unchanged(desk, tickets: dict[str, dict]) -> None:
    """The tickets (number -> as read before) are exactly as they were: version, status, trail."""
    for number, before in tickets.items():
        after = desk.get(number)
        assert (after["version"], after["status"], len(after["trail"])) == (
            before["version"],
            before["status"],
            len(before["trail"]),
        ), number


def test_every_action_not_allowed_from_a_status_is_an_invalid_transition(desk):
    outcomes, expected, seen = {}, {}, {}
    for status in ALL_STATUSES:
        number = desk.ticket_in(status)
        seen[number] = desk.get(number)
        for action, statuses in ALLOWED.items():
            if status in statuses:
                continue
            # admin holds every role and may act for any department: only the status refuses
            response = desk.attempt(number, action, "admin", **VALID_BODY[action])
            details = response.json().get("error", {}).get("details", {})
            outcomes[status, action] = (*outcome(response), details.get("status"))
            expected[status, action] = (409, "ticket.invalid_transition", status)
    assert outcomes == expected
    unchanged(desk, seen)


def test_deciding_an_extension_nobody_asked_for_is_an_invalid_transition(desk):
    number = desk.ticket_in("accepted")
    desk.refused(number, "decide-extension", "dispatcher", 409, "ticket.invalid_transition")


def test_unknown_actions_are_invalid_transitions(desk):
    number = desk.ticket_in("dispatched")
    before = {number: desk.get(number)}
    names = ["escalate", "reopen", "delete", "ACCEPT", "accept ", "link-parent"]
    outcomes = {name: outcome(desk.attempt(number, name, "admin")) for name in names}
    assert outcomes == {name: (409, "ticket.invalid_transition") for name in names}
    unchanged(desk, before)


def test_unknown_ticket_and_no_token(desk):
    response = desk.attempt("ZH20260101999999", "accept", "market")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ticket.not_found"
    number = desk.ticket_in("dispatched")
    anonymous = desk.client.post(f"/api/v1/tickets/{number}/accept")
    assert anonymous.status_code == 401
    assert desk.client.get(f"/api/v1/tickets/{number}").status_code == 401


# (action, status the ticket is in, a user whose roles do not allow the action)
ROLE_REFUSALS = [
    ("dispatch", "pending_dispatch", "agent"),
    ("dispatch", "dispatched", "market"),
    ("accept", "dispatched", "agent"),
    ("accept", "dispatched", "dispatcher"),
    ("return", "dispatched", "supervisor"),
    ("request-extension", "accepted", "dispatcher"),
    ("decide-extension", "accepted", "market"),
    ("decide-extension", "accepted", "agent"),
    ("reply", "accepted", "agent"),
    ("visit", "replied", "dispatcher"),
    ("visit", "replied", "market"),
    ("close", "replied", "market"),
    ("supervise", "accepted", "agent"),
    ("supervise", "accepted", "dispatcher"),
    ("supervise", "accepted", "market"),
    ("answer-directly", "dispatched", "dispatcher"),
    ("answer-directly", "dispatched", "market"),
]


def test_an_action_needs_its_role(desk):
    tickets = {status: desk.ticket_in(status) for status in {s for _, s, _ in ROLE_REFUSALS}}
    # an extension waits, so that deciding it would otherwise be allowed
    desk.act(tickets["accepted"], "request-extension", "market", reason="需核查", working_days=1)
    seen = {number: desk.get(number) for number in tickets.values()}
    outcomes = {
        (action, actor): outcome(desk.attempt(tickets[status], action, actor, **VALID_BODY[action]))
        for action, status, actor in ROLE_REFUSALS
    }
    assert outcomes == {(a, actor): (403, "auth.forbidden") for a, _, actor in ROLE_REFUSALS}
    unchanged(desk, seen)


def test_a_co_handling_department_sees_the_ticket_but_only_the_lead_may_act(desk):
    dispatched = desk.ticket_in("dispatched", co_departments=["XZ-GOV"])
    accepted = desk.ticket_in("accepted", co_departments=["XZ-GOV"])
    assert desk.get(dispatched, as_="xz_gov")["co_departments"] == ["XZ-GOV"]
    assert desk.numbers("xz_gov") == [dispatched, accepted]
    seen = {n: desk.get(n) for n in (dispatched, accepted)}
    moves = [
        (dispatched, "accept"),
        (dispatched, "return"),
        (accepted, "request-extension"),
        (accepted, "reply"),
    ]
    outcomes = {
        action: outcome(desk.attempt(number, action, "xz_gov", **VALID_BODY[action]))
        for number, action in moves
    }
    assert outcomes == {action: (403, "ticket.not_lead") for _, action in moves}
    unchanged(desk, seen)


# (action, status, actor, body, error code) - all answered 400
BAD_BODIES = [
    ("dispatch", "pending_dispatch", "dispatcher", {}, "ticket.department_required"),
    ("dispatch", "pending_dispatch", "dispatcher", {"department": "NOPE"}, "unknown_department"),
    ("dispatch", "pending_dispatch", "dispatcher", {"department": "DESK"}, "bad_department"),
    (
        "dispatch",
        "pending_dispatch",
        "dispatcher",
        {"department": MARKET, "co_departments": ["NOPE"]},
        "ticket.unknown_department",
    ),
    ("return", "dispatched", "market", {}, "ticket.reason_required"),
    ("return", "dispatched", "market", {"reason": "   "}, "ticket.reason_required"),
    ("request-extension", "accepted", "market", {"working_days": 2}, "ticket.reason_required"),
    ("request-extension", "accepted", "market", {"reason": "需核查"}, "ticket.bad_extension"),
    (
        "request-extension",
        "accepted",
        "market",
        {"reason": "需核查", "hours": 4},
        "ticket.bad_extension",
    ),
    ("reply", "accepted", "market", {}, "ticket.reply_required"),
    ("reply", "accepted", "market", {"reply": "  "}, "ticket.reply_required"),
    ("visit", "replied", "agent", {}, "ticket.bad_satisfaction"),
    ("supervise", "accepted", "supervisor", {"note": " "}, "ticket.note_required"),
    ("answer-directly", "dispatched", "agent", {}, "ticket.answer_required"),
]


def test_an_action_without_what_it_needs_is_refused_and_changes_nothing(desk):
    tickets = {status: desk.ticket_in(status) for status in {b[1] for b in BAD_BODIES}}
    seen = {number: desk.get(number) for number in tickets.values()}
    outcomes, expected = {}, {}
    for index, (action, status, actor, body, code) in enumerate(BAD_BODIES):
        response = desk.attempt(tickets[status], action, actor, **body)
        outcomes[index, action] = outcome(response)
        code = code if code.startswith("ticket.") else f"ticket.{code}"
        expected[index, action] = (400, code)
    assert outcomes == expected
    unchanged(desk, seen)


def test_out_of_range_values_are_validation_errors(desk):
    number = desk.ticket_in("replied")
    response = desk.attempt(number, "visit", "agent", satisfaction="happy")
    assert response.status_code == 422
    assert desk.get(number)["status"] == "replied"
    accepted = desk.ticket_in("accepted")
    response = desk.attempt(accepted, "request-extension", "market", reason="x", working_days=0)
    assert response.status_code == 422


def test_a_stale_version_is_refused_with_a_version_conflict(desk):
    number = desk.ticket_in("dispatched")
    seen = desk.get(number)["version"]
    accepted = desk.act(number, "accept", "market", version=seen)
    assert accepted["version"] > seen
    desk.refused(
        number, "reply", "market", 409, "ticket.version_conflict", reply="已处理", version=seen
    )
    # a version from the future is just as stale
    desk.refused(
        number,
        "reply",
        "market",
        409,
        "ticket.version_conflict",
        reply="已处理",
        version=accepted["version"] + 5,
    )
    replied = desk.act(number, "reply", "market", reply="已处理", version=accepted["version"])
    assert replied["status"] == "replied"


def test_actions_that_only_add_rows_still_move_the_version(desk):
    number = desk.ticket_in("accepted")
    seen = desk.get(number)["version"]
    asked = desk.act(number, "request-extension", "market", reason="需核查", working_days=1)
    assert asked["version"] > seen
    desk.refused(
        number,
        "decide-extension",
        "dispatcher",
        409,
        "ticket.version_conflict",
        approve=True,
        version=seen,
    )


# -- two people at once ------------------------------------------------------------------------


Send = Callable[[TestClient], Response]


def race(app, sends: list[Send], rendezvous_after_read: bool = False) -> list[Response]:
    """Send the requests from threads released together by a barrier; their responses.

    With ``rendezvous_after_read`` every request also waits, once it has read the ticket, for
    the others to have read it too: on PostgreSQL that forces the interleaving in which two
    people act on the same version. (SQLite takes its write lock at BEGIN IMMEDIATE, so there
    the second reader cannot even start before the first commits.)
    """
    start = threading.Barrier(len(sends), timeout=30)
    after_read = threading.Barrier(len(sends), timeout=30)
    answers: list[Response | BaseException | None] = [None] * len(sends)
    real_get = ticket_service.get

    def get_then_wait(session, principal, number):
        ticket = real_get(session, principal, number)
        after_read.wait()
        return ticket

    def run(index: int, send: Send) -> None:
        try:
            client = TestClient(app, raise_server_exceptions=False)
            start.wait()
            answers[index] = send(client)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            answers[index] = exc

    if rendezvous_after_read:
        ticket_service.get = get_then_wait
    try:
        threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(sends)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        ticket_service.get = real_get
    assert all(isinstance(a, Response) for a in answers), answers
    return answers  # type: ignore[return-value]


def poster(desk, number: str, action: str, actor: str, **body) -> Send:
    def send(client: TestClient) -> Response:
        return client.post(
            f"/api/v1/tickets/{number}/{action}", json=body, headers=desk.headers[actor]
        )

    return send


SEEN = "the version both of them saw"

RACES = {
    "two members of the department accept": (
        "dispatched",
        [("accept", "market", {}), ("accept", "market2", {})],
    ),
    "one accepts while the other returns": (
        "dispatched",
        [("accept", "market", {}), ("return", "market2", {"reason": "不属本单位"})],
    ),
    "two dispatchers send the same version to different departments": (
        "pending_dispatch",
        [
            ("dispatch", "dispatcher", {"department": MARKET, "version": SEEN}),
            ("dispatch", "dispatcher2", {"department": GX_MARKET, "version": SEEN}),
        ],
    ),
    "the agent answers while the department accepts": (
        "dispatched",
        [("answer-directly", "agent", {"answer": "已解答"}), ("accept", "market", {})],
    ),
    "two replies": (
        "accepted",
        [("reply", "market", {"reply": "甲"}), ("reply", "market2", {"reply": "乙"})],
    ),
    "two extension requests": (
        "accepted",
        [
            ("request-extension", "market", {"reason": "甲", "working_days": 1}),
            ("request-extension", "market2", {"reason": "乙", "working_days": 2}),
        ],
    ),
    "two closings": ("replied", [("close", "agent", {}), ("close", "supervisor", {})]),
}
LOSER_CODES = {"ticket.version_conflict", "ticket.invalid_transition", "ticket.extension_pending"}


def sends_for(desk, number: str, before: dict, moves) -> list[Send]:
    sends = []
    for action, actor, body in moves:
        body = {k: before["version"] if v == SEEN else v for k, v in body.items()}
        sends.append(poster(desk, number, action, actor, **body))
    return sends


def assert_exactly_one_wins(desk, number: str, answers: list[Response], before: dict) -> None:
    winners = [a for a in answers if a.status_code == 200]
    losers = [a for a in answers if a.status_code != 200]
    assert len(winners) == 1 and len(losers) == 1, [(a.status_code, a.text[:300]) for a in answers]
    winner, loser = winners[0].json(), losers[0]
    if winner["status"] == "pending_dispatch" and loser.status_code == 404:
        # The winner returned the ticket: it is no longer the loser's department's to see.
        assert loser.json()["error"]["code"] == "ticket.not_found"
    else:
        assert loser.status_code == 409, loser.text
        assert loser.json()["error"]["code"] in LOSER_CODES, loser.text
    after = desk.get(number)
    assert after["version"] == winner["version"] > before["version"]
    assert after["status"] == winner["status"]
    assert len(after["trail"]) == len(before["trail"]) + 1


@pytest.mark.parametrize("scenario", list(RACES))
def test_two_people_acting_at_once_exactly_one_wins(desk, app, scenario):
    status, moves = RACES[scenario]
    for _round in range(3):  # three rounds make an overlap on PostgreSQL all but certain
        number = desk.ticket_in(status)
        before = desk.get(number)
        sends = sends_for(desk, number, before, moves)
        assert_exactly_one_wins(desk, number, race(app, sends), before)


@pytest.fixture
def postgres_only() -> None:
    if db.get_engine().dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN IMMEDIATE: two cannot read one version")


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("scenario", list(RACES))
def test_two_people_who_read_the_same_version_exactly_one_wins(desk, app, scenario):
    status, moves = RACES[scenario]
    number = desk.ticket_in(status)
    before = desk.get(number)
    sends = sends_for(desk, number, before, moves)
    assert_exactly_one_wins(desk, number, race(app, sends, rendezvous_after_read=True), before)


def test_two_agents_creating_the_first_tickets_of_a_day_at_once_both_succeed(desk, app):
    def creator(actor: str) -> Send:
        def send(client: TestClient) -> Response:
            body = {"content": "商家拒绝退款", "address": "香洲区拱北", "matter_code": "SC-01"}
            return client.post("/api/v1/tickets", json=body, headers=desk.headers[actor])

        return send

    answers = race(app, [creator("agent"), creator("dispatcher")])
    assert [a.status_code for a in answers] == [201, 201], [a.text[:300] for a in answers]
    numbers = {a.json()["number"] for a in answers}
    assert len(numbers) == 2


# -- intake refusals ---------------------------------------------------------------------------


def test_intake_refusals(desk):
    body = {"content": "商家拒绝退款", "address": "香洲区拱北", "matter_code": "SC-01"}
    post = desk.client.post
    assert post("/api/v1/tickets", json=body, headers=desk.headers["market"]).status_code == 403
    assert post("/api/v1/tickets", json=body).status_code == 401
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = post(
        "/api/v1/tickets", json={**body, "received_at": future}, headers=desk.headers["agent"]
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "ticket.future"
    naive = post(
        "/api/v1/tickets",
        json={**body, "received_at": "2026-02-13T10:00:00"},
        headers=desk.headers["agent"],
    )
    assert naive.status_code == 400 and naive.json()["error"]["code"] == "ticket.naive_time"
    unknown = post(
        "/api/v1/tickets", json={**body, "matter_code": "ZZ-99"}, headers=desk.headers["agent"]
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "routing.unknown_matter"
    assert desk.numbers("admin") == []


def test_intake_with_an_unknown_co_department_is_refused_not_a_server_error(desk):
    body = {"content": "商家拒绝退款", "address": "香洲区拱北", "matter_code": "SC-01"}
    answer = desk.client.post(
        "/api/v1/tickets", json={**body, "co_departments": ["NOPE"]}, headers=desk.headers["agent"]
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "ticket.unknown_department"
