"""Traffic with known hot spots, for the simulator, the benchmark and the tests.

Every request is written from the shipped matter corpus (requests as callers make them, in
five registers) and the places of the gazetteer, so wording varies as much as the corpus
does: an incident's callers each describe it in their own words and name its place in their
own way (in the address, in the text, by an alias, with or without a gate or number). An
agent's opener and closing phrase come on top, as in real notes.

Nothing here knows how the detector works; it only records which requests belong to which
injected incident or surge (``GenRequest.truth``), so a benchmark can score what was found.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

# Share of a day's requests in each local hour (the simulator's call profile).
HOURLY_PROFILE = (
    0.15, 0.10, 0.07, 0.06, 0.06, 0.10, 0.25, 0.60, 1.30, 1.75, 1.80, 1.70,
    1.30, 1.25, 1.60, 1.65, 1.55, 1.45, 1.10, 0.95, 0.85, 0.70, 0.50, 0.30,
)  # fmt: skip
TYPHOON_MATTERS = ("YJ-01", "SW-02", "CG-05", "GD-01", "GS-01", "SW-01")
# Families of matters that happen at a place (a burst main, a noisy site, a fallen tree), the
# ones an incident is about; a pension question has no place to gather around.
PLACE_FAMILIES = ("CG", "GD", "GS", "HB", "RQ", "SW", "YJ", "ZJ", "JT", "SC", "WJ")

_OPENERS = (
    "",
    "",
    "",
    "市民来电反映，",
    "来电人称，",
    "市民表示：",
    "市民通过微信反映，",
    "来电人反映：",
)
_CLOSINGS = (
    "", "", "", "请尽快处理。", "希望相关部门核实处理。", "要求回复。", "麻烦尽快派人来看看。",
    "已经不是第一次了。", "来电人情绪激动。", "请相关部门跟进。",
)  # fmt: skip
_WHERE = ("在{p}", "{p}这边", "{p}附近", "我们{p}", "{p}那里", "就在{p}", "{p}门口")
_NAME_A = "华金海翠银富碧景新湾怡兴丽嘉康龙凤明泰东南西北"
_NAME_B = "发山苑城庭湖林港园峰悦景都庄岭溪泉"
_NAME_KIND = ("花园", "小区", "新村", "路", "街", "大厦", "广场", "市场", "公寓", "豪庭")
_DETAILS = ("", "", "东门", "北门", "正门口", "{n}号", "{n}栋", "{n}栋楼下", "对面", "路口")


@dataclass(frozen=True)
class GenRequest:
    at: datetime
    matter_code: str
    town_code: str | None
    area_code: str | None
    content: str
    address: str
    truth: str | None = None  # "incident-3", "surge-7": the injected hot spot it belongs to


@dataclass(frozen=True)
class Injected:
    id: str
    kind: str
    matter_code: str
    town_code: str | None
    area_code: str | None
    size: int
    start: datetime
    minutes: int


@dataclass(frozen=True)
class World:
    matters: tuple[str, ...]
    matter_weight: tuple[float, ...]
    towns: tuple[tuple[str, str, str], ...]  # code, name, area code
    town_weight: tuple[float, ...]
    areas: dict[str, str]
    places: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]  # town -> (name, aliases)
    texts: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def world(seed: int = 2026) -> World:
    from dispatch.hotspots.detector import corpus_texts
    from dispatch.routing.ruleset import load_reference

    ruleset = load_reference()
    texts: dict[str, list[str]] = {}
    for text, matter in corpus_texts():
        texts.setdefault(matter, []).append(text)
    matters = sorted(m for m, t in texts.items() if len(t) >= 4 and m != "QT-01")
    rng = random.Random(seed)
    # Traffic is very uneven across matters and towns (a few matters and central towns take
    # most): Zipf-like weights in a shuffled order.
    order = list(matters)
    rng.shuffle(order)
    weight = {m: 1 / (i + 1) ** 0.9 for i, m in enumerate(order)}
    towns = [t for t in ruleset.towns if t.valid_until is None]
    rng.shuffle(towns)
    places: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for p in ruleset.places:
        if p.town and not p.ambiguous:
            places.setdefault(p.town, []).append((p.name, ()))
    # The gazetteer names a town's main roads and landmarks, not its hundreds of compounds,
    # shops and lanes: each town gets 60 more, named as Zhuhai's are, that no gazetteer knows.
    for town in towns:
        named = places.setdefault(town.code, [])
        goal = len(named) + 60
        while len(named) < goal:
            name = rng.choice(_NAME_A) + rng.choice(_NAME_B) + rng.choice(_NAME_KIND)
            if all(name != n for n, _ in named):
                named.append((name, ()))
    return World(
        matters=tuple(matters),
        matter_weight=tuple(weight[m] for m in matters),
        towns=tuple((t.code, t.name, t.governing_area) for t in towns),
        town_weight=tuple(1 / (i + 1) ** 0.7 for i in range(len(towns))),
        areas={a.code: a.name for a in ruleset.areas},
        places={k: tuple(v) for k, v in places.items()},
        texts={m: tuple(t) for m, t in texts.items()},
    )


def _place(rng: random.Random, w: World, town: str) -> str:
    names = w.places.get(town)
    if names:
        return rng.choice(names)[0]
    return (
        rng.choice("东西南北新")
        + rng.choice(("华", "海", "景", "翠", "湾"))
        + rng.choice(("花园", "小区", "村", "市场"))
    )


def _text(rng: random.Random, w: World, matter: str) -> str:
    return rng.choice(w.texts[matter])


def _theme(rng: random.Random, w: World, matter: str, size: int = 3) -> tuple[str, ...]:
    """A seed request of ``matter`` and the corpus requests of that matter closest to it in
    words (jieba with the hotline lexicon): one situation as callers in different registers
    put it. The callers of one incident speak about one thing, not about the whole matter."""
    from dispatch.routing.classifier import word_features

    texts = w.texts[matter]
    seed = rng.choice(texts)
    words = {t: {f for f in word_features(t) if " " not in f} for t in texts}

    def overlap(text: str) -> float:
        a, b = words[seed], words[text]
        return len(a & b) / max(1, len(a | b))

    return tuple(sorted(texts, key=overlap, reverse=True)[:size])


def _write(
    rng: random.Random,
    w: World,
    matter: str,
    town: tuple[str, str, str],
    place: str,
    theme: tuple[str, ...] = (),
) -> tuple[str, str]:
    """(content, address) of one caller's request about ``matter`` at ``place`` in ``town``."""
    code, name, area = town
    body = rng.choice(theme) if theme else _text(rng, w, matter)
    detail = rng.choice(_DETAILS).format(n=rng.randint(1, 120))
    roll = rng.random()
    if roll < 0.45:
        address = f"{w.areas.get(area, '')}{name}{place}{detail}"
        content = body
    elif roll < 0.70:
        address = f"{place}{detail}"
        content = body if rng.random() < 0.5 else f"{rng.choice(_WHERE).format(p=place)}，{body}"
    elif roll < 0.90:
        address = ""
        content = f"{rng.choice(_WHERE).format(p=place + detail)}，{body}"
    else:
        address = f"{w.areas.get(area, '')}{name}"
        content = f"{body}，地点在{place}{detail}"
    opener, closing = rng.choice(_OPENERS), rng.choice(_CLOSINGS)
    return f"{opener}{content}{'，' if closing else ''}{closing}", address


def _misroute(rng: random.Random, w: World, matter: str, share: float) -> str:
    """Agents and the classifier pick a neighbouring matter now and then."""
    if rng.random() >= share:
        return matter
    family = [m for m in w.matters if m[:2] == matter[:2] and m != matter]
    return rng.choice(family or list(w.matters))


def varied_request(rng: random.Random, matter: str) -> tuple[str, str]:
    """(content, address) of one ordinary request about ``matter`` somewhere in the city, in
    a caller's own words (a corpus request of the matter, or of the whole corpus if the
    matter has none)."""
    w = world()
    town = rng.choices(w.towns, w.town_weight)[0]
    if matter not in w.texts:
        matter = rng.choice(w.matters)
    return _write(rng, w, matter, town, _place(rng, w, town[0]))


def background(
    start: datetime,
    hours: float,
    per_day: float,
    *,
    seed: int,
    typhoon: bool = False,
) -> Iterator[GenRequest]:
    """Ordinary traffic: a Poisson process following HOURLY_PROFILE (local time of
    ``start``), matters and towns by their weights. A typhoon doubles the traffic with
    typhoon matters (fallen trees, flooding, loose signs, outages) spread over the towns."""
    w = world()
    rng = random.Random(seed)
    peak = max(HOURLY_PROFILE) * per_day / sum(HOURLY_PROFILE)
    t = 0.0
    end = hours * 3600
    while True:
        t += rng.expovariate(peak * (2 if typhoon else 1) / 3600)
        if t >= end:
            return
        at = start + timedelta(seconds=t)
        if rng.random() > HOURLY_PROFILE[at.hour] / max(HOURLY_PROFILE):
            continue
        if typhoon and rng.random() < 0.5:
            matter = rng.choice(TYPHOON_MATTERS)
        else:
            matter = rng.choices(w.matters, w.matter_weight)[0]
        town = rng.choices(w.towns, w.town_weight)[0]
        content, address = _write(rng, w, matter, town, _place(rng, w, town[0]))
        area_only = rng.random() < 0.08
        yield GenRequest(
            at=at,
            matter_code=_misroute(rng, w, matter, 0.1),
            town_code=None if area_only else town[0],
            area_code=town[2],
            content=content,
            address=address,
        )


def inject(
    kind: str,
    ident: str,
    start: datetime,
    size: int,
    minutes: int,
    *,
    seed: int,
    matter: str | None = None,
) -> tuple[Injected, list[GenRequest]]:
    """An incident (``size`` callers about one thing at one place, each in their own words)
    or a surge (``size`` extra requests of one matter anywhere in one town), spread over
    ``minutes`` with arrivals bunched towards the start, as news of a burst pipe spreads."""
    w = world()
    rng = random.Random(seed)
    if matter is None:
        local = [
            (m, x)
            for m, x in zip(w.matters, w.matter_weight, strict=False)
            if m[:2] in PLACE_FAMILIES
        ]
        matter = rng.choices([m for m, _ in local], [x for _, x in local])[0]
    town = rng.choice(w.towns)
    place = _place(rng, w, town[0])
    offsets = sorted(minutes * 60 * rng.random() ** 1.3 for _ in range(size))
    theme = _theme(rng, w, matter) if kind == "incident" else ()
    requests = []
    for offset in offsets:
        spot = place if kind == "incident" else _place(rng, w, town[0])
        content, address = _write(rng, w, matter, town, spot, theme)
        requests.append(
            GenRequest(
                at=start + timedelta(seconds=offset),
                matter_code=_misroute(rng, w, matter, 0.1),
                town_code=town[0],
                area_code=town[2],
                content=content,
                address=address,
                truth=ident,
            )
        )
    return Injected(ident, kind, matter, town[0], town[2], size, start, minutes), requests
