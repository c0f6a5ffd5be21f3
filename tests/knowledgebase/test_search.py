"""The search index on its own (no database): analysis, ranking, snippets, updates."""

from __future__ import annotations

import pytest

from knowledgebase import search as kb_search
from knowledgebase.search import SearchDocument, SearchIndex, snippet


def document(key, title, body, keywords=(), category="社会保障", department=None):
    return SearchDocument(
        key=key,
        title=title,
        category=category,
        department=department,
        keywords=tuple(keywords),
        text=body,
        fields=kb_search.analyze_document(
            title=title, keywords=keywords, text=body, category=category
        ),
    )


CARD = document(
    "CARD",
    "社会保障卡挂失与补办",
    "社会保障卡遗失后应先挂失，补办需携带身份证。",
    ["社保卡", "挂失"],
)
ID = document(
    "ID", "居民身份证补领", "身份证遗失的，到派出所申请补领，工本费20元。", ["身份证", "补领"],
    category="户籍与居住", department="C-POLICE",
)  # fmt: skip
SCHOOL = document(
    "SCHOOL", "义务教育阶段入学报名", "适龄儿童按学区报名入学，随迁子女按积分入学。",
    ["入学", "积分入学", "随迁子女"], category="教育",
)  # fmt: skip


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.build([CARD, ID, SCHOOL], kb_search.DEFAULT_SYNONYMS)


def keys(hits) -> list[str]:
    return [h.key for h in hits]


def test_words_and_sub_words_are_indexed_and_question_words_are_not():
    tokens = kb_search.tokens(kb_search.normalize("社会保障卡怎么补办"))
    assert {"社会保障卡", "社会保障", "社会", "保障", "补办"} <= set(tokens)
    assert "怎么" not in tokens and not any(len(t) < 2 for t in tokens)
    assert kb_search.tokens(kb_search.normalize("ＡＰＰ１２３４５")) == ["app", "12345"]


def test_two_character_words_match_even_inside_longer_text(index):
    assert keys(index.search("补办"))[0] == "CARD"
    assert keys(index.search("补领"))[0] == "ID"
    assert keys(index.search("积分入学")) == ["SCHOOL"]


def test_own_keywords_are_whole_terms_without_changing_the_tokenizer(index):
    fields = SCHOOL.fields
    assert fields["keywords"]["积分入学"] == 1 and fields["body"]["积分入学"] == 1
    assert index.document_frequency("积分入学") == 1
    # The tokenizer's dictionary stays fixed: analysing never depends on what was indexed.
    assert kb_search.tokenizer().FREQ.get("积分入学") == 2000  # from DOMAIN_WORDS


def test_synonyms_and_colloquial_questions(index):
    assert keys(index.search("社保卡丢了怎么办"))[0] == "CARD"
    assert keys(index.search("身份证丢了"))[0] == "ID"
    assert keys(index.search("娃上学"))[0] == "SCHOOL"
    groups = dict((terms, w) for w, terms in index.analyze_query("社保卡丢了"))
    assert groups[("挂失", "补办", "遗失")] == kb_search.SYNONYM_WEIGHT
    assert groups[("社保卡",)] == 1.0


def test_the_longest_colloquial_word_decides(index):
    groups = [terms for _w, terms in index.analyze_query("外地人办证")]
    assert ("居住证", "流动人口", "非本市户籍") in groups
    assert ("市外", "异地") not in groups  # 外地 inside 外地人 is not applied


def test_title_and_keywords_outrank_the_body():
    in_title = document("A", "公交卡办理", "持身份证到营业厅办理。", ["公交卡"])
    in_body = document("B", "营业厅服务", "营业厅可办理公交卡、水电缴费等业务。")
    index = SearchIndex.build([in_body, in_title], {})
    assert keys(index.search("公交卡")) == ["A", "B"]


def test_filters_and_empty_questions(index):
    assert keys(index.search("遗失", category="户籍与居住")) == ["ID"]
    assert keys(index.search("遗失", department="C-POLICE")) == ["ID"]
    assert index.search("遗失", category="不存在") == []
    assert index.search("") == [] and index.search("？！") == [] and index.search("怎么办") == []


def test_snippets_mark_terms_and_escape_everything_else():
    text = "<b>注意</b>：社保卡遗失后 & 先挂失，再补办。" + "其他说明" * 30
    result = snippet(text, ("社保卡", "挂失", "社保"))
    assert result.startswith(
        "&lt;b&gt;注意&lt;/b&gt;：<mark>社保卡</mark>遗失后 &amp; 先<mark>挂失</mark>"
    )
    assert result.endswith("…") and "<b>" not in result
    far = "无关内容。" * 40 + "这里讲补办。"
    assert snippet(far, ("补办",)).startswith("…") and "<mark>补办</mark>" in snippet(
        far, ("补办",)
    )


def test_ties_are_broken_by_key_and_results_are_deterministic():
    twins = [document(k, "居住证办理", "居住证办理指南。", ["居住证"]) for k in ("B2", "A1", "C3")]
    index = SearchIndex.build(twins, {})
    hits = index.search("居住证")
    assert keys(hits) == ["A1", "B2", "C3"] and len({h.score for h in hits}) == 1
    assert keys(index.search("居住证", limit=2)) == ["A1", "B2"]


def test_updates_give_the_same_ranking_as_a_rebuild(index):
    changed_card = document("CARD", "社保卡补办", "社保卡补办指南。", ["社保卡"])
    extra = document(
        "NEW", "新生儿入户", "婴儿出生后办理出生登记。", ["新生儿"], category="户籍与居住"
    )
    patched = index.updated([changed_card, extra], ["ID"], kb_search.DEFAULT_SYNONYMS)
    rebuilt = SearchIndex.build([changed_card, SCHOOL, extra], kb_search.DEFAULT_SYNONYMS)
    assert len(patched) == 3 and "ID" not in patched and patched.dead_slots == 2
    for question in ("社保卡丢了", "身份证补领", "宝宝上户口", "入学报名", "遗失"):
        assert patched.search(question) == rebuilt.search(question)
    assert len(index) == 3 and "ID" in index  # the old snapshot is untouched


def test_stored_analyses_round_trip_and_other_versions_are_redone():
    stored = kb_search.encode_terms(CARD.fields)
    assert kb_search.decode_terms(stored) == CARD.fields
    assert kb_search.decode_terms(stored.replace('"v":1', '"v":0')) is None
