"""12345–110 linkage (与110报警服务台联动): what goes to the police and what comes back.

Terms owned here: 110 the police emergency line; 警情 a police incident; 非警务警情 a
non-police matter the 110 desk receives but 12345 handles (noise, consumer disputes …),
transferred to 12345 as a ticket of channel ``110``; 转警 an agent handing a call to 110.

Two editable lists (``PoliceLinkMatter``), each a direction:

* ``to_110``: what an agent must hand over to 110 at once (a crime in progress, a traffic
  accident, a fire, a threat to someone's safety);
* ``from_110``: the non-emergency matters 110 passes to 12345.

The 2018 plan of the Zhuhai government-service administration asks for exactly this: closer
linkage with the 110 service desk and a better mechanism for taking over non-police matters.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from dispatch.tickets import service as ticket_service
from hotline.calls.models import CallEvent, PoliceHandover, PoliceLinkMatter
from hotline.core.db import utcnow
from hotline.core.errors import AppError, Conflict, NotFound
from hotline.core.events import publish_after_commit
from hotline.core.models import AuditEntry

DIRECTIONS = ("to_110", "from_110")
TOPIC = "calls.police"
MAX_NAME_CHARS = 128
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 32

DEFAULT_MATTERS: dict[str, list[tuple[str, list[str]]]] = {
    "to_110": [
        ("正在发生的违法犯罪", ["抢劫", "抢夺", "入室盗窃", "正在偷", "打架斗殴", "持刀", "砸车"]),
        ("交通事故", ["车祸", "撞车", "交通事故", "撞人", "追尾"]),
        ("火灾", ["着火", "火灾", "冒烟", "起火"]),
        ("人身安全受到威胁", ["威胁", "跟踪", "家暴", "绑架", "跳楼", "轻生", "非法拘禁"]),
        ("走失与溺水等紧急求助", ["走失", "小孩不见", "溺水", "落水", "被困"]),
    ],
    "from_110": [
        ("噪音扰民", ["噪音", "扰民", "广场舞", "装修声", "高音喇叭"]),
        ("消费纠纷", ["退款", "退货", "商家", "消费纠纷", "乱收费"]),
        ("占道经营", ["占道经营", "摆摊", "流动摊贩", "乱摆卖"]),
        ("物业纠纷", ["物业", "物业费", "停车位"]),
        ("劳资纠纷", ["欠薪", "拖欠工资", "讨薪"]),
        ("水电气故障", ["停水", "停电", "漏水", "燃气"]),
    ],
}


class PoliceLinkError(AppError):
    status_code = 422


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise PoliceLinkError(
            "police.bad_direction", f"direction must be one of {list(DIRECTIONS)}"
        )


def seed_police_matters(session: Session) -> str:
    """The default lists, for each direction that has none yet (edited lists stay)."""
    present = set(session.scalars(select(PoliceLinkMatter.direction).distinct()))
    added = 0
    for direction, items in DEFAULT_MATTERS.items():
        if direction in present:
            continue
        for name, keywords in items:
            session.add(PoliceLinkMatter(direction=direction, name=name, keywords=keywords))
            added += 1
    session.flush()
    return f"110 linkage matters: {added} added" if added else "110 linkage matters: already loaded"


def matters(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Both lists, in the order they were given; a direction never stored shows its defaults."""
    stored: dict[str, list[dict[str, Any]]] = {d: [] for d in DIRECTIONS}
    for row in session.scalars(select(PoliceLinkMatter).order_by(PoliceLinkMatter.id)):
        if row.direction in stored:
            stored[row.direction].append({"name": row.name, "keywords": list(row.keywords)})
    return {
        direction: items
        or [{"name": name, "keywords": list(kw)} for name, kw in DEFAULT_MATTERS[direction]]
        for direction, items in stored.items()
    }


def _clean(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not items:
        raise PoliceLinkError("police.empty_list", "a list needs at least one matter")
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        name = str(item.get("name", "")).strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise PoliceLinkError(
                "police.bad_matter", f"a matter needs a name of 1..{MAX_NAME_CHARS} characters"
            )
        if name in seen:
            raise PoliceLinkError("police.duplicate_matter", f"matter {name!r} is listed twice")
        seen.add(name)
        keywords = [str(k).strip() for k in item.get("keywords") or [] if str(k).strip()]
        if len(keywords) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD_CHARS for k in keywords):
            raise PoliceLinkError(
                "police.bad_keywords",
                f"matter {name!r}: at most {MAX_KEYWORDS} keywords of {MAX_KEYWORD_CHARS} "
                "characters each",
            )
        cleaned.append({"name": name, "keywords": list(dict.fromkeys(keywords))})
    return cleaned


def replace_matters(
    session: Session, direction: str, items: list[dict[str, Any]], actor: str
) -> dict[str, list[dict[str, Any]]]:
    """Replace the whole list of ``direction``; audited with the list before and after."""
    _check_direction(direction)
    cleaned = _clean(items)
    previous = matters(session)[direction]
    session.execute(delete(PoliceLinkMatter).where(PoliceLinkMatter.direction == direction))
    for item in cleaned:
        session.add(
            PoliceLinkMatter(direction=direction, name=item["name"], keywords=item["keywords"])
        )
    session.add(
        AuditEntry(
            actor=actor,
            action="police.matters_replaced",
            entity="police_link_matters",
            entity_id=direction,
            detail={"previous": previous, "matters": cleaned},
        )
    )
    session.flush()
    return matters(session)


def match(session: Session, direction: str, content: str) -> str | None:
    """The first matter of ``direction`` one of whose keywords occurs in ``content``."""
    _check_direction(direction)
    for item in matters(session)[direction]:
        if any(keyword in content for keyword in item["keywords"]):
            return item["name"]
    return None


def hand_over(
    session: Session, *, call_id: str, matter: str, note: str, agent: str
) -> dict[str, Any]:
    """Record that ``agent`` handed call ``call_id`` to 110 for ``matter`` (one of the
    ``to_110`` list) and tell the hotline's consoles on ``calls.police``.

    NotFound if the call is unknown; Conflict if it was handed over already (110 must not be
    sent twice to the same call).
    """
    names = [item["name"] for item in matters(session)["to_110"]]
    if matter not in names:
        raise PoliceLinkError(
            "police.unknown_matter",
            f"{matter!r} is not on the list of matters for 110: {', '.join(names)}",
            expected=names,
        )
    if (
        session.scalar(select(CallEvent.event_id).where(CallEvent.call_id == call_id).limit(1))
        is None
    ):
        raise NotFound("calls.not_found", f"no call {call_id}")
    _lock(session, f"handover:{call_id}")
    earlier = session.scalar(select(PoliceHandover).where(PoliceHandover.call_id == call_id))
    if earlier is not None:
        raise Conflict(
            "police.already_handed_over",
            f"call {call_id} was handed to 110 by {earlier.agent} at {earlier.at.isoformat()}",
            handover_id=earlier.id,
        )
    handover = PoliceHandover(call_id=call_id, matter=matter, note=note, agent=agent, at=utcnow())
    session.add(handover)
    session.flush()
    body = handover_dict(handover)
    publish_after_commit(session, TOPIC, "call.handover_110", body)
    return body


def handover_dict(handover: PoliceHandover) -> dict[str, Any]:
    return {
        "id": handover.id,
        "call_id": handover.call_id,
        "matter": handover.matter,
        "note": handover.note,
        "agent": handover.agent,
        "at": handover.at.isoformat(),
    }


def _lock(session: Session, name: str) -> None:
    """Serialise work on ``name`` across processes (PostgreSQL); SQLite writers are serial."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(name.encode())})


def receive_from_110(
    session: Session,
    *,
    police_ref: str,
    content: str,
    address: str = "",
    caller_name: str = "",
    caller_phone: str = "",
    matter_code: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """A matter the 110 desk transferred: a ticket of channel ``110``, created by ``110``.

    The 110 reference is kept in the ticket's text and on record, so a transfer sent again
    (a retry of the 110 system) returns the ticket made the first time. Returns the result
    and whether a ticket was created now.
    """
    _lock(session, f"from110:{police_ref}")
    earlier = session.scalar(
        select(AuditEntry).where(
            AuditEntry.entity == "police_transfer", AuditEntry.entity_id == police_ref
        )
    )
    if earlier is not None:
        return {**earlier.detail, "police_ref": police_ref, "repeated": True}, False
    ticket, duplicates = ticket_service.create(
        session,
        actor="110",
        channel="110",
        content=f"【110转办 {police_ref}】{content}",
        address=address,
        caller_name=caller_name,
        caller_phone=caller_phone,
        matter_code=matter_code,
    )
    result = {
        "number": ticket.number,
        "possible_duplicates": duplicates,
        "listed_matter": match(session, "from_110", content),
        "department": ticket.lead_department,
    }
    session.add(
        AuditEntry(
            actor="110",
            action="police.transfer_received",
            entity="police_transfer",
            entity_id=police_ref,
            detail=result,
        )
    )
    session.flush()
    return {**result, "police_ref": police_ref, "repeated": False}, True
