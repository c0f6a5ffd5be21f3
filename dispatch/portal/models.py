"""Tables of the citizens' portal: private tracking links and the photos sent with requests.

A tracking link's token is never stored, only its SHA-256 (as Open311 API keys are): a leaked
database does not open anybody's request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.tickets.models import BigIntId
from hotline.core.db import Base, UTCDateTime, utcnow


class TrackingLink(Base):
    """A private link to follow one ticket: made at submission, or again for a citizen who
    proves the ticket's phone (number plus a code sent to that phone)."""

    __tablename__ = "portal_links"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # The verified phone that asked for the link (normalised), for duplicate merging.
    phone: Mapped[str] = mapped_column(String(32))
    # The submission's text as the citizen typed it (normalised), for duplicate merging; empty
    # for links made by a lookup.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_portal_links_phone_created", "phone", "created_at"),
        Index("ix_portal_links_ticket_id", "ticket_id"),
    )


class Photo(Base):
    """A photo sent with a request, re-encoded: only pixels and orientation are kept, and the
    place it was taken (EXIF GPS) only when the citizen allowed it."""

    __tablename__ = "portal_photos"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    location_kept: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_portal_photos_ticket_id", "ticket_id"),)
