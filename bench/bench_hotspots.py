"""Hot-spot detection on a simulated week of normal traffic and a typhoon day.

Generates realistic requests (``dispatch.hotspots.scenarios``: the wording of the shipped
matter corpus in its five registers, places of the gazetteer named in the address or the
text, by name, with a gate or a number, agents' openers and closings, 10 % of matters picked
wrongly, 8 % of places known only to the district), four weeks of history for the baselines,
then a normal week and a typhoon day (twice the traffic, half of it typhoon matters), and
injects incidents (5 callers in 30 minutes up to 30 in two hours, each in their own words)
and surges (8 to 40 extra requests of one matter across one town). The detector
(``dispatch.hotspots.detector``, the decisions the service takes) sees every request as it
arrives, with its text model refreshed from the recent traffic every 500 requests, as the
service does every few minutes.

A detection is correct when at least half of its tickets belong to one injected hot spot, or
when it is a surge of that hot spot's matter and place while it runs (a surge detected as
an incident counts too: someone looks at it). On the typhoon day a surge of a typhoon matter
is real (the traffic of those matters is many times its usual level) and is reported apart.

    python bench/bench_hotspots.py [--days 7] [--per-day 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter, deque
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dispatch.hotspots import detector as d  # noqa: E402
from dispatch.hotspots import scenarios as sc  # noqa: E402
from dispatch.routing.ruleset import load_reference  # noqa: E402

INCIDENT_SHAPES = [(5, 30), (5, 30), (6, 30), (8, 45), (10, 60), (15, 60), (20, 90), (30, 120)]
SURGE_SHAPES = [(8, 60), (12, 60), (20, 90), (40, 120)]


def baseline_from(history: list[sc.GenRequest], days: int):
    cells = Counter((r.matter_code, _place(r)) for r in history)
    hours = Counter(d.hour_of_week(r.at) for r in history)
    total = sum(hours.values())

    def expected(matter: str, place, at: datetime) -> float:
        share = hours[d.hour_of_week(at - timedelta(minutes=30))] / total * 7 if total else 1 / 24
        return d.expected_count(cells[(matter, place)] / days, share)

    return expected


def _place(r: sc.GenRequest):
    return ("town", r.town_code) if r.town_code else ("area", r.area_code)


def scenario(start: datetime, days: int, per_day: int, seed: int, typhoon: bool):
    rng = random.Random(seed)
    traffic = list(sc.background(start, 24 * days, per_day, seed=seed, typhoon=typhoon))
    injected = []
    per_day_incidents = 6 if typhoon else 3
    for day in range(days):
        for i in range(per_day_incidents + 1 + (1 if typhoon else 0)):
            kind = "incident" if i < per_day_incidents else "surge"
            size, minutes = rng.choice(INCIDENT_SHAPES if kind == "incident" else SURGE_SHAPES)
            at = start + timedelta(days=day, hours=rng.uniform(7, 21))
            ident = f"{'typhoon' if typhoon else 'week'}-{kind}-{len(injected) + 1}"
            inj, requests = sc.inject(kind, ident, at, size, minutes, seed=rng.randrange(10**9))
            injected.append(inj)
            traffic += requests
    traffic.sort(key=lambda r: r.at)
    return traffic, injected


def run(traffic, injected, expected, strip, typhoon):
    corpus = [t for t, _ in d.corpus_texts()]
    recent: deque[str] = deque(maxlen=2000)
    names = d.place_names(load_reference())
    model = d.TextModel.from_texts(corpus, strip, names)
    det = d.Detector(model, expected)
    truth = {}
    started = time.perf_counter()
    for key, r in enumerate(traffic):
        if key and key % 500 == 0:
            det.model = d.TextModel.from_texts([*corpus, *recent], strip, names)
        text = f"{r.content} {r.address}"
        recent.append(text)
        truth[key] = r
        det.observe(d.Request(key, r.at, r.matter_code, r.town_code, r.area_code, text, r.address))
    seconds = time.perf_counter() - started
    by_id = {i.id: i for i in injected}
    fifth = {}
    for i in injected:
        times = sorted(r.at for r in traffic if r.truth == i.id)
        fifth[i.id] = times[min(4, len(times) - 1)]
    found: dict[str, datetime] = {}
    false, typhoon_real, kinds = [], [], Counter()
    for spot, when in det.detections:
        labels = Counter(truth[k].truth for k in spot.members)
        label, n = labels.most_common(1)[0]
        match = label if label and n * 2 >= len(spot.members) else None
        if match is None:
            for i in injected:
                place = ("town", i.town_code)
                end = i.start + timedelta(minutes=i.minutes + 60)
                if (
                    spot.place == place
                    and spot.matter_code == i.matter_code
                    and i.start - timedelta(minutes=30) <= when <= end
                ):
                    match = i.id
        if match:
            kinds[(by_id[match].kind, spot.kind)] += 1
            found[match] = min(found.get(match, when), when)
        elif typhoon and spot.kind == "surge" and spot.matter_code in sc.TYPHOON_MATTERS:
            typhoon_real.append(spot)
        else:
            false.append(spot)
    matched = len(det.detections) - len(false) - len(typhoon_real)
    return {
        "requests": len(traffic),
        "seconds": seconds,
        "detections": len(det.detections),
        "matched": matched,
        "false": false,
        "typhoon_real": typhoon_real,
        "found": found,
        "fifth": fifth,
        "kinds": kinds,
        "truth": truth,
    }


def report(name, result, injected, days):
    found, fifth = result["found"], result["fifth"]
    incidents = [i for i in injected if i.kind == "incident"]
    surges = [i for i in injected if i.kind == "surge"]
    inc_found = [i for i in incidents if i.id in found]
    sur_found = [i for i in surges if i.id in found]
    delays = [(found[i.id] - fifth[i.id]).total_seconds() / 60 for i in injected if i.id in found]
    judged = result["matched"] + len(result["false"])
    precision = result["matched"] / judged if judged else 1.0
    print(
        f"\n== {name}: {result['requests']} requests, "
        f"{len(incidents)} incidents, {len(surges)} surges injected"
    )
    print(
        f"   detector: {result['seconds']:.1f} s, "
        f"{1000 * result['seconds'] / result['requests']:.2f} ms per request"
    )
    print(
        f"   detections {result['detections']}: {result['matched']} correct, "
        f"{len(result['false'])} false"
        + (
            f", {len(result['typhoon_real'])} typhoon-matter surges (real)"
            if result["typhoon_real"]
            else ""
        )
    )
    print(f"   precision {precision:.3f}")
    print(
        f"   recall incidents {len(inc_found)}/{len(incidents)} = "
        f"{len(inc_found) / max(1, len(incidents)):.3f}; "
        f"surges {len(sur_found)}/{len(surges)} = {len(sur_found) / max(1, len(surges)):.3f}"
    )
    for size in sorted({i.size for i in injected}):
        group = [i for i in injected if i.size == size]
        print(
            f"     size {size:>2}: {sum(i.id in found for i in group)}/{len(group)} found "
            f"({', '.join(sorted({i.kind for i in group}))})"
        )
    if delays:
        print(
            "   minutes from the 5th related request to detection: "
            f"median {statistics.median(delays):.1f}, "
            f"max {max(delays):.1f}"
        )
    print(f"   false alarms per day {len(result['false']) / days:.2f}")
    print(f"   (injected, detected as): {dict(result['kinds'])}")
    missed = [i for i in injected if i.id not in found]
    for i in missed:
        print(f"     missed {i.id} {i.matter_code} {i.town_code} size {i.size} in {i.minutes} min")
    for spot in result["false"][:10]:
        texts = [result["truth"][k].content for k in sorted(spot.members)][:3]
        print(
            f"     false {spot.kind} {spot.matter_code} {spot.place} {len(spot.members)}: {texts}"
        )
    return precision, len(inc_found) / max(1, len(incidents)), delays, len(result["false"]) / days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ruleset = load_reference()
    strip = d.admin_names(ruleset)
    start = datetime(2026, 6, 1, tzinfo=None)  # a Monday; local time throughout
    history = list(
        sc.background(start - timedelta(days=28), 24 * 28, args.per_day, seed=args.seed + 100)
    )
    expected = baseline_from(history, 28)
    week, week_injected = scenario(start, args.days, args.per_day, args.seed, typhoon=False)
    week_result = run(week, week_injected, expected, strip, typhoon=False)
    p1, r1, d1, f1 = report(
        f"normal traffic, {args.days} days", week_result, week_injected, args.days
    )
    day, day_injected = scenario(
        start + timedelta(days=args.days), 1, args.per_day, args.seed + 7, typhoon=True
    )
    day_result = run(day, day_injected, expected, strip, typhoon=True)
    p2, r2, d2, _ = report("typhoon day", day_result, day_injected, 1)
    both = week_result["matched"] + day_result["matched"]
    judged = both + len(week_result["false"]) + len(day_result["false"])
    incidents = [i for i in week_injected + day_injected if i.kind == "incident"]
    found = {**week_result["found"], **day_result["found"]}
    delays = d1 + d2
    print("\n== overall")
    print(f"   precision {both / judged:.3f} (target ≥ 0.9)")
    print(
        "   recall of incidents of ≥ 5 requests "
        f"{sum(i.id in found for i in incidents) / len(incidents):.3f} (target ≥ 0.9)"
    )
    print(
        "   median minutes from the 5th request to detection "
        f"{statistics.median(delays):.1f} (target ≤ 10)"
    )
    print(f"   false alarms per normal day {f1:.2f} (target ≤ 1)")


if __name__ == "__main__":
    main()
