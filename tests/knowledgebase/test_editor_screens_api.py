"""The API behind the editors' screens at /kb: the work list's filters, the live preview,
side-by-side diffs, the caller's question on error reports, searches that found nothing,
and importing an uploaded file."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from hotline.core import db
from hotline.core.db import utcnow
from hotline.core.models import AuditEntry
from hotline.core.settings import get_settings
from knowledgebase import service
from knowledgebase.models import Article, Review, SearchGap


def test_the_work_list_has_titles_and_filters_by_staleness_and_words(kb, sample):
    kb.create("KB-T-001")
    kb.create("KB-T-002", title="户口簿补发", category="其他")
    kb.publish("KB-T-002")
    rows = {r["key"]: r for r in kb.call("GET", "/articles", "editor", params={"limit": 500})}
    assert rows["KB-T-001"]["title"] == "身份证补领"
    assert rows["KB-T-001"]["created_by"] == "editor"
    # Nothing has gone a month without review yet.
    assert kb.call("GET", "/articles", "editor", params={"stale_months": 1}) == []
    # The sample was imported (never reviewed) long ago; KB-T-002 was approved long ago too,
    # but approved again since: only the approval that counts is the newest.
    long_ago = utcnow() - timedelta(days=400)
    with db.transaction() as session:
        session.execute(update(Article).values(published_at=long_ago, created_at=long_ago))
        session.execute(update(Review).values(created_at=long_ago))
    stale = {r["key"] for r in kb.call("GET", "/articles", "editor", params={"stale_months": 12})}
    assert "KB-T-002" in stale and "KB-T-001" in stale
    kb.call("PUT", "/articles/KB-T-002", "editor", json={"body": "新正文。"})
    kb.publish("KB-T-002")
    stale = {r["key"] for r in kb.call("GET", "/articles", "editor", params={"stale_months": 12})}
    assert "KB-T-002" not in stale and "KB-T-001" in stale
    found = kb.call("GET", "/articles", "editor", params={"q": "户口簿"})
    assert [r["key"] for r in found] == ["KB-T-002"]
    # "%" is a character here, not a wildcard.
    assert kb.call("GET", "/articles", "editor", params={"q": "%"}) == []
    categories = {c["category"]: c["articles"] for c in kb.call("GET", "/categories", "editor")}
    assert categories["其他"] == 1 and categories["户籍与居住"] >= 1


def test_preview_renders_like_the_published_page_and_escapes_html(kb):
    html = kb.call("POST", "/preview", "editor", json={"body": "**加粗**\n\n<script>x</script>"})[
        "body_html"
    ]
    assert "<strong>加粗</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert kb.error("POST", "/preview", "agent", 403) == "auth.forbidden"
    assert kb.error("POST", "/preview", "editor", 422, json={"body": "x" * 100_001})


def test_the_diff_comes_side_by_side_too(kb):
    kb.create()
    kb.call("PUT", "/articles/KB-T-001", "editor", json={"body": "居民身份证遗失的，到派出所。"})
    diff = kb.call("GET", "/articles/KB-T-001/diff", "editor2", params={"from": 1, "to": 2})
    changed = [r for r in diff["rows"] if r["op"] != "equal"]
    assert changed == [
        {
            "op": "replace",
            "left": ["居民身份证遗失的，可到派出所申请**补领**。"],
            "right": ["居民身份证遗失的，到派出所。"],
        }
    ]
    assert diff["rows"][0] == {
        "op": "equal",
        "left": ["title: 身份证补领", "keywords: 身份证, 补领", "category: 户籍与居住", "body:"],
        "right": ["title: 身份证补领", "keywords: 身份证, 补领", "category: 户籍与居住", "body:"],
    }


def test_an_error_report_carries_the_callers_question_and_the_title(kb):
    kb.create()
    kb.publish("KB-T-001")
    flag = kb.call(
        "POST",
        "/articles/KB-T-001/flags",
        "agent",
        expect=201,
        json={"kind": "outdated", "note": "工本费变了", "question": "身份证丢了补办要多少钱"},
    )
    assert flag["question"] == "身份证丢了补办要多少钱" and flag["title"] == "身份证补领"
    listed = kb.call("GET", "/flags", "editor")
    assert [(f["id"], f["question"], f["title"]) for f in listed] == [
        (flag["id"], "身份证丢了补办要多少钱", "身份证补领")
    ]
    too_long = {"kind": "wrong", "question": "问" * 501}
    kb.error("POST", "/articles/KB-T-001/flags", "agent", 422, json=too_long)


def test_searches_that_find_nothing_are_counted_as_gaps(kb, sample):
    for q in ("火星基地", "火星基地", "ＸＹＺ火星", "火"):
        assert kb.search(q) == []
    assert kb.search("社保卡挂失") != []
    # Narrowed by a category, an empty answer says nothing about the knowledge base.
    assert kb.call("GET", "/search", params={"q": "没有这个", "category": "税务"}) == []
    usage = kb.call("GET", "/usage", "editor")
    gaps = {g["query"]: g for g in usage["gaps"]}
    assert set(gaps) == {"火星基地", "xyz火星"}
    assert gaps["火星基地"]["searches"] == 2
    assert usage["gaps"][0]["query"] == "火星基地"
    assert gaps["火星基地"]["found_now"] == 0

    key = kb.call("GET", "/search", params={"q": "社保卡挂失"})[0]["key"]
    kb.call("POST", f"/articles/{key}/views", "agent")
    kb.call("POST", f"/articles/{key}/views", "agent")
    usage = kb.call("GET", "/usage", "editor")
    assert usage["most_viewed"][0]["key"] == key
    assert usage["most_viewed"][0]["views_in_calls"] == 2
    assert kb.error("GET", "/usage", "agent", 403) == "auth.forbidden"


def _upload(kb, content: bytes, as_: str = "editor", expect: int = 200):
    return kb.call(
        "POST",
        "/import",
        as_,
        expect=expect,
        files={"file": ("kb.jsonl", content, "application/x-ndjson")},
    )


def test_an_uploaded_file_goes_to_review_and_its_bad_lines_are_reported(kb):
    good = {"key": "KB-IMP-1", "title": "导入测试", "body": "正文。", "category": "其他"}
    content = (
        json.dumps(good, ensure_ascii=False)
        + "\n{not json\n"
        + json.dumps({"key": "KB-IMP-2", "title": "", "body": "x", "category": "其他"})
        + "\n\n"
    ).encode()
    report = _upload(kb, content)
    assert (report["lines"], report["created"], report["unchanged"]) == (3, 1, 0)
    assert [e["line"] for e in report["errors"]] == [2, 3]
    assert "not valid JSON" in report["errors"][0]["message"]
    assert "title" in report["errors"][1]["message"]
    # Not published: an upload needs a second editor like any other change.
    assert kb.error("GET", "/articles/KB-IMP-1", "agent", 404) == "kb.not_found"
    imported = kb.call("GET", "/articles/KB-IMP-1", "editor")
    assert (imported["title"], imported["editor"]["status"]) == ("导入测试", "in_review")
    assert kb.error("POST", "/articles/KB-IMP-1/approve", "editor", 403) == "kb.self_review"
    kb.call("POST", "/articles/KB-IMP-1/approve", "editor2", json={"publish": True})
    assert kb.call("GET", "/articles/KB-IMP-1", "agent")["title"] == "导入测试"

    assert _upload(kb, content)["unchanged"] == 1
    changed = json.dumps({**good, "body": "新正文。"}, ensure_ascii=False).encode()
    assert _upload(kb, changed)["updated"] == 1
    article = kb.call("GET", "/articles/KB-IMP-1", "editor")
    assert (article["version"], article["editor"]["status"]) == (2, "in_review")
    assert article["editor"]["published_version"] == 1
    with db.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == "KB-IMP-1", AuditEntry.actor == "editor")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == [
        "kb.article_created",
        "kb.article_submitted",
        "kb.article_edited",
        "kb.article_submitted",
    ]

    # An editor tied to a department imports only that department's articles.
    other = {**good, "key": "KB-IMP-3", "department": "C-OTHER"}
    refused = _upload(kb, json.dumps(other, ensure_ascii=False).encode(), as_="hrss_editor")
    assert refused["created"] == 0
    assert [e["message"].split(":")[0] for e in refused["errors"]] == ["kb.not_owner"]
    assert kb.error("GET", "/articles/KB-IMP-3", "editor", 404) == "kb.not_found"

    assert _upload(kb, b"", expect=400)["error"]["code"] == "kb.import_empty"
    assert _upload(kb, b"\xff\xfe\x00", expect=400)["error"]["code"] == "kb.import_not_utf8"
    assert _upload(kb, b"{}", as_="agent", expect=403)["error"]["code"] == "auth.forbidden"
    limits = kb.call("GET", "/import", "editor")
    assert limits["max_bytes"] == get_settings().kb_import_max_bytes


def test_a_file_above_the_limit_is_refused_with_a_clear_code(kb, settings_env):
    settings_env(kb_import_max_bytes="2048")
    assert kb.call("GET", "/import", "editor")["max_bytes"] == 2048
    refused = _upload(kb, b" " * 2049, expect=413)
    assert refused["error"]["code"] == "kb.import_too_large"
    assert "2048" in refused["error"]["message"]


def test_a_question_answered_only_by_one_common_word_is_a_gap(kb, sample):
    """Real questions rarely find nothing at all: 备案 alone matches two articles. An answer
    that covers little of the question (its words weighted by rarity) is a content gap too;
    colloquial questions answered through synonyms are not."""
    weak = ("无人机航拍要不要备案", "宠物医院夜间急诊")
    answered = ("外地人看病怎么报销", "晚上装修噪音太吵", "社保卡丢了怎么补办")
    for q in weak + answered:
        assert kb.search(q) != [], q
    gaps = {g["query"]: g for g in kb.call("GET", "/usage", "editor")["gaps"]}
    assert set(gaps) == set(weak)
    assert all(g["found_now"] == 0 for g in gaps.values())


def test_the_gap_table_stays_bounded(kb, monkeypatch):
    monkeypatch.setattr(service, "GAP_MAX_ROWS", 2)
    for q in ("火星基地一", "火星基地二", "火星基地三"):
        kb.search(q)
    assert {g["query"] for g in kb.call("GET", "/usage", "editor")["gaps"]} == {
        "火星基地一",
        "火星基地二",
    }
    kb.search("火星基地一")  # a question already counted still counts
    with db.transaction() as session:
        session.execute(
            update(SearchGap)
            .where(SearchGap.query == "火星基地二")
            .values(last_at=utcnow() - timedelta(days=service.GAP_KEEP_DAYS + 1))
        )
    kb.search("火星基地三")  # room is made by dropping what nobody asked for 90 days
    gaps = {g["query"]: g["searches"] for g in kb.call("GET", "/usage", "editor")["gaps"]}
    assert gaps == {"火星基地一": 2, "火星基地三": 1}
