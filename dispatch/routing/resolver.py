"""Resolve where a request happened (属地) from its address and text.

One Aho-Corasick automaton (pyahocorasick) holds every name and alias of the city, the areas,
the towns, the places and the names that are not in Zhuhai (not_zhuhai). A scan takes all
matches from ``Automaton.iter`` and keeps the leftmost-longest non-overlapping ones itself:
``Automaton.iter_long`` drops or shortens matches in pyahocorasick 2.x (upstream issues #133
and #185), so it is not used.

Reading one source (the address, or the text):
  * a not_zhuhai name makes the location outside Zhuhai, whatever else matched;
  * towns count only on dates they exist (凤山街道 from 2020-06-22); dated places
    (梅溪 lay in 前山街道 before 2020-06-22) give the town of that date;
  * an ambiguous place (东澳村, or a road through several towns such as 情侣路) gives
    candidate towns unless a town or area matched in the same source narrows them to exactly
    one, or two such places share exactly one town (a crossing); candidates that all lie in
    one area give that area (enough for area-level matters);
  * a town's short name followed by a road or compound word (白蕉路, 唐家市场) is part of that
    name: it counts as the town only when nothing else in the source names a town or a place
    with candidate towns, and never against an area named with it (井岸镇白蕉路 is in 井岸);
  * two or more different towns: ambiguous, with those towns as candidates;
  * an area that does not contain the one town named is a conflict settled by the town;
  * a district named together with a functional area inside it keeps the functional area.
The address comes first; the text is read only when the address gives no town (nothing, only
the city, or one area), and a town found in the text is used only if it lies in that area.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ahocorasick

from dispatch.routing.ruleset import Area, Place, RuleSet, Town

# Note codes a ResolvedLocation can carry (the engine copies them into its explanation):
NOTE_TOWN = "location.town"  # the town found, and from which names
NOTE_DATED = "location.dated"  # a place lay in another town on that date
NOTE_AREA_ONLY = "location.area_only"  # only an area is known
NOTE_CITY_ONLY = "location.city_only"  # only the city was named
NOTE_NONE = "location.none"  # nothing recognisable
NOTE_OUTSIDE = "location.outside"  # a name outside Zhuhai was found
NOTE_CONFLICT = "location.conflict"  # an area that does not contain the town; town wins
NOTE_AMBIGUOUS = "location.ambiguous"  # a place that exists in several towns
NOTE_NARROWED = "location.narrowed"  # an ambiguous place narrowed to one town
NOTE_MULTIPLE_TOWNS = "location.multiple_towns"  # different towns named together
NOTE_MULTI_AREA = "location.multi_area"  # the names point into more than one area
NOTE_FROM_TEXT = "location.from_text"  # the location came from the request text
NOTE_TEXT_IGNORED = "location.text_ignored"  # the text said something the address overrides
NOTE_NAME_PART = "location.name_part"  # a town's name read as part of a road or compound name

# Words that, right after a town's short name, make it part of a longer name (白蕉路 lies in
# 井岸镇), so it only weakly says where the request happened.
_NAME_SUFFIXES = (
    "路",
    "大道",
    "大街",
    "街",
    "巷",
    "大桥",
    "桥",
    "花园",
    "新村",
    "小区",
    "苑",
    "新城",
    "城",
    "大厦",
    "广场",
    "市场",
    "公园",
    "中学",
    "小学",
    "学校",
    "医院",
    "站",
)

_CITY, _AREA, _TOWN, _PLACE, _OUTSIDE = range(5)

Note = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ResolvedLocation:
    """Where a request happened, as far as the names in it tell.

    ``town`` is set only when exactly one town is certain; ``area`` is then the area that runs
    it (functional area if any, else district). With no town, ``area`` is the one area named.
    ``ambiguous`` lists candidate towns (sorted by code) when the names allow several;
    ``outside`` means a place outside Zhuhai (then town, area and ambiguous are empty).
    ``multi_area`` means the names point into more than one area. ``source`` says which input
    decided ('address' or 'text'), None when nothing did. ``matched`` lists the names found in
    the inputs read, in order; ``notes`` are (code, Chinese message) for the explanation.
    """

    town: Town | None = None
    area: Area | None = None
    ambiguous: tuple[Town, ...] = ()
    outside: bool = False
    source: str | None = None
    matched: tuple[str, ...] = ()
    multi_area: bool = False
    notes: tuple[Note, ...] = ()

    @property
    def found(self) -> bool:
        """True when the names gave any location (a town, an area, candidates, or outside)."""
        return bool(self.town or self.area or self.ambiguous or self.outside or self.multi_area)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: int
    ref: Any  # Area | Town | Place | None


@dataclass(slots=True)
class _Reading:
    """What one source says, before it is settled into a location."""

    matched: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    towns: dict[str, Town] = field(default_factory=dict)
    town_names: dict[str, list[str]] = field(default_factory=dict)
    weak_towns: dict[str, Town] = field(default_factory=dict)
    weak_names: dict[str, list[str]] = field(default_factory=dict)
    areas: dict[str, Area] = field(default_factory=dict)
    groups: list[tuple[str, tuple[Town, ...]]] = field(default_factory=list)
    city: bool = False
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Settled:
    town: Town | None = None
    area: Area | None = None
    ambiguous: tuple[Town, ...] = ()
    outside: bool = False
    multi_area: bool = False
    matched: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.town or self.area or self.ambiguous or self.outside or self.multi_area)


def _names(towns: Iterable[Town]) -> str:
    return "、".join(t.name for t in towns)


class LocationResolver:
    """Resolves address + text to a :class:`ResolvedLocation`; build once, then only read."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._contains = ruleset.area_contains
        self._encloses = self._enclosing_districts(ruleset)
        entries: dict[str, list[_Entry]] = {}

        def add(name: str, entry: _Entry) -> None:
            if name and entry not in entries.setdefault(name, []):
                entries[name].append(entry)

        city = _Entry(_CITY, None)
        add(ruleset.city_name, city)
        # People write 珠海 as often as 珠海市.
        add(ruleset.city_name.removesuffix("市"), city)
        for area in ruleset.areas:
            for name in (area.name, *area.aliases):
                add(name, _Entry(_AREA, area))
        for town in ruleset.towns:
            for name in (town.name, *town.aliases):
                add(name, _Entry(_TOWN, town))
        for place in ruleset.places:
            add(place.name, _Entry(_PLACE, place))
        for name in ruleset.not_zhuhai:
            add(name, _Entry(_OUTSIDE, None))

        self._automaton = ahocorasick.Automaton()
        for name, found in entries.items():
            dated = any(self._is_dated(e) for e in found)
            short = any(e.kind == _TOWN and e.ref.name != name for e in found)
            self._automaton.add_word(name, (name, tuple(found), dated, short))
        self._automaton.make_automaton()

    # -- public ------------------------------------------------------------------------------

    def resolve(self, address: str | None, text: str | None, on: date) -> ResolvedLocation:
        """Resolve the location of a request received ``on`` (address first, then the text).

        Never guesses: several possible towns give ``ambiguous`` candidates instead of a town.
        """
        first = self._settle(self._read(self._scan(address or "", on), on))
        if first.town or first.ambiguous or first.outside or first.multi_area:
            return self._result(first, "address")
        second = self._settle(self._read(self._scan(text or "", on), on))
        matched = first.matched + second.matched
        if first.area is None:
            if not second.found:
                notes = tuple(dict.fromkeys(first.notes + second.notes))
                return ResolvedLocation(
                    matched=matched, notes=notes or ((NOTE_NONE, "未识别到地点"),)
                )
            notes = (
                *first.notes,
                (NOTE_FROM_TEXT, "地址中未识别到珠海的区或镇街，根据诉求内容确定地点"),
                *second.notes,
            )
            return self._result(second, "text", matched=matched, notes=notes)
        if second.town is not None and self._contains(first.area.code, second.town):
            notes = (
                *first.notes,
                (NOTE_FROM_TEXT, f"地址只确定到{first.area.name}，诉求内容指明{second.town.name}"),
                *second.notes,
            )
            return self._result(second, "text", matched=matched, notes=notes)
        if second.found:
            said = self._describe(second)
            message = f"诉求内容提到{said}，不能确定在地址所在的{first.area.name}内，以地址为准"
            return self._result(
                first,
                "address",
                matched=matched,
                notes=(*first.notes, (NOTE_TEXT_IGNORED, message)),
            )
        return self._result(first, "address", matched=matched)

    # -- scanning ----------------------------------------------------------------------------

    def _iter_matches(
        self, text: str
    ) -> Iterator[tuple[int, tuple[str, tuple[_Entry, ...], bool, bool]]]:
        """All (end index, key value) matches, overlapping ones included."""
        return self._automaton.iter(text)

    def _scan(self, text: str, on: date) -> list[tuple[str, tuple[_Entry, ...], bool]]:
        """Leftmost-longest non-overlapping names in ``text`` that exist on ``on``.

        Each comes with ``part``: a town's short name that begins a longer road or compound
        name (白蕉 in 白蕉路).
        """
        if not text:
            return []
        hits = []
        for end, (name, found, dated, short) in self._iter_matches(text):
            if dated:
                found = tuple(e for e in found if self._valid(e, on))
                if not found:
                    continue  # a name that does not exist on this date must not hide others
            hits.append((end - len(name) + 1, -len(name), name, found, short))
        if len(hits) > 1:
            hits.sort(key=lambda hit: (hit[0], hit[1]))
        chosen = []
        position = 0
        for start, negative_length, name, found, short in hits:
            if start >= position:
                position = start - negative_length
                part = short and text.startswith(_NAME_SUFFIXES, position)
                chosen.append((name, found, part))
        return chosen

    @staticmethod
    def _is_dated(entry: _Entry) -> bool:
        if entry.kind == _TOWN:
            return entry.ref.valid_from is not None or entry.ref.valid_until is not None
        return entry.kind == _PLACE

    def _valid(self, entry: _Entry, on: date) -> bool:
        if entry.kind == _TOWN:
            return entry.ref.is_valid_on(on)
        if entry.kind == _PLACE:
            place: Place = entry.ref
            if place.area is not None:
                return True
            return bool(self._place_towns(place, on))
        return True

    def _place_towns(self, place: Place, on: date) -> tuple[Town, ...]:
        towns_by_code = self.ruleset.town_by_code
        codes = place.ambiguous or (place.town_on(on),)
        return tuple(
            towns_by_code[c] for c in codes if c is not None and towns_by_code[c].is_valid_on(on)
        )

    # -- reading one source ------------------------------------------------------------------

    def _read(self, matches: list[tuple[str, tuple[_Entry, ...], bool]], on: date) -> _Reading:
        reading = _Reading()
        for name, found, part in matches:
            reading.matched.append(name)
            for entry in found:
                kind = entry.kind
                if kind == _OUTSIDE:
                    reading.outside.append(name)
                elif kind == _CITY:
                    reading.city = True
                elif kind == _AREA:
                    reading.areas.setdefault(entry.ref.code, entry.ref)
                elif kind == _TOWN and part:
                    reading.weak_towns.setdefault(entry.ref.code, entry.ref)
                    reading.weak_names.setdefault(entry.ref.code, []).append(name)
                elif kind == _TOWN:
                    self._add_town(reading, entry.ref, name)
                else:
                    self._read_place(reading, entry.ref, name, on)
        return reading

    @staticmethod
    def _add_town(reading: _Reading, town: Town, name: str) -> None:
        reading.towns.setdefault(town.code, town)
        reading.town_names.setdefault(town.code, []).append(name)

    def _read_place(self, reading: _Reading, place: Place, name: str, on: date) -> None:
        if place.area is not None:
            reading.areas.setdefault(place.area, self.ruleset.area_by_code[place.area])
            return
        towns = self._place_towns(place, on)
        if len(towns) == 1:
            town = towns[0]
            self._add_town(reading, town, name)
            if place.town_before and town.code != place.town:
                current = self.ruleset.town_by_code[place.town or ""]
                reading.notes.append(
                    (NOTE_DATED, f"{name}在{on.isoformat()}属{town.name}（现属{current.name}）")
                )
        elif towns:
            reading.groups.append((name, towns))

    # -- settling one source -----------------------------------------------------------------

    def _settle(self, reading: _Reading) -> _Settled:
        matched = tuple(reading.matched)
        notes = reading.notes
        if reading.outside:
            names = "、".join(dict.fromkeys(reading.outside))
            notes.append((NOTE_OUTSIDE, f"识别到珠海市以外的地名：{names}，不按珠海属地派单"))
            return _Settled(outside=True, matched=matched, notes=tuple(notes))

        areas = [
            a
            for a in reading.areas.values()
            if not any(self._encloses.get(f) == a.code for f in reading.areas)
        ]
        towns = dict(reading.towns)
        self._weigh_name_parts(reading, towns, areas, notes)
        unresolved: list[Town] = []
        pending: list[tuple[str, tuple[Town, ...]]] = []
        for name, candidates in reading.groups:
            named = [c for c in candidates if c.code in towns]
            if len(named) >= 1:
                if len(named) == 1:
                    notes.append((NOTE_NARROWED, f"{name}结合{named[0].name}确定为{named[0].name}"))
                continue
            inside = [c for c in candidates if any(self._contains(a.code, c) for a in areas)]
            if len(inside) == 1:
                town = inside[0]
                towns.setdefault(town.code, town)
                reading.town_names.setdefault(town.code, []).append(name)
                notes.append((NOTE_NARROWED, f"{name}结合所提到的区确定为{town.name}"))
                continue
            # A named area that keeps some candidates but not all (金湾区珠海大道) drops the rest.
            pending.append(
                (name, tuple(inside) if 1 < len(inside) < len(candidates) else candidates)
            )
        pending = self._cross(pending, towns, reading, notes)
        for name, candidates in pending:
            unresolved.extend(candidates)
            notes.append((NOTE_AMBIGUOUS, f"{name}可能在{_names(candidates)}，不能确定"))
        if unresolved and not towns:
            area = self._one_governing_area(unresolved, areas)
            if area is not None:
                notes.append((NOTE_AREA_ONLY, f"只能确定到{area.name}，未能确定镇街"))
                return _Settled(area=area, matched=matched, notes=tuple(notes))

        if len(towns) == 1 and not unresolved:
            town = next(iter(towns.values()))
            for area in areas:
                if not self._contains(area.code, town):
                    notes.append(
                        (NOTE_CONFLICT, f"{area.name}不包含{town.name}，地址矛盾，以镇街为准")
                    )
            via = [
                n for n in dict.fromkeys(reading.town_names.get(town.code, ())) if n != town.name
            ]
            shown = f"（{'、'.join(via)}）" if via else ""
            notes.append((NOTE_TOWN, f"识别为{town.name}{shown}"))
            governing = self.ruleset.area_by_code[town.governing_area]
            return _Settled(town=town, area=governing, matched=matched, notes=tuple(notes))

        if towns:
            zones = list(dict.fromkeys(t.governing_area for t in towns.values()))
            for area in areas:
                if not any(self._contains(area.code, t) for t in towns.values()):
                    notes.append((NOTE_CONFLICT, f"{area.name}不包含所提到的镇街，未采用"))
            if len(towns) > 1:
                notes.append((NOTE_MULTIPLE_TOWNS, f"提到多个镇街：{_names(towns.values())}"))
        else:
            zones = [a.code for a in areas]
        multi_area = len(zones) > 1
        if multi_area:
            zone_names = "、".join(self.ruleset.area_by_code[z].name for z in zones)
            notes.append((NOTE_MULTI_AREA, f"涉及多个区：{zone_names}"))

        if towns or unresolved:
            candidates = tuple(
                sorted(
                    {t.code: t for t in (*towns.values(), *unresolved)}.values(),
                    key=lambda t: t.code,
                )
            )
            area = None
            if len(areas) == 1 and all(self._contains(areas[0].code, t) for t in candidates):
                area = areas[0]
            return _Settled(
                area=area,
                ambiguous=candidates,
                multi_area=multi_area,
                matched=matched,
                notes=tuple(notes),
            )
        if len(areas) == 1:
            notes.append((NOTE_AREA_ONLY, f"只能确定到{areas[0].name}，未指明镇街"))
            return _Settled(area=areas[0], matched=matched, notes=tuple(notes))
        if areas:
            return _Settled(multi_area=True, matched=matched, notes=tuple(notes))
        if reading.city:
            notes.append((NOTE_CITY_ONLY, f"只提到{self.ruleset.city_name}，未指明区或镇街"))
        return _Settled(matched=matched, notes=tuple(notes))

    def _weigh_name_parts(
        self,
        reading: _Reading,
        towns: dict[str, Town],
        areas: list[Area],
        notes: list[Note],
    ) -> None:
        """Count a town named only inside a road or compound name when nothing better says where.

        A town, or a place pointing to towns, wins over it (白蕉路 in 井岸镇); so does an area
        named with it that does not contain it.
        """
        if not reading.weak_towns:
            return
        if towns or reading.groups:
            parts = "、".join(dict.fromkeys(n for ns in reading.weak_names.values() for n in ns))
            notes.append((NOTE_NAME_PART, f"{parts}是路名或小区名的一部分，不作为镇街"))
            return
        for code, town in reading.weak_towns.items():
            if all(self._contains(a.code, town) for a in areas):
                towns[code] = town
                reading.town_names.setdefault(code, []).extend(reading.weak_names[code])

    @staticmethod
    def _cross(
        pending: list[tuple[str, tuple[Town, ...]]],
        towns: dict[str, Town],
        reading: _Reading,
        notes: list[Note],
    ) -> list[tuple[str, tuple[Town, ...]]]:
        """Places that each allow several towns, named together, allow only the towns they share
        (two roads that cross). Sharing none, they stay as they were."""
        if len(pending) < 2:
            return pending
        common = set.intersection(*({t.code for t in group} for _, group in pending))
        if not common:
            return pending
        names = "与".join(name for name, _ in pending)
        shared = tuple(t for t in pending[0][1] if t.code in common)
        if len(shared) > 1:
            return [(names, shared)]
        town = shared[0]
        towns.setdefault(town.code, town)
        reading.town_names.setdefault(town.code, []).extend(name for name, _ in pending)
        notes.append((NOTE_NARROWED, f"{names}结合确定为{town.name}"))
        return []

    def _one_governing_area(self, candidates: list[Town], areas: list[Area]) -> Area | None:
        """The area that runs every candidate town, if it is one and no named area denies it."""
        governing = {t.governing_area for t in candidates}
        if len(governing) != 1:
            return None
        if not all(self._contains(a.code, t) for a in areas for t in candidates):
            return None
        return self.ruleset.area_by_code[governing.pop()]

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _enclosing_districts(ruleset: RuleSet) -> dict[str, str]:
        """Functional area -> the district holding every town it runs (高新区 -> 香洲区)."""
        districts: dict[str, set[str]] = {}
        for town in ruleset.towns:
            if town.run_by is not None:
                districts.setdefault(town.run_by, set()).add(town.district)
        return {area: next(iter(ds)) for area, ds in districts.items() if len(ds) == 1}

    @staticmethod
    def _describe(settled: _Settled) -> str:
        if settled.outside:
            return "珠海市以外的地名"
        if settled.town is not None:
            return settled.town.name
        if settled.ambiguous:
            return _names(settled.ambiguous)
        if settled.area is not None:
            return settled.area.name
        return "多个区"

    @staticmethod
    def _result(
        settled: _Settled,
        source: str,
        *,
        matched: tuple[str, ...] | None = None,
        notes: tuple[Note, ...] | None = None,
    ) -> ResolvedLocation:
        return ResolvedLocation(
            town=settled.town,
            area=settled.area,
            ambiguous=settled.ambiguous,
            outside=settled.outside,
            source=source if settled.found else None,
            matched=settled.matched if matched is None else matched,
            multi_area=settled.multi_area,
            notes=settled.notes if notes is None else notes,
        )
