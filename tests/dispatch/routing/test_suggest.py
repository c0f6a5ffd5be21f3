"""Suggesting matters from the request text."""

from __future__ import annotations

import pytest

from dispatch.routing import suggest as suggest_module
from dispatch.routing.ruleset import RuleSet
from dispatch.routing.suggest import MatterSuggester, Suggestion


@pytest.fixture(scope="module")
def suggester(ruleset: RuleSet) -> MatterSuggester:
    return MatterSuggester(ruleset)


def _codes(suggestions: list[Suggestion]) -> list[str]:
    return [s.code for s in suggestions]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我在商场买的衣服有质量问题，商家拒绝退货退款", "SC-01"),
        ("楼下广场舞每天晚上噪音扰民", "HB-03"),
        ("小区电梯困人了，一直没人来", "SC-05"),
        ("菜市场的秤缺斤短两", "SC-06"),
        ("港澳通行证签注怎么办理", "CR-01"),
        ("公司拖欠工资三个月不发", "RS-01"),
        ("台风过后路边倒树压车", "YJ-01"),
        ("我想办理婚姻登记", "MZ-03"),
    ],
)
def test_top_suggestion(suggester: MatterSuggester, text: str, expected: str) -> None:
    suggestions = suggester.suggest(text)
    assert suggestions[0].code == expected
    assert suggestions[0].name == suggester.ruleset.matter(expected).name


@pytest.mark.parametrize("text", ["", "   ", "。。。！", "今天天气不错", "我要投诉", "hello"])
def test_empty_or_irrelevant_text_gives_nothing(suggester: MatterSuggester, text: str) -> None:
    assert suggester.suggest(text) == []


def test_scores_are_in_range_and_ordered(suggester: MatterSuggester) -> None:
    suggestions = suggester.suggest("小区物业不管电梯困人，工地夜间施工噪音，还有垃圾没人清运")
    assert len(suggestions) == 5
    assert all(0.0 < s.score < 1.0 for s in suggestions)
    keys = [(-s.score, s.code) for s in suggestions]
    assert keys == sorted(keys)


def test_ties_are_broken_by_code(suggester: MatterSuggester) -> None:
    # 营业执照 is a keyword of both SC-03 and SC-07
    suggestions = suggester.suggest("营业执照")
    assert _codes(suggestions) == ["SC-03", "SC-07"]
    assert suggestions[0].score == suggestions[1].score


def test_more_evidence_scores_higher(suggester: MatterSuggester) -> None:
    one = suggester.suggest("退货")[0]
    three = suggester.suggest("商家不给退货退款，售后也不管")[0]
    assert one.code == three.code == "SC-01"
    assert three.score > one.score


def test_matter_name_alone_is_evidence(suggester: MatterSuggester) -> None:
    assert suggester.suggest("消费纠纷投诉")[0].code == "SC-01"


def test_limit(suggester: MatterSuggester) -> None:
    text = "小区物业不管电梯困人，工地夜间施工噪音，还有垃圾没人清运"
    assert len(suggester.suggest(text, limit=2)) == 2
    assert suggester.suggest(text, limit=0) == []
    assert suggester.suggest(text, limit=2) == suggester.suggest(text)[:2]


def test_names_and_keywords_segment_whole(suggester: MatterSuggester) -> None:
    assert "缺斤短两" in suggester.tokens("老板缺斤短两")
    assert "港澳通行证" in suggester.tokens("我的港澳通行证丢了")
    assert "拖欠工资" in suggester.tokens("公司拖欠工资")
    assert "，" not in suggester.tokens("你好，谢谢")


def test_suggestions_are_deterministic(ruleset: RuleSet, suggester: MatterSuggester) -> None:
    text = "餐馆卫生很差吃了食物中毒，还乱收费"
    assert MatterSuggester(ruleset).suggest(text) == suggester.suggest(text)


# -- learning from agents' choices ---------------------------------------------------------------


EXAMPLES = [
    ("空调外机滴水到楼下阳台", "HB-03"),
    ("空调外机噪音很大吵得睡不着", "HB-03"),
    ("空调外机支架生锈快掉下来了", "CG-05"),
    ("空调外机滴水", "NO-SUCH"),  # a retired matter code is skipped
]


def test_learn_weights(suggester: MatterSuggester) -> None:
    learned = suggester.learn_weights(EXAMPLES)
    # 外机 appeared in 3 counted texts, 2 of them HB-03: 2 / (3 + 1)
    assert learned["外机"] == {"CG-05": 0.25, "HB-03": 0.5}
    assert learned["滴水"] == {"HB-03": 0.5}
    assert all(0 < w < 1 for weights in learned.values() for w in weights.values())
    assert "NO-SUCH" not in {code for weights in learned.values() for code in weights}


def test_learned_weights_add_evidence(ruleset: RuleSet, suggester: MatterSuggester) -> None:
    text = "空调外机滴水"
    assert suggester.suggest(text) == []
    learned = MatterSuggester(ruleset, learned=suggester.learn_weights(EXAMPLES))
    assert _codes(learned.suggest(text)) == ["HB-03", "CG-05"]


def test_learned_weights_for_unknown_matters_are_ignored(ruleset: RuleSet) -> None:
    learned = MatterSuggester(ruleset, learned={"外机": {"NO-SUCH": 5.0, "CG-05": 0.0}})
    assert learned.suggest("空调外机") == []


def test_jieba_initialises_quietly(ruleset: RuleSet, capfd, monkeypatch) -> None:
    monkeypatch.setattr(suggest_module, "_shared_tokenizer", None)
    MatterSuggester(ruleset).suggest("退货")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
