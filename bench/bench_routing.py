"""Routing throughput: decisions per second in one process, against a naive baseline.

Run from the repository root:

    python bench/bench_routing.py [--seconds 3] [--cases 2000]

Both variants run the same engine and the same resolver logic over the same realistic mix of
requests (full addresses, landmarks, area-only addresses, locations only in the text, ambiguous
and outside places, old rule versions, major requests); they differ only in how names are
found: an Aho-Corasick automaton (LocationResolver) or, as the baseline, a loop of str.find
over every name (NaiveFindResolver). The script first checks that both give identical
decisions, so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

try:
    from dispatch.routing.engine import RoutingDecision, route
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dispatch.routing.engine import RoutingDecision, route
from dispatch.routing.resolver import LocationResolver
from dispatch.routing.ruleset import RuleSet, load_reference

Case = tuple[str, str, str, date, bool]  # matter code, address, text, received on, major


class NaiveFindResolver(LocationResolver):
    """BASELINE: finds names by looping str.find over every name; otherwise identical."""

    def __init__(self, ruleset: RuleSet) -> None:
        super().__init__(ruleset)
        self._pairs = list(self._automaton.items())

    def _iter_matches(self, text: str) -> Iterator[tuple[int, object]]:
        for name, value in self._pairs:
            start = text.find(name)
            while start != -1:
                yield start + len(name) - 1, value
                start = text.find(name, start + 1)


_FILLER = [
    "市民来电反映，",
    "来电人称，",
    "市民表示，",
    "",
]
_SUBJECT = {
    "SC-01": "在店里买的手机有质量问题，商家拒绝退货退款，要求相关部门处理。",
    "SC-02": "在餐馆吃饭后食物中毒，怀疑过期食品，餐馆卫生很差。",
    "SC-05": "小区电梯困人二十分钟，物业一直联系不上，请尽快处理。",
    "ZJ-01": "小区物业费上涨，物业公司不公示账目，业委会也不管。",
    "ZJ-02": "附近工地夜间施工，打桩声音很大，严重影响休息。",
    "HB-01": "附近工厂偷排废气，臭气很重，晚上尤其明显。",
    "HB-03": "楼下广场舞每天晚上九点后还在跳，高音喇叭噪音扰民。",
    "CG-01": "路口有流动摊贩占道经营，乱摆卖，影响通行。",
    "CG-03": "垃圾桶好几天没有清运，垃圾堆满了。",
    "SW-02": "下暴雨后路面积水很深，排水不畅，车辆无法通行。",
    "JT-01": "乘坐出租车被拒载，司机态度恶劣，还绕路。",
    "RS-01": "公司拖欠工资三个月，老板不发工资，要求讨薪。",
    "MZ-01": "家里是困难家庭，想咨询低保怎么申请。",
    "YJ-01": "台风过后路边倒树压车，需要清障。",
    "JY-01": "孩子明年入学，想咨询积分入学和学位的情况。",
    "GA-02": "小区附近经常有人聚众赌博，治安很差。",
}


def build_cases(ruleset: RuleSet, count: int, seed: int = 12345) -> list[Case]:
    """A deterministic, realistic mix of requests over the reference data."""
    rng = random.Random(seed)
    towns = [t for t in ruleset.towns if t.valid_from is None]
    places = [p for p in ruleset.places if p.town or p.area]
    ambiguous = [p for p in ruleset.places if p.ambiguous]
    matters = list(_SUBJECT)
    cases: list[Case] = []
    for _ in range(count):
        matter = rng.choice(matters)
        day = date(rng.choice([2017, 2019, 2021, 2023, 2024]), rng.randint(1, 12), 15)
        number = rng.randint(1, 300)
        subject = rng.choice(_FILLER) + _SUBJECT[matter]
        roll = rng.random()
        if roll < 0.35:  # full address with a town
            town = rng.choice(towns)
            area = ruleset.area_by_code[town.district]
            address = f"珠海市{area.name}{town.name}某某路{number}号"
            text = subject
        elif roll < 0.60:  # a landmark or road
            place = rng.choice(places)
            address = f"{place.name}附近{number}号"
            text = subject
        elif roll < 0.70:  # only an area
            area = rng.choice(ruleset.areas)
            address = f"{area.name}某某花园{number}栋"
            text = subject
        elif roll < 0.85:  # location only in the text
            place = rng.choice(places)
            address = ""
            text = f"{subject}地点在{place.name}旁边。"
        elif roll < 0.92:  # ambiguous place
            address = f"{rng.choice(ambiguous).name}{number}号"
            text = subject
        elif roll < 0.96:  # outside Zhuhai
            address = f"中山市{rng.choice(ruleset.not_zhuhai)}镇{number}号"
            text = subject
        else:  # two towns in different areas
            first, second = rng.sample(towns, 2)
            address = f"{first.name}至{second.name}路段"
            text = subject
        cases.append((matter, address, text, day, rng.random() < 0.03))
    return cases


def _decide(ruleset: RuleSet, resolver: LocationResolver, case: Case) -> RoutingDecision:
    matter, address, text, day, major = case
    return route(
        ruleset,
        resolver,
        matter_code=matter,
        text=text,
        address=address,
        received_on=day,
        major=major,
    )


def measure(ruleset: RuleSet, resolver: LocationResolver, cases: list[Case], seconds: float):
    """Run whole passes over ``cases`` for at least ``seconds``; returns (decisions, elapsed)."""
    decisions = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for case in cases:
            _decide(ruleset, resolver, case)
        decisions += len(cases)
        elapsed = time.perf_counter() - started
    return decisions, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per variant")
    parser.add_argument("--cases", type=int, default=2000, help="distinct requests in the mix")
    args = parser.parse_args()

    ruleset = load_reference()
    fast = LocationResolver(ruleset)
    naive = NaiveFindResolver(ruleset)
    cases = build_cases(ruleset, args.cases)

    differing = sum(_decide(ruleset, fast, c) != _decide(ruleset, naive, c) for c in cases)
    if differing:
        raise SystemExit(f"baseline and resolver disagree on {differing} cases")
    desk = sum(_decide(ruleset, fast, c).department.code == "DESK" for c in cases)

    rows = []
    for label, resolver in (
        ("route + LocationResolver (Aho-Corasick)", fast),
        ("route + NaiveFindResolver (BASELINE, str.find)", naive),
    ):
        decisions, elapsed = measure(ruleset, resolver, cases, args.seconds)
        rows.append((label, decisions, elapsed, decisions / elapsed))

    names = len(naive._pairs)
    print(f"command: python bench/bench_routing.py --seconds {args.seconds} --cases {args.cases}")
    print(f"python {sys.version.split()[0]}, one process; {len(cases)} requests in the mix")
    print(f"({desk} go to DESK); {names} names; both variants agree on every decision")
    print()
    print(f"{'variant':<50}{'decisions':>11}{'seconds':>9}{'decisions/s':>13}")
    for label, decisions, elapsed, rate in rows:
        print(f"{label:<50}{decisions:>11}{elapsed:>9.2f}{rate:>13,.0f}")
    print(f"{'ratio (resolver / baseline)':<50}{rows[0][3] / rows[1][3]:>33.2f}x")


if __name__ == "__main__":
    main()
