"""Chinese full-text search over published articles, ranked in Python the same way everywhere.

Why in Python: SQLite's FTS5 and PostgreSQL's tsvector segment and rank Chinese differently (or
not at all), so a search in the databases would answer differently on the two backends. Here
each process keeps an in-memory inverted index (numpy arrays per term) built from the stored
search documents and refreshed when the ``kb`` revision counter moves (see ``service``).

Analysis
  * jieba segmentation (precise mode) in a private ``jieba.Tokenizer`` that also knows a fixed
    lexicon of government-service words (``DOMAIN_WORDS``) and every synonym; each word longer
    than two characters also yields its dictionary sub-words (search mode, as
    ``jieba.cut_for_search`` does), so 社会保障卡 is found by 社会保障 and by 保障. Single
    characters, punctuation and question words (怎么, 如何, 哪里, 什么 …) are dropped.
  * An article's own keywords are indexed as whole terms (counted as substrings of its title
    and body) instead of being added to the tokenizer: a tokenizer whose dictionary grew with
    every article seen would segment the same text differently in two processes, and stored
    analyses would then depend on a process's history. On the query side every keyword of the
    index found inside the question is a term too, so 积分入学 or 港澳通行证 stay whole.
  * Synonyms (丢了 → 遗失, 挂失) are found as substrings of the question and add their
    expansions with a lower weight; the defaults (``DEFAULT_SYNONYMS``) are overridden per
    term by the editors' table.

Ranking is BM25F: per field a length-normalised term frequency, fields weighted (keywords 4,
title 3, category 1.5, body 1), saturated with k1 = 1.2, times the term's idf; a colloquial
word's synonyms count once, by the best of them. Lengths are normalised against fixed
reference lengths, so a document's weights depend on it alone, and ties are broken by
article key: the same documents give the same results, however the index was built.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache

import jieba
import numpy as np

# Bump when the analysis below changes: stored analyses of another version are redone.
ANALYZER_VERSION = 1

FIELD_WEIGHTS = {"keywords": 4.0, "title": 3.0, "category": 1.5, "body": 1.0}
# How much a field's length dampens its term frequency (BM25's b), per field.
FIELD_LENGTH_DAMPING = {"keywords": 0.2, "title": 0.4, "category": 0.0, "body": 0.75}
# Reference field lengths (in terms) for BM25's length normalisation, about those of a
# typical hotline article. Fixed rather than the corpus average, so that a document's weights
# depend on the document alone: an index patched article by article then ranks exactly like
# one rebuilt from scratch, in every process.
REFERENCE_LENGTHS = {"keywords": 7.0, "title": 6.0, "category": 3.0, "body": 45.0}
K1 = 1.2
SYNONYM_WEIGHT = 0.8
SUBWORD_WEIGHT = 0.5  # a known word inside an unknown query word (太吵闹 → 吵闹)
SNIPPET_CHARS = 80
MAX_QUERY_CHARS = 2000
MAX_PHRASE_CHARS = 12  # the longest keyword or synonym looked for inside a question

# Words jieba's general dictionary lacks or splits, which callers and articles use whole.
DOMAIN_WORDS = (
    "社保卡", "社会保障卡", "医保卡", "市民卡", "公积金", "住房公积金", "公积金贷款", "居住证",
    "暂住证", "港澳通行证", "台湾通行证", "通行证", "签注", "营业执照", "个体工商户", "个体户",
    "新生儿", "出生医学证明", "出生证明", "户口簿", "户口本", "结婚证", "离婚证", "身份证",
    "居民身份证", "驾驶证", "行驶证", "异地就医", "医保", "社保", "低保", "最低生活保障",
    "残疾人证", "残疾证", "网上办事大厅", "市民网页", "汇算清缴", "年度汇算", "个税",
    "租赁备案", "积分入学", "随迁子女", "人才入户", "失业保险金", "失业金", "灵活就业",
    "养老保险", "医疗保险", "失业保险", "工伤保险", "生育保险", "物业费", "业委会",
    "业主委员会", "占道经营", "流动摊贩", "乱摆卖", "过期食品", "无证经营", "消费投诉",
    "公交卡", "交通违法", "违章", "扣分", "工本费", "挂失", "补办", "换领", "补领", "续签",
    "办证", "评残", "落户", "入户", "迁户", "准迁证", "报户口", "上户口", "出生登记",
    "婚姻登记", "结婚登记", "离婚登记", "油烟", "噪声", "噪音", "扰民", "路灯", "井盖",
    "停水", "停电", "水压", "燃气", "台风", "防风", "停课", "停工", "预约", "最多跑一次",
    "政务大厅", "政务服务", "人社局", "派出所", "交警", "12345", "12333", "12315", "12123",
    "95598", "学位", "入学", "报名", "学区", "适龄儿童", "租房", "房租", "提取", "购房",
    "退税", "个人所得税", "就医", "备案", "报销", "住院", "参保", "缴费", "申领", "欠薪",
    "工资", "劳动合同", "劳动仲裁", "身份证明", "实名认证", "电子证照",
)  # fmt: skip

# Question words and fillers of spoken questions: they say how, not what.
STOP_WORDS = frozenset(
    {
        "怎么", "怎么办", "怎么样", "怎样", "如何", "哪里", "哪儿", "在哪", "在哪里", "哪个",
        "哪些", "什么", "什么样", "啥", "咋", "咋办", "咋整", "咋弄", "怎么弄", "怎么搞",
        "为什么", "为啥", "多少", "几天", "多久", "是否", "是不是", "有没有", "能不能",
        "可不可以", "可以", "能否", "能", "需要", "要", "想", "想要", "请问", "问一下",
        "咨询", "一下", "我", "我们", "我的", "你", "你们", "您", "他", "她", "他们", "自己",
        "吗", "呢", "吧", "啊", "呀", "了", "的", "地", "得", "和", "与", "及", "或", "或者",
        "在", "去", "到", "给", "让", "把", "被", "就", "都", "还", "也", "又", "很", "太",
        "这个", "那个", "这样", "那样", "一个", "现在", "已经", "还是", "就是", "然后",
        "你好", "您好", "谢谢", "麻烦", "办", "弄", "搞", "做", "有", "没", "是", "不",
    }
)  # fmt: skip

# Colloquial words → the words articles use. Editors override these per term (see service).
DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "丢了": ("遗失", "挂失", "补办"),
    "丢失": ("遗失", "挂失", "补办"),
    "弄丢": ("遗失", "挂失", "补办"),
    "搞丢": ("遗失", "挂失", "补办"),
    "不见了": ("遗失", "挂失", "补办"),
    "掉了": ("遗失", "挂失", "补办"),
    "被偷": ("遗失", "挂失", "补办"),
    "补卡": ("补办", "挂失"),
    "重办": ("补办",),
    "坏了": ("损坏", "报修", "补办"),
    "过期了": ("到期", "换领", "续签"),
    "到期": ("换领", "续签"),
    "娃": ("孩子", "子女", "儿童"),
    "小孩": ("孩子", "子女", "儿童"),
    "孩子": ("子女", "儿童", "婴儿"),
    "儿子": ("子女", "儿童"),
    "女儿": ("子女", "儿童"),
    "宝宝": ("新生儿", "婴儿", "出生"),
    "刚出生": ("新生儿", "出生登记"),
    "生孩子": ("新生儿", "出生登记"),
    "生小孩": ("新生儿", "出生登记"),
    "上户口": ("入户", "出生登记", "报户口"),
    "报户口": ("入户", "出生登记"),
    "落户": ("入户", "迁入户口"),
    "迁户口": ("迁户", "入户", "迁入户口"),
    "上学": ("入学", "报名", "学位"),
    "读书": ("入学", "报名", "学位"),
    "念书": ("入学", "报名", "学位"),
    "小学": ("义务教育", "入学"),
    "初中": ("义务教育", "入学"),
    "学校": ("入学", "学位"),
    "钱": ("费用", "收费"),
    "多少钱": ("费用", "收费", "工本费"),
    "收费": ("费用",),
    "社保": ("社会保障", "社保卡"),
    "医保": ("医疗保障", "医疗保险"),
    "医保卡": ("社会保障卡", "社保卡"),
    "看病": ("就医", "住院", "医疗"),
    "看医生": ("就医", "住院"),
    "住院": ("就医",),
    "外地": ("异地", "市外"),
    "外省": ("异地", "市外"),
    "老家": ("异地", "户籍"),
    "外地人": ("流动人口", "非本市户籍", "居住证"),
    "外来人口": ("流动人口", "居住证"),
    "非本地": ("非本市户籍", "流动人口"),
    "报销": ("结算",),
    "户口": ("户籍", "户口簿", "入户"),
    "户口本": ("户口簿",),
    "身份证": ("居民身份证",),
    "结婚": ("婚姻登记", "结婚登记"),
    "领证": ("婚姻登记", "结婚登记"),
    "离婚": ("婚姻登记", "离婚登记"),
    "吵": ("噪声", "扰民"),
    "太吵": ("噪声", "扰民"),
    "吵闹": ("噪声", "扰民"),
    "噪音": ("噪声", "扰民"),
    "装修": ("施工", "噪声"),
    "工地": ("施工",),
    "半夜": ("夜间",),
    "晚上": ("夜间",),
    "罚单": ("交通违法", "罚款"),
    "违章": ("交通违法",),
    "闯红灯": ("交通违法",),
    "超速": ("交通违法",),
    "扣分": ("交通违法",),
    "驾照": ("驾驶证",),
    "港澳": ("港澳通行证", "签注"),
    "香港": ("港澳通行证", "签注"),
    "澳门": ("港澳通行证", "签注"),
    "去港": ("港澳通行证", "签注"),
    "去澳": ("港澳通行证", "签注"),
    "回乡证": ("港澳通行证",),
    "开店": ("营业执照", "个体工商户"),
    "开个店": ("营业执照", "个体工商户"),
    "做生意": ("营业执照", "个体工商户"),
    "做买卖": ("营业执照", "个体工商户"),
    "执照": ("营业执照",),
    "个体户": ("个体工商户",),
    "摆摊": ("占道经营", "摆卖", "流动摊贩"),
    "摆地摊": ("占道经营", "摆卖", "流动摊贩"),
    "小贩": ("流动摊贩", "占道经营"),
    "小摊": ("流动摊贩", "占道经营"),
    "路灯坏": ("路灯", "报修"),
    "没水": ("停水",),
    "停水了": ("停水",),
    "水压低": ("水压",),
    "水很小": ("水压",),
    "没电": ("停电",),
    "断电": ("停电",),
    "煤气": ("燃气",),
    "天然气": ("燃气",),
    "低保": ("最低生活保障",),
    "困难": ("困难家庭", "救助", "最低生活保障"),
    "没钱": ("困难家庭", "救助"),
    "补助": ("救助", "保障金"),
    "残疾": ("残疾人", "残疾人证"),
    "残疾证": ("残疾人证",),
    "个税": ("个人所得税",),
    "交税": ("个人所得税", "纳税"),
    "退税": ("个人所得税", "汇算"),
    "报税": ("个人所得税", "汇算"),
    "刮台风": ("台风",),
    "打风": ("台风",),
    "台风天": ("台风",),
    "失业": ("失业保险金", "失业保险"),
    "没工作": ("失业保险金", "失业", "就业"),
    "丢了工作": ("失业保险金", "失业"),
    "被辞退": ("失业保险金", "失业"),
    "下岗": ("失业保险金", "失业"),
    "辞职": ("失业", "就业"),
    "养老金": ("养老保险",),
    "退休金": ("养老保险",),
    "自由职业": ("灵活就业",),
    "打零工": ("灵活就业",),
    "自己交社保": ("灵活就业", "养老保险", "参保"),
    "租房子": ("租房", "租赁"),
    "房东": ("出租人", "房屋出租"),
    "租客": ("租赁", "承租"),
    "出租房": ("房屋出租", "出租屋"),
    "物业公司": ("物业服务", "物业企业"),
    "业委会": ("业主委员会",),
    "过期": ("过期食品", "变质"),
    "变质": ("过期食品",),
    "饭店": ("餐饮",),
    "餐馆": ("餐饮",),
    "餐厅": ("餐饮",),
    "饭馆": ("餐饮",),
    "大排档": ("餐饮",),
    "烧烤": ("餐饮", "油烟"),
    "油烟味": ("油烟",),
    "公交车": ("公交",),
    "巴士": ("公交",),
    "老人卡": ("优惠乘车卡", "公交卡"),
    "敬老卡": ("优惠乘车卡", "公交卡"),
    "坐车": ("公交", "乘车"),
    "网上办": ("网上办事大厅",),
    "网上申请": ("网上办事大厅",),
    "排队": ("预约",),
    "跑几次": ("最多跑一次",),
    "退货": ("消费投诉", "消费纠纷"),
    "退款": ("消费投诉", "消费纠纷"),
    "假货": ("消费投诉", "消费纠纷"),
    "被骗": ("消费投诉", "消费纠纷"),
    "商家": ("经营者",),
    "买房": ("购房", "公积金贷款"),
    "贷款": ("公积金贷款",),
    "取公积金": ("提取", "住房公积金"),
    "提公积金": ("提取", "住房公积金"),
    "大学生": ("人才引进", "学历"),
    "本科": ("人才引进", "学历"),
    "大专": ("人才引进", "学历"),
    "材料": ("证明", "资料"),
    "证件": ("证明", "身份证"),
    "手续": ("办理", "材料"),
}

# jieba's logger prints "Building prefix dict …" at DEBUG; a search must not chat on stderr.
_tokenizer_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_WORDLIKE = re.compile(r"[0-9a-z\u3400-\u9fff]")
_ASCII_WORD = re.compile(r"^[0-9a-z]+$")


@contextmanager
def _quiet_jieba() -> Iterator[None]:
    logger = jieba.default_logger
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def tokenizer() -> jieba.Tokenizer:
    """The private, fixed-dictionary jieba tokenizer (built once per process, ~2 s)."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                fresh = jieba.Tokenizer()
                with _quiet_jieba():
                    fresh.initialize()
                words = set(DOMAIN_WORDS)
                for term, expansions in DEFAULT_SYNONYMS.items():
                    words.add(term)
                    words.update(expansions)
                for word in sorted(words):
                    if len(word) > 1:
                        fresh.add_word(word, freq=max(fresh.FREQ.get(word) or 0, 2000))
                _tokenizer = fresh
    return _tokenizer


def normalize(text: str) -> str:
    """Full-width to half-width (NFKC) and lower case, so Ａ１２３４５ matches a12345."""
    return unicodedata.normalize("NFKC", text).lower()


def _keep(token: str) -> bool:
    if len(token) < 2 or token in STOP_WORDS:
        return False
    return bool(_WORDLIKE.search(token))


def tokens(text: str) -> list[str]:
    """Search-mode tokens of already normalised text: words and their dictionary sub-words."""
    tk = tokenizer()
    freq = tk.FREQ
    out: list[str] = []
    for word in tk.cut(text, HMM=True):
        if len(word) > 2 and not _ASCII_WORD.match(word):
            for size in range(2, len(word)):
                for start in range(len(word) - size + 1):
                    part = word[start : start + size]
                    if freq.get(part) and _keep(part):
                        out.append(part)
        if _keep(word):
            out.append(word)
    return out


@lru_cache(maxsize=65536)
def _short_tokens(text: str) -> tuple[str, ...]:
    # Titles, categories and keywords repeat across articles; their analysis is cached.
    return tuple(tokens(text))


# -- documents -----------------------------------------------------------------------------


FieldTerms = dict[str, dict[str, int]]


def analyze_document(
    *, title: str, keywords: Sequence[str], text: str, category: str
) -> FieldTerms:
    """Term counts per field of one article: what the index stores for it."""
    own_keywords = sorted({normalize(k).strip() for k in keywords if len(k.strip()) > 1})
    fields: FieldTerms = {}
    for name, value in (("title", title), ("body", text), ("category", category)):
        normalized = normalize(value)
        counts = Counter(tokens(normalized) if name == "body" else _short_tokens(normalized))
        for keyword in own_keywords:
            found = normalized.count(keyword)
            if found > counts.get(keyword, 0):
                counts[keyword] = found
        if name == "category" and len(normalized) > 1:
            counts[normalized] = max(counts.get(normalized, 0), 1)
        fields[name] = dict(counts)
    keyword_counts: Counter[str] = Counter()
    for keyword in own_keywords:
        keyword_counts[keyword] = 1
        for token in _short_tokens(keyword):
            keyword_counts[token] = max(keyword_counts[token], 1)
    fields["keywords"] = dict(keyword_counts)
    return fields


def encode_terms(fields: FieldTerms) -> str:
    """The stored form of an analysis (JSON, keys sorted so equal analyses compare equal)."""
    return json.dumps(
        {"v": ANALYZER_VERSION, "f": fields},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


def decode_terms(stored: str | None) -> FieldTerms | None:
    """The analysis from its stored form, or None if it was made by another analyzer version."""
    if not stored:
        return None
    data = json.loads(stored)
    if data.get("v") != ANALYZER_VERSION:
        return None
    return data["f"]


@dataclass(frozen=True)
class SearchDocument:
    """One published article as the index sees it."""

    key: str
    title: str
    category: str
    department: str | None
    keywords: tuple[str, ...]
    text: str  # the body as plain text, for snippets
    fields: FieldTerms

    @property
    def keyword_terms(self) -> set[str]:
        return {normalize(k).strip() for k in self.keywords if len(k.strip()) > 1}


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    key: str
    title: str
    snippet: str
    score: float
    category: str
    department: str | None
    # The share of the question (its words weighted by rarity) the article contains: a hit
    # on one common word of a long question (备案 in 无人机航拍要不要备案) answers nothing.
    coverage: float = 1.0


# Below this coverage the best hit does not answer the question: a content gap for editors.
WEAK_COVERAGE = 0.3


def _substrings(text: str, known: Mapping[str, object]) -> Iterator[str]:
    length = len(text)
    for start in range(length):
        for end in range(start + 2, min(length, start + MAX_PHRASE_CHARS) + 1):
            part = text[start:end]
            if part in known:
                yield part


class SearchIndex:
    """An immutable snapshot of the inverted index; ``updated`` returns a new snapshot.

    Searches run on whatever snapshot they were handed while a newer one is being built, so
    no lock is held while searching.
    """

    def __init__(
        self,
        *,
        docs: list[SearchDocument | None],
        slot_by_key: dict[str, int],
        postings: dict[str, tuple[np.ndarray, np.ndarray]],
        doc_terms: list[tuple[str, ...]],
        keyword_vocabulary: Counter[str],
        synonyms: Mapping[str, Sequence[str]],
        categories: np.ndarray,
        departments: np.ndarray,
        category_codes: dict[str, int],
        department_codes: dict[str | None, int],
    ) -> None:
        self._docs = docs
        self._slot_by_key = slot_by_key
        self._postings = postings
        self._doc_terms = doc_terms
        self._keyword_vocabulary = keyword_vocabulary
        self._synonyms = {normalize(k): tuple(normalize(x) for x in v) for k, v in synonyms.items()}
        self._categories = categories
        self._departments = departments
        self._category_codes = category_codes
        self._department_codes = department_codes

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls, documents: Iterable[SearchDocument], synonyms: Mapping[str, Sequence[str]]
    ) -> SearchIndex:
        """Index ``documents`` from scratch (field-length averages are computed here)."""
        docs = sorted(documents, key=lambda d: d.key)
        empty = cls(
            docs=[],
            slot_by_key={},
            postings={},
            doc_terms=[],
            keyword_vocabulary=Counter(),
            synonyms=synonyms,
            categories=np.zeros(0, dtype=np.int32),
            departments=np.zeros(0, dtype=np.int32),
            category_codes={},
            department_codes={},
        )
        return empty._with(docs, (), synonyms, bulk=True)

    def updated(
        self,
        upserts: Iterable[SearchDocument],
        removed_keys: Iterable[str],
        synonyms: Mapping[str, Sequence[str]],
    ) -> SearchIndex:
        """A new snapshot with ``upserts`` (re)indexed and ``removed_keys`` gone."""
        return self._with(list(upserts), tuple(removed_keys), synonyms, bulk=False)

    @staticmethod
    def _weights(fields: FieldTerms) -> dict[str, float]:
        pseudo: dict[str, float] = defaultdict(float)
        for name, counts in fields.items():
            weight = FIELD_WEIGHTS.get(name)
            if not weight or not counts:
                continue
            damping = FIELD_LENGTH_DAMPING[name]
            length = sum(counts.values())
            norm = 1.0 - damping + damping * length / REFERENCE_LENGTHS[name]
            for term, count in counts.items():
                pseudo[term] += weight * count / norm
        return {term: tf * (K1 + 1.0) / (tf + K1) for term, tf in pseudo.items()}

    def _with(
        self,
        upserts: list[SearchDocument],
        removed_keys: tuple[str, ...],
        synonyms: Mapping[str, Sequence[str]],
        *,
        bulk: bool,
    ) -> SearchIndex:
        docs = list(self._docs)
        doc_terms = list(self._doc_terms)
        slot_by_key = dict(self._slot_by_key)
        postings = dict(self._postings)
        vocabulary = Counter(self._keyword_vocabulary)
        category_codes = dict(self._category_codes)
        department_codes = dict(self._department_codes)
        categories = list(self._categories.tolist())
        departments = list(self._departments.tolist())

        drop: dict[str, set[int]] = defaultdict(set)
        for key in {*removed_keys, *(d.key for d in upserts)}:
            slot = slot_by_key.pop(key, None)
            if slot is None:
                continue
            old = docs[slot]
            assert old is not None
            vocabulary.subtract(old.keyword_terms)
            for term in doc_terms[slot]:
                drop[term].add(slot)
            docs[slot] = None
            doc_terms[slot] = ()

        add_ids: dict[str, list[int]] = defaultdict(list)
        add_weights: dict[str, list[float]] = defaultdict(list)
        for doc in upserts:
            slot = len(docs)
            # The per-field counts are spent once weighted; keeping them would double memory.
            docs.append(replace(doc, fields={}))
            slot_by_key[doc.key] = slot
            weights = self._weights(doc.fields)
            doc_terms.append(tuple(weights))
            for term, weight in weights.items():
                add_ids[term].append(slot)
                add_weights[term].append(weight)
            vocabulary.update(doc.keyword_terms)
            categories.append(category_codes.setdefault(doc.category, len(category_codes) + 1))
            departments.append(
                department_codes.setdefault(doc.department, len(department_codes) + 1)
            )

        for term in drop.keys() | add_ids.keys():
            ids, weights = postings.get(term, (None, None))
            if ids is not None and term in drop:
                keep = ~np.isin(ids, np.fromiter(drop[term], dtype=np.int32))
                ids, weights = ids[keep], weights[keep]
            if term in add_ids:
                new_ids = np.asarray(add_ids[term], dtype=np.int32)
                new_weights = np.asarray(add_weights[term], dtype=np.float64)
                if ids is None or bulk:
                    ids, weights = new_ids, new_weights
                else:
                    ids = np.concatenate((ids, new_ids))
                    weights = np.concatenate((weights, new_weights))
            if ids is None or len(ids) == 0:
                postings.pop(term, None)
            else:
                postings[term] = (ids, weights)
        for term in [t for t, n in vocabulary.items() if n <= 0]:
            del vocabulary[term]

        return SearchIndex(
            docs=docs,
            slot_by_key=slot_by_key,
            postings=postings,
            doc_terms=doc_terms,
            keyword_vocabulary=vocabulary,
            synonyms=synonyms,
            categories=np.asarray(categories, dtype=np.int32),
            departments=np.asarray(departments, dtype=np.int32),
            category_codes=category_codes,
            department_codes=department_codes,
        )

    # -- facts -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_by_key)

    @property
    def dead_slots(self) -> int:
        """Slots left empty by updates; a rebuild compacts them."""
        return len(self._docs) - len(self._slot_by_key)

    def __contains__(self, key: str) -> bool:
        return key in self._slot_by_key

    def document(self, key: str) -> SearchDocument | None:
        slot = self._slot_by_key.get(key)
        return None if slot is None else self._docs[slot]

    def document_frequency(self, term: str) -> int:
        entry = self._postings.get(normalize(term))
        return 0 if entry is None else len(entry[0])

    # -- querying ----------------------------------------------------------------------------

    def analyze_query(self, query: str) -> list[tuple[float, tuple[str, ...]]]:
        """The question as weighted groups of alternative terms.

        Each word of the question, and each known phrase in it, is a group of its own; a
        colloquial word's expansions form one group, scored by the best of them, so a word
        with three synonyms counts as one word, not three.
        """
        text = normalize(query[:MAX_QUERY_CHARS])
        groups: dict[tuple[str, ...], float] = {}

        def add(terms: Iterable[str], weight: float) -> None:
            kept = tuple(sorted({t for t in terms if _keep(t)}))
            if kept and weight > groups.get(kept, 0.0):
                groups[kept] = weight

        words = tokens(text)
        for word in words:
            add((word,), 1.0)
        for phrase in _substrings(text, self._keyword_vocabulary):
            add((phrase,), 1.0)
        colloquial = set(_substrings(text, self._synonyms)) | (set(text) & self._synonyms.keys())
        # The longest colloquial word decides: 外地人 (a non-local person) is not 外地.
        for word in sorted(w for w in colloquial if not any(w != o and w in o for o in colloquial)):
            add(self._synonyms[word], SYNONYM_WEIGHT)
        # A word the index has never seen (太吵闹, 办个证) may still contain words it has.
        for word in words:
            if word not in self._postings and len(word) > 2:
                add(
                    (part for part in _substrings(word, self._postings) if part != word),
                    SUBWORD_WEIGHT,
                )
        return sorted(((w, terms) for terms, w in groups.items()), key=lambda g: g[1])

    def _idf(self, df: int) -> float:
        n = len(self._slot_by_key)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        category: str | None = None,
        department: str | None = None,
    ) -> list[Hit]:
        """The best ``limit`` published articles for ``query``, best first, with snippets."""
        groups = self.analyze_query(query)
        if not groups or not self._slot_by_key:
            return []
        size = len(self._docs)
        scores = np.zeros(size, dtype=np.float64)
        for weight, terms in groups:
            entries = [self._postings[t] for t in terms if t in self._postings]
            if len(entries) == 1:
                ids, weights = entries[0]
                scores[ids] += weight * self._idf(len(ids)) * weights
            elif entries:
                best = np.zeros(size, dtype=np.float64)
                for ids, weights in entries:
                    best[ids] = np.maximum(best[ids], self._idf(len(ids)) * weights)
                scores += weight * best
        if category is not None:
            code = self._category_codes.get(category)
            if code is None:
                return []
            scores[self._categories != code] = 0.0
        if department is not None:
            code = self._department_codes.get(department)
            if code is None:
                return []
            scores[self._departments != code] = 0.0
        ranked = self._top(scores, limit)
        highlight = tuple(
            sorted({t for _w, terms in groups for t in terms}, key=lambda t: (-len(t), t))
        )
        hits = []
        for slot, score in ranked:
            doc = self._docs[slot]
            assert doc is not None
            hits.append(
                Hit(
                    key=doc.key,
                    title=doc.title,
                    snippet=snippet(doc.text, highlight),
                    score=round(score, 4),
                    category=doc.category,
                    department=doc.department,
                    coverage=self._coverage(groups, slot),
                )
            )
        return hits

    def _coverage(self, groups: list[tuple[float, tuple[str, ...]]], slot: int) -> float:
        """The rarity-weighted share of the question's words found in article ``slot``.

        The question's own words and phrases (weight 1) make the whole; a word the index never
        saw weighs as much as the rarest word, since it is what was asked. A synonym or a part
        of an unknown word that the article has counts at its own weight toward the share, so
        噪音 answered by 噪声 is found, while one common word of a long question is not.
        """
        rarest = self._idf(1)
        total = found = 0.0
        for weight, terms in groups:
            entries = [self._postings[t][0] for t in terms if t in self._postings]
            rarity = max((self._idf(len(ids)) for ids in entries), default=rarest)
            if weight >= 1.0:
                total += rarity
            if any(np.any(ids == slot) for ids in entries):
                found += weight * rarity
        return round(min(found / total, 1.0), 3) if total else 0.0

    def _top(self, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
        candidates = np.flatnonzero(scores > 0.0)
        if len(candidates) > limit:
            part = scores[candidates]
            # Keep everything tied with the last place, so ties are broken by key below.
            kth = np.partition(part, len(part) - limit)[len(part) - limit]
            candidates = candidates[part >= kth - 1e-9]
        # Rounded so that float noise cannot reorder equal scores; then the key decides.
        ordered = sorted(
            ((round(float(scores[s]), 6), self._docs[s].key, int(s)) for s in candidates),  # type: ignore[union-attr]
            key=lambda item: (-item[0], item[1]),
        )
        return [(slot, score) for score, _key, slot in ordered[:limit]]


# -- snippets ------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    if not terms:
        return None
    return re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)


_SENTENCE_END = re.compile(r"[。！？；!?;\n]")


def _window_start(text: str, match_start: int) -> int:
    """Start a snippet at the sentence that holds the match, if that is near enough."""
    if match_start <= 20:
        return 0
    lead = text[match_start - 30 : match_start]
    ends = list(_SENTENCE_END.finditer(lead))
    if ends:
        return match_start - 30 + ends[-1].end()
    return match_start - 8


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """A window of ``text`` with the most distinct ``terms``, terms in <mark>, all else escaped.

    ``terms`` should be ordered longest first so that 社保卡 is marked whole, not as 社保.
    """
    pattern = _pattern(tuple(terms))
    folded = unicodedata.normalize("NFKC", text)
    if len(folded) != len(text):
        folded = text  # positions must stay those of ``text``; then match it as it is
    matches = list(pattern.finditer(folded)) if pattern else []
    start = 0
    if matches and len(text) > width:
        best = (-1, 0)
        for i, first in enumerate(matches):
            window_start = _window_start(text, first.start())
            seen = {m.group(0).lower() for m in matches[i:] if m.end() <= window_start + width}
            if len(seen) > best[0]:
                best = (len(seen), window_start)
        start = best[1]
    end = min(len(text), start + width)
    pieces: list[str] = ["…"] if start > 0 else []
    cursor = start
    for match in matches:
        if match.start() < cursor or match.end() > end:
            continue
        pieces.append(html.escape(text[cursor : match.start()]))
        pieces.append(f"<mark>{html.escape(text[match.start() : match.end()])}</mark>")
        cursor = match.end()
    pieces.append(html.escape(text[cursor:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces)
