"""Hot-spot detection (热点诉求发现), pure: no database, no clock. ``service`` feeds it tickets.

Terms owned here: 热点 hot spot · 突增 surge (a matter in one town or area well above its
own usual level for the hour) · 聚集事件 incident (several requests about the same thing in
the same place within a short time) · 并单 merge (an incident's tickets under one parent).

Incidents — text similarity, place and matter
    A new request is compared with the requests of the last ``INCIDENT_WINDOW`` at the same
    place (its town, else its area): TF-IDF cosine over character bigrams and trigrams of
    content and address. Two requests are linked when they share the matter and their
    cosine reaches ``SIMILARITY``, or whatever their matters when it reaches
    ``SIMILARITY_ANY_MATTER`` (a misclassified matter). The linked component holding the new
    request is an incident once it has ``INCIDENT_MIN_SIZE`` requests.

    Document frequencies come from the shipped matter corpus plus the recent traffic
    (``TextModel.from_texts``), so that an agent's boilerplate (市民来电反映) and the names of
    districts and towns, common in today's tickets, carry no weight, while a road, a compound
    or a detail few tickets mention carries much. ``SIMILARITY`` was chosen on the corpus,
    not on any generated traffic: see ``calibrate`` (99.9th percentile of the cosine between
    two different corpus requests of the same matter at two different places of one town).

Surges — a Poisson test against the cell's own seasonal baseline
    A cell is (matter, town) or (matter, area). Its expected count for the hour ending now is
    ``baseline_rate`` (the cell's daily rate over the last ``BASELINE_DAYS`` days) × the city's
    share of traffic in this hour of the week. A cell's count for the last hour, without the
    requests already in an incident, is tested against Poisson(expected): a surge when at
    least ``SURGE_MIN_COUNT`` and P(X ≥ count) < ``SURGE_ALPHA``. Tests run once per arriving
    request (about 2,000 a day); 1e-5 per test bounds false surges to about 0.02 a day even
    were every test independent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

INCIDENT_WINDOW = timedelta(minutes=60)
INCIDENT_MIN_SIZE = 5
SIMILARITY = 0.30
SIMILARITY_ANY_MATTER = 0.55
SIMILARITY_SAME_SPOT = 0.08
SIMILARITY_SAME_SPOT_ANY_MATTER = 0.25
SAME_ADDRESS = 0.5
SURGE_WINDOW = timedelta(minutes=60)
SURGE_MIN_COUNT = 5
SURGE_ALPHA = 1e-5
# A hot spot takes further requests as long as its last one is at most this old.
OPEN_FOR = timedelta(hours=3)
BASELINE_DAYS = 28

_NOISE = re.compile(r"[\s\W_0-9０-９a-zA-Z]+")


@dataclass(frozen=True)
class Request:
    """One ticket as the detector sees it."""

    key: int
    at: datetime
    matter_code: str
    town_code: str | None
    area_code: str | None
    text: str
    address: str = ""

    @property
    def place(self) -> tuple[str, str] | None:
        if self.town_code:
            return ("town", self.town_code)
        if self.area_code:
            return ("area", self.area_code)
        return None


def normalise(text: str, strip_names: Iterable[str] = ()) -> str:
    """Letters of the request without punctuation, digits and the names the place key
    already carries (珠海市, districts, towns)."""
    for name in strip_names:
        if name:
            text = text.replace(name, "")
    return _NOISE.sub("", text)


def shingles(text: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for n in (2, 3):
        grams.update(text[i : i + n] for i in range(len(text) - n + 1))
    return grams


@dataclass
class TextModel:
    """Document frequencies of shingles; vectors are TF-IDF, L2-normalised."""

    df: Counter[str]
    docs: int
    strip_names: tuple[str, ...] = ()
    place_names: tuple[str, ...] = ()
    _cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    _places: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], strip_names: Iterable[str] = (), place_names: Iterable[str] = ()
    ) -> TextModel:
        names = tuple(sorted(set(strip_names), key=len, reverse=True))
        df: Counter[str] = Counter()
        docs = 0
        for text in texts:
            df.update(set(shingles(normalise(text, names))))
            docs += 1
        places = tuple(sorted({p for p in place_names if len(p) >= 2} - set(names)))
        return cls(df=df, docs=docs, strip_names=names, place_names=places)

    def places(self, text: str) -> frozenset[str]:
        """The gazetteer's named places (roads, compounds, landmarks) the text mentions."""
        found = self._places.get(text)
        if found is None:
            found = frozenset(p for p in self.place_names if p in text)
            if len(self._places) > 50_000:
                self._places.clear()
            self._places[text] = found
        return found

    def vector(self, text: str) -> dict[str, float]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        tf = shingles(normalise(text, self.strip_names))
        vec = {
            g: (1 + math.log(c)) * math.log((1 + self.docs) / (1 + self.df[g]))
            for g, c in tf.items()
        }
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vec = {g: v / norm for g, v in vec.items()}
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[text] = vec
        return vec

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        if len(va) > len(vb):
            va, vb = vb, va
        return sum(v * vb.get(g, 0.0) for g, v in va.items())


# -- incidents -------------------------------------------------------------------------------


def linked(model: TextModel, a: Request, b: Request) -> bool:
    """Same place, and either much the same words, or some of the same words and the same
    named place within it (a road, a compound, a landmark): callers describe one burst pipe
    in very different words, but name the same street."""
    if a.place != b.place or a.place is None:
        return False
    similarity = model.similarity(a.text, b.text)
    same_spot = bool(model.places(a.text) & model.places(b.text)) or same_address(model, a, b)
    if a.matter_code == b.matter_code:
        return similarity >= (SIMILARITY_SAME_SPOT if same_spot else SIMILARITY)
    return similarity >= (SIMILARITY_SAME_SPOT_ANY_MATTER if same_spot else SIMILARITY_ANY_MATTER)


def same_address(model: TextModel, a: Request, b: Request) -> bool:
    """Both addresses name the same spot below the town (a compound, a market, a gate) even
    where the gazetteer does not know it: what is left of them without the district and town
    names and the numbers is mostly the same."""
    left = normalise(a.address, model.strip_names)
    right = normalise(b.address, model.strip_names)
    if len(left) < 3 or len(right) < 3:
        return False
    return model.similarity(left, right) >= SAME_ADDRESS


def component(model: TextModel, new: Request, pool: Sequence[Request]) -> list[Request]:
    """The requests of ``pool`` (same place, recent) linked to ``new``, directly or through
    others, with ``new`` first. Explores only the component, so the cost is its size times
    the pool's, not the pool's square."""
    candidates = [r for r in pool if r.place == new.place and r.key != new.key]
    found = [new]
    frontier = [new]
    while frontier:
        current = frontier.pop()
        rest = []
        for other in candidates:
            if linked(model, current, other):
                found.append(other)
                frontier.append(other)
            else:
                rest.append(other)
        candidates = rest
    return found


# -- surges ----------------------------------------------------------------------------------


def poisson_tail(count: int, expected: float) -> float:
    """P(X ≥ count) for X ~ Poisson(expected)."""
    if count <= 0:
        return 1.0
    expected = max(expected, 1e-9)
    # 1 − P(X ≤ count − 1), summed in log space for small tails.
    term = math.exp(-expected)
    below = 0.0
    for k in range(count):
        if k:
            term *= expected / k
        below += term
    if below < 0.999:
        return max(0.0, 1.0 - below)
    # Near 1: sum the upper tail directly instead (no cancellation).
    tail, term, k = (
        0.0,
        math.exp(-expected + count * math.log(expected) - math.lgamma(count + 1)),
        count,
    )
    while term > 1e-300 and k < count + 1000:
        tail += term
        k += 1
        term *= expected / k
    return tail


def expected_count(daily_rate: float, hour_share: float, window: timedelta = SURGE_WINDOW) -> float:
    """The cell's usual count in a window ending in an hour whose share of a day's traffic
    is ``hour_share`` (1/24 for a flat day). A cell never seen counts as half a request in
    the baseline period, so it is never expected to be exactly zero."""
    rate = max(daily_rate, 0.5 / BASELINE_DAYS)
    return rate * hour_share * (window / timedelta(hours=1))


def surge_score(count: int, expected: float) -> float:
    return -math.log10(max(poisson_tail(count, expected), 1e-300))


def is_surge(count: int, expected: float) -> bool:
    return count >= SURGE_MIN_COUNT and poisson_tail(count, expected) < SURGE_ALPHA


def hour_of_week(moment: datetime) -> int:
    return moment.weekday() * 24 + moment.hour


# -- calibration -------------------------------------------------------------------------------


def calibrate(
    model: TextModel,
    examples: Sequence[tuple[str, str]],
    places: Sequence[str],
    *,
    quantile: float = 0.999,
    pairs: int = 20_000,
    seed: int = 7,
) -> float:
    """The ``quantile`` of the cosine between two different requests of one matter from the
    corpus, each at a different one of ``places`` (two unrelated requests of one cell)."""
    import random

    rng = random.Random(seed)
    by_matter: dict[str, list[str]] = {}
    for text, matter in examples:
        by_matter.setdefault(matter, []).append(text)
    groups = [texts for texts in by_matter.values() if len(texts) > 1]
    values = []
    for _ in range(pairs):
        texts = rng.choice(groups)
        a, b = rng.sample(texts, 2)
        pa, pb = rng.sample(list(places), 2)
        values.append(model.similarity(f"{a} {pa}", f"{b} {pb}"))
    values.sort()
    return values[min(len(values) - 1, int(quantile * len(values)))]


@lru_cache(maxsize=1)
def corpus_texts() -> tuple[tuple[str, str], ...]:
    """(text, matter) of the shipped matter corpus, both splits."""
    from dispatch.routing.classifier import load_corpus

    return tuple((e.text, e.matter_code) for e in load_corpus())


# -- deciding --------------------------------------------------------------------------------


@dataclass
class Spot:
    """An open hot spot as the detector needs it."""

    id: int
    kind: str  # incident | surge
    matter_code: str
    place: tuple[str, str]
    first_at: datetime
    last_at: datetime
    members: set[int] = field(default_factory=set)


@dataclass
class Outcome:
    """What to do with a new request: open a hot spot of these members, or add them to one."""

    kind: str
    spot_id: int | None  # None: a new hot spot
    members: list[Request]
    score: float
    expected: float | None = None


def assess(
    model: TextModel,
    new: Request,
    pool: Sequence[Request],
    spots: Sequence[Spot],
    expected: float,
) -> Outcome | None:
    """Decide for ``new`` given the recent requests at its place (``pool``, at least the last
    ``INCIDENT_WINDOW``), the open hot spots there and the cell's expected hourly count.

    A request joins an incident before it counts towards a surge: the tickets of one burst
    of calls about one thing are an incident, not also a surge of their matter."""
    if new.place is None:
        return None
    incidents = [s for s in spots if s.kind == "incident" and s.place == new.place]
    in_incident = {key for s in incidents for key in s.members}
    recent = [r for r in pool if new.at - r.at <= INCIDENT_WINDOW and r.key != new.key]
    found = component(model, new, recent)
    holders = [s for s in incidents if any(r.key in s.members for r in found)]
    if holders:
        spot = min(holders, key=lambda s: s.first_at)
        fresh = [r for r in found if r.key not in in_incident]
        return Outcome("incident", spot.id, fresh, float(len(spot.members) + len(fresh)))
    if len(found) >= INCIDENT_MIN_SIZE:
        return Outcome("incident", None, found, float(len(found)))
    surge = next(
        (
            s
            for s in spots
            if s.kind == "surge"
            and s.place == new.place
            and s.matter_code == new.matter_code
            and new.at - s.last_at <= OPEN_FOR
        ),
        None,
    )
    if surge is not None:
        return Outcome("surge", surge.id, [new], 0.0, expected)
    cell = [new] + [
        r
        for r in pool
        if r.key != new.key
        and r.matter_code == new.matter_code
        and r.place == new.place
        and new.at - r.at <= SURGE_WINDOW
        and r.key not in in_incident
    ]
    if is_surge(len(cell), expected):
        return Outcome("surge", None, cell, surge_score(len(cell), expected), expected)
    return None


class Detector:
    """The detector with its state in memory: the benchmark's and the tests' stand-in for
    the database the service keeps it in. Same decisions (``assess``)."""

    def __init__(self, model: TextModel, baseline) -> None:
        self.model = model
        self.baseline = baseline  # (matter, place, at) -> expected count of the last hour
        self.recent: dict[tuple[str, str], list[Request]] = {}
        self.spots: list[Spot] = []
        self.detections: list[tuple[Spot, datetime]] = []

    def observe(self, new: Request) -> Outcome | None:
        if new.place is None:
            return None
        pool = self.recent.setdefault(new.place, [])
        horizon = new.at - max(INCIDENT_WINDOW, SURGE_WINDOW)
        while pool and pool[0].at < horizon:
            pool.pop(0)
        live = [s for s in self.spots if new.at - s.last_at <= OPEN_FOR]
        outcome = assess(
            self.model, new, pool, live, self.baseline(new.matter_code, new.place, new.at)
        )
        pool.append(new)
        if outcome is None:
            return None
        if outcome.spot_id is None:
            spot = Spot(
                id=len(self.spots) + 1,
                kind=outcome.kind,
                matter_code=Counter(r.matter_code for r in outcome.members).most_common(1)[0][0],
                place=new.place,
                first_at=min(r.at for r in outcome.members),
                last_at=new.at,
                members={r.key for r in outcome.members},
            )
            self.spots.append(spot)
            self.detections.append((spot, new.at))
        else:
            spot = self.spots[outcome.spot_id - 1]
            spot.members |= {r.key for r in outcome.members}
            spot.last_at = new.at
        return outcome


def place_names(ruleset) -> list[str]:
    """Named places below the town: roads, compounds, landmarks, villages."""
    return [p.name for p in ruleset.places]


def admin_names(ruleset) -> list[str]:
    """Names the place key already carries: the city, its districts and areas, its towns."""
    names = [ruleset.city_name, ruleset.city_name.removesuffix("市")]
    for unit in (*ruleset.areas, *ruleset.towns):
        names += [unit.name, *unit.aliases]
    return [n for n in names if len(n) >= 2]
