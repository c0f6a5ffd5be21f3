"""The routing reference data as plain frozen dataclasses, and a loader for the YAML files.

Domain terms owned here:
  area (区 / 功能区)  - a district (行政区, kind ``district``) or a functional area (功能区,
                        kind ``functional``) that runs towns without being a division itself;
  town (镇街)         - a town (镇) or sub-district (街道); ``district`` is its administrative
                        district, ``run_by`` the functional area that actually runs it, if any;
  place (地名)        - a landmark, road, island or community that names no town;
  department (部门)   - a unit that receives tickets, at level city (市直), area (区/功能区),
                        town (镇街) or desk (派单组, the hotline's own dispatch desk);
  matter (事项)       - an entry of the matter catalogue (事项目录) with its routing rule versions.

Nothing here touches a database: the lead engineer builds a :class:`RuleSet` from DB rows with
the same constructor the YAML loader uses, and ``RuleSet`` checks the data is consistent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

AREA_KINDS = ("district", "functional")
DEPARTMENT_LEVELS = ("city", "area", "town", "desk")
RULE_LEVELS = ("city", "area", "town")
TOWN_OFFICE_TYPE = "town"  # the department type every generated town office serves
AREA_GOV_TYPE = "area_gov"  # 兜底 type: a district government / functional-area committee

_BEFORE_KEY = re.compile(r"^before_(\d{4})_(\d{2})_(\d{2})$")
_PLACE_KEYS = {"name", "town", "area", "ambiguous", "note"}


class RuleSetError(ValueError):
    """The reference data is inconsistent (unknown reference, duplicate code, gap in versions)."""


class UnknownMatterError(LookupError):
    """No matter with this code exists in the rule set."""

    def __init__(self, matter_code: str) -> None:
        super().__init__(f"unknown matter code: {matter_code!r}")
        self.matter_code = matter_code


@dataclass(frozen=True, slots=True)
class Area:
    """A district or functional area; ``adcode`` is the national division code (districts)."""

    code: str
    name: str
    kind: str
    adcode: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Town:
    """A town or sub-district, valid from ``valid_from`` to ``valid_until`` (both inclusive)."""

    code: str
    name: str
    district: str
    run_by: str | None = None
    aliases: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None

    @property
    def governing_area(self) -> str:
        """The area that actually runs the town: its functional area if any, else its district."""
        return self.run_by or self.district

    def is_valid_on(self, day: date) -> bool:
        """True when the town exists on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until


@dataclass(frozen=True, slots=True)
class Place:
    """A named place. Exactly one of ``town``, ``area`` or ``ambiguous`` (>= 2 towns) is set.

    ``ambiguous`` lists the towns the name may point into: a name used in several towns
    (东澳村) or a road running through several (情侣路); routing never picks one by itself.

    ``town_before`` holds ``(boundary, town)`` pairs sorted by boundary: on a day before
    ``boundary`` the place lay in ``town`` (YAML key ``before_YYYY_MM_DD``).
    """

    name: str
    town: str | None = None
    area: str | None = None
    ambiguous: tuple[str, ...] = ()
    town_before: tuple[tuple[date, str], ...] = ()

    def town_on(self, day: date) -> str | None:
        """The town code the place lay in on ``day`` (None for area-only or ambiguous places)."""
        for boundary, town in self.town_before:
            if day < boundary:
                return town
        return self.town


@dataclass(frozen=True, slots=True)
class Department:
    """A unit that receives tickets. ``area``/``town`` say where it sits (None for city/desk)."""

    code: str
    name: str
    level: str
    area: str | None = None
    town: str | None = None
    types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatterRuleVersion:
    """One version of a matter's routing rule, in force from ``valid_from`` to ``valid_until``."""

    version: int
    level: str
    type: str
    valid_from: date | None = None
    valid_until: date | None = None

    def applies_on(self, day: date) -> bool:
        """True when this version was in force on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until


@dataclass(frozen=True, slots=True)
class Matter:
    """A catalogue matter; ``versions`` run from 1 (oldest) to the current one, without gaps."""

    code: str
    name: str
    category: str
    kind: str
    urgent: bool
    keywords: tuple[str, ...]
    versions: tuple[MatterRuleVersion, ...]
    subcategory: str = ""

    @property
    def current(self) -> MatterRuleVersion:
        """The version in force today and onwards."""
        return self.versions[-1]

    def rule_on(self, day: date) -> MatterRuleVersion:
        """The rule version in force on ``day`` (versions cover all of time, so always one)."""
        # Newest first: almost every request is routed under the current version.
        for version in reversed(self.versions):
            if version.valid_from is None or version.valid_from <= day:
                return version
        return self.versions[0]


def catch_all_matter(matters: Iterable[Matter]) -> Matter | None:
    """The catch-all matter (其他综合诉求): it goes to the area government (兜底) and names no
    keywords; other area-government matters (征地补偿, 法律援助 …) are no catch-all."""
    fallback = [m for m in matters if m.current.type == AREA_GOV_TYPE]
    for matter in fallback:
        if not matter.keywords:
            return matter
    return fallback[0] if fallback else None


def rule_version_label(matter_code: str, version: int) -> str:
    """The label a ticket keeps for the rule it was routed under, e.g. ``"SC-01/v2"``."""
    return f"{matter_code}/v{version}"


def town_office_code(town_code: str) -> str:
    """The code of the generated town office of ``town_code`` (``"T-"`` + town code)."""
    return f"T-{town_code}"


def town_office_name(town_name: str) -> str:
    """镇 -> 人民政府 (town government), 街道 -> 办事处 (sub-district office)."""
    if town_name.endswith("街道"):
        return f"{town_name}办事处"
    if town_name.endswith("镇"):
        return f"{town_name}人民政府"
    raise RuleSetError(f"town name {town_name!r} ends neither in 镇 nor in 街道")


@dataclass(frozen=True, eq=False)
class RuleSet:
    """All routing reference data, checked for consistency, with lookup indexes.

    ``departments`` must contain the city, area and town-office departments and exactly one
    desk department. Compared by identity (``eq=False``) so a rule set can key a cache.
    """

    areas: tuple[Area, ...]
    towns: tuple[Town, ...]
    places: tuple[Place, ...]
    departments: tuple[Department, ...]
    matters: tuple[Matter, ...]
    department_types: dict[str, str]
    not_zhuhai: tuple[str, ...]
    city_code: str
    city_name: str

    area_by_code: dict[str, Area] = field(init=False, repr=False)
    town_by_code: dict[str, Town] = field(init=False, repr=False)
    department_by_code: dict[str, Department] = field(init=False, repr=False)
    matter_by_code: dict[str, Matter] = field(init=False, repr=False)
    _city_by_type: dict[str, Department] = field(init=False, repr=False)
    _area_by_type: dict[tuple[str, str], Department] = field(init=False, repr=False)
    _office_by_town: dict[str, Department] = field(init=False, repr=False)
    _desk: Department = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: indexes are computed once, here
        set_(self, "area_by_code", _unique(self.areas, "area"))
        set_(self, "town_by_code", _unique(self.towns, "town"))
        set_(self, "department_by_code", _unique(self.departments, "department"))
        set_(self, "matter_by_code", _unique(self.matters, "matter"))
        self._check_towns()
        self._check_places()
        city, area, office, desk = self._index_departments()
        set_(self, "_city_by_type", city)
        set_(self, "_area_by_type", area)
        set_(self, "_office_by_town", office)
        set_(self, "_desk", desk)
        self._check_matters()

    # -- lookups -----------------------------------------------------------------------------

    def matter(self, code: str) -> Matter:
        """The matter with ``code``; raises :class:`UnknownMatterError` if there is none."""
        try:
            return self.matter_by_code[code]
        except KeyError:
            raise UnknownMatterError(code) from None

    def department(self, code: str) -> Department:
        """The department with ``code``; raises ``KeyError`` if there is none."""
        return self.department_by_code[code]

    def city_department(self, dept_type: str) -> Department | None:
        """The city-level department serving ``dept_type``, if the city has one."""
        return self._city_by_type.get(dept_type)

    def area_department(self, area_code: str, dept_type: str) -> Department | None:
        """The department of ``area_code`` serving ``dept_type``, if that area has one."""
        return self._area_by_type.get((area_code, dept_type))

    def town_office(self, town_code: str) -> Department | None:
        """The town government / sub-district office of ``town_code``."""
        return self._office_by_town.get(town_code)

    @property
    def desk(self) -> Department:
        """The hotline's dispatch desk (派单组), which receives what no rule can place."""
        return self._desk

    def area_contains(self, area_code: str, town: Town) -> bool:
        """True when ``town`` lies in ``area_code``: it is its district or the area running it."""
        return town.district == area_code or town.run_by == area_code

    def towns_on(self, day: date) -> tuple[Town, ...]:
        """The towns that exist on ``day``."""
        return tuple(t for t in self.towns if t.is_valid_on(day))

    # -- consistency checks ------------------------------------------------------------------

    def _area_of_kind(self, code: str | None, kind: str, what: str) -> None:
        area = self.area_by_code.get(code or "")
        if area is None or area.kind != kind:
            raise RuleSetError(f"{what}: {code!r} is not a {kind} area")

    def _check_towns(self) -> None:
        for area in self.areas:
            if area.kind not in AREA_KINDS:
                raise RuleSetError(f"area {area.code}: unknown kind {area.kind!r}")
        for town in self.towns:
            self._area_of_kind(town.district, "district", f"town {town.code} district")
            if town.run_by is not None:
                self._area_of_kind(town.run_by, "functional", f"town {town.code} run_by")
            if town.valid_from and town.valid_until and town.valid_until < town.valid_from:
                raise RuleSetError(f"town {town.code}: valid_until before valid_from")

    def _check_places(self) -> None:
        seen: set[str] = set()
        for place in self.places:
            if place.name in seen:
                raise RuleSetError(f"place {place.name!r} listed twice")
            seen.add(place.name)
            kinds = sum((place.town is not None, place.area is not None, bool(place.ambiguous)))
            if kinds != 1:
                raise RuleSetError(f"place {place.name!r}: set exactly one of town/area/ambiguous")
            if place.area is not None and place.area not in self.area_by_code:
                raise RuleSetError(f"place {place.name!r}: unknown area {place.area!r}")
            if place.ambiguous and len(set(place.ambiguous)) < 2:
                raise RuleSetError(f"place {place.name!r}: ambiguous needs two or more towns")
            if place.town_before and place.town is None:
                raise RuleSetError(f"place {place.name!r}: before_* needs a current town")
            boundaries = [b for b, _ in place.town_before]
            if boundaries != sorted(set(boundaries)):
                raise RuleSetError(f"place {place.name!r}: before_* dates must be distinct, sorted")
            refs = [place.town, *place.ambiguous, *(t for _, t in place.town_before)]
            for town in refs:
                if town is not None and town not in self.town_by_code:
                    raise RuleSetError(f"place {place.name!r}: unknown town {town!r}")

    def _index_departments(
        self,
    ) -> tuple[
        dict[str, Department],
        dict[tuple[str, str], Department],
        dict[str, Department],
        Department,
    ]:
        city: dict[str, Department] = {}
        area: dict[tuple[str, str], Department] = {}
        office: dict[str, Department] = {}
        desks: list[Department] = []
        for dept in self.departments:
            if dept.level not in DEPARTMENT_LEVELS:
                raise RuleSetError(f"department {dept.code}: unknown level {dept.level!r}")
            for dept_type in dept.types:
                if dept_type not in self.department_types:
                    raise RuleSetError(f"department {dept.code}: unknown type {dept_type!r}")
            if dept.area is not None and dept.area not in self.area_by_code:
                raise RuleSetError(f"department {dept.code}: unknown area {dept.area!r}")
            if dept.level == "city":
                _claim(city, dept.types, dept, "city department of type")
            elif dept.level == "area":
                if dept.area is None:
                    raise RuleSetError(f"department {dept.code}: an area department needs area")
                _claim(area, [(dept.area, t) for t in dept.types], dept, "area department for")
            elif dept.level == "town":
                if dept.town not in self.town_by_code:
                    raise RuleSetError(f"department {dept.code}: unknown town {dept.town!r}")
                _claim(office, [dept.town], dept, "town office of")
            else:
                desks.append(dept)
        if len(desks) != 1:
            raise RuleSetError(f"expected exactly one desk department, found {len(desks)}")
        return city, area, office, desks[0]

    def _check_matters(self) -> None:
        for matter in self.matters:
            versions = matter.versions
            if not versions:
                raise RuleSetError(f"matter {matter.code}: no rule versions")
            for number, version in enumerate(versions, start=1):
                if version.version != number:
                    raise RuleSetError(f"matter {matter.code}: versions must be numbered 1..n")
                if version.level not in RULE_LEVELS:
                    raise RuleSetError(f"matter {matter.code}: unknown level {version.level!r}")
                if version.type not in self.department_types:
                    raise RuleSetError(f"matter {matter.code}: unknown type {version.type!r}")
            if versions[0].valid_from is not None or versions[-1].valid_until is not None:
                raise RuleSetError(f"matter {matter.code}: versions must cover all dates")
            for older, newer in zip(versions, versions[1:], strict=False):
                if older.valid_until is None or newer.valid_from != older.valid_until + timedelta(
                    days=1
                ):
                    raise RuleSetError(f"matter {matter.code}: versions must follow without gaps")


def _unique(items: Iterable[Any], what: str) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for item in items:
        if item.code in index:
            raise RuleSetError(f"duplicate {what} code {item.code!r}")
        index[item.code] = item
    return index


def _claim(index: dict[Any, Department], keys: Iterable[Any], dept: Department, what: str) -> None:
    for key in keys:
        if key in index:
            raise RuleSetError(f"two departments claim the {what} {key!r}: {dept.code}")
        index[key] = dept


# -- YAML loader ---------------------------------------------------------------------------------


def default_reference_dir() -> Path:
    """The reference YAML shipped with the package (dispatch/reference)."""
    return Path(__file__).resolve().parent.parent / "reference"


def load_reference(directory: Path | None = None, *, places_file: bool = True) -> RuleSet:
    """Load gazetteer.yaml, departments.yaml and matters.yaml from ``directory`` into a RuleSet.

    Town offices (one per town, ``T-<town code>``) and the desk are generated as
    departments.yaml describes. The places of places.yaml (roads, landmarks, compounds,
    communities, villages) join the gazetteer's unless ``places_file`` is False (the resolver
    as it was before that file, for comparisons). Raises :class:`RuleSetError` on
    inconsistent data.
    """
    directory = directory or default_reference_dir()
    gazetteer = _read_yaml(directory / "gazetteer.yaml")
    departments_doc = _read_yaml(directory / "departments.yaml")
    matters_doc = _read_yaml(directory / "matters.yaml")

    areas = tuple(_area(row) for row in gazetteer["areas"])
    towns = tuple(_town(row) for row in gazetteer["towns"])
    places = tuple(_place(row) for row in gazetteer.get("places") or ())
    places_path = directory / PLACES_FILE
    if places_file and places_path.exists():
        places += _places_file(_read_yaml(places_path), areas, towns)
    departments = _departments(departments_doc, towns)
    matters = tuple(_matter(row) for row in matters_doc["matters"])
    return RuleSet(
        areas=areas,
        towns=towns,
        places=places,
        departments=departments,
        matters=matters,
        department_types={str(k): str(v) for k, v in departments_doc["types"].items()},
        not_zhuhai=tuple(str(name) for name in gazetteer.get("not_zhuhai") or ()),
        city_code=str(gazetteer["city"]["code"]),
        city_name=str(gazetteer["city"]["name"]),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict):
        raise RuleSetError(f"{path}: expected a mapping at the top level")
    return document


def _as_date(value: Any) -> date | None:
    # Quoted dates arrive as str, unquoted ones already as date.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _strings(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def _area(row: Mapping[str, Any]) -> Area:
    adcode = row.get("adcode")
    return Area(
        code=str(row["code"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        adcode=None if adcode is None else str(adcode),
        aliases=_strings(row.get("aliases")),
    )


def _town(row: Mapping[str, Any]) -> Town:
    run_by = row.get("run_by")
    return Town(
        code=str(row["code"]),
        name=str(row["name"]),
        district=str(row["district"]),
        run_by=None if run_by is None else str(run_by),
        aliases=_strings(row.get("aliases")),
        valid_from=_as_date(row.get("valid_from")),
        valid_until=_as_date(row.get("valid_until")),
    )


def _place(row: Mapping[str, Any]) -> Place:
    before: list[tuple[date, str]] = []
    for key, value in row.items():
        match = _BEFORE_KEY.match(str(key))
        if match:
            year, month, day = (int(g) for g in match.groups())
            before.append((date(year, month, day), str(value)))
        elif key not in _PLACE_KEYS:
            # A mistyped before_* key would otherwise silently lose a dated mapping.
            raise RuleSetError(f"place {row.get('name')!r}: unknown key {key!r}")
    town, area = row.get("town"), row.get("area")
    return Place(
        name=str(row["name"]),
        town=None if town is None else str(town),
        area=None if area is None else str(area),
        ambiguous=_strings(row.get("ambiguous")),
        town_before=tuple(sorted(before)),
    )


PLACES_FILE = "places.yaml"
PLACES_SECTIONS = ("roads", "landmarks", "compounds", "communities", "villages")
_PLACES_FILE_KEYS = {"name", "aliases", "town", "towns", "area", "note"}


def _places_file(
    document: Mapping[str, Any], areas: Iterable[Area], towns: Iterable[Town]
) -> tuple[Place, ...]:
    """The places of places.yaml; towns and areas may be given by name, alias or code.

    ``towns`` (a road through several towns, or a name used in several) becomes the place's
    candidate towns (``Place.ambiguous``); each alias becomes a place of its own.
    """
    town_codes: dict[str, str] = {}
    for town in towns:
        for key in (town.code, town.name, *town.aliases):
            town_codes[key] = town.code
    area_codes = {key: a.code for a in areas for key in (a.code, a.name, *a.aliases)}

    def town_code(value: Any, name: str) -> str:
        code = town_codes.get(str(value))
        if code is None:
            raise RuleSetError(f"{PLACES_FILE}: place {name!r}: unknown town {value!r}")
        return code

    result: list[Place] = []
    for section in document:
        if section not in PLACES_SECTIONS:
            raise RuleSetError(f"{PLACES_FILE}: unknown section {section!r}")
    for section in PLACES_SECTIONS:
        for row in document.get(section) or ():
            name = str(row["name"])
            before: list[tuple[date, str]] = []
            for key, value in row.items():
                match = _BEFORE_KEY.match(str(key))
                if match:
                    year, month, day = (int(g) for g in match.groups())
                    before.append((date(year, month, day), town_code(value, name)))
                elif key not in _PLACES_FILE_KEYS:
                    raise RuleSetError(f"{PLACES_FILE}: place {name!r}: unknown key {key!r}")
            area = row.get("area")
            if area is not None and str(area) not in area_codes:
                raise RuleSetError(f"{PLACES_FILE}: place {name!r}: unknown area {area!r}")
            town = row.get("town")
            for alias in (name, *_strings(row.get("aliases"))):
                result.append(
                    Place(
                        name=alias,
                        town=None if town is None else town_code(town, name),
                        area=None if area is None else area_codes[str(area)],
                        ambiguous=tuple(town_code(t, name) for t in row.get("towns") or ()),
                        town_before=tuple(sorted(before)),
                    )
                )
    return tuple(result)


def _departments(document: Mapping[str, Any], towns: Iterable[Town]) -> tuple[Department, ...]:
    result: list[Department] = []
    for row in document.get("city") or ():
        result.append(
            Department(str(row["code"]), str(row["name"]), "city", types=_strings(row["types"]))
        )
    for area_code, rows in (document.get("area") or {}).items():
        for row in rows or ():
            result.append(
                Department(
                    str(row["code"]),
                    str(row["name"]),
                    "area",
                    area=str(area_code),
                    types=_strings(row["types"]),
                )
            )
    for town in towns:
        result.append(
            Department(
                town_office_code(town.code),
                town_office_name(town.name),
                "town",
                # The office answers to the area that runs the town, e.g. 横琴镇 to 横琴新区.
                area=town.governing_area,
                town=town.code,
                types=(TOWN_OFFICE_TYPE,),
            )
        )
    desk = document["desk"]
    result.append(Department(str(desk["code"]), str(desk["name"]), "desk"))
    return tuple(result)


def _matter(row: Mapping[str, Any]) -> Matter:
    code = str(row["code"])
    current_type = str(row["type"])
    history = sorted(row.get("history") or (), key=lambda h: _as_date(h["until"]) or date.min)
    versions: list[MatterRuleVersion] = []
    valid_from: date | None = None
    for number, entry in enumerate(history, start=1):
        until = _as_date(entry["until"])
        if until is None:
            raise RuleSetError(f"matter {code}: history entry without until")
        versions.append(
            MatterRuleVersion(
                version=number,
                level=str(entry.get("level", row["level"])),
                # An older version keeps the current type unless it says otherwise.
                type=str(entry.get("type", current_type)),
                valid_from=valid_from,
                valid_until=until,
            )
        )
        valid_from = until + timedelta(days=1)
    versions.append(
        MatterRuleVersion(
            version=len(versions) + 1,
            level=str(row["level"]),
            type=current_type,
            valid_from=valid_from,
            valid_until=None,
        )
    )
    return Matter(
        code=code,
        name=str(row["name"]),
        category=str(row.get("category", "")),
        kind=str(row.get("kind", "")),
        urgent=bool(row.get("urgent", False)),
        keywords=_strings(row.get("keywords")),
        versions=tuple(versions),
        subcategory=str(row.get("subcategory", "")),
    )
