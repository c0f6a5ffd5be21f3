"""Place recognition: how often the resolver finds the right district or town, new against old.

Run from the repository root:

    python bench/bench_places.py [--baseline-rev ccb3c77] [--repeat 200]

Reads the evaluation set tests/dispatch/routing/places_eval.yaml (requests that name a place
in Zhuhai, with where it really is) and scores, in the same run:
  * new:       today's resolver with places.yaml;
  * no-places: today's resolver without places.yaml (what the data alone adds);
  * baseline:  the resolver and reference data of ``--baseline-rev`` (git), as before this work.

Per request the outcome is one of
  right  - the town found is the town expected, or only an area was found and it is the area
           that runs the expected place (enough for area-level matters);
  desk   - no town and no usable area (nothing found, or candidate towns to choose from): the
           request goes to the dispatch desk for want of a place;
  wrong  - another town or area, a place outside Zhuhai, or several areas.
"town exact" counts the requests whose expected town was found exactly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

from dispatch.routing.resolver import LocationResolver, ResolvedLocation  # noqa: E402
from dispatch.routing.ruleset import RuleSet, load_reference  # noqa: E402

EVAL_SET = ROOT / "tests" / "dispatch" / "routing" / "places_eval.yaml"
RECEIVED_ON = date(2024, 5, 1)

Resolve = Callable[[str, str, date], ResolvedLocation]


def load_requests(ruleset: RuleSet, path: Path = EVAL_SET) -> list[dict]:
    """The evaluation requests, with ``town`` as a code and ``area`` as the governing area."""
    towns = {k: t for t in ruleset.towns for k in (t.code, t.name, *t.aliases)}
    areas = {k: a for a in ruleset.areas for k in (a.code, a.name, *a.aliases)}
    requests = []
    for row in yaml.safe_load(path.read_text(encoding="utf-8"))["requests"]:
        town = towns[row["town"]] if "town" in row else None
        area = town.governing_area if town else areas[row["area"]].code
        requests.append(
            {
                "address": row.get("address", ""),
                "text": row.get("text", ""),
                "town": town.code if town else None,
                "area": area,
            }
        )
    return requests


def outcome(location: ResolvedLocation, expected_town: str | None, expected_area: str) -> str:
    """'right', 'desk' or 'wrong' for one request (see the module docstring)."""
    if location.outside or location.multi_area:
        return "wrong"
    if location.town is not None:
        if expected_town is not None:
            return "right" if location.town.code == expected_town else "wrong"
        return "right" if location.town.governing_area == expected_area else "wrong"
    if location.ambiguous or location.area is None:
        return "desk"
    return "right" if location.area.code == expected_area else "wrong"


def score(resolve: Resolve, requests: list[dict]) -> dict[str, float]:
    counts = {"right": 0, "desk": 0, "wrong": 0, "town exact": 0}
    for request in requests:
        location = resolve(request["address"], request["text"], RECEIVED_ON)
        counts[outcome(location, request["town"], request["area"])] += 1
        if request["town"] and location.town and location.town.code == request["town"]:
            counts["town exact"] += 1
    return {k: 100.0 * v / len(requests) for k, v in counts.items()}


def timing(resolve: Resolve, requests: list[dict], repeat: int) -> float:
    """Mean microseconds per resolve over the evaluation requests (after one warm-up round)."""
    for request in requests:
        resolve(request["address"], request["text"], RECEIVED_ON)
    started = time.perf_counter()
    for _ in range(repeat):
        for request in requests:
            resolve(request["address"], request["text"], RECEIVED_ON)
    return 1e6 * (time.perf_counter() - started) / (repeat * len(requests))


def baseline_resolver(revision: str) -> Resolve | None:
    """The resolver and reference data as they were at ``revision`` (None without git)."""
    try:
        source = _git_show(revision, "dispatch/routing/resolver.py")
        reference = {
            name: _git_show(revision, f"dispatch/reference/{name}")
            for name in ("gazetteer.yaml", "departments.yaml", "matters.yaml")
        }
    except (OSError, subprocess.CalledProcessError):
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        for name, text in reference.items():
            (Path(directory) / name).write_text(text, encoding="utf-8")
        ruleset = load_reference(Path(directory))
    module = types.ModuleType("baseline_resolver")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:resolver.py", "exec"), module.__dict__)  # noqa: S102
    return module.LocationResolver(ruleset).resolve


def _git_show(revision: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="ccb3c77", help="git revision before places")
    parser.add_argument("--repeat", type=int, default=200, help="timing rounds over the set")
    parser.add_argument("--show", action="store_true", help="list the new resolver's misses")
    args = parser.parse_args()

    ruleset = load_reference()
    requests = load_requests(ruleset)
    variants: dict[str, Resolve] = {
        "new": LocationResolver(ruleset).resolve,
        "no-places": LocationResolver(load_reference(places_file=False)).resolve,
    }
    baseline = baseline_resolver(args.baseline_rev)
    if baseline is not None:
        variants[f"baseline {args.baseline_rev}"] = baseline
    else:
        print(f"(no git revision {args.baseline_rev}: baseline skipped)")

    print(f"{len(requests)} requests from {EVAL_SET.relative_to(ROOT)}")
    header = f"{'resolver':<18}{'right':>8}{'desk':>8}{'wrong':>8}{'town exact':>12}{'µs/call':>10}"
    print(header)
    for name, resolve in variants.items():
        figures = score(resolve, requests)
        micros = timing(resolve, requests, args.repeat)
        print(
            f"{name:<18}{figures['right']:>7.1f}%{figures['desk']:>7.1f}%"
            f"{figures['wrong']:>7.1f}%{figures['town exact']:>11.1f}%{micros:>10.1f}"
        )
    if args.show:
        resolve = variants["new"]
        for request in requests:
            location = resolve(request["address"], request["text"], RECEIVED_ON)
            result = outcome(location, request["town"], request["area"])
            if result != "right":
                found = location.town.name if location.town else location.area
                print(f"  {result}: {request['address']} {request['text']} -> {found}")


if __name__ == "__main__":
    main()
