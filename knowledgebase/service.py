"""The knowledge base (政务知识库) as a service: articles, the editing workflow, error reports
(纠错), counters, synonyms, search, import and export.

Workflow: an editor drafts (``draft``) and submits (``in_review``); a reviewer (an editor or a
supervisor who did not write that version) approves (``approved``) or rejects with a comment
(back to ``draft``); publishing (``published``) makes the version visible to agents and
citizens; retiring (``retired``) takes it down. Any edit is a new version and puts the article
back to ``draft``, while the version already published stays visible until the next publish.
Every state change is audited (``AuditEntry``) and announced on the ``kb.articles`` topic.

Search runs on an in-memory index per process (``knowledgebase.search``), built from the
``kb_search_documents`` table and refreshed when the ``kb`` revision counter moves: publishing,
retiring, importing and synonym changes bump it, so every process sees a change on its next
search. A random ``kb-epoch`` counter, created with the revision counter, tells a process that
the database it indexed was replaced (restored, emptied): it then rebuilds from scratch.

Functions take the session first and keyword-only arguments; they flush and never commit.
"""

from __future__ import annotations

import difflib
import json
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any

from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from hotline.core.auth import Principal
from hotline.core.db import utcnow
from hotline.core.errors import AppError, Conflict, Forbidden, NotFound
from hotline.core.events import publish_after_commit
from hotline.core.jobs import enqueue_after_commit
from hotline.core.models import AuditEntry, Counter
from hotline.core.settings import get_settings
from knowledgebase import search as kb_search
from knowledgebase.models import (
    FLAG_KINDS,
    Article,
    ArticleVersion,
    Flag,
    Review,
    SearchDocument,
    SearchGap,
    Synonym,
)

TOPIC = "kb.articles"
REVISION_COUNTER = "kb"
EPOCH_COUNTER = "kb-epoch"
REVIEW_REMINDER_DAYS = 14
REVIEW_REMINDER_HOUR = 9
SAMPLE_RESOURCE = "kb_sample.jsonl"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# A full rebuild beats patching when this share of the index changed at once.
REBUILD_SHARE = 0.2

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("draft",), "in_review"),
    "approve": (("in_review",), "approved"),
    "reject": (("in_review",), "draft"),
    "publish": (("approved",), "published"),
    "retire": (("draft", "in_review", "approved", "published"), "retired"),
}


# -- Markdown ------------------------------------------------------------------------------

# Raw HTML is escaped (html=False) and markdown-it refuses javascript:/data: links, so an
# article body can never inject markup into the console or the public site.
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(body: str) -> str:
    """The article body as safe HTML."""
    return _markdown.render(body)


def markdown_text(body: str) -> str:
    """The article body as plain text (for search and snippets): the words, no markup."""
    blocks: list[str] = []
    for token in _markdown.parse(body):
        if token.type == "inline" and token.children is not None:
            parts = []
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
            blocks.append("".join(parts))
        elif token.type in ("code_block", "fence"):
            blocks.append(token.content.strip())
    return "\n".join(b for b in blocks if b)


# -- revisions and the per-process index ------------------------------------------------------


def bump_revision(session: Session) -> int:
    """Move the ``kb`` revision once per transaction; returns the revision of this change."""
    transaction = session.get_transaction()
    noted = session.info.get("kb_revision")
    if noted is not None and noted[0] is transaction:
        return noted[1]
    value = session.execute(
        update(Counter)
        .where(Counter.name == REVISION_COUNTER)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    ).scalar_one_or_none()
    if value is None:
        value = 1
        session.add(Counter(name=REVISION_COUNTER, value=value))
        session.add(Counter(name=EPOCH_COUNTER, value=secrets.randbits(52)))
        session.flush()
    session.info["kb_revision"] = (transaction, value)
    return value


def _revision_state(session: Session) -> tuple[int | None, int]:
    rows = dict(
        session.execute(
            select(Counter.name, Counter.value).where(
                Counter.name.in_((REVISION_COUNTER, EPOCH_COUNTER))
            )
        ).all()
    )
    return rows.get(EPOCH_COUNTER), rows.get(REVISION_COUNTER, 0)


@dataclass(frozen=True)
class _CachedIndex:
    epoch: int | None
    revision: int
    index: kb_search.SearchIndex


_cache: _CachedIndex | None = None
_cache_lock = threading.Lock()


def forget_cached_index() -> None:
    """Drop this process's index (tests that empty the database may call it)."""
    global _cache
    with _cache_lock:
        _cache = None


def _search_document(row: Any) -> kb_search.SearchDocument:
    fields = kb_search.decode_terms(row.terms)
    if fields is None:  # analysed by an older analyzer: analyse again, in memory
        fields = kb_search.analyze_document(
            title=row.title, keywords=row.keywords, text=row.text, category=row.category
        )
    return kb_search.SearchDocument(
        key=row.key,
        title=row.title,
        category=row.category,
        department=row.department,
        keywords=tuple(row.keywords or ()),
        text=row.text,
        fields=fields,
    )


_DOC_COLUMNS = (
    SearchDocument.key,
    SearchDocument.visible,
    SearchDocument.title,
    SearchDocument.category,
    SearchDocument.department,
    SearchDocument.keywords,
    SearchDocument.text,
    SearchDocument.terms,
)


def _full_index(session: Session, synonyms: Mapping[str, Sequence[str]]) -> kb_search.SearchIndex:
    rows = session.execute(
        select(*_DOC_COLUMNS).where(SearchDocument.visible).order_by(SearchDocument.key)
    )
    return kb_search.SearchIndex.build((_search_document(r) for r in rows), synonyms)


def current_index(session: Session) -> kb_search.SearchIndex:
    """The search index of the published articles, refreshed only when the revision moved."""
    global _cache
    epoch, revision = _revision_state(session)
    cached = _cache
    if cached is not None and cached.epoch == epoch and cached.revision == revision:
        return cached.index
    with _cache_lock:
        cached = _cache
        if cached is not None and cached.epoch == epoch and cached.revision == revision:
            return cached.index
        synonyms = effective_synonyms(session)
        index: kb_search.SearchIndex | None = None
        if cached is not None and cached.epoch == epoch and revision > cached.revision:
            changed = session.execute(
                select(*_DOC_COLUMNS).where(SearchDocument.index_revision > cached.revision)
            ).all()
            if len(changed) <= max(200, REBUILD_SHARE * len(cached.index)):
                index = cached.index.updated(
                    [_search_document(r) for r in changed if r.visible],
                    [r.key for r in changed if not r.visible],
                    synonyms,
                )
                if index.dead_slots > max(1000, len(index)):
                    index = None  # mostly holes: compact by rebuilding
        if index is None:
            index = _full_index(session, synonyms)
        _cache = _CachedIndex(epoch, revision, index)
        return index


# -- search --------------------------------------------------------------------------------


def search_articles(
    session: Session,
    *,
    q: str,
    limit: int = 10,
    category: str | None = None,
    department: str | None = None,
) -> list[kb_search.Hit]:
    """Published articles matching a citizen's question, best first, with marked snippets."""
    return current_index(session).search(
        q, limit=limit, category=category or None, department=department or None
    )


def suggest_articles(session: Session, text: str, limit: int = 5) -> list[kb_search.Hit]:
    """Articles an agent may want for a ticket's text (the same ranking as search)."""
    return current_index(session).search(text, limit=limit)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedArticle:
    """What agents, citizens and the read-aloud route get of an article: its published version."""

    key: str
    title: str
    body: str
    body_html: str
    text: str
    category: str
    keywords: list[str]
    department: str | None
    version: int
    published_at: datetime | None


def _not_found(key: str) -> NotFound:
    return NotFound("kb.not_found", f"no article {key!r}")


def get_article(session: Session, key: str) -> Article:
    """The article with ``key`` in any status; raises ``kb.not_found``."""
    article = session.scalar(select(Article).where(Article.key == key))
    if article is None:
        raise _not_found(key)
    return article


def get_version(session: Session, article: Article, number: int) -> ArticleVersion:
    """One version of ``article``; raises ``kb.version_not_found``."""
    version = None
    # Versions count up from 1 to current_version; asking the database for a number beyond
    # its 32-bit column would be a server error on PostgreSQL rather than a "no such version".
    if 1 <= number <= article.current_version:
        version = session.scalar(
            select(ArticleVersion).where(
                ArticleVersion.article_id == article.id, ArticleVersion.number == number
            )
        )
    if version is None:
        raise NotFound("kb.version_not_found", f"article {article.key!r} has no version {number}")
    return version


def get_published(session: Session, key: str) -> PublishedArticle:
    """The published version of ``key``; a draft, retired or unknown key is ``kb.not_found``."""
    article = session.scalar(select(Article).where(Article.key == key))
    if article is None or article.published_version is None:
        raise _not_found(key)
    version = get_version(session, article, article.published_version)
    return PublishedArticle(
        key=article.key,
        title=version.title,
        body=version.body,
        body_html=render_markdown(version.body),
        text=markdown_text(version.body),
        category=version.category,
        keywords=list(version.keywords),
        department=article.department,
        version=version.number,
        published_at=article.published_at,
    )


def list_articles(
    session: Session,
    *,
    status: str | None = None,
    category: str | None = None,
    department: str | None = None,
    review_due_before: date | None = None,
    stale_months: int | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Articles for the editors' work list, most recently changed first.

    Each row is the article's columns plus ``title`` (of the newest version) and
    ``last_reviewed_at``: the newest approval, or for an article never approved (imported, or
    still a draft) when it was published or created. ``stale_months`` keeps the articles not
    reviewed for that many months (30-day months); ``q`` matches the title or the key.
    """
    approved = (
        select(Review.article_id, func.max(Review.created_at).label("at"))
        .where(Review.decision == "approved")
        .group_by(Review.article_id)
        .subquery()
    )
    reviewed = func.coalesce(approved.c.at, Article.published_at, Article.created_at)
    query = (
        select(Article, ArticleVersion.title, reviewed.label("last_reviewed_at"))
        .join(
            ArticleVersion,
            and_(
                ArticleVersion.article_id == Article.id,
                ArticleVersion.number == Article.current_version,
            ),
        )
        .outerjoin(approved, approved.c.article_id == Article.id)
    )
    if status:
        query = query.where(Article.status == status)
    if category:
        query = query.where(Article.category == category)
    if department:
        query = query.where(Article.department == department)
    if review_due_before:
        query = query.where(Article.review_by <= review_due_before)
    if stale_months is not None:
        query = query.where(reviewed < utcnow() - timedelta(days=30 * stale_months))
    if q and q.strip():
        words = q.strip()
        query = query.where(
            or_(
                ArticleVersion.title.icontains(words, autoescape=True),
                Article.key.icontains(words, autoescape=True),
            )
        )
    query = query.order_by(Article.updated_at.desc(), Article.key).limit(limit).offset(offset)
    rows = []
    for article, title, last_reviewed_at in session.execute(query):
        rows.append(
            {
                **{c: getattr(article, c) for c in _SUMMARY_COLUMNS},
                "title": title,
                "last_reviewed_at": last_reviewed_at,
            }
        )
    return rows


_SUMMARY_COLUMNS = (
    "key",
    "category",
    "department",
    "status",
    "current_version",
    "published_version",
    "review_by",
    "updated_at",
    "views_in_calls",
    "flag_count",
    "helpful_votes",
    "unhelpful_votes",
    "created_by",
)


def categories(session: Session) -> list[dict[str, Any]]:
    """Every category in use, with how many articles (retired ones left out) it holds."""
    rows = session.execute(
        select(Article.category, func.count())
        .where(Article.status != "retired")
        .group_by(Article.category)
        .order_by(Article.category)
    )
    return [{"category": category, "articles": count} for category, count in rows]


def head_version(session: Session, article: Article) -> ArticleVersion:
    """The newest version of ``article`` (the one being edited or reviewed)."""
    return get_version(session, article, article.current_version)


# -- workflow ------------------------------------------------------------------------------


def _audit(session: Session, actor: str, action: str, key: str, **detail: Any) -> None:
    session.add(
        AuditEntry(actor=actor, action=action, entity="kb_article", entity_id=key, detail=detail)
    )


def _announce(session: Session, article: Article, event_type: str, actor: str, **extra: Any):
    publish_after_commit(
        session,
        TOPIC,
        event_type,
        {
            "key": article.key,
            "status": article.status,
            "version": article.current_version,
            "published_version": article.published_version,
            "department": article.department,
            "actor": actor,
            **extra,
        },
    )


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            "kb.conflict", "someone else changed this article at the same time; reload it"
        ) from exc


def _check_owner(principal: Principal, article: Article) -> None:
    """Editors tied to departments act only on their departments' articles."""
    if principal.has_any("admin", "supervisor") or not principal.departments:
        return
    if article.department is None or article.department in principal.departments:
        return
    raise Forbidden(
        "kb.not_owner",
        f"article {article.key!r} belongs to {article.department}; "
        f"you edit for {sorted(principal.departments)}",
    )


def _transition(article: Article, action: str) -> None:
    allowed, target = TRANSITIONS[action]
    if article.status not in allowed:
        raise Conflict(
            "kb.invalid_transition",
            f"cannot {action} article {article.key!r} in status {article.status!r} "
            f"(allowed from {list(allowed)})",
        )
    article.status = target
    article.updated_at = utcnow()


def _clean_keywords(keywords: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for keyword in keywords:
        keyword = keyword.strip()
        if keyword and keyword not in seen:
            seen.append(keyword)
    return seen


def _validate_content(title: str, body: str, category: str) -> None:
    if not title.strip():
        raise AppError("kb.invalid_article", "the title must not be empty")
    if not body.strip():
        raise AppError("kb.invalid_article", "the body must not be empty")
    if not category.strip():
        raise AppError("kb.invalid_article", "the category must not be empty")


def schedule_review_reminder(session: Session, article: Article) -> None:
    """Ask for the ``kb.review_due`` reminder ``REVIEW_REMINDER_DAYS`` before ``review_by``.

    The job id names the article and the date, so setting the same date twice schedules one
    job; a changed date schedules another and the old job finds nothing to do.
    """
    if article.review_by is None or article.status == "retired":
        return
    tz = get_settings().tz
    day = article.review_by - timedelta(days=REVIEW_REMINDER_DAYS)
    at: datetime | None = datetime.combine(day, time(REVIEW_REMINDER_HOUR), tzinfo=tz)
    if at is not None and at <= utcnow():
        at = None  # already inside the window: remind now
    enqueue_after_commit(
        session,
        "knowledgebase.jobs.review_due",
        article.id,
        article.review_by.isoformat(),
        job_id=f"kb-review-due:{article.id}:{article.review_by.isoformat()}",
        at=at,
    )


def create_article(
    session: Session,
    *,
    principal: Principal,
    key: str,
    title: str,
    body: str,
    category: str,
    keywords: Sequence[str] = (),
    department: str | None = None,
    review_by: date | None = None,
    note: str | None = None,
) -> Article:
    """Create a draft article (version 1) written by ``principal``."""
    if not re.match(KEY_PATTERN, key):
        raise AppError("kb.invalid_key", "a key is 1-64 letters, digits, '.', '_' or '-'")
    _validate_content(title, body, category)
    departmental = principal.departments and not principal.has_any("admin", "supervisor")
    if departmental and (department is None or department not in principal.departments):
        raise Forbidden(
            "kb.not_owner", f"you may create articles only for {sorted(principal.departments)}"
        )
    if session.scalar(select(Article.id).where(Article.key == key)) is not None:
        raise Conflict("kb.key_exists", f"an article {key!r} already exists")
    now = utcnow()
    article = Article(
        key=key,
        category=category.strip(),
        department=department,
        status="draft",
        current_version=1,
        review_by=review_by,
        created_by=principal.username,
        created_at=now,
        updated_at=now,
    )
    session.add(article)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("kb.key_exists", f"an article {key!r} already exists") from exc
    session.add(
        ArticleVersion(
            article_id=article.id,
            number=1,
            title=title.strip(),
            body=body,
            keywords=_clean_keywords(keywords),
            category=category.strip(),
            author=principal.username,
            created_at=now,
            note=note,
        )
    )
    _audit(session, principal.username, "kb.article_created", key, version=1)
    _announce(session, article, "kb.article_created", principal.username)
    schedule_review_reminder(session, article)
    _flush(session)
    return article


_UNSET: Any = object()


def _new_version(
    session: Session,
    article: Article,
    *,
    author: str,
    title: str,
    body: str,
    keywords: list[str],
    category: str,
    note: str | None,
) -> ArticleVersion:
    number = article.current_version + 1
    version = ArticleVersion(
        article_id=article.id,
        number=number,
        title=title,
        body=body,
        keywords=keywords,
        category=category,
        author=author,
        created_at=utcnow(),
        note=note,
    )
    session.add(version)
    article.current_version = number
    article.category = category
    article.updated_at = version.created_at
    return version


def edit_article(
    session: Session,
    *,
    principal: Principal,
    key: str,
    title: str | None = None,
    body: str | None = None,
    keywords: Sequence[str] | None = None,
    category: str | None = None,
    department: str | None = _UNSET,
    review_by: date | None = _UNSET,
    note: str | None = None,
    base_version: int | None = None,
) -> Article:
    """Save an edit as a new version (the article goes back to ``draft``).

    Fields left ``None`` keep the newest version's value. ``base_version`` (the version the
    editor started from) turns a lost update into ``kb.conflict``. An edit that changes
    nothing is refused with ``kb.no_change``.
    """
    article = get_article(session, key)
    _check_owner(principal, article)
    if base_version is not None and base_version != article.current_version:
        raise Conflict(
            "kb.conflict",
            f"the article is at version {article.current_version}, "
            f"you edited version {base_version}; reload it",
        )
    head = head_version(session, article)
    new_title = head.title if title is None else title.strip()
    new_body = head.body if body is None else body
    new_keywords = list(head.keywords) if keywords is None else _clean_keywords(keywords)
    new_category = head.category if category is None else category.strip()
    _validate_content(new_title, new_body, new_category)
    content_changed = (new_title, new_body, new_keywords, new_category) != (
        head.title,
        head.body,
        list(head.keywords),
        head.category,
    )
    department_changed = department is not _UNSET and department != article.department
    review_changed = review_by is not _UNSET and review_by != article.review_by
    if not (content_changed or department_changed or review_changed):
        raise AppError("kb.no_change", "the edit changes nothing")
    if department_changed:
        article.department = department
        _check_owner(principal, article)
        _touch_search_document(session, article)
    if review_changed:
        article.review_by = review_by
        schedule_review_reminder(session, article)
    if content_changed:
        _new_version(
            session,
            article,
            author=principal.username,
            title=new_title,
            body=new_body,
            keywords=new_keywords,
            category=new_category,
            note=note,
        )
        article.status = "draft"
    article.updated_at = utcnow()
    _audit(
        session,
        principal.username,
        "kb.article_edited",
        key,
        version=article.current_version,
        content=content_changed,
        department=article.department,
        review_by=article.review_by.isoformat() if article.review_by else None,
        note=note,
    )
    _announce(session, article, "kb.article_edited", principal.username)
    _flush(session)
    return article


def submit_article(session: Session, *, principal: Principal, key: str) -> Article:
    """Send the newest version to review."""
    article = get_article(session, key)
    _check_owner(principal, article)
    _transition(article, "submit")
    _audit(
        session, principal.username, "kb.article_submitted", key, version=article.current_version
    )
    _announce(session, article, "kb.article_submitted", principal.username)
    _flush(session)
    return article


def _review(
    session: Session, principal: Principal, article: Article, decision: str, comment: str
) -> None:
    head = head_version(session, article)
    if head.author == principal.username:
        raise Forbidden(
            "kb.self_review", "the author of a version cannot review it; ask another reviewer"
        )
    session.add(
        Review(
            article_id=article.id,
            version=head.number,
            reviewer=principal.username,
            decision=decision,
            comment=comment,
            created_at=utcnow(),
        )
    )


def approve_article(
    session: Session,
    *,
    principal: Principal,
    key: str,
    comment: str = "",
    publish: bool = False,
) -> Article:
    """Approve the version under review (not by its author); ``publish`` also publishes it."""
    article = get_article(session, key)
    if article.status == "in_review":
        _review(session, principal, article, "approved", comment)
    _transition(article, "approve")
    _audit(
        session,
        principal.username,
        "kb.article_approved",
        key,
        version=article.current_version,
        comment=comment,
    )
    _announce(session, article, "kb.article_approved", principal.username, comment=comment)
    if publish:
        return publish_article(session, principal=principal, key=key)
    _flush(session)
    return article


def reject_article(session: Session, *, principal: Principal, key: str, comment: str) -> Article:
    """Send the version under review back to its author with a comment (required)."""
    if not comment.strip():
        raise AppError("kb.comment_required", "a rejection needs a comment for the author")
    article = get_article(session, key)
    if article.status == "in_review":
        _review(session, principal, article, "rejected", comment)
    _transition(article, "reject")
    _audit(
        session,
        principal.username,
        "kb.article_rejected",
        key,
        version=article.current_version,
        comment=comment,
    )
    _announce(session, article, "kb.article_rejected", principal.username, comment=comment)
    _flush(session)
    return article


def _write_search_document(
    session: Session, article: Article, version: ArticleVersion, *, new: bool = False
) -> None:
    text = markdown_text(version.body)
    terms = kb_search.encode_terms(
        kb_search.analyze_document(
            title=version.title, keywords=version.keywords, text=text, category=version.category
        )
    )
    revision = bump_revision(session)
    document = None if new else session.get(SearchDocument, article.id)
    if document is None:
        document = SearchDocument(article_id=article.id)
        session.add(document)
    document.key = article.key
    document.visible = True
    document.version = version.number
    document.title = version.title
    document.category = version.category
    document.department = article.department
    document.keywords = list(version.keywords)
    document.text = text
    document.terms = terms
    document.index_revision = revision


def _touch_search_document(session: Session, article: Article) -> None:
    """Carry an article-level change (its department) into its search document."""
    document = session.get(SearchDocument, article.id)
    if document is not None:
        document.department = article.department
        document.index_revision = bump_revision(session)


def publish_article(session: Session, *, principal: Principal, key: str) -> Article:
    """Publish the approved version: from now on agents and citizens see it."""
    article = get_article(session, key)
    _check_owner(principal, article)
    _transition(article, "publish")
    _publish_head(session, article)
    _audit(
        session, principal.username, "kb.article_published", key, version=article.current_version
    )
    _announce(session, article, "kb.article_published", principal.username)
    _flush(session)
    return article


def _publish_head(session: Session, article: Article) -> None:
    head = head_version(session, article)
    article.status = "published"
    article.published_version = head.number
    article.published_at = utcnow()
    _write_search_document(session, article, head)


def retire_article(
    session: Session, *, principal: Principal, key: str, reason: str = ""
) -> Article:
    """Take the article down: it leaves search and the public pages (versions are kept)."""
    article = get_article(session, key)
    _check_owner(principal, article)
    _transition(article, "retire")
    article.published_version = None
    document = session.get(SearchDocument, article.id)
    if document is not None:
        document.visible = False
        document.index_revision = bump_revision(session)
    _audit(session, principal.username, "kb.article_retired", key, reason=reason)
    _announce(session, article, "kb.article_retired", principal.username, reason=reason)
    _flush(session)
    return article


def rollback_article(
    session: Session, *, principal: Principal, key: str, to_version: int, note: str | None = None
) -> Article:
    """Copy an old version into a new one (a draft, reviewed like any edit)."""
    article = get_article(session, key)
    _check_owner(principal, article)
    old = get_version(session, article, to_version)
    if to_version == article.current_version:
        raise AppError("kb.no_change", f"version {to_version} is already the newest")
    _new_version(
        session,
        article,
        author=principal.username,
        title=old.title,
        body=old.body,
        keywords=list(old.keywords),
        category=old.category,
        note=note or f"rollback to version {to_version}",
    )
    article.status = "draft"
    _audit(
        session,
        principal.username,
        "kb.article_rolled_back",
        key,
        version=article.current_version,
        copied=to_version,
    )
    _announce(session, article, "kb.article_rolled_back", principal.username, copied=to_version)
    _flush(session)
    return article


def history(session: Session, *, key: str) -> dict[str, Any]:
    """Every version (newest first, bodies left out) and every review of an article."""
    article = get_article(session, key)
    versions = session.scalars(
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article.id)
        .order_by(ArticleVersion.number.desc())
    ).all()
    reviews = session.scalars(
        select(Review).where(Review.article_id == article.id).order_by(Review.id.desc())
    ).all()
    return {"article": article, "versions": list(versions), "reviews": list(reviews)}


def _diff_lines(version: ArticleVersion) -> list[str]:
    # Sentence per line: Chinese paragraphs are long single lines, and a diff of whole
    # paragraphs would hide which sentence changed.
    body_lines: list[str] = []
    for line in version.body.splitlines():
        body_lines += [s for s in re.split(r"(?<=[。！？；])", line) if s] or [""]
    return [
        f"title: {version.title}",
        f"keywords: {', '.join(version.keywords)}",
        f"category: {version.category}",
        "body:",
        *body_lines,
    ]


def diff_versions(session: Session, *, key: str, from_version: int, to_version: int) -> str:
    """A unified diff (difflib) of title, keywords, category and body between two versions."""
    article = get_article(session, key)
    old = get_version(session, article, from_version)
    new = get_version(session, article, to_version)
    return "\n".join(
        difflib.unified_diff(
            _diff_lines(old),
            _diff_lines(new),
            fromfile=f"{key} v{from_version}",
            tofile=f"{key} v{to_version}",
            lineterm="",
        )
    )


def diff_rows(
    session: Session, *, key: str, from_version: int, to_version: int
) -> list[dict[str, Any]]:
    """The same comparison side by side: blocks of lines (``equal``, ``replace``, ``delete``,
    ``insert``) with the old lines on the left and the new ones on the right."""
    article = get_article(session, key)
    old = _diff_lines(get_version(session, article, from_version))
    new = _diff_lines(get_version(session, article, to_version))
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [
        {"op": op, "left": old[i1:i2], "right": new[j1:j2]}
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


# -- error reports (纠错) and counters ---------------------------------------------------------


def _published_article(session: Session, key: str) -> Article:
    article = session.scalar(select(Article).where(Article.key == key))
    if article is None or article.published_version is None:
        raise _not_found(key)
    return article


def flag_article(
    session: Session,
    *,
    principal: Principal,
    key: str,
    kind: str,
    note: str = "",
    call_id: str | None = None,
    question: str | None = None,
) -> Flag:
    """An agent reports a published article as wrong, outdated or missing something;
    ``question`` is what the caller asked (the agent's search), for the editor."""
    if kind not in FLAG_KINDS:
        raise AppError("kb.invalid_flag", f"kind must be one of {list(FLAG_KINDS)}")
    article = _published_article(session, key)
    flag = Flag(
        article_id=article.id,
        version=article.published_version,
        kind=kind,
        note=note,
        call_id=call_id,
        question=(question or "").strip() or None,
        status="open",
        created_by=principal.username,
        created_at=utcnow(),
    )
    session.add(flag)
    session.execute(
        update(Article)
        .where(Article.id == article.id)
        .values(flag_count=Article.flag_count + 1)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    _audit(session, principal.username, "kb.flag_created", key, flag=flag.id, kind=kind)
    _announce(session, article, "kb.flag_created", principal.username, flag=flag.id, kind=kind)
    return flag


def get_flag(session: Session, flag_id: int) -> tuple[Flag, Article]:
    # Ids are a 32-bit column: a larger number is no report, not a server error on PostgreSQL.
    flag = session.get(Flag, flag_id) if 1 <= flag_id < 2**31 else None
    if flag is None:
        raise NotFound("kb.flag_not_found", f"no error report {flag_id}")
    article = session.get(Article, flag.article_id)
    assert article is not None
    return flag, article


def list_flags(
    session: Session,
    *,
    principal: Principal,
    status: str | None = "open",
    key: str | None = None,
    limit: int = 100,
) -> list[tuple[Flag, Article]]:
    """Error reports, newest first; editors tied to departments see only theirs."""
    query = select(Flag, Article).join(Article, Article.id == Flag.article_id)
    if status:
        query = query.where(Flag.status == status)
    if key:
        query = query.where(Article.key == key)
    if principal.departments and not principal.has_any("admin", "supervisor"):
        query = query.where(
            or_(Article.department.is_(None), Article.department.in_(principal.departments))
        )
    return [(f, a) for f, a in session.execute(query.order_by(Flag.id.desc()).limit(limit))]


def _open_flag(session: Session, principal: Principal, flag_id: int) -> tuple[Flag, Article]:
    flag, article = get_flag(session, flag_id)
    _check_owner(principal, article)
    if flag.status != "open":
        raise Conflict("kb.flag_closed", f"error report {flag_id} is already {flag.status}")
    return flag, article


def resolve_flag(
    session: Session,
    *,
    principal: Principal,
    flag_id: int,
    note: str = "",
    title: str | None = None,
    body: str | None = None,
    keywords: Sequence[str] | None = None,
    category: str | None = None,
) -> Flag:
    """Resolve an error report with a new version carrying the correction (then reviewed)."""
    flag, article = _open_flag(session, principal, flag_id)
    edit_article(
        session,
        principal=principal,
        key=article.key,
        title=title,
        body=body,
        keywords=keywords,
        category=category,
        note=note or f"correction for error report {flag_id}",
    )
    flag.status = "resolved"
    flag.resolved_by = principal.username
    flag.resolved_at = utcnow()
    flag.resolution = note
    flag.resolved_version = article.current_version
    _audit(
        session,
        principal.username,
        "kb.flag_resolved",
        article.key,
        flag=flag.id,
        version=article.current_version,
    )
    _announce(session, article, "kb.flag_resolved", principal.username, flag=flag.id)
    _flush(session)
    return flag


def decline_flag(session: Session, *, principal: Principal, flag_id: int, reason: str) -> Flag:
    """Decline an error report, with the reason the agent will read."""
    if not reason.strip():
        raise AppError("kb.reason_required", "declining an error report needs a reason")
    flag, article = _open_flag(session, principal, flag_id)
    flag.status = "declined"
    flag.resolved_by = principal.username
    flag.resolved_at = utcnow()
    flag.resolution = reason
    _audit(
        session, principal.username, "kb.flag_declined", article.key, flag=flag.id, reason=reason
    )
    _announce(session, article, "kb.flag_declined", principal.username, flag=flag.id)
    _flush(session)
    return flag


def counters(session: Session, *, key: str) -> dict[str, int]:
    """Views during calls, error reports (all and open), helpful and unhelpful votes."""
    article = get_article(session, key)
    session.refresh(article)
    open_flags = session.scalar(
        select(func.count()).where(Flag.article_id == article.id, Flag.status == "open")
    )
    return {
        "views_in_calls": article.views_in_calls,
        "flags": article.flag_count,
        "open_flags": open_flags or 0,
        "helpful_votes": article.helpful_votes,
        "unhelpful_votes": article.unhelpful_votes,
    }


def _bump_counter(session: Session, key: str, column: str) -> None:
    article = _published_article(session, key)
    # One UPDATE … SET n = n + 1: concurrent calls never lose a count, and the article's
    # optimistic lock is left alone, so counting never conflicts with an editor's work.
    session.execute(
        update(Article)
        .where(Article.id == article.id)
        .values({column: getattr(Article, column) + 1})
        .execution_options(synchronize_session=False)
    )


def record_view(session: Session, *, key: str) -> dict[str, int]:
    """Count that an agent opened the article during a call."""
    _bump_counter(session, key, "views_in_calls")
    return counters(session, key=key)


def vote(session: Session, *, key: str, helpful: bool) -> dict[str, int]:
    """Count a helpful (or unhelpful) vote on a published article."""
    _bump_counter(session, key, "helpful_votes" if helpful else "unhelpful_votes")
    return counters(session, key=key)


# -- synonyms ------------------------------------------------------------------------------


def effective_synonyms(session: Session) -> dict[str, tuple[str, ...]]:
    """The built-in synonym list with the editors' entries applied (empty entries removed)."""
    merged = dict(kb_search.DEFAULT_SYNONYMS)
    for row in session.scalars(select(Synonym)):
        merged[row.term] = tuple(row.synonyms)
    return {term: words for term, words in merged.items() if words}


def list_synonyms(session: Session) -> list[dict[str, Any]]:
    """Every entry: built-in ones and the editors', with where each comes from."""
    custom = {row.term: row for row in session.scalars(select(Synonym))}
    entries = []
    for term in sorted(set(kb_search.DEFAULT_SYNONYMS) | set(custom)):
        row = custom.get(term)
        entries.append(
            {
                "term": term,
                "synonyms": list(row.synonyms if row else kb_search.DEFAULT_SYNONYMS[term]),
                "source": "custom" if row else "default",
                "updated_by": row.updated_by if row else None,
            }
        )
    return entries


def _clean_term(term: str) -> str:
    cleaned = kb_search.normalize(term).strip()
    if not cleaned or len(cleaned) > 32:
        raise AppError("kb.invalid_synonym", "a term is 1 to 32 characters")
    return cleaned


def save_synonym(
    session: Session, *, principal: Principal, term: str, synonyms: Sequence[str]
) -> dict[str, Any]:
    """Set the synonyms of ``term`` (replacing a built-in entry); applies at the next query."""
    term = _clean_term(term)
    words = [w for w in dict.fromkeys(s.strip() for s in synonyms) if w and w != term]
    if not words:
        raise AppError("kb.invalid_synonym", "give at least one synonym (DELETE removes a term)")
    if any(len(w) > 32 or len(w) < 2 for w in words):
        raise AppError("kb.invalid_synonym", "a synonym is 2 to 32 characters")
    row = session.get(Synonym, term)
    if row is None:
        row = Synonym(term=term)
        session.add(row)
    before = list(row.synonyms or [])
    row.synonyms, row.updated_by, row.updated_at = words, principal.username, utcnow()
    bump_revision(session)
    session.add(
        AuditEntry(
            actor=principal.username,
            action="kb.synonym_saved",
            entity="kb_synonym",
            entity_id=term,
            detail={"before": before, "after": words},
        )
    )
    publish_after_commit(session, TOPIC, "kb.synonym_saved", {"term": term, "synonyms": words})
    session.flush()
    return {"term": term, "synonyms": words, "source": "custom", "updated_by": principal.username}


def delete_synonym(session: Session, *, principal: Principal, term: str) -> None:
    """Remove ``term`` from the list (a built-in entry is switched off by an empty entry)."""
    term = _clean_term(term)
    row = session.get(Synonym, term)
    if row is None and term not in kb_search.DEFAULT_SYNONYMS:
        raise NotFound("kb.synonym_not_found", f"no synonym entry for {term!r}")
    if term in kb_search.DEFAULT_SYNONYMS:
        if row is None:
            row = Synonym(term=term)
            session.add(row)
        row.synonyms, row.updated_by, row.updated_at = [], principal.username, utcnow()
    else:
        session.delete(row)
    bump_revision(session)
    session.add(
        AuditEntry(
            actor=principal.username,
            action="kb.synonym_deleted",
            entity="kb_synonym",
            entity_id=term,
            detail={},
        )
    )
    publish_after_commit(session, TOPIC, "kb.synonym_deleted", {"term": term})
    session.flush()


# -- usage: most used articles and questions nobody answered -------------------------------------

GAP_MIN_CHARS = 2
GAP_MAX_CHARS = 100
# The search is public: anyone could send endless different questions. Past this many rows
# the ones not asked within GAP_KEEP_DAYS go; if none are that old, a new question is not
# counted (the questions already counted still are).
GAP_MAX_ROWS = 10_000
GAP_KEEP_DAYS = 90


def gap_query(q: str) -> str | None:
    """The form a question is counted under as a content gap, or None when too short to mean
    anything (a half-typed word while searching as you type)."""
    text = " ".join(kb_search.normalize(q).split())[:GAP_MAX_CHARS]
    return text if len(text) >= GAP_MIN_CHARS else None


def record_search_gap(session: Session, q: str) -> None:
    """Count a question that found no article. One UPDATE … + 1, and an INSERT in a savepoint
    when the question is new, so two processes counting the same new question lose nothing."""
    text = gap_query(q)
    if text is None:
        return
    now = utcnow()
    bumped = session.execute(
        update(SearchGap)
        .where(SearchGap.query == text)
        .values(searches=SearchGap.searches + 1, last_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if bumped:
        return
    if (session.scalar(select(func.count()).select_from(SearchGap)) or 0) >= GAP_MAX_ROWS:
        session.execute(
            delete(SearchGap).where(SearchGap.last_at < now - timedelta(days=GAP_KEEP_DAYS))
        )
        if (session.scalar(select(func.count()).select_from(SearchGap)) or 0) >= GAP_MAX_ROWS:
            return
    try:
        with session.begin_nested():
            session.add(SearchGap(query=text, searches=1, first_at=now, last_at=now))
    except IntegrityError:
        session.execute(
            update(SearchGap)
            .where(SearchGap.query == text)
            .values(searches=SearchGap.searches + 1, last_at=now)
            .execution_options(synchronize_session=False)
        )


def usage(session: Session, *, limit: int = 20, gap_days: int = GAP_KEEP_DAYS) -> dict[str, Any]:
    """The published articles agents opened most during calls (never opened: left out), and
    the questions of the last ``gap_days`` that found nothing, most asked first, each with how
    many articles the same question finds now (an article written since closes the gap)."""
    viewed = session.execute(
        select(Article, ArticleVersion.title)
        .join(
            ArticleVersion,
            and_(
                ArticleVersion.article_id == Article.id,
                ArticleVersion.number == Article.published_version,
            ),
        )
        .where(Article.published_version.is_not(None), Article.views_in_calls > 0)
        .order_by(Article.views_in_calls.desc(), Article.key)
        .limit(limit)
    ).all()
    since = utcnow() - timedelta(days=gap_days)
    gaps = session.scalars(
        select(SearchGap)
        .where(SearchGap.last_at >= since)
        .order_by(SearchGap.searches.desc(), SearchGap.last_at.desc())
        .limit(limit)
    ).all()
    index = current_index(session)
    return {
        "most_viewed": [
            {
                "key": article.key,
                "title": title,
                "category": article.category,
                "views_in_calls": article.views_in_calls,
                "helpful_votes": article.helpful_votes,
                "unhelpful_votes": article.unhelpful_votes,
                "flag_count": article.flag_count,
            }
            for article, title in viewed
        ],
        "gaps": [
            {
                "query": gap.query,
                "searches": gap.searches,
                "first_at": gap.first_at,
                "last_at": gap.last_at,
                "found_now": sum(
                    hit.coverage >= kb_search.WEAK_COVERAGE
                    for hit in index.search(gap.query, limit=5)
                ),
            }
            for gap in gaps
        ],
    }


# -- review reminders ----------------------------------------------------------------------


def remind_review_due(session: Session, *, article_id: int, review_by: date) -> str:
    """Announce ``kb.review_due`` once for this article and date (the reminder job's work)."""
    article = session.get(Article, article_id)
    if article is None or article.status == "retired" or article.review_by != review_by:
        return "not due"
    # Claimed by one conditional UPDATE, so two workers running the job record it once.
    claimed = session.execute(
        update(Article)
        .where(
            Article.id == article_id,
            Article.review_by == review_by,
            or_(Article.review_reminded_for.is_(None), Article.review_reminded_for != review_by),
        )
        .values(review_reminded_for=review_by)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return "already reminded"
    _audit(session, "system", "kb.review_due", article.key, review_by=review_by.isoformat())
    publish_after_commit(
        session,
        TOPIC,
        "kb.review_due",
        {
            "key": article.key,
            "review_by": review_by.isoformat(),
            "department": article.department,
            "status": article.status,
        },
    )
    return "reminded"


# -- import and export ---------------------------------------------------------------------


class ArticleRecord(BaseModel):
    """One line of an import file (the format of ``reference/kb_sample.jsonl``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    key: str = Field(pattern=KEY_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)
    category: str = Field(min_length=1, max_length=64)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    department: str | None = Field(None, max_length=32)
    review_by: date | None = None

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        if any(len(k) > 64 for k in value):
            raise ValueError("a keyword is at most 64 characters")
        return _clean_keywords(value)


@dataclass
class ImportReport:
    """What an import did; ``errors`` are (line number, message) of the lines left out."""

    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: ImportReport) -> None:
        self.lines += other.lines
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        return (
            f"{self.lines} lines: {self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.errors)} bad"
        )


def parse_line(line: str, line_number: int) -> dict[str, Any] | tuple[int, str] | None:
    """A line of an import file as a JSON object, None for a blank line, or (line, error)."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return (line_number, f"not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(data, dict):
        return (line_number, "not a JSON object")
    return data


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in error.errors()
    )


def import_records(
    session: Session, records: Sequence[tuple[int, Mapping[str, Any]]], *, actor: str
) -> ImportReport:
    """Import a batch of (line number, object) records as published articles.

    Idempotent by key: a record equal to the published version changes nothing; a new key
    becomes a published article (version 1); a changed one a new, published version. Invalid
    records are reported with their line numbers and the others are imported.
    """
    report = ImportReport(lines=len(records))
    valid: list[tuple[int, ArticleRecord]] = []
    for line_number, data in records:
        try:
            valid.append((line_number, ArticleRecord.model_validate(data)))
        except ValidationError as exc:
            report.errors.append((line_number, _describe(exc)))
    if not valid:
        return report
    keys = sorted({record.key for _, record in valid})
    articles: dict[str, Article] = {}
    for chunk in range(0, len(keys), 500):
        for article in session.scalars(
            select(Article).where(Article.key.in_(keys[chunk : chunk + 500]))
        ):
            articles[article.key] = article
    heads: dict[int, ArticleVersion] = {}
    published: dict[int, ArticleVersion] = {}
    ids = [a.id for a in articles.values()]
    ids_before = set(ids)
    for chunk in range(0, len(ids), 500):
        rows = session.execute(
            select(ArticleVersion, Article.current_version, Article.published_version)
            .join(Article, Article.id == ArticleVersion.article_id)
            .where(
                Article.id.in_(ids[chunk : chunk + 500]),
                or_(
                    ArticleVersion.number == Article.current_version,
                    ArticleVersion.number == Article.published_version,
                ),
            )
        )
        for version, current, live in rows:
            if version.number == current:
                heads[version.article_id] = version
            if version.number == live:
                published[version.article_id] = version

    now = utcnow()
    fresh: list[tuple[Article, ArticleRecord]] = []
    to_publish: list[tuple[Article, ArticleVersion]] = []
    for _line, record in valid:
        content = (record.title, record.body, record.keywords, record.category)
        article = articles.get(record.key)
        if article is None:
            article = Article(
                key=record.key,
                category=record.category,
                department=record.department,
                status="published",
                current_version=1,
                published_version=1,
                review_by=record.review_by,
                created_by=actor,
                created_at=now,
                updated_at=now,
                published_at=now,
            )
            session.add(article)
            articles[record.key] = article
            fresh.append((article, record))
            report.created += 1
            continue
        if article.id is None:  # created earlier in this batch: the last line wins
            fresh = [(a, r) for a, r in fresh if a is not article] + [(article, record)]
            article.category, article.department = record.category, record.department
            article.review_by = record.review_by
            report.updated += 1
            continue
        live = published.get(article.id)
        head = heads.get(article.id)
        owner_changed = False
        if record.department is not None and record.department != article.department:
            article.department = record.department
            owner_changed = True
        if record.review_by is not None and record.review_by != article.review_by:
            article.review_by = record.review_by
            schedule_review_reminder(session, article)
            owner_changed = True

        def matches(version: ArticleVersion | None, content=content) -> bool:
            return version is not None and content == (
                version.title,
                version.body,
                list(version.keywords),
                version.category,
            )

        if matches(live):
            # What citizens see already says this; an editor's pending draft is left alone.
            if owner_changed:
                _touch_search_document(session, article)
                article.updated_at = now
                report.updated += 1
            else:
                report.unchanged += 1
            continue
        if matches(head):
            version = head
        else:
            version = _new_version(
                session,
                article,
                author=actor,
                title=record.title,
                body=record.body,
                keywords=record.keywords,
                category=record.category,
                note="imported",
            )
            heads[article.id] = version
        article.status = "published"
        article.published_version = version.number
        article.published_at = now
        article.updated_at = now
        published[article.id] = version
        to_publish.append((article, version))
        report.updated += 1

    session.flush()  # gives the new articles their ids
    for article, record in fresh:
        version = ArticleVersion(
            article_id=article.id,
            number=1,
            title=record.title,
            body=record.body,
            keywords=record.keywords,
            category=record.category,
            author=actor,
            created_at=now,
            note="imported",
        )
        session.add(version)
        to_publish.append((article, version))
        if record.review_by is not None:
            schedule_review_reminder(session, article)
    session.flush()
    # One query for the search documents that exist, instead of one per article.
    existing_ids = [a.id for a, _v in to_publish if a.id in ids_before]
    for chunk in range(0, len(existing_ids), 500):
        session.scalars(
            select(SearchDocument).where(
                SearchDocument.article_id.in_(existing_ids[chunk : chunk + 500])
            )
        ).all()
    for article, version in to_publish:
        _write_search_document(session, article, version, new=article.id not in ids_before)
    _flush(session)
    if report.created or report.updated:
        changed = [a.key for a, _v in to_publish]
        session.add(
            AuditEntry(
                actor=actor,
                action="kb.imported",
                entity="kb_import",
                entity_id=f"{len(changed)} articles",
                detail={
                    "created": report.created,
                    "updated": report.updated,
                    "keys": changed[:100],
                },
            )
        )
        publish_after_commit(
            session,
            TOPIC,
            "kb.articles_imported",
            {
                "created": report.created,
                "updated": report.updated,
                "keys": changed[:100],
                "actor": actor,
            },
        )
    return report


def import_for_review(
    session: Session, lines: Iterable[str], *, principal: Principal
) -> ImportReport:
    """An uploaded file's articles as new versions submitted for review, not published.

    What ``hotline kb import`` (run by an operator) publishes at once, an editor's upload
    sends through the second pair of eyes every other change needs: a new key becomes a
    draft by ``principal`` and is submitted, a changed one a new version submitted; another
    editor approves and publishes it. A line equal to the newest version changes nothing.
    Bad lines (and lines the workflow refuses, e.g. another department's article) are
    reported with their numbers and left out; each good line is kept in its own savepoint.
    """
    report = ImportReport()
    for number, line in enumerate(lines, start=1):
        parsed = parse_line(line, number)
        if parsed is None:
            continue
        report.lines += 1
        if not isinstance(parsed, dict):
            report.errors.append(parsed)
            continue
        try:
            record = ArticleRecord.model_validate(parsed)
        except ValidationError as exc:
            report.errors.append((number, _describe(exc)))
            continue
        try:
            with session.begin_nested():
                outcome = _import_one_for_review(session, principal, record)
        except AppError as exc:
            report.errors.append((number, f"{exc.code}: {exc.message}"))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _import_one_for_review(session: Session, principal: Principal, record: ArticleRecord) -> str:
    article = session.scalar(select(Article).where(Article.key == record.key))
    if article is None:
        create_article(
            session,
            principal=principal,
            key=record.key,
            title=record.title,
            body=record.body,
            category=record.category,
            keywords=record.keywords,
            department=record.department,
            review_by=record.review_by,
            note="imported",
        )
        submit_article(session, principal=principal, key=record.key)
        return "created"
    head = head_version(session, article)
    content = (record.title, record.body, record.keywords, record.category)
    if content == (head.title, head.body, list(head.keywords), head.category):
        return "unchanged"
    owner: dict[str, Any] = {}
    if record.department is not None:
        owner["department"] = record.department
    if record.review_by is not None:
        owner["review_by"] = record.review_by
    edit_article(
        session,
        principal=principal,
        key=record.key,
        title=record.title,
        body=record.body,
        keywords=record.keywords,
        category=record.category,
        note="imported",
        **owner,
    )
    submit_article(session, principal=principal, key=record.key)
    return "updated"


def export_records(session: Session) -> Iterator[dict[str, Any]]:
    """The published articles in the import format, ordered by key."""
    query = (
        select(Article, ArticleVersion)
        .join(
            ArticleVersion,
            and_(
                ArticleVersion.article_id == Article.id,
                ArticleVersion.number == Article.published_version,
            ),
        )
        .order_by(Article.key)
        .execution_options(yield_per=1000)
    )
    for article, version in session.execute(query):
        record: dict[str, Any] = {
            "key": article.key,
            "category": version.category,
            "title": version.title,
            "keywords": list(version.keywords),
            "body": version.body,
        }
        if article.department:
            record["department"] = article.department
        if article.review_by:
            record["review_by"] = article.review_by.isoformat()
        yield record


def export_line(record: Mapping[str, Any]) -> str:
    """One export line, written like the shipped sample (compact JSON, Chinese as is)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def sample_lines() -> list[str]:
    """The lines of the shipped sample (``knowledgebase/reference/kb_sample.jsonl``)."""
    text = (
        resources.files("knowledgebase")
        .joinpath("reference", SAMPLE_RESOURCE)
        .read_text(encoding="utf-8")
    )
    return text.splitlines()


def seed_sample(session: Session) -> str:
    """Load the shipped sample articles as published articles (idempotent by key)."""
    records: list[tuple[int, Mapping[str, Any]]] = []
    report = ImportReport()
    for number, line in enumerate(sample_lines(), start=1):
        parsed = parse_line(line, number)
        if isinstance(parsed, dict):
            records.append((number, parsed))
        elif parsed is not None:
            report.errors.append(parsed)
    report.add(import_records(session, records, actor="seed"))
    if not (report.created or report.updated):
        return f"knowledge base: {report.unchanged} sample articles already loaded"
    return f"knowledge base: {report.summary()}"
