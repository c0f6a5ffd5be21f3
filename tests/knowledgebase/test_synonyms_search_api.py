"""Search through the API: public, published only, filters, snippets, the editable synonym list
and the console's suggestions."""

from __future__ import annotations

import pytest


@pytest.fixture
def loaded(sample, kb):
    return kb


def test_search_is_public_and_answers_the_documented_shape(loaded):
    hits = loaded.search("社保卡丢了怎么办", limit=3)
    assert hits[0]["key"] == "KB-SB-001"
    assert set(hits[0]) == {"key", "title", "snippet", "score", "category"}
    assert hits[0]["category"] == "社会保障" and hits[0]["score"] > 0
    assert "<mark>挂失</mark>" in hits[0]["snippet"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert loaded.search("") == []
    assert loaded.search("怎么办？") == []  # question words alone ask for nothing


def test_two_character_words_match(loaded):
    assert loaded.search("补办")[0]["key"] == "KB-SB-001"
    assert loaded.search("签注")[0]["key"] == "KB-CRJ-001"
    assert loaded.search("低保")[0]["key"] == "KB-MZ-002"


def test_filters_by_category_and_department(loaded, kb):
    assert {h["category"] for h in loaded.search("办理", category="住房公积金")} == {"住房公积金"}
    assert loaded.search("办理", category="没有这个分类") == []
    kb.create("KB-HR-9", title="失业登记办理", department="C-HRSS", keywords=["失业登记"],
              category="社会保障", body="失业人员可办理失业登记。")  # fmt: skip
    kb.publish("KB-HR-9")
    assert [h["key"] for h in loaded.search("失业", department="C-HRSS")] == ["KB-HR-9"]
    assert "KB-SB-003" in [h["key"] for h in loaded.search("失业")]


def test_editors_change_synonyms_and_the_next_search_uses_them(loaded, kb):
    assert loaded.search("小区路灯黑乎乎")[0]["key"] == "KB-CG-002"  # 路灯 itself matches
    assert loaded.search("黑乎乎的没有光") == []
    kb.call("PUT", "/synonyms/黑乎乎", "editor", json={"synonyms": ["路灯不亮", "路灯"]})
    assert loaded.search("黑乎乎的没有光")[0]["key"] == "KB-CG-002"
    entries = {e["term"]: e for e in kb.call("GET", "/synonyms", "editor")}
    assert entries["黑乎乎"] == {
        "term": "黑乎乎",
        "synonyms": ["路灯不亮", "路灯"],
        "source": "custom",
        "updated_by": "editor",
    }
    assert entries["丢了"]["source"] == "default"
    kb.call("DELETE", "/synonyms/黑乎乎", "editor", expect=204)
    assert loaded.search("黑乎乎的没有光") == []
    # A built-in entry can be switched off and brought back.
    assert loaded.search("娃")[0]["key"] == "KB-JY-001"
    kb.call("DELETE", "/synonyms/娃", "editor", expect=204)
    assert loaded.search("娃") == []
    kb.call("PUT", "/synonyms/娃", "editor", json={"synonyms": ["孩子", "子女"]})
    assert loaded.search("娃")[0]["key"] == "KB-JY-001"
    assert (
        kb.error("PUT", "/synonyms/娃", "agent", 403, json={"synonyms": ["x"]}) == "auth.forbidden"
    )
    assert kb.error("DELETE", "/synonyms/没有", "editor", 404) == "kb.synonym_not_found"


def test_suggestions_from_a_ticket_text_for_hotline_staff(loaded, kb):
    text = "市民来电反映：本人社保卡上周在公交车上遗失，询问如何挂失及补办新卡，需要带哪些材料。"
    suggestions = kb.call("GET", "/suggest", "agent", params={"text": text, "limit": 3})
    assert suggestions[0]["key"] == "KB-SB-001" and len(suggestions) <= 3
    assert kb.error("GET", "/suggest", None, 401, params={"text": text}) == "auth.unauthenticated"
    assert kb.error("GET", "/suggest", "editor", 403, params={"text": text}) == "auth.forbidden"
