"""Tables of the knowledge base (政务知识库): articles, their versions, reviews, error reports
(纠错), synonyms and the search documents the in-memory index is built from.

An article's content lives only in its versions: every edit adds a version, nothing is
overwritten. ``current_version`` is the newest (the one under work and review);
``published_version`` is the one citizens and agents see, which stays visible while a newer
draft goes through review.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hotline.core.db import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants room for many rows.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

STATUSES = ("draft", "in_review", "approved", "published", "retired")
FLAG_KINDS = ("wrong", "outdated", "missing")
FLAG_STATUSES = ("open", "resolved", "declined")


class Article(Base):
    """A knowledge-base article: its identity, owner, workflow status and counters."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    category: Mapped[str] = mapped_column(String(64), index=True)  # of the newest version
    department: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_by: Mapped[date | None] = mapped_column(Date, nullable=True)
    review_reminded_for: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    views_in_calls: Mapped[int] = mapped_column(Integer, default=0)
    flag_count: Mapped[int] = mapped_column(Integer, default=0)
    helpful_votes: Mapped[int] = mapped_column(Integer, default=0)
    unhelpful_votes: Mapped[int] = mapped_column(Integer, default=0)
    # Optimistic lock: two editors acting on one article at once, one of them wins.
    lock_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": lock_version}


class ArticleVersion(Base):
    """One version of an article's content; never changed once written."""

    __tablename__ = "kb_versions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # Markdown
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (UniqueConstraint("article_id", "number"),)


class Review(Base):
    """A reviewer's decision on one version: approved or rejected, with a comment."""

    __tablename__ = "kb_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Flag(Base):
    """An error report (纠错) by an agent on a published article, resolved by its editors."""

    __tablename__ = "kb_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # the published version the agent saw
    kind: Mapped[str] = mapped_column(String(16))  # wrong | outdated | missing
    note: Mapped[str] = mapped_column(Text, default="")
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What the caller asked (the agent's search), so the editor sees the gap the article left.
    question: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_version: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_kb_flags_status_article", "status", "article_id"),)


class Synonym(Base):
    """An editor's entry of the synonym list; it replaces the built-in entry of that term.

    An empty list switches a built-in entry off.
    """

    __tablename__ = "kb_synonyms"

    term: Mapped[str] = mapped_column(String(32), primary_key=True)
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SearchGap(Base):
    """A question that found no published article (a content gap), counted per question.

    One row per normalized question, not one per search: the public search would otherwise
    let anyone grow the table without bound.
    """

    __tablename__ = "kb_search_gaps"

    query: Mapped[str] = mapped_column(String(100), primary_key=True)
    searches: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class SearchDocument(Base):
    """The published version of an article as the search index reads it (derived data).

    ``terms`` is the stored analysis, so that a process builds its index without segmenting
    every article again; ``index_revision`` is the ``kb`` revision at which the row last
    changed, so an index refreshes only what moved since its own revision.
    """

    __tablename__ = "kb_search_documents"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), unique=True)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)  # the body as plain text
    terms: Mapped[str] = mapped_column(Text)
    index_revision: Mapped[int] = mapped_column(BigIntId, index=True)
