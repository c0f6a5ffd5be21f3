"""Tables behind routing: the gazetteer, departments and the matter catalogue.

The domain terms are explained once, in ``dispatch.routing.ruleset``.

Matter rules are versioned by date: a change never overwrites a rule, it closes the version in
force (``valid_until``) and opens a new one (``valid_from``), so a request is routed with the
version in force on the day it was received and a ticket can name the version it kept.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hotline.core.db import Base, UTCDateTime, utcnow


class Area(Base):
    """A district or a functional area that runs towns without being a division itself."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # district | functional
    adcode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)


class Town(Base):
    """A town or sub-district: the smallest unit a ticket is routed to."""

    __tablename__ = "towns"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    run_by: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), nullable=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)


class Place(Base):
    """A landmark, road, island or community that names no town but tells where it is."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    town: Mapped[str | None] = mapped_column(ForeignKey("towns.code"), nullable=True)
    area: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), nullable=True)
    ambiguous: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [[last day, town code], …]: the place lay in another town until that day.
    town_before: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ForeignPlaceName(Base):
    """Names that look like Zhuhai places but are elsewhere: never mapped to Zhuhai."""

    __tablename__ = "foreign_place_names"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)


class DepartmentType(Base):
    __tablename__ = "department_types"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))


class Department(Base):
    """A unit that receives tickets: city, area, town office or the dispatch desk."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(8))  # city | area | town | desk
    area: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), nullable=True)
    town: Mapped[str | None] = mapped_column(ForeignKey("towns.code"), nullable=True)
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Matter(Base):
    """An entry of the matter catalogue; who handles it lives in its dated rule versions."""

    __tablename__ = "matters"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    # The catalogue tree: category -> subcategory -> matter ("" until a catalogue names it).
    subcategory: Mapped[str] = mapped_column(String(64), default="", server_default="")
    kind: Mapped[str] = mapped_column(String(8))  # 咨询 | 求助 | 投诉 | 举报 | 建议
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)


class MatterRule(Base):
    """One version of a matter's routing rule: the department type and the level."""

    __tablename__ = "matter_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matters.code", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))  # city | area | town
    type: Mapped[str] = mapped_column(ForeignKey("department_types.code"))
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="reference")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (UniqueConstraint("matter_code", "version"),)


class MatterChoice(Base):
    """An agent's final choice of matter for a text: what the suggester learns from."""

    __tablename__ = "matter_choices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matters.code", ondelete="CASCADE"))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MatterModelVersion(Base):
    """One trained version of the matter classifier; exactly one is active at a time (or none:
    then the model of the shipped corpus suggests). Kept, so an admin can roll back."""

    __tablename__ = "matter_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    # {"corpus": n, "feedback": n, "matters": n}
    trained_on: Mapped[dict] = mapped_column(JSON, default=dict)
    # held-out figures at training time: {"top1": …, "top3": …, "count": …}
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # the pickled, compressed model (a blob works on SQLite and PostgreSQL alike)
    model: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
