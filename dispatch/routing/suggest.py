"""Suggest catalogue matters (事项) for a request text, for the agent to confirm.

The text is segmented with jieba (search mode, so long words also yield their sub-words) in a
private ``jieba.Tokenizer`` that knows every matter name and keyword, so "缺斤短两" or
"港澳通行证" stay whole. A matter scores from three sources:
  * keyword hits - each keyword found counts 1 / (number of matters sharing the keyword);
  * name overlap - the share of the matter name's tokens found, weighted by how rare each
    token is among matter names (generic words such as 投诉 or 咨询 are left out);
  * learned weights - token -> matter weights learnt from agents' final choices
    (:meth:`MatterSuggester.learn_weights`), summed over the tokens of the text.
The sum ``raw`` maps to ``score = raw / (1 + raw)`` in [0, 1); matters with no evidence are
never suggested, so irrelevant text gives an empty list.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

import jieba

from dispatch.routing.ruleset import RuleSet

NAME_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
LEARNED_WEIGHT = 1.0
# Matters the classifier never saw are reached by keywords: a hit must be this good (one
# keyword shared by two matters, or most of a name), and at most this many join the list.
UNSEEN_MIN_SCORE = 0.3
UNSEEN_LIMIT = 2

# Words in matter names that say what kind of request it is (咨询/投诉 …) or nothing at all;
# they would link every complaint to every 投诉 matter.
_GENERIC_NAME_TOKENS = frozenset(
    {"咨询", "求助", "投诉", "举报", "建议", "问题", "业务", "服务", "其他", "诉求", "办理"}
)
# Frequent words of hotline speech that say nothing about the matter; kept out of learning.
_STOP_TOKENS = frozenset(
    {
        "我们", "你们", "他们", "这个", "那个", "一个", "什么", "怎么", "怎么办", "为什么",
        "没有", "现在", "已经", "可以", "因为", "所以", "但是", "还是", "就是", "如果", "请问",
        "你好", "您好", "谢谢", "麻烦", "希望", "要求", "反映", "市民", "来电", "情况", "处理",
        "问题", "时候", "今天", "昨天", "一直", "不是", "这样", "那里", "这里", "自己",
    }
)  # fmt: skip

_tokenizer_lock = threading.Lock()
_shared_tokenizer: jieba.Tokenizer | None = None


@contextmanager
def _quiet_jieba() -> Iterator[None]:
    """jieba logs "Building prefix dict …" at DEBUG to stderr; silence it, then restore."""
    logger = jieba.default_logger
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _tokenizer() -> jieba.Tokenizer:
    # One private tokenizer per process: loading the dictionary takes about a second, and a
    # private one keeps our added words out of jieba's global dictionary used by others.
    global _shared_tokenizer
    with _tokenizer_lock:
        if _shared_tokenizer is None:
            tokenizer = jieba.Tokenizer()
            with _quiet_jieba():
                tokenizer.initialize()
            _shared_tokenizer = tokenizer
        return _shared_tokenizer


def warm_up() -> None:
    """Build the tokenizer now, at start-up, rather than in the first request that needs it."""
    _tokenizer()


def normalise(text: str) -> str:
    """What makes two requests "the same text" for the memory of people's choices."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _informative(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested matter with a score in [0, 1); higher is more likely.

    From the classifier the score is a calibrated probability; ``urgent``: the matter is urgent
    (电梯困人, 燃气泄漏 …) and is shown even when less likely than others.
    """

    code: str
    name: str
    score: float
    urgent: bool = False


class MatterSuggester:
    """Ranks catalogue matters for a request text; build once per rule set, then only read."""

    def __init__(
        self, ruleset: RuleSet, learned: Mapping[str, Mapping[str, float]] | None = None
    ) -> None:
        self.ruleset = ruleset
        self._names = {m.code: m.name for m in ruleset.matters}
        tokenizer = _tokenizer()
        with _tokenizer_lock, _quiet_jieba():
            for matter in ruleset.matters:
                for word in (matter.name, *matter.keywords):
                    if word:
                        # Never lowers a frequency, so re-adding a known word is harmless.
                        tokenizer.add_word(word)
        self._tokenizer = tokenizer

        keyword_matters: dict[str, set[str]] = defaultdict(set)
        for matter in ruleset.matters:
            for keyword in matter.keywords:
                keyword_matters[keyword.lower()].add(matter.code)
        # token -> [(matter code, weight)], so scoring touches only matters the text can reach
        self._keyword_index: dict[str, list[tuple[str, float]]] = {
            keyword: [(code, KEYWORD_WEIGHT / len(codes)) for code in sorted(codes)]
            for keyword, codes in keyword_matters.items()
        }
        self._name_index = self._build_name_index()
        self._learned: dict[str, list[tuple[str, float]]] = {}
        for token, weights in (learned or {}).items():
            known = [
                (code, LEARNED_WEIGHT * float(weight))
                for code, weight in sorted(weights.items())
                if code in self._names and weight > 0
            ]
            if known:
                self._learned[token.lower()] = known

    def _build_name_index(self) -> dict[str, list[tuple[str, float]]]:
        name_tokens = {
            m.code: {
                t for t in self.tokens(m.name) if len(t) >= 2 and t not in _GENERIC_NAME_TOKENS
            }
            for m in self.ruleset.matters
        }
        document_frequency: dict[str, int] = defaultdict(int)
        for tokens in name_tokens.values():
            for token in tokens:
                document_frequency[token] += 1
        count = len(name_tokens)
        idf = {t: math.log(1 + count / df) for t, df in document_frequency.items()}
        index: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for code, tokens in sorted(name_tokens.items()):
            total = sum(idf[t] for t in tokens)
            for token in sorted(tokens):
                # A full name overlap adds NAME_WEIGHT, spread by how telling each token is.
                index[token].append((code, NAME_WEIGHT * idf[token] / total))
        return dict(index)

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` (jieba search mode, lower-cased), punctuation dropped."""
        if not text:
            return []
        return [t.lower() for t in self._tokenizer.cut_for_search(text) if _informative(t)]

    def suggest(self, text: str, limit: int = 5) -> list[Suggestion]:
        """Up to ``limit`` matters for ``text``, by score (descending) then code (ascending).

        Only matters with some evidence (keyword, name token or learned weight) are returned.
        """
        if limit <= 0:
            return []
        tokens = sorted(set(self.tokens(text)))
        raw: dict[str, float] = defaultdict(float)
        for token in tokens:
            for index in (self._keyword_index, self._name_index, self._learned):
                for code, weight in index.get(token, ()):
                    raw[code] += weight
        ranked = sorted(
            (
                Suggestion(code, self._names[code], round(value / (1 + value), 6))
                for code, value in raw.items()
                if value > 0
            ),
            key=lambda s: (-s.score, s.code),
        )
        return ranked[:limit]

    def learn_weights(
        self, examples: Iterable[tuple[str, str]], *, smoothing: float = 1.0
    ) -> dict[str, dict[str, float]]:
        """Turn agents' final choices ``(text, chosen matter code)`` into learned weights.

        weight(token, code) = (texts with the token that chose code) / (texts with the token
        + ``smoothing``): close to P(code | token), damped for rarely seen tokens. Codes not in
        the rule set (e.g. retired matters) are skipped. Pass the result as ``learned``.
        """
        together: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        seen: dict[str, int] = defaultdict(int)
        for text, code in examples:
            if code not in self._names:
                continue
            for token in set(self.tokens(text)):
                if len(token) < 2 or token in _STOP_TOKENS:
                    continue
                together[token][code] += 1
                seen[token] += 1
        return {
            token: {code: n / (seen[token] + smoothing) for code, n in sorted(codes.items())}
            for token, codes in sorted(together.items())
        }


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the suggester made of a text.

    ``low_confidence``: the best matter is below the confidence threshold; the suggestions are
    then the top 3 and the catch-all matter (其他综合诉求), for the agent to choose.
    ``source``: "model" (the classifier), "keywords" (the fallback) or "none" (no text).
    """

    suggestions: list[Suggestion]
    low_confidence: bool
    source: str


class MatterRanker(Protocol):
    def rank(self, text: str) -> list[tuple[str, float]]: ...


class ModelSuggester:
    """Suggests matters with a trained classifier; the keyword suggester when there is none.

    Text only: the address decides the place, never the matter (a request about a power cut
    in 燃气公司宿舍 is no gas matter).
    """

    def __init__(
        self,
        ruleset: RuleSet,
        model: MatterRanker | None,
        fallback: MatterSuggester,
        *,
        confidence_threshold: float,
        urgent_threshold: float,
        catch_all: str | None,
        model_version: int | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.model = model
        self.fallback = fallback
        self.confidence_threshold = confidence_threshold
        self.urgent_threshold = urgent_threshold
        self.catch_all = catch_all
        self.model_version = model_version
        self._matters = {m.code: m for m in ruleset.matters}

    def _suggestion(self, code: str, score: float) -> Suggestion:
        matter = self._matters[code]
        return Suggestion(code, matter.name, round(score, 6), matter.urgent)

    def understand(self, text: str, limit: int = 5) -> Understanding:
        """The matters ``text`` most likely belongs to, best first, at most ``limit``."""
        if limit <= 0 or not any(ch.isalnum() for ch in text):
            return Understanding([], False, "none")
        if self.model is None:
            found = self.fallback.suggest(text, limit)
            return Understanding(
                [replace(s, urgent=self._matters[s.code].urgent) for s in found], False, "keywords"
            )
        every = self.model.rank(text)
        ranked = [(code, p) for code, p in every if code in self._matters]
        unseen = self._unseen_hits(text, limit, {code for code, _ in every})
        if not ranked:
            found = [self._suggestion(code, p) for code, p in unseen]
            return Understanding(found, False, "keywords" if found else "model")
        top = ranked[:limit]
        shown = min(3, limit)
        # An urgent matter is never missed silently: likely enough, it joins the first three.
        for code, p in ranked[shown:]:
            if p >= self.urgent_threshold and self._matters[code].urgent:
                top = [c for c in top if c[0] != code]
                top.insert(min(1, len(top)), (code, p))
        low = ranked[0][1] < self.confidence_threshold
        after = shown
        if low and self.catch_all in self._matters:
            # Unsure: the three likeliest real matters and the catch-all, by likelihood (the
            # catch-all first when it is the likeliest, so one key takes it).
            kept = [c for c in top if c[0] != self.catch_all][: min(3, limit - 1)]
            catch_all = (self.catch_all, dict(ranked).get(self.catch_all, 0.0))
            top = sorted([*kept, catch_all], key=lambda c: -c[1])
            after = len(top)
        # Matters the model never saw follow what it gives first (its first three, and the
        # catch-all when unsure), never displacing them; urgent ones keep their flag.
        top = [*top[:after], *unseen, *top[after:]][:limit]
        return Understanding([self._suggestion(code, p) for code, p in top], low, "model")

    def _unseen_hits(self, text: str, limit: int, known: set[str]) -> list[tuple[str, float]]:
        """Matters of the catalogue the model was not trained on (no corpus examples yet) that
        the keyword suggester finds for ``text``: at most ``UNSEEN_LIMIT``, best first."""
        if len(known) >= len(self._matters) and self._matters.keys() <= known:
            return []
        hits = [
            (s.code, s.score)
            for s in self.fallback.suggest(text, limit + len(known))
            if s.code not in known and s.score >= UNSEEN_MIN_SCORE
        ]
        return hits[:UNSEEN_LIMIT]

    def suggest(self, text: str, limit: int = 5) -> list[Suggestion]:
        return self.understand(text, limit).suggestions
