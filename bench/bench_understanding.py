"""How well the matter suggester understands requests, on the corpus's held-out part.

    PYTHONPATH=$PWD python bench/bench_understanding.py [--compare]

Trains the classifier on ``dispatch/reference/corpus/train`` (as a fresh install does) and
measures on ``corpus/heldout`` (never trained on): top-1, top-3, the no-suggestion rate, the
recall of urgent matters (the true urgent matter among the suggestions shown: the first three
plus an urgent matter lifted in), the written requests' category, per category and per
register; the same for the keyword suggester (today's baseline, keywords of matters.yaml) in
the same run. Then the time one keystroke costs the server: ``understand`` on every prefix of
the held-out requests (what GET /api/v1/routing/suggest computes), p50/p95/p99.
``--compare`` also trains the measured alternative (calibrated linear SVM).
No database and no server: everything runs in this process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from dispatch.routing import classifier
from dispatch.routing.ruleset import load_reference
from dispatch.routing.suggest import MatterSuggester, ModelSuggester, warm_up

SHOWN = 3


def measure(name, suggester, heldout, matters) -> dict:
    rows = []
    for example in heldout:
        understanding = suggester.understand(example.text, limit=5)
        codes = [s.code for s in understanding.suggestions]
        urgent_shown = [s.code for s in understanding.suggestions[: SHOWN + 1]]
        rows.append((example, codes, urgent_shown))
    n = len(rows)
    urgent = [r for r in rows if matters[r[0].matter_code].urgent]
    written = [r for r in rows if r[0].register == "written"]

    def share(selected, predicate):
        return sum(1 for r in selected if predicate(r)) / len(selected) if selected else 0.0

    def category_right(r):
        return bool(r[1]) and matters[r[1][0]].category == matters[r[0].matter_code].category

    result = {
        "name": name,
        "n": n,
        "top1": share(rows, lambda r: r[1][:1] == [r[0].matter_code]),
        "top3": share(rows, lambda r: r[0].matter_code in r[1][:SHOWN]),
        "none": share(rows, lambda r: not r[1]),
        "urgent_recall": share(urgent, lambda r: r[0].matter_code in r[2]),
        "urgent_top1": share(urgent, lambda r: r[1][:1] == [r[0].matter_code]),
        "urgent_n": len(urgent),
        "written_category": share(written, category_right),
        "written_n": len(written),
        "by_category": {},
        "by_register": {},
    }
    groups: dict[str, list] = defaultdict(list)
    registers: dict[str, list] = defaultdict(list)
    for r in rows:
        groups[matters[r[0].matter_code].category].append(r)
        registers[r[0].register].append(r)
    for key, selected in sorted(groups.items()):
        result["by_category"][key] = (
            len(selected),
            share(selected, lambda r: r[1][:1] == [r[0].matter_code]),
            share(selected, lambda r: r[0].matter_code in r[1][:SHOWN]),
        )
    for key, selected in sorted(registers.items()):
        result["by_register"][key] = (
            len(selected),
            share(selected, lambda r: r[1][:1] == [r[0].matter_code]),
            share(selected, lambda r: r[0].matter_code in r[1][:SHOWN]),
        )
    return result


def pct(x: float) -> str:
    return f"{100 * x:5.1f} %"


def report(results: list[dict]) -> None:
    header = "| figure | " + " | ".join(r["name"] for r in results) + " |"
    print(header)
    print("|---" * (len(results) + 1) + "|")
    for key, label in [
        ("top1", "right matter first (top-1)"),
        ("top3", "right matter in the first 3"),
        ("none", "no suggestion"),
        ("urgent_recall", "urgent matters shown (recall)"),
        ("urgent_top1", "urgent matters first"),
        ("written_category", "written: category right"),
    ]:
        print(f"| {label} | " + " | ".join(pct(r[key]) for r in results) + " |")
    first = results[0]
    print(
        f"\nheld-out requests: {first['n']} (urgent {first['urgent_n']}, "
        f"written {first['written_n']})"
    )
    for table in ("by_register", "by_category"):
        print(
            f"\n| {table.replace('by_', '')} | n | "
            + " | ".join(f"{r['name']} top-1 | {r['name']} top-3" for r in results)
            + " |"
        )
        print("|---|---" + "|---|---" * len(results) + "|")
        for key in first[table]:
            cells = []
            for r in results:
                _, top1, top3 = r[table][key]
                cells += [pct(top1), pct(top3)]
            print(f"| {key} | {first[table][key][0]} | " + " | ".join(cells) + " |")


def keystrokes(suggester: ModelSuggester, heldout) -> None:
    timings = []
    for example in heldout:
        for end in range(1, len(example.text) + 1):
            started = time.perf_counter()
            suggester.understand(example.text[:end], limit=5)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    q = statistics.quantiles(timings, n=100)
    print(
        f"\nper keystroke ({len(timings)} prefixes of the held-out requests): "
        f"p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, p99 {q[98]:.2f} ms, max {timings[-1]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="also train the calibrated SVM")
    args = parser.parse_args()
    ruleset = load_reference()
    matters = {m.code: m for m in ruleset.matters}
    heldout = classifier.load_corpus("heldout")
    warm_up()
    keywords = MatterSuggester(ruleset)

    def model_suggester(model):
        return ModelSuggester(
            ruleset,
            model,
            keywords,
            confidence_threshold=0.35,
            urgent_threshold=0.08,
            catch_all="QT-01",
        )

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as data_dir:
        model = classifier.shipped_model(Path(data_dir))
    print(
        f"trained on {model.trained_on['corpus']} requests of {len(model.classes)} matters in "
        f"{time.perf_counter() - started:.1f} s (first use; then cached in the data dir)\n"
    )
    results = [measure("classifier", model_suggester(model), heldout, matters)]
    if args.compare:
        svm = classifier.train(classifier.load_corpus("train"), kind="svm")
        results.append(measure("calibrated SVM", model_suggester(svm), heldout, matters))
    results.append(measure("keywords (baseline)", model_suggester(None), heldout, matters))
    report(results)
    keystrokes(model_suggester(model), heldout)


if __name__ == "__main__":
    main()
