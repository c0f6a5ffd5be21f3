"""Knowledge-base import speed and search latency over a generated corpus of 50,000 articles.

The corpus is generated deterministically (fixed seed) from the shipped sample's vocabulary: a
word-level Markov chain trained on the sample's bodies writes the bodies, titles combine an
area, a sample keyword and a kind of guide (办理指南, 材料清单 …), and the keywords and the
category come from the sample article the title's keyword belongs to. The sample itself is
imported too, so callers' questions have their true answers hidden among 50,000 look-alikes.

Steps, all in one run:
  1. import the JSON lines through the real import path (``knowledgebase.cli.run_import``:
     validation, versions, analysis, one transaction per 1,000 lines) and report articles/s;
  2. build the search index from the database (what a process does on its first search);
  3. time ``service.search_articles`` (one transaction each, as an API request: the revision
     check, query analysis, scoring, snippets) for callers' questions and keyword queries, and
     report p50/p95/p99; the goal is p95 under 20 ms;
  4. baseline in the same run: a naive scan over a 5,000-article subset that counts query
     words as substrings of title and body, against the index over the same subset and over
     all 50,000; reported as ratios.

By default it runs on a fresh SQLite file in a temporary directory with an embedded Redis;
``--database-url`` points it at PostgreSQL instead (the database must be empty and upgraded,
e.g. a scratch database you create and drop).

    python bench/bench_kb.py [--articles 50000] [--queries 2000] [--seed 12345]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLE = REPOSITORY / "knowledgebase" / "reference" / "kb_sample.jsonl"
GOAL_P95_MS = 20.0

AREAS = ["", "香洲区", "斗门区", "金湾区", "横琴", "高新区", "万山区", "市级", "各镇街"]
GUIDES = ["办理指南", "常见问题", "申请条件", "材料清单", "办理流程", "政策解读", "咨询解答",
          "业务须知", "注意事项", "服务指引"]  # fmt: skip
DEPARTMENTS = ["C-HRSS", "C-MEDINS", "C-FUND", "C-POLICE", "C-MARKET", "C-URBAN", "C-EDU",
               "C-CIVIL", "C-TAX", "XZ-GOV", "DM-GOV", "JW-GOV"]  # fmt: skip

# Callers' questions with the sample article that answers each (as in the relevance tests).
QUESTIONS = [
    ("社保卡丢了怎么办", "KB-SB-001"),
    ("补办社保卡要多少钱", "KB-SB-001"),
    ("打零工的人怎么交社保", "KB-SB-002"),
    ("失业了能领失业金吗", "KB-SB-003"),
    ("去外省看病要备案吗", "KB-YB-001"),
    ("租房子可以取公积金吗", "KB-GJJ-001"),
    ("买房想用公积金贷款需要什么条件", "KB-GJJ-002"),
    ("外地人怎么办居住证", "KB-HJ-001"),
    ("宝宝刚出生怎么上户口", "KB-HJ-002"),
    ("港澳通行证在哪里办理", "KB-CRJ-001"),
    ("怎么查违章", "KB-JT-001"),
    ("老人坐公交有优惠卡吗", "KB-JT-002"),
    ("买到东西商家不给退货怎么办", "KB-SC-001"),
    ("超市卖过期食品怎么举报", "KB-SC-002"),
    ("想开个小店怎么办营业执照", "KB-SC-003"),
    ("晚上工地施工太吵了", "KB-HB-001"),
    ("楼下饭店油烟太大熏得受不了", "KB-HB-002"),
    ("路边有人摆摊占道", "KB-CG-001"),
    ("小区门口路灯不亮了", "KB-CG-002"),
    ("物业乱收费找谁", "KB-ZJ-001"),
    ("房东出租房子要去备案吗", "KB-ZJ-002"),
    ("孩子上学要什么材料", "KB-JY-001"),
    ("结婚登记要预约吗", "KB-MZ-001"),
    ("家里困难怎么申请低保", "KB-MZ-002"),
    ("残疾证怎么办", "KB-CJ-001"),
    ("个税怎么退税", "KB-SW-001"),
    ("家里停水了怎么办", "KB-SD-001"),
    ("刮台风了学校停课吗", "KB-YQ-001"),
    ("大专学历可以落户珠海吗", "KB-RC-001"),
    ("市民网页怎么激活", "KB-ZW-001"),
    ("最多跑一次是什么意思", "KB-ZW-002"),
]


def _configure(args: argparse.Namespace) -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-kb-"))
    os.environ["HOTLINE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("HOTLINE_LOG_LEVEL", "WARNING")
    if args.database_url:
        os.environ["HOTLINE_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("HOTLINE_DATABASE_URL", None)
    return data_dir


# -- the generated corpus ------------------------------------------------------------------------


def generate_corpus(count: int, seed: int) -> list[dict]:
    """``count`` articles in the import format, the same for the same seed."""
    from knowledgebase.search import tokenizer

    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    tk = tokenizer()
    chain: dict[str, list[str]] = {}
    starts: list[str] = []
    for article in sample:
        for sentence in article["body"].split("。"):
            words = [w for w in tk.cut(sentence) if w.strip()]
            if len(words) < 3:
                continue
            starts.append(words[0])
            for a, b in zip(words, words[1:] + ["。"], strict=True):
                chain.setdefault(a, []).append(b)
    keyword_owner = [(k, a) for a in sample for k in a["keywords"]]
    rng = random.Random(seed)

    def sentence() -> str:
        word = rng.choice(starts)
        words = [word]
        while len(words) < 40:
            word = rng.choice(chain.get(word, ["。"]))
            if word == "。":
                break
            words.append(word)
        return "".join(words) + "。"

    corpus = []
    for i in range(count):
        keyword, owner = rng.choice(keyword_owner)
        others = rng.sample(owner["keywords"], k=min(len(owner["keywords"]), rng.randint(1, 3)))
        keywords = list(dict.fromkeys([keyword, *others]))
        corpus.append(
            {
                "key": f"GEN-{i:06d}",
                "category": owner["category"],
                "title": f"{rng.choice(AREAS)}{keyword}{rng.choice(GUIDES)}",
                "keywords": keywords,
                "body": "".join(sentence() for _ in range(rng.randint(2, 5))),
                "department": rng.choice(DEPARTMENTS),
            }
        )
    return corpus


# -- measuring ---------------------------------------------------------------------------------


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"p50": at(50), "p95": at(95), "p99": at(99), "mean": statistics.fmean(ordered)}


def show(name: str, stats: dict[str, float]) -> None:
    print(
        f"  {name:<44} p50 {stats['p50']:7.2f} ms   p95 {stats['p95']:7.2f} ms   "
        f"p99 {stats['p99']:7.2f} ms"
    )


def keyword_queries(corpus: list[dict], count: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(count):
        article = rng.choice(corpus)
        words = rng.sample(article["keywords"], k=min(2, len(article["keywords"])))
        queries.append("".join(words) + rng.choice(["", "怎么办", "在哪里办理", "需要什么材料"]))
    return queries


class NaiveScan:
    """The baseline: every article scanned, query words counted as substrings."""

    def __init__(self, articles: list[tuple[str, str, str]]) -> None:
        self.articles = articles  # (key, title, plain body)

    def search(self, query: str, limit: int = 10) -> list[str]:
        from knowledgebase.search import normalize, tokens

        words = set(tokens(normalize(query)))
        scored = []
        for key, title, text in self.articles:
            score = sum(3 * title.count(w) + text.count(w) for w in words)
            if score:
                scored.append((-score, key))
        scored.sort()
        return [key for _score, key in scored[:limit]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--subset", type=int, default=5_000, help="baseline corpus size")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    data_dir = _configure(args)
    sys.path.insert(0, str(REPOSITORY))

    from hotline.core import db, migrate
    from hotline.core.redis import stop_embedded_redis
    from hotline.core.settings import get_settings
    from knowledgebase import search as kb_search
    from knowledgebase import service
    from knowledgebase.cli import run_import

    migrate.upgrade()
    backend = db.get_engine().dialect.name
    print(f"knowledge-base bench: {args.articles} generated articles, backend {backend}")

    started = time.perf_counter()
    corpus = generate_corpus(args.articles, args.seed)
    corpus_file = data_dir / "corpus.jsonl"
    with corpus_file.open("w", encoding="utf-8") as out:
        for line in SAMPLE.read_text(encoding="utf-8").splitlines():
            out.write(line + "\n")
        for record in corpus:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    chars = sum(len(r["title"]) + len(r["body"]) for r in corpus) / len(corpus)
    print(
        f"generated in {time.perf_counter() - started:.1f}s "
        f"(mean title + body {chars:.0f} characters), e.g. {corpus[0]['title']}: "
        f"{corpus[0]['body'][:40]}…"
    )

    # 1. import through the real path
    started = time.perf_counter()
    with corpus_file.open(encoding="utf-8") as stream:
        report = run_import(
            stream,
            actor="bench",
            progress_every=10_000,
            progress=lambda m: print(f"  {m}", file=sys.stderr),
        )
    import_seconds = time.perf_counter() - started
    assert not report.errors, report.errors[:5]
    import_rate = report.imported / import_seconds
    print(f"import: {report.summary()} in {import_seconds:.1f}s = {import_rate:.0f} articles/s")
    started = time.perf_counter()
    with corpus_file.open(encoding="utf-8") as stream:
        again = run_import(stream, actor="bench")
    rerun_seconds = time.perf_counter() - started
    print(
        f"import again (idempotent): {again.summary()} in {rerun_seconds:.1f}s = "
        f"{again.imported / rerun_seconds:.0f} articles/s"
    )

    # 2. the index, as a process builds it on its first search
    service.forget_cached_index()
    started = time.perf_counter()
    with db.transaction() as session:
        index = service.current_index(session)
    build_seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"index: {len(index)} articles built from the database in {build_seconds:.1f}s "
          f"(process max RSS {rss_mb:.0f} MB)")  # fmt: skip

    # 3. search latency, one transaction per search as in the API
    questions = [q for q, _ in QUESTIONS]
    queries = (questions * (args.queries // (2 * len(questions)) + 1))[: args.queries // 2]
    queries += keyword_queries(corpus, args.queries - len(queries), args.seed)
    random.Random(args.seed + 2).shuffle(queries)

    def timed(fn, items) -> list[float]:
        out = []
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    def via_service(q: str):
        with db.transaction() as session:
            return service.search_articles(session, q=q, limit=10)

    timed(via_service, queries[:50])  # warm-up
    service_ms = timed(via_service, queries)
    index_ms = timed(lambda q: index.search(q, limit=10), queries)
    print(f"search over {len(index)} articles, {len(queries)} queries (limit 10):")
    service_stats = percentiles(service_ms)
    show("service (transaction, revision check, search)", service_stats)
    show("index alone", percentiles(index_ms))
    hits = 0
    reciprocal = 0.0
    for question, expected in QUESTIONS:
        found = [h.key for h in via_service(question)]
        rank = found.index(expected) + 1 if expected in found else None
        hits += bool(rank and rank <= 3)
        reciprocal += 1 / rank if rank else 0
    print(
        f"  callers' questions with their answer hidden among {len(index)} look-alikes: "
        f"hit@3 {hits / len(QUESTIONS):.3f}, MRR {reciprocal / len(QUESTIONS):.3f}"
    )

    # 4. the baseline on a subset, and the index over the same subset
    with db.transaction() as session:
        rows = session.execute(
            kb_search_rows_query(args.subset)
        ).all()  # the subset: sample + first generated articles by key
    subset_docs = [service._search_document(r) for r in rows]
    naive = NaiveScan([(d.key, d.title, d.text) for d in subset_docs])
    subset_index = kb_search.SearchIndex.build(subset_docs, kb_search.DEFAULT_SYNONYMS)
    baseline_queries = queries[: min(len(queries), 300)]
    naive_stats = percentiles(timed(naive.search, baseline_queries))
    subset_stats = percentiles(timed(lambda q: subset_index.search(q), baseline_queries))
    full_stats = percentiles(timed(lambda q: index.search(q), baseline_queries))
    print(f"baseline: naive substring scan over {len(subset_docs)} articles "
          f"({len(baseline_queries)} queries):")  # fmt: skip
    show(f"naive scan, {len(subset_docs)} articles", naive_stats)
    show(f"index, same {len(subset_docs)} articles", subset_stats)
    show(f"index, all {len(index)} articles", full_stats)
    print(
        f"  ratio p95 naive({len(subset_docs)}) / index({len(subset_docs)}): "
        f"{naive_stats['p95'] / subset_stats['p95']:.0f}x;  "
        f"naive({len(subset_docs)}) / index({len(index)}): "
        f"{naive_stats['p95'] / full_stats['p95']:.1f}x"
    )

    ok = service_stats["p95"] < GOAL_P95_MS
    print(f"{'PASS' if ok else 'FAIL'}: search p95 {service_stats['p95']:.2f} ms "
          f"(goal < {GOAL_P95_MS:.0f} ms)")  # fmt: skip
    db.dispose_engine()
    if get_settings().uses_embedded_redis:
        stop_embedded_redis(get_settings().resolved_data_dir)
    return 0 if ok else 1


def kb_search_rows_query(limit: int):
    from sqlalchemy import select

    from knowledgebase import service
    from knowledgebase.models import SearchDocument

    return (
        select(*service._DOC_COLUMNS)
        .where(SearchDocument.visible)
        .order_by(SearchDocument.key)
        .limit(limit)
    )


if __name__ == "__main__":
    sys.exit(main())
