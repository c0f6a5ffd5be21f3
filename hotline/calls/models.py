"""Tables of the hotline: call events as received, the requests derived from them, queues,
agents' states, hourly KPI buckets, IVR prompt templates and the 110 linkage.

Call events are kept exactly as the telephony system sent them (``call_events``); the requests
offered to agent queues (``call_offers``) are derived from all events of a call, every time
one arrives, so events that come late or out of order still give exact figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hotline.core.db import Base, UTCDateTime, utcnow

BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class CallEvent(Base):
    __tablename__ = "call_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    queue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CallOffer(Base):
    """One request offered to an agent queue: the unit of the 15-second answer rate.

    A transfer to another queue starts a new request (``seq`` counts them within a call);
    an overflow keeps the request and only changes its queue.
    """

    __tablename__ = "call_offers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Seconds from entering the queue to the answer or the abandon; None while waiting.
    wait_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # waiting|talking|answered|abandoned|timeout
    overflowed_from: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        Index("ix_call_offers_call", "call_id", "seq", unique=True),
        Index("ix_call_offers_offered_at", "offered_at"),
        Index("ix_call_offers_queue_offered_at", "queue", "offered_at"),
        # The wall's "waiting now" reads the few waiting requests, not a year of them.
        Index("ix_call_offers_outcome_offered_at", "outcome", "offered_at"),
    )


class KpiBucket(Base):
    """Per queue and hour, the sums the answer rate is made of (kept in step with the offers).

    Whole hours of a long window are read from here and only its ragged edges from the offers,
    which is what keeps a year's rate fast.

    A (queue, hour) is spread over several `shard` rows that readers sum: every call event of
    the hour updates it, and on PostgreSQL one row would hold each intake's row lock until it
    commits, queueing all concurrent intakes behind each other.
    """

    __tablename__ = "kpi_buckets"

    queue: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    shard: Mapped[int] = mapped_column(
        SmallInteger, primary_key=True, default=0, server_default=text("0")
    )
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_within: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    talk_sum: Mapped[float] = mapped_column(Float, default=0.0)
    talk_count: Mapped[int] = mapped_column(Integer, default=0)

    # The key serves one queue's hours; the walls and reports over all queues range over
    # hours alone, which without this index scanned every bucket ever kept.
    __table_args__ = (Index("ix_kpi_buckets_hour", "hour"),)


class HotlineQueue(Base):
    """An agent queue: the general desk, a specialist seat, or a merged hotline (一号接听)."""

    __tablename__ = "hotline_queues"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(16), default="12345")
    overflow_to: Mapped[str | None] = mapped_column(String(32), nullable=True)
    overflow_after_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AgentStatus(Base):
    """An agent's current state and skills (the queues the agent may answer)."""

    __tablename__ = "agent_status"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="logged_out")
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    current_call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AgentStateChange(Base):
    __tablename__ = "agent_state_changes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PromptTemplate(Base):
    """A spoken IVR prompt's text, edited by supervisors; rendered WAVs are cached by content."""

    __tablename__ = "prompt_templates"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PoliceLinkMatter(Base):
    """A kind of request that goes from 12345 to 110 (to_110) or comes back (from_110)."""

    __tablename__ = "police_link_matters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # to_110 | from_110
    name: Mapped[str] = mapped_column(String(128))
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)


class PoliceHandover(Base):
    """A call an agent handed over to 110, on record."""

    __tablename__ = "police_handovers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    matter: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    agent: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertState(Base):
    """Whether the answer-rate alert is raised, kept so that hysteresis survives restarts."""

    __tablename__ = "kpi_alert_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
