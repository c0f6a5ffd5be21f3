"""Routing as a service: the rule set from the database, previews, and audited rule changes.

The engine works on an immutable ``RuleSet``. Each process builds it from the database once and
keeps it until the ``routing`` revision counter moves (every admin change bumps it), so every
API process routes with the same rules a moment after a change, without restarting.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.routing import models as m
from dispatch.routing import ruleset as rs
from dispatch.routing.engine import RoutingDecision, route
from dispatch.routing.resolver import LocationResolver
from dispatch.routing.suggest import MatterSuggester, ModelSuggester, Understanding
from hotline.core import counters
from hotline.core.errors import AppError, NotFound
from hotline.core.models import AuditEntry, Counter
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

# The revision of the reference data used at intake: the rules, the gazetteer, the
# departments, and the working calendar's overrides (see dispatch.tickets.service).
REVISION_COUNTER = "routing"


@dataclass(frozen=True)
class Routing:
    """Everything needed to route, built together from one revision of the rules."""

    revision: int
    ruleset: rs.RuleSet
    resolver: LocationResolver
    suggester: ModelSuggester
    # What other parts of the domain derive from the same revision of the reference data
    # (the tickets' working calendar): built on first use, dropped with this object.
    derived: dict[str, Any] = field(default_factory=dict, compare=False)

    def decide(
        self,
        *,
        matter_code: str,
        text: str,
        address: str,
        received_on: date,
        major: bool = False,
        multi_area: bool = False,
        town: rs.Town | None = None,
    ) -> RoutingDecision:
        return route(
            self.ruleset,
            self.resolver,
            matter_code=matter_code,
            text=text,
            address=address,
            received_on=received_on,
            major=major,
            multi_area=multi_area,
            town=town,
        )


_cache: Routing | None = None
_cache_lock = threading.Lock()


_REVISION = select(Counter.value).where(Counter.name == REVISION_COUNTER)


def _revision(session: Session) -> int:
    return session.scalar(_REVISION) or 0


def bump_revision(session: Session) -> None:
    """Tell every process that the rules changed (read again on their next routing)."""
    counters.increment(session, REVISION_COUNTER)


def current_routing(session: Session) -> Routing:
    """The routing rules in force, rebuilt only when an admin changed them."""
    global _cache
    revision = _revision(session)
    cached = _cache
    if cached is not None and cached.revision == revision:
        return cached
    with _cache_lock:
        if _cache is not None and _cache.revision == revision:
            return _cache
        ruleset = ruleset_from_db(session)
        keywords = MatterSuggester(ruleset)
        # Agents' final choices are learned in bulk, so a rebuild (not each choice) picks them up.
        choices = session.execute(
            select(m.MatterChoice.text, m.MatterChoice.matter_code).order_by(m.MatterChoice.id)
        ).all()
        if choices:
            keywords = MatterSuggester(ruleset, learned=keywords.learn_weights(choices))
        suggester = _suggester(session, ruleset, keywords)
        _cache = Routing(revision, ruleset, LocationResolver(ruleset), suggester)
        return _cache


def _suggester(
    session: Session,
    ruleset: rs.RuleSet,
    keywords: MatterSuggester,
) -> ModelSuggester:
    """The classifier of the active model version, else of the shipped corpus; the keyword
    suggester only when no model can be had (scikit-learn missing, an unreadable model)."""
    from dispatch.routing import classifier, training

    settings = get_settings()
    model, version = None, None
    try:
        active = training.active_model(session)
        if active is not None:
            version, model = active
        else:
            model = classifier.shipped_model(
                settings.resolved_data_dir, limit=settings.matter_model_corpus_limit
            )
    except Exception:
        log.exception("no matter model: suggesting by keywords")
    return ModelSuggester(
        ruleset,
        model,
        keywords,
        confidence_threshold=settings.suggest_confidence_threshold,
        urgent_threshold=settings.suggest_urgent_threshold,
        catch_all=_catch_all(ruleset),
        model_version=version,
    )


def _catch_all(ruleset: rs.RuleSet) -> str | None:
    matter = rs.catch_all_matter(ruleset.matters)
    return None if matter is None else matter.code


def forget_cached_rules() -> None:
    """Drop this process's copy of the rules (tests that empty the database call it)."""
    global _cache
    with _cache_lock:
        _cache = None


def ruleset_from_db(session: Session) -> rs.RuleSet:
    """Build the engine's immutable rule set from the tables."""
    city_name = "珠海市"
    rules_by_matter: dict[str, list[rs.MatterRuleVersion]] = {}
    for rule in session.scalars(select(m.MatterRule).order_by(m.MatterRule.version)):
        rules_by_matter.setdefault(rule.matter_code, []).append(
            rs.MatterRuleVersion(
                version=rule.version,
                level=rule.level,
                type=rule.type,
                valid_from=rule.valid_from,
                valid_until=rule.valid_until,
            )
        )
    return rs.RuleSet(
        areas=tuple(
            rs.Area(a.code, a.name, a.kind, a.adcode, tuple(a.aliases))
            for a in session.scalars(select(m.Area).order_by(m.Area.code))
        ),
        towns=tuple(
            rs.Town(
                code=t.code,
                name=t.name,
                district=t.district,
                run_by=t.run_by,
                aliases=tuple(t.aliases),
                valid_from=t.valid_from,
                valid_until=t.valid_until,
            )
            for t in session.scalars(select(m.Town).order_by(m.Town.code))
        ),
        places=tuple(
            rs.Place(
                name=p.name,
                town=p.town,
                area=p.area,
                ambiguous=tuple(p.ambiguous),
                town_before=tuple(
                    (date.fromisoformat(day), town) for day, town in (p.town_before or [])
                ),
            )
            for p in session.scalars(select(m.Place).order_by(m.Place.name))
        ),
        departments=tuple(
            rs.Department(d.code, d.name, d.level, d.area, d.town, tuple(d.types))
            for d in session.scalars(
                select(m.Department).where(m.Department.active).order_by(m.Department.code)
            )
        ),
        matters=tuple(
            rs.Matter(
                code=x.code,
                name=x.name,
                category=x.category,
                kind=x.kind,
                urgent=x.urgent,
                keywords=tuple(x.keywords),
                versions=tuple(rules_by_matter.get(x.code, ())),
                subcategory=x.subcategory,
            )
            for x in session.scalars(select(m.Matter).order_by(m.Matter.code))
            if x.code in rules_by_matter
        ),
        department_types={t.code: t.name for t in session.scalars(select(m.DepartmentType))},
        not_zhuhai=tuple(session.scalars(select(m.ForeignPlaceName.name)).all()),
        city_code="440400",
        city_name=city_name,
    )


def seed_reference(session: Session) -> str:
    """Load the shipped gazetteer, departments and matter catalogue; rows already there stay.

    Idempotent: running it again adds only what is missing, so an admin's later changes are
    never overwritten by a re-seed.
    """
    data = rs.load_reference()
    added: dict[str, int] = {}

    def add_missing(model: type, key: str, rows: list[dict[str, Any]]) -> None:
        existing = set(session.scalars(select(getattr(model, key))).all())
        fresh = [row for row in rows if row[key] not in existing]
        session.add_all(model(**row) for row in fresh)
        session.flush()
        added[model.__tablename__] = len(fresh)

    add_missing(
        m.Area,
        "code",
        [
            dict(code=a.code, name=a.name, kind=a.kind, adcode=a.adcode, aliases=list(a.aliases))
            for a in data.areas
        ],
    )
    add_missing(
        m.Town,
        "code",
        [
            dict(
                code=t.code,
                name=t.name,
                district=t.district,
                run_by=t.run_by,
                aliases=list(t.aliases),
                valid_from=t.valid_from,
                valid_until=t.valid_until,
            )
            for t in data.towns
        ],
    )
    add_missing(
        m.Place,
        "name",
        [
            dict(
                name=p.name,
                town=p.town,
                area=p.area,
                ambiguous=list(p.ambiguous),
                town_before=[[day.isoformat(), town] for day, town in p.town_before],
            )
            for p in data.places
        ],
    )
    add_missing(m.ForeignPlaceName, "name", [dict(name=n) for n in data.not_zhuhai])
    add_missing(
        m.DepartmentType,
        "code",
        [dict(code=code, name=name) for code, name in data.department_types.items()],
    )
    add_missing(
        m.Department,
        "code",
        [
            dict(
                code=d.code,
                name=d.name,
                level=d.level,
                area=d.area,
                town=d.town,
                types=list(d.types),
            )
            for d in data.departments
        ],
    )
    add_missing(
        m.Matter,
        "code",
        [
            dict(
                code=x.code,
                name=x.name,
                category=x.category,
                subcategory=x.subcategory,
                kind=x.kind,
                urgent=x.urgent,
                keywords=list(x.keywords),
            )
            for x in data.matters
        ],
    )
    # A catalogue seeded before the tree existed has matters without a subcategory: place
    # them as shipped. A subcategory already set (by the catalogue or an admin) stays.
    shipped_subcategory = {x.code: x.subcategory for x in data.matters}
    placed = 0
    for row in session.scalars(select(m.Matter).where(m.Matter.subcategory == "")):
        if shipped_subcategory.get(row.code):
            row.subcategory = shipped_subcategory[row.code]
            placed += 1
    added["matters placed in the tree"] = placed
    ruled = set(session.scalars(select(m.MatterRule.matter_code)).all())
    new_rules = [
        m.MatterRule(
            matter_code=x.code,
            version=v.version,
            level=v.level,
            type=v.type,
            valid_from=v.valid_from,
            valid_until=v.valid_until,
        )
        for x in data.matters
        if x.code not in ruled
        for v in x.versions
    ]
    session.add_all(new_rules)
    added["matter_rules"] = len(new_rules)
    bump_revision(session)
    session.flush()
    return (
        "routing reference data: "
        + ", ".join(f"{n} {t}" for t, n in added.items() if n)
        + ("" if any(added.values()) else "already loaded")
    )


UNPLACED_SUBCATEGORY = "未分类"  # (unplaced) a matter no catalogue has put in a subcategory yet


def matter_tree(session: Session, *, kind: str | None = None) -> dict[str, Any]:
    """The catalogue as nested nodes, each with the number of matters under it; every matter
    (of ``kind``, if given) appears exactly once, with the rule in force today."""
    today = local_today()
    categories: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for matter in current_routing(session).ruleset.matters:
        if kind is not None and matter.kind != kind:
            continue
        rule = matter.rule_on(today)
        subcategories = categories.setdefault(matter.category, {})
        subcategories.setdefault(matter.subcategory or UNPLACED_SUBCATEGORY, []).append(
            {
                "code": matter.code,
                "name": matter.name,
                "kind": matter.kind,
                "urgent": matter.urgent,
                "level": rule.level,
                "type": rule.type,
            }
        )
    nodes = [
        {
            "name": category,
            "count": sum(len(leaves) for leaves in subcategories.values()),
            "subcategories": [
                {"name": name, "count": len(leaves), "matters": leaves}
                for name, leaves in subcategories.items()
            ],
        }
        for category, subcategories in categories.items()
    ]
    return {"count": sum(node["count"] for node in nodes), "categories": nodes}


def local_today() -> date:
    return datetime.now(get_settings().tz).date()


def received_day(received_at: datetime | None) -> date:
    """The calendar day in the hotline's time zone on which a request was received."""
    if received_at is None:
        return local_today()
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=get_settings().tz)
    return received_at.astimezone(get_settings().tz).date()


class UnknownMatter(AppError):
    status_code = 422


def decide(
    session: Session,
    *,
    text: str,
    address: str,
    matter_code: str | None = None,
    received_at: datetime | None = None,
    major: bool = False,
    multi_area: bool = False,
    routing: Routing | None = None,
    suggest: bool = True,
) -> dict[str, Any]:
    """Route a request and describe the decision the way the API and the CLI show it.

    Without ``matter_code`` the best suggestion is used and ``needs_confirmation`` is set.
    ``routing``: the rules the caller already holds for this transaction (saves a read).
    ``suggest=False``: no suggestions when the matter is given (segmenting the text is the
    dearest step of routing, and intake does not keep them).
    """
    routing = routing or current_routing(session)
    # The text decides the matter and the address the place: an address (燃气公司宿舍) must
    # never make a power cut a gas matter.
    understanding = (
        routing.suggester.understand(text, limit=5)
        if suggest or matter_code is None
        else Understanding([], False, "none")
    )
    suggestions = understanding.suggestions
    needs_confirmation = matter_code is None
    if matter_code is None:
        matter_code = suggestions[0].code if suggestions else fallback_matter(routing)
    elif matter_code not in routing.ruleset.matter_by_code:
        raise UnknownMatter("routing.unknown_matter", f"unknown matter code {matter_code!r}")
    day = received_day(received_at)
    decision = routing.decide(
        matter_code=matter_code,
        text=text,
        address=address,
        received_on=day,
        major=major,
        multi_area=multi_area,
    )
    result = describe(decision, suggestions=suggestions, needs_confirmation=needs_confirmation)
    # A place that could be several towns: what the rules would choose in each of them, so
    # the desk offers the right department per town (a district-level matter goes to the
    # district's department there, not to the town's office).
    result["by_town"] = [
        _by_town(
            routing.decide(
                matter_code=matter_code,
                text=text,
                address=address,
                received_on=day,
                major=major,
                multi_area=multi_area,
                town=town,
            )
        )
        for town in decision.candidates
    ]
    result["low_confidence"] = understanding.low_confidence
    result["suggested_by"] = understanding.source
    return result


def fallback_matter(routing: Routing) -> str:
    """With nothing to go on, the catch-all matter (其他综合诉求) if the catalogue has one."""
    matter = rs.catch_all_matter(routing.ruleset.matters)
    return (matter or routing.ruleset.matters[-1]).code


def _ref(obj: Any) -> dict[str, str] | None:
    return None if obj is None else {"code": obj.code, "name": obj.name}


def describe(
    decision: RoutingDecision, *, suggestions: list | None = None, needs_confirmation: bool = False
) -> dict[str, Any]:
    location = decision.location
    return {
        "matter": _ref(decision.matter),
        "level": decision.level,
        "location": {
            "town": _ref(location.town),
            "area": _ref(location.area),
            "ambiguous": [_ref(t) for t in location.ambiguous],
            "outside": location.outside,
            "source": location.source,
            "matched": list(location.matched),
        },
        "department": _ref(decision.department),
        "rule_version": decision.rule_version,
        "escalated": decision.escalated,
        "reason_code": decision.reason_code,
        "candidates": [_ref(t) for t in decision.candidates],
        "explanation": [
            {"step": s.step, "code": s.code, "message": s.message} for s in decision.explanation
        ],
        "suggestions": [
            {"code": s.code, "name": s.name, "score": round(s.score, 4), "urgent": s.urgent}
            for s in suggestions or []
        ],
        "needs_confirmation": needs_confirmation,
    }


def _by_town(decision: RoutingDecision) -> dict[str, Any]:
    return {
        "town": _ref(decision.location.town),
        "department": _ref(decision.department),
        "explanation": [
            {"step": s.step, "code": s.code, "message": s.message} for s in decision.explanation
        ],
    }


def format_decision(result: dict[str, Any]) -> str:
    """The decision as a dispatcher reads it in a terminal."""
    location = result["location"]
    where = (location["town"] or location["area"] or {}).get("name") or (
        "珠海市外" if location["outside"] else "未能确定"
    )
    lines = [
        f"派往: {result['department']['name']} ({result['department']['code']})",
        f"事项: {result['matter']['name']} ({result['matter']['code']}), "
        f"规则 {result['rule_version']}, 层级 {result['level']}",
        f"地点: {where}",
    ]
    if result["candidates"]:
        lines.append("候选镇街: " + "、".join(c["name"] for c in result["candidates"]))
    for choice in result.get("by_town", []):
        department = choice["department"]
        lines.append(f"  若在{choice['town']['name']}: {department['name']} ({department['code']})")
    if result["needs_confirmation"]:
        lines.append("事项为系统推荐，请确认。")
    # Reasons are numbered 1, 2, 3 as read; the routing step (1-6) each comes from stays
    # beside its code, since several reasons may come from one step and some steps give none.
    lines.append("理由:")
    lines += [
        f"  {n}. {s['message']}  [第{s['step']}步 {s['code']}]"
        for n, s in enumerate(result["explanation"], start=1)
    ]
    if result["suggestions"]:
        lines.append(
            "推荐事项: "
            + ", ".join(
                f"{s['code']} {s['name']} ({s['score']:.2f})" for s in result["suggestions"]
            )
        )
    return "\n".join(lines)


def record_choice(session: Session, *, text: str, matter_code: str) -> None:
    """Remember an agent's final matter for a text, so suggestions learn from it."""
    session.add(m.MatterChoice(text=text[:2000], matter_code=matter_code))


# -- admin changes -------------------------------------------------------------------------------


def _audit(session: Session, actor: str, action: str, entity: str, key: str, detail: dict) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity=entity, entity_id=key, detail=detail))


def change_matter_rule(
    session: Session,
    *,
    actor: str,
    matter_code: str,
    level: str,
    type: str,
    effective_from: date,
    note: str | None = None,
) -> m.MatterRule:
    """Open a new rule version from ``effective_from``; the one in force closes the day before.

    Requests received before that day keep being routed by the old version.
    """
    matter = session.get(m.Matter, matter_code)
    if matter is None:
        raise NotFound("routing.unknown_matter", f"unknown matter code {matter_code!r}")
    if level not in rs.RULE_LEVELS:
        raise AppError("routing.bad_level", f"level must be one of {list(rs.RULE_LEVELS)}")
    if session.get(m.DepartmentType, type) is None:
        raise AppError("routing.unknown_type", f"unknown department type {type!r}")
    versions = session.scalars(
        select(m.MatterRule)
        .where(m.MatterRule.matter_code == matter_code)
        .order_by(m.MatterRule.version)
    ).all()
    last = versions[-1]
    if last.valid_from is not None and effective_from <= last.valid_from:
        raise AppError(
            "routing.bad_effective_date",
            f"a new version must start after {last.valid_from.isoformat()}, "
            f"when version {last.version} took effect",
        )
    last.valid_until = effective_from - timedelta(days=1)
    rule = m.MatterRule(
        matter_code=matter_code,
        version=last.version + 1,
        level=level,
        type=type,
        valid_from=effective_from,
        created_by=actor,
        note=note,
    )
    session.add(rule)
    _audit(
        session,
        actor,
        "routing.rule_changed",
        "matter",
        matter_code,
        {
            "version": rule.version,
            "level": level,
            "type": type,
            "effective_from": effective_from.isoformat(),
            "previous": {"version": last.version, "level": last.level, "type": last.type},
            "note": note,
        },
    )
    bump_revision(session)
    _check_consistent(session)
    return rule


def save_department(
    session: Session,
    *,
    actor: str,
    code: str,
    name: str,
    level: str,
    types: list[str],
    area: str | None = None,
    town: str | None = None,
    active: bool = True,
) -> m.Department:
    """Create or change a department; the rule set is checked before the change is kept."""
    _require_known(session, area=area, towns=[town] if town is not None else [])
    department = session.get(m.Department, code)
    before = None
    if department is None:
        department = m.Department(code=code)
        session.add(department)
    else:
        before = {
            "name": department.name,
            "level": department.level,
            "types": department.types,
            "area": department.area,
            "town": department.town,
            "active": department.active,
        }
    department.name, department.level, department.types = name, level, sorted(set(types))
    department.area, department.town, department.active = area, town, active
    _audit(
        session,
        actor,
        "routing.department_saved",
        "department",
        code,
        {
            "before": before,
            "after": {
                "name": name,
                "level": level,
                "types": department.types,
                "area": area,
                "town": town,
                "active": active,
            },
        },
    )
    bump_revision(session)
    _check_consistent(session)
    return department


def save_place(
    session: Session,
    *,
    actor: str,
    name: str,
    town: str | None = None,
    area: str | None = None,
    ambiguous: list[str] | None = None,
    note: str | None = None,
) -> m.Place:
    """Create or change a place name of the gazetteer."""
    towns = [town] if town is not None else []
    _require_known(session, area=area, towns=[*towns, *(ambiguous or [])])
    place = session.scalar(select(m.Place).where(m.Place.name == name))
    before = None if place is None else {"town": place.town, "area": place.area}
    if place is None:
        place = m.Place(name=name)
        session.add(place)
    place.town, place.area, place.ambiguous, place.note = town, area, ambiguous or [], note
    _audit(
        session,
        actor,
        "routing.place_saved",
        "place",
        name,
        {"before": before, "after": {"town": town, "area": area, "ambiguous": ambiguous or []}},
    )
    bump_revision(session)
    _check_consistent(session)
    return place


def _require_known(session: Session, *, area: str | None, towns: list[str]) -> None:
    """Refuse codes the gazetteer lacks as a 400; the foreign keys would make them a 500."""
    if area is not None and session.get(m.Area, area) is None:
        raise AppError("routing.unknown_area", f"unknown area code {area!r}")
    for town in towns:
        if session.get(m.Town, town) is None:
            raise AppError("routing.unknown_town", f"unknown town code {town!r}")


def _check_consistent(session: Session) -> None:
    """Refuse a change that would leave rules the engine cannot use (e.g. a dangling code)."""
    session.flush()
    try:
        ruleset_from_db(session)
    except (rs.RuleSetError, KeyError, ValueError) as exc:
        raise AppError("routing.inconsistent", f"the change would break the rules: {exc}") from exc


def unknown_departments(session: Session, codes: list[str]) -> list[str]:
    """The codes of ``codes`` that name no department (for checking a user's departments)."""
    known = set(session.scalars(select(m.Department.code).where(m.Department.code.in_(codes))))
    return sorted(set(codes) - known)
