"""Route a request to a department (派单) by 属地管理 and 分级负责, with an explanation.

The six steps of dispatch/reference/matters.yaml, in order:
  1. the matter and the rule version in force on the day the request was received;
  2. escalation: major (重大) or spanning more than one area (flagged by the caller, or the
     resolved location itself) -> the city department of the matter's type;
  3. level city -> the city department of the type, wherever it happened;
  4. level area -> for a town: the functional area running it if it has a department of the
     type, else the town's district if it has one, else the city department; for an area
     named without a town: that area, else the city department;
  5. level town -> the town's office (T-<town code>); an area without a town -> its
     government (…-GOV, 兜底);
  6. anything unresolved, ambiguous, outside Zhuhai, or without a department -> DESK.

Explanation codes (``ExplanationStep.code``), by step:
  1  matter.rule             the matter and the rule version applied
  2  escalation.major        major request, sent to the city department
  2  escalation.multi_area   spans several areas (caller's flag or the location), sent to city
  3  level.city              city-level matter, location ignored
  4  area.functional         the functional area's department (running the town, or named)
  4  area.functional_lacks   the functional area running the town has no department of the type
  4  area.district           the district's department (the town's district, or named)
  4  area.city_fallback      no area department of the type, sent to the city department
  5  town.office             the town government / sub-district office
  5  town.area_gov           only the area is known: its government (兜底)
  6  desk.unresolved         no location could be read
  6  desk.ambiguous          several candidate towns (see ``RoutingDecision.candidates``)
  6  desk.outside            the place is outside Zhuhai
  6  desk.no_department      a step found no department (e.g. no city department of the type)
  location.fixed             the town was fixed by the caller of ``route`` (a desk candidate)
  location.*                 notes of the resolver (see dispatch.routing.resolver), shown at
                             the step that used the location (2, 4 or 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dispatch.routing.resolver import LocationResolver, ResolvedLocation
from dispatch.routing.ruleset import (
    AREA_GOV_TYPE,
    Department,
    Matter,
    MatterRuleVersion,
    RuleSet,
    Town,
    UnknownMatterError,
    rule_version_label,
)

__all__ = [
    "ExplanationStep",
    "RoutingDecision",
    "UnknownMatterError",
    "route",
]

LEVEL_NAMES = {"city": "市级", "area": "区级", "town": "镇街级"}

MATTER_RULE = "matter.rule"
ESCALATION_MAJOR = "escalation.major"
ESCALATION_MULTI_AREA = "escalation.multi_area"
LEVEL_CITY = "level.city"
AREA_FUNCTIONAL = "area.functional"
AREA_FUNCTIONAL_LACKS = "area.functional_lacks"
AREA_DISTRICT = "area.district"
AREA_CITY_FALLBACK = "area.city_fallback"
TOWN_OFFICE = "town.office"
TOWN_AREA_GOV = "town.area_gov"
DESK_UNRESOLVED = "desk.unresolved"
DESK_AMBIGUOUS = "desk.ambiguous"
DESK_OUTSIDE = "desk.outside"
DESK_NO_DEPARTMENT = "desk.no_department"
LOCATION_FIXED = "location.fixed"


@dataclass(frozen=True, slots=True)
class ExplanationStep:
    """One line of a decision's explanation: routing step (1-6), machine code, Chinese text."""

    step: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where a request goes and why.

    ``level`` is the level of the rule version applied (city/area/town), even when escalation
    sent it to the city; ``escalated`` says it was escalated. ``rule_version`` is the label a
    ticket keeps (e.g. ``"SC-01/v2"``). ``reason_code`` is the desk.* code when the request
    fell to the dispatch desk (DESK), else None; ``candidates`` are then the candidate towns.
    """

    matter: Matter
    level: str
    rule_version: str
    location: ResolvedLocation
    department: Department
    explanation: tuple[ExplanationStep, ...]
    candidates: tuple[Town, ...] = ()
    reason_code: str | None = None
    escalated: bool = False


def route(
    ruleset: RuleSet,
    resolver: LocationResolver,
    *,
    matter_code: str,
    text: str,
    address: str,
    received_on: date,
    major: bool = False,
    multi_area: bool = False,
    town: Town | None = None,
) -> RoutingDecision:
    """Decide the department for a request, following the six steps of matters.yaml.

    Always returns a decision (DESK when no rule places the request); raises
    :class:`UnknownMatterError` only for an unknown ``matter_code``. ``town``: the place is
    taken as this town whatever the names say (the desk asks "if it was this candidate town,
    who would the rules choose?").
    """
    matter = ruleset.matter(matter_code)
    rule = matter.rule_on(received_on)
    label = rule_version_label(matter.code, rule.version)
    # "市场监督管理 (工商、质监、食品药品)" -> "市场监督管理": the short form reads better in text.
    type_name = ruleset.department_types.get(rule.type, rule.type).split(" (")[0]
    steps = [
        ExplanationStep(
            1,
            MATTER_RULE,
            f"事项{matter.code}「{matter.name}」：{received_on.isoformat()}受理，"
            f"适用规则{label}（{LEVEL_NAMES[rule.level]}，{type_name}）",
        )
    ]
    if town is None:
        location = resolver.resolve(address, text, received_on)
    else:
        location = fixed_town(ruleset, town)
    escalated = major or multi_area or location.multi_area
    if escalated:
        department, reason = _escalate(ruleset, rule, type_name, location, major, steps)
    elif rule.level == "city":
        department, reason = _city_level(ruleset, rule, steps)
    elif rule.level == "area":
        department, reason = _area_level(ruleset, rule, type_name, location, steps)
    else:
        department, reason = _town_level(ruleset, location, steps)
    if department is None:
        department = ruleset.desk
        reason = reason or DESK_UNRESOLVED
        steps.append(ExplanationStep(6, reason, _desk_message(reason, location, type_name)))
    return RoutingDecision(
        matter=matter,
        level=rule.level,
        rule_version=label,
        location=location,
        department=department,
        explanation=tuple(steps),
        candidates=location.ambiguous if department.level == "desk" else (),
        reason_code=reason if department.level == "desk" else None,
        escalated=escalated,
    )


def fixed_town(ruleset: RuleSet, town: Town) -> ResolvedLocation:
    """A location that is ``town`` for certain, as the resolver would have settled it."""
    return ResolvedLocation(
        town=town,
        area=ruleset.area_by_code.get(town.governing_area),
        source="fixed",
        matched=(town.name,),
        notes=((LOCATION_FIXED, f"假定发生在候选镇街{town.name}"),),
    )


# Each step returns (department, None) when it placed the request, or (None, desk reason code).
_Outcome = tuple[Department | None, str | None]


def _location_notes(location: ResolvedLocation, step: int, steps: list[ExplanationStep]) -> None:
    steps.extend(ExplanationStep(step, code, message) for code, message in location.notes)


def _escalate(
    ruleset: RuleSet,
    rule: MatterRuleVersion,
    type_name: str,
    location: ResolvedLocation,
    major: bool,
    steps: list[ExplanationStep],
) -> _Outcome:
    department = ruleset.city_department(rule.type)
    if department is not None:
        outcome = f"升级由{department.name}办理"
    else:
        outcome = f"应升级由市级部门办理，但{type_name}没有市级部门"
    if major:
        steps.append(ExplanationStep(2, ESCALATION_MAJOR, f"重大诉求，{outcome}"))
    else:
        if location.multi_area:
            _location_notes(location, 2, steps)
        steps.append(ExplanationStep(2, ESCALATION_MULTI_AREA, f"诉求涉及多个区，{outcome}"))
    if department is None:
        return None, DESK_NO_DEPARTMENT
    return department, None


def _city_level(
    ruleset: RuleSet, rule: MatterRuleVersion, steps: list[ExplanationStep]
) -> _Outcome:
    department = ruleset.city_department(rule.type)
    if department is None:
        return None, DESK_NO_DEPARTMENT
    steps.append(ExplanationStep(3, LEVEL_CITY, f"市级事项，不论发生地，由{department.name}办理"))
    return department, None


def _location_problem(location: ResolvedLocation) -> str | None:
    if location.outside:
        return DESK_OUTSIDE
    if location.ambiguous:
        return DESK_AMBIGUOUS
    if location.town is None and location.area is None:
        return DESK_UNRESOLVED
    return None


def _area_level(
    ruleset: RuleSet,
    rule: MatterRuleVersion,
    type_name: str,
    location: ResolvedLocation,
    steps: list[ExplanationStep],
) -> _Outcome:
    _location_notes(location, 4, steps)
    problem = _location_problem(location)
    if problem is not None:
        return None, problem
    area_by_code = ruleset.area_by_code
    town = location.town
    if town is not None:
        if town.run_by is not None:
            runner = area_by_code[town.run_by]
            department = ruleset.area_department(runner.code, rule.type)
            if department is not None:
                steps.append(
                    ExplanationStep(
                        4, AREA_FUNCTIONAL, f"{town.name}由{runner.name}管理，交{department.name}"
                    )
                )
                return department, None
            steps.append(
                ExplanationStep(
                    4,
                    AREA_FUNCTIONAL_LACKS,
                    f"{town.name}由{runner.name}管理，但{runner.name}没有{type_name}部门",
                )
            )
        district = area_by_code[town.district]
        department = ruleset.area_department(district.code, rule.type)
        if department is not None:
            steps.append(
                ExplanationStep(
                    4, AREA_DISTRICT, f"{town.name}属{district.name}，交{department.name}"
                )
            )
            return department, None
        where = district.name
    else:
        area = location.area
        assert area is not None  # _location_problem rules out "neither town nor area"
        department = ruleset.area_department(area.code, rule.type)
        if department is not None:
            code = AREA_FUNCTIONAL if area.kind == "functional" else AREA_DISTRICT
            steps.append(ExplanationStep(4, code, f"发生在{area.name}，交{department.name}"))
            return department, None
        where = area.name
    department = ruleset.city_department(rule.type)
    if department is None:
        return None, DESK_NO_DEPARTMENT
    steps.append(
        ExplanationStep(
            4, AREA_CITY_FALLBACK, f"{where}没有{type_name}部门，由市级{department.name}办理"
        )
    )
    return department, None


def _town_level(
    ruleset: RuleSet, location: ResolvedLocation, steps: list[ExplanationStep]
) -> _Outcome:
    _location_notes(location, 5, steps)
    problem = _location_problem(location)
    if problem is not None:
        return None, problem
    if location.town is not None:
        department = ruleset.town_office(location.town.code)
        if department is None:
            return None, DESK_NO_DEPARTMENT
        steps.append(ExplanationStep(5, TOWN_OFFICE, f"镇街级事项，交{department.name}"))
        return department, None
    area = location.area
    assert area is not None
    department = ruleset.area_department(area.code, AREA_GOV_TYPE)
    if department is None:
        return None, DESK_NO_DEPARTMENT
    steps.append(
        ExplanationStep(
            5, TOWN_AREA_GOV, f"镇街级事项，但只确定到{area.name}，交{department.name}兜底"
        )
    )
    return department, None


def _desk_message(reason: str, location: ResolvedLocation, type_name: str) -> str:
    if reason == DESK_OUTSIDE:
        return "发生地在珠海市以外，转派单组人工处理"
    if reason == DESK_AMBIGUOUS:
        names = "、".join(t.name for t in location.ambiguous)
        return f"不能确定是哪个镇街（候选：{names}），转派单组人工派单"
    if reason == DESK_NO_DEPARTMENT:
        return f"找不到承办{type_name}的部门，转派单组人工派单"
    return "未能确定发生地，转派单组人工派单"
