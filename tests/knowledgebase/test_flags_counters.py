"""Error reports (纠错) from the console, their resolution by the owning editors, and the
per-article counters: views during calls, reports and votes."""

from __future__ import annotations

import pytest


@pytest.fixture
def published(kb):
    kb.create("KB-HR-1", title="失业保险金申领", department="C-HRSS", keywords=["失业金"],
              body="失业后可申领失业保险金。")  # fmt: skip
    kb.publish("KB-HR-1")
    return "KB-HR-1"


def test_an_agent_flags_and_the_owning_editor_resolves_with_a_new_version(kb, published, kb_events):
    mark = kb_events.mark()
    flag = kb.call(
        "POST",
        f"/articles/{published}/flags",
        "agent",
        expect=201,
        json={"kind": "outdated", "note": "领取期限已调整", "call_id": "C-1"},
    )
    assert (flag["kind"], flag["status"], flag["version"], flag["created_by"]) == (
        "outdated",
        "open",
        1,
        "agent",
    )
    assert kb.call("GET", f"/articles/{published}/counters", "agent")["open_flags"] == 1
    open_flags = kb.call("GET", "/flags", "hrss_editor")
    assert [(f["id"], f["key"], f["note"]) for f in open_flags] == [
        (flag["id"], published, "领取期限已调整")
    ]

    resolved = kb.call(
        "POST",
        f"/flags/{flag['id']}/resolve",
        "hrss_editor",
        json={"note": "按新规修改", "body": "失业后可申领失业保险金，领取期限最长24个月。"},
    )
    assert resolved["status"] == "resolved" and resolved["resolved_version"] == 2
    assert resolved["resolved_by"] == "hrss_editor" and resolved["resolution"] == "按新规修改"
    article = kb.call("GET", f"/articles/{published}", "editor")
    assert article["version"] == 2 and article["editor"]["status"] == "draft"
    assert kb.call("GET", "/flags", "editor") == []
    assert kb.error(
        "POST", f"/flags/{flag['id']}/decline", "editor", 409, json={"reason": "x"}
    ) == ("kb.flag_closed")
    types = [e["type"] for e in kb_events(mark)]
    assert types == ["kb.flag_created", "kb.article_edited", "kb.flag_resolved"]
    counters = kb.call("GET", f"/articles/{published}/counters", "editor")
    assert counters["flags"] == 1 and counters["open_flags"] == 0


def test_a_flag_can_be_declined_with_a_reason_by_its_owner_only(kb, published, make_user):
    market_editor = make_user("market_editor", "editor", departments=("C-MARKET",))
    flag = kb.call(
        "POST", f"/articles/{published}/flags", "agent", expect=201, json={"kind": "wrong"}
    )
    path = f"/flags/{flag['id']}/decline"
    response = kb.client.post(
        f"/api/v1/kb{path}", json={"reason": "内容无误"}, headers=market_editor
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "kb.not_owner"
    assert kb.call("GET", "/flags", "hrss_editor")[0]["id"] == flag["id"]
    declined = kb.call("POST", path, "hrss_editor", json={"reason": "内容无误，已核实"})
    assert declined["status"] == "declined" and declined["resolution"] == "内容无误，已核实"
    assert kb.call("GET", "/flags", "editor", params={"status": "declined"})[0]["id"] == flag["id"]


def test_flag_refusals(kb, published):
    assert kb.error(
        "POST", f"/articles/{published}/flags", "editor", 403, json={"kind": "wrong"}
    ) == ("auth.forbidden")
    bad_kind = kb.call(
        "POST", f"/articles/{published}/flags", "agent", expect=422, json={"kind": "typo"}
    )
    assert bad_kind["error"]["code"] == "validation_error"
    kb.create("KB-DRAFT")
    assert kb.error("POST", "/articles/KB-DRAFT/flags", "agent", 404, json={"kind": "wrong"}) == (
        "kb.not_found"
    )
    assert kb.error("POST", "/flags/999/resolve", "editor", 404, json={"title": "x"}) == (
        "kb.flag_not_found"
    )


def test_views_during_calls_and_votes_are_counted(kb, published):
    for _ in range(3):
        kb.call("POST", f"/articles/{published}/views", "agent", json={"call_id": "C-9"})
    kb.call("POST", f"/articles/{published}/votes", "agent", json={"helpful": True})
    kb.call("POST", f"/articles/{published}/votes", "supervisor", json={"helpful": True})
    after = kb.call("POST", f"/articles/{published}/votes", "agent", json={"helpful": False})
    assert after == {
        "views_in_calls": 3,
        "flags": 0,
        "open_flags": 0,
        "helpful_votes": 2,
        "unhelpful_votes": 1,
    }
    assert kb.error("POST", f"/articles/{published}/views", None, 401) == "auth.unauthenticated"
    listed = kb.call("GET", "/articles", "editor", params={"status": "published"})[0]
    assert (listed["views_in_calls"], listed["helpful_votes"]) == (3, 2)
    # Counting never conflicts with an editor's work on the same article.
    edited = kb.call("PUT", f"/articles/{published}", "editor", json={"title": "失业金申领"})
    assert edited["editor"]["views_in_calls"] == 3
