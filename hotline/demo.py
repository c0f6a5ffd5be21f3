"""Demo data for ``hotline demo``: users of every role and a day's worth of realistic tickets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch.tickets import service as ticket_service
from hotline.calls import service as calls_service
from hotline.calls.models import CallEvent
from hotline.calls.simulator import CALL_ID_PREFIX
from hotline.core.auth import Principal, create_user
from hotline.core.db import utcnow

DEMO_PASSWORD = "demo12345"
# `hotline demo` backfills this many hours of simulated calls, once: see needs_backfill.
BACKFILL_HOURS = 2
# (user name, roles, departments, what they do) — printed by `hotline demo`.
DEMO_USERS = [
    ("admin", ["admin"], [], "系统管理员 administrator"),
    ("agent1", ["agent"], [], "话务员 hotline agent (综合专席 general desk)"),
    ("agent2", ["agent"], [], "话务员 hotline agent (社保专席 social-security desk)"),
    ("supervisor", ["supervisor"], [], "值班长 supervisor, KPI wall"),
    ("dispatcher", ["dispatcher"], [], "派单员 dispatcher"),
    ("editor", ["editor"], [], "知识库编辑 knowledge-base editor"),
    ("xz_market", ["department"], ["XZ-MARKET"], "香洲区市场监督管理局 department inbox"),
    ("c_hrss", ["department"], ["C-HRSS"], "珠海市人力资源和社会保障局 department inbox"),
    ("gb_office", ["department"], ["T-440402005"], "拱北街道办事处 department inbox"),
]

# (content, address, matter code or None, caller, what happens next)
DEMO_TICKETS = [
    (
        "在夏湾一家手机店买的手机三天就坏了，商家拒绝退货",
        "香洲区拱北夏湾路",
        "SC-01",
        "13800001001",
        "accept",
    ),
    ("拱北口岸附近餐馆卖过期食品", "拱北口岸", "SC-02", "13800001002", None),
    ("吉大水湾路的菜市场缺斤短两", "香洲区吉大水湾路", None, "13800001003", "reply"),
    ("公司已经两个月没发工资了", "香洲区前山翠微", "RS-01", "13800001004", None),
    ("社保卡丢了，想问怎么挂失补办", "", "RS-02", "13800001005", "answer"),
    (
        "楼下烧烤店油烟很大，每天熏到晚上十二点",
        "香洲区拱北情侣南路",
        "HB-02",
        "13800001006",
        "accept",
    ),
    ("小区旁边工地夜间施工打桩，吵得睡不着", "斗门区井岸镇", "ZJ-02", "13800001007", None),
    ("唐家湾古镇有商家不明码标价", "唐家湾古镇", "SC-04", "13800001008", None),
    ("东澳村有工厂偷排污水", "", "HB-01", "13800001009", None),
    ("横琴长隆附近路灯不亮好几天了", "横琴新区", "CG-04", "13800001010", "accept"),
    ("台风过后小区门口大树倒了压住汽车", "香洲区拱北夏湾", "YJ-01", "13800001011", None),
    ("想咨询灵活就业人员怎么交养老保险", "", "RS-03", "13800001012", None),
    ("出租车司机在机场拒载", "珠海机场", "JT-01", "13800001013", None),
    ("小区物业乱收停车费", "金湾区三灶镇", "ZJ-01", "13800001014", "reply"),
    ("电梯困人，已经十分钟了", "香洲区拱北昌盛路", "SC-05", "13800001015", "accept"),
    ("在中山坦洲买的家具有质量问题", "中山市坦洲镇", "SC-01", "13800001016", None),
    ("孩子明年上小学，想问积分入学怎么报名", "香洲区香湾", "JY-01", "13800001017", None),
    ("拱北夏湾街边流动摊贩占道经营", "香洲区拱北夏湾", "CG-01", "13800001018", None),
]


def create_demo_users(session: Session) -> None:
    for username, roles, departments, description in DEMO_USERS:
        create_user(
            session,
            username=username,
            password=DEMO_PASSWORD,
            roles=roles,
            departments=departments,
            full_name=description.split(" ")[0],
        )
    for username, skills in (("agent1", ["general"]), ("agent2", ["social_security", "general"])):
        calls_service.set_skills(session, username, skills)


def create_demo_tickets(session: Session) -> int:
    """A morning's tickets in every state; does nothing if tickets exist already."""
    from dispatch.tickets.models import Ticket

    if session.scalar(select(func.count()).select_from(Ticket)):
        return 0
    now = utcnow()
    agent = Principal(0, "agent1", frozenset({"agent"}), frozenset())
    for index, (content, address, matter, phone, next_step) in enumerate(DEMO_TICKETS):
        ticket, _duplicates = ticket_service.create(
            session,
            actor="agent1",
            channel="phone" if index % 4 else "wechat",
            content=content,
            address=address,
            matter_code=matter,
            caller_name="市民" + "甲乙丙丁戊己庚辛壬癸"[index % 10],
            caller_phone=phone,
            received_at=now - timedelta(minutes=5 * (len(DEMO_TICKETS) - index)),
        )
        department = Principal(
            0, "demo-dept", frozenset({"department"}), frozenset({ticket.lead_department})
        )
        if next_step == "answer":
            ticket_service.act(
                session,
                agent,
                ticket.number,
                "answer-directly",
                {"answer": "已告知市民拨打12333或到社保卡合作银行网点办理挂失补办。"},
            )
        if next_step in ("accept", "reply") and ticket.status == "dispatched":
            ticket_service.act(session, department, ticket.number, "accept", {})
        if next_step == "reply" and ticket.status == "accepted":
            ticket_service.act(
                session,
                department,
                ticket.number,
                "reply",
                {"reply": "已到现场核查并责令整改，商户已整改完毕。"},
            )
    return len(DEMO_TICKETS)


def _simulated() -> Any:
    return CallEvent.call_id.like(f"{CALL_ID_PREFIX}%")


def close_abandoned_simulated_calls(session: Session, now: datetime | None = None) -> int:
    """End the simulated calls an earlier run left open (a simulator killed before it could
    end them), so that no caller waits for ever on the wall; their agents go to after-call
    work as after any call. Returns how many calls were ended."""
    now = now or utcnow()
    ended = select(CallEvent.call_id).where(_simulated(), CallEvent.type == "ended")
    open_calls = session.execute(
        select(CallEvent.call_id, func.max(CallEvent.at))
        .where(_simulated(), CallEvent.call_id.not_in(ended))
        .group_by(CallEvent.call_id)
    ).all()
    events = [
        {
            "event_id": f"{call_id}:closed",
            "type": "ended",
            "call_id": call_id,
            "at": max(now, last_at).isoformat(),
        }
        for call_id, last_at in open_calls
    ]
    if events:
        calls_service.ingest(session, events)
    return len(events)


def needs_backfill(session: Session, now: datetime | None = None) -> bool:
    """Whether the wall lacks simulated history: False when simulated calls already fall
    within the last BACKFILL_HOURS (an earlier demo run), where a backfill would double the
    traffic."""
    since = (now or utcnow()) - timedelta(hours=BACKFILL_HOURS)
    recent = session.scalar(
        select(CallEvent.event_id).where(_simulated(), CallEvent.at >= since).limit(1)
    )
    return recent is None
