"""The editing workflow through the API: drafts, review by someone else, publishing, versions,
history, diff, rollback, retiring, and who may see what."""

from __future__ import annotations

from sqlalchemy import select

from hotline.core import db
from hotline.core.models import AuditEntry
from knowledgebase import service


def test_a_draft_is_invisible_until_reviewed_and_published(kb, kb_events):
    mark = kb_events.mark()
    created = kb.create()
    assert created["version"] == 1 and created["editor"]["status"] == "draft"
    assert kb.error("GET", "/articles/KB-T-001", None, 404) == "kb.not_found"
    assert kb.error("GET", "/articles/KB-T-001", "agent", 404) == "kb.not_found"
    assert kb.search("身份证补领") == []

    kb.call("POST", "/articles/KB-T-001/submit", "editor")
    # The author may not approve their own version.
    assert kb.error("POST", "/articles/KB-T-001/approve", "editor", 403) == "kb.self_review"
    approved = kb.call("POST", "/articles/KB-T-001/approve", "supervisor", json={"comment": "好"})
    assert approved["editor"]["status"] == "approved"
    assert kb.error("GET", "/articles/KB-T-001", None, 404) == "kb.not_found"
    published = kb.call("POST", "/articles/KB-T-001/publish", "editor")
    assert published["editor"]["status"] == "published"
    assert published["editor"]["published_version"] == 1

    public = kb.call("GET", "/articles/KB-T-001")
    assert public["title"] == "身份证补领" and public["editor"] is None
    assert "<strong>补领</strong>" in public["body_html"]
    assert [h["key"] for h in kb.search("身份证丢了怎么补")] == ["KB-T-001"]

    types = [e["type"] for e in kb_events(mark)]
    assert types == [
        "kb.article_created",
        "kb.article_submitted",
        "kb.article_approved",
        "kb.article_published",
    ]
    with db.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == "KB-T-001")
        ).all()
    assert actions == [
        "kb.article_created",
        "kb.article_submitted",
        "kb.article_approved",
        "kb.article_published",
    ]


def test_invalid_transitions_have_a_stable_code(kb):
    kb.create()
    assert kb.error("POST", "/articles/KB-T-001/publish", "editor", 409) == "kb.invalid_transition"
    assert kb.error("POST", "/articles/KB-T-001/approve", "editor2", 409) == "kb.invalid_transition"
    kb.call("POST", "/articles/KB-T-001/submit", "editor")
    assert kb.error("POST", "/articles/KB-T-001/submit", "editor", 409) == "kb.invalid_transition"
    rejected = kb.call(
        "POST", "/articles/KB-T-001/reject", "editor2", json={"comment": "材料清单不全"}
    )
    assert rejected["editor"]["status"] == "draft"
    missing = kb.call("POST", "/articles/KB-T-001/reject", "editor2", expect=422, json={})
    assert missing["error"]["code"] == "validation_error"
    assert kb.error("POST", "/articles/NOPE/submit", "editor", 404) == "kb.not_found"
    assert kb.error("POST", "/articles", "editor", 409, json=_body("KB-T-001")) == "kb.key_exists"


def _body(key: str) -> dict:
    return {"key": key, "title": "t", "body": "b", "category": "c"}


def test_roles_guard_the_editing_api(kb):
    assert kb.error("POST", "/articles", "agent", 403, json=_body("KB-X")) == "auth.forbidden"
    assert kb.error("POST", "/articles", None, 401, json=_body("KB-X")) == "auth.unauthenticated"
    kb.create()
    kb.call("POST", "/articles/KB-T-001/submit", "editor")
    assert kb.error("POST", "/articles/KB-T-001/approve", "agent", 403) == "auth.forbidden"
    assert kb.error("GET", "/articles/KB-T-001/history", "agent", 403) == "auth.forbidden"
    # An agent reads published versions only, never another version.
    assert kb.error("GET", "/articles/KB-T-001", "agent", 404) == "kb.not_found"


def test_departmental_editors_own_their_departments_articles(kb):
    kb.create("KB-HR-1", department="C-HRSS")
    kb.create("KB-MK-1", department="C-MARKET")
    edit = {"title": "新标题"}
    assert kb.call("PUT", "/articles/KB-HR-1", "hrss_editor", json=edit)["version"] == 2
    assert kb.error("PUT", "/articles/KB-MK-1", "hrss_editor", 403, json=edit) == "kb.not_owner"
    assert (
        kb.error(
            "POST",
            "/articles",
            "hrss_editor",
            403,
            json={**_body("KB-X"), "department": "C-MARKET"},
        )
        == "kb.not_owner"
    )


def test_every_edit_is_a_version_and_the_published_one_stays_visible(kb):
    kb.create()
    kb.publish("KB-T-001")
    edited = kb.call(
        "PUT",
        "/articles/KB-T-001",
        "editor2",
        json={"body": "居民身份证遗失的，可到任一派出所申请补领，工本费20元。", "note": "加工本费"},
    )
    assert edited["version"] == 2 and edited["editor"]["status"] == "draft"
    assert edited["editor"]["author"] == "editor2"
    assert edited["editor"]["published_version"] == 1
    # Citizens still read version 1 while version 2 is reviewed.
    public = kb.call("GET", "/articles/KB-T-001")
    assert public["version"] == 1 and "工本费" not in public["body"]
    assert kb.search("工本费") == []
    assert kb.error("PUT", "/articles/KB-T-001", "editor", 400, json={}) == "kb.no_change"
    stale = kb.call(
        "PUT", "/articles/KB-T-001", "editor", expect=409, json={"title": "x", "base_version": 1}
    )
    assert stale["error"]["code"] == "kb.conflict"

    kb.publish("KB-T-001", author="editor2", reviewer="editor")
    assert kb.call("GET", "/articles/KB-T-001")["version"] == 2
    assert [h["key"] for h in kb.search("工本费")] == ["KB-T-001"]

    history = kb.call("GET", "/articles/KB-T-001/history", "editor")
    assert [v["number"] for v in history["versions"]] == [2, 1]
    assert [(v["author"], v["note"]) for v in history["versions"]] == [
        ("editor2", "加工本费"),
        ("editor", None),
    ]
    assert [(r["version"], r["reviewer"], r["decision"]) for r in history["reviews"]] == [
        (2, "editor", "approved"),
        (1, "editor2", "approved"),
    ]
    diff = kb.call("GET", "/articles/KB-T-001/diff", "editor", params={"from": 1, "to": 2})
    lines = diff["diff"].splitlines()
    assert lines[:2] == ["--- KB-T-001 v1", "+++ KB-T-001 v2"]
    assert "-居民身份证遗失的，可到派出所申请**补领**。" in lines
    assert "+居民身份证遗失的，可到任一派出所申请补领，工本费20元。" in lines
    assert not any(line.startswith(("-title", "+title")) for line in lines)


def test_rollback_copies_an_old_version_into_a_new_draft(kb):
    kb.create()
    kb.call("PUT", "/articles/KB-T-001", "editor", json={"title": "错误的标题"})
    rolled = kb.call("POST", "/articles/KB-T-001/rollback", "editor", json={"version": 1})
    assert rolled["version"] == 3 and rolled["title"] == "身份证补领"
    assert rolled["editor"]["status"] == "draft"
    v3 = kb.call("GET", "/articles/KB-T-001/versions/3", "editor")
    assert v3["note"] == "rollback to version 1" and v3["body"].startswith("居民身份证")
    assert (
        kb.call("GET", "/articles/KB-T-001/diff", "editor", params={"from": 1, "to": 3})["diff"]
        == ""
    )
    assert (
        kb.error("POST", "/articles/KB-T-001/rollback", "editor", 404, json={"version": 9})
        == "kb.version_not_found"
    )


def test_retiring_takes_an_article_out_of_reading_and_search(kb, kb_events):
    kb.create()
    kb.publish("KB-T-001")
    assert kb.search("身份证")
    mark = kb_events.mark()
    kb.call("POST", "/articles/KB-T-001/retire", "editor", json={"reason": "政策废止"})
    assert kb.error("GET", "/articles/KB-T-001", None, 404) == "kb.not_found"
    assert kb.search("身份证") == []
    assert [e["type"] for e in kb_events(mark)] == ["kb.article_retired"]
    assert kb_events(mark)[0]["data"]["reason"] == "政策废止"
    # Editors still read it and its history.
    assert kb.call("GET", "/articles/KB-T-001", "editor")["editor"]["status"] == "retired"
    assert kb.error("POST", "/articles/KB-T-001/retire", "editor", 409) == "kb.invalid_transition"
    # Back through the workflow after an edit.
    kb.call("PUT", "/articles/KB-T-001", "editor", json={"title": "身份证补领（新）"})
    kb.publish("KB-T-001")
    assert kb.call("GET", "/articles/KB-T-001")["title"] == "身份证补领（新）"


def test_markdown_is_rendered_safely(kb):
    kb.create(
        body='<script>alert("x")</script> [点我](javascript:alert(1)) **重点**\n\n'
        "| 材料 | 份数 |\n|---|---|\n| 身份证 | 1 |"
    )
    kb.publish("KB-T-001")
    html = kb.call("GET", "/articles/KB-T-001")["body_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert "<strong>重点</strong>" in html and "<table>" in html


def test_editor_list_and_get_published_for_other_domains(kb):
    kb.create("KB-A")
    kb.create("KB-B")
    kb.publish("KB-B")
    listed = kb.call("GET", "/articles", "editor", params={"status": "draft"})
    assert [a["key"] for a in listed] == ["KB-A"]
    with db.transaction() as session:
        article = service.get_published(session, "KB-B")
    assert article.title == "身份证补领" and article.version == 1
    assert "补领" in article.text and "**" not in article.text
