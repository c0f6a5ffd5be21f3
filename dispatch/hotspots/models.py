"""Tables of hot spots (热点): what the detector found, and which tickets it holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.core.db import Base, UTCDateTime, utcnow

BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Hotspot(Base):
    """A surge or an incident. ``status``: open (on the wall and the desk), merged (its
    tickets under one parent), dismissed (a dispatcher judged it no hot spot)."""

    __tablename__ = "hotspots"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(12))  # surge | incident
    matter_code: Mapped[str] = mapped_column(String(16))
    town_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    area_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="open")
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[float] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str] = mapped_column(String(200))
    parent_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_hotspots_status_last_at", "status", "last_at"),
        Index("ix_hotspots_first_at", "first_at"),
    )


class HotspotTicket(Base):
    __tablename__ = "hotspot_tickets"

    hotspot_id: Mapped[int] = mapped_column(
        ForeignKey("hotspots.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_hotspot_tickets_ticket_id", "ticket_id"),)
