"""HTTP routes of the knowledge base: public search and reading, the editors' workflow,
error reports from the console, counters and the synonym list.

Only published versions reach citizens (no login) and hotline staff; editors and reviewers
also see drafts and history.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.security import OAuth2PasswordBearer

from hotline.core.auth import TOKEN_URL, Principal, SessionDep, current_principal, require_roles
from hotline.core.errors import AppError
from hotline.core.settings import get_settings
from knowledgebase import schemas, service
from knowledgebase import search as kb_search
from knowledgebase.models import Article, ArticleVersion, Flag

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])

Editor = Annotated[Principal, Depends(require_roles("editor"))]
Reviewer = Annotated[Principal, Depends(require_roles("editor", "supervisor"))]
HotlineStaff = Annotated[Principal, Depends(require_roles("agent", "dispatcher", "supervisor"))]
Staff = Annotated[Principal, Depends(require_roles("agent", "dispatcher", "supervisor", "editor"))]
_optional_token = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)
_DRAFT_READERS = ("editor", "supervisor", "admin")


def optional_principal(
    session: SessionDep, token: Annotated[str | None, Depends(_optional_token)]
) -> Principal | None:
    """The caller if a token was sent (an invalid token is still a 401), else None."""
    return None if token is None else current_principal(session, token)


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def _hits(hits) -> list[dict]:
    return [
        {
            "key": h.key,
            "title": h.title,
            "snippet": h.snippet,
            "score": h.score,
            "category": h.category,
        }
        for h in hits
    ]


# -- public ---------------------------------------------------------------------------------


@router.get("/search", response_model=list[schemas.SearchHit])
def search(
    session: SessionDep,
    q: Annotated[str, Query(max_length=500, description="the question, in plain words")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    category: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict]:
    """Published articles for a question, best first, with a highlighted snippet (public).

    A question that finds nothing, or only articles that share a minor part of it (without a
    category or department narrowing it), is counted as a content gap for the editors' usage
    screen."""
    hits = service.search_articles(
        session, q=q, limit=limit, category=category, department=department
    )
    answered = hits and hits[0].coverage >= kb_search.WEAK_COVERAGE
    if not answered and not category and not department:
        service.record_search_gap(session, q)
    return _hits(hits)


def _article_read(
    article: Article, version: ArticleVersion, *, with_editor: bool
) -> schemas.ArticleRead:
    editor = None
    if with_editor:
        editor = schemas.EditorView(
            status=article.status,
            current_version=article.current_version,
            published_version=article.published_version,
            review_by=article.review_by,
            created_by=article.created_by,
            author=version.author,
            views_in_calls=article.views_in_calls,
            flag_count=article.flag_count,
            helpful_votes=article.helpful_votes,
            unhelpful_votes=article.unhelpful_votes,
        )
    return schemas.ArticleRead(
        key=article.key,
        title=version.title,
        body=version.body,
        body_html=service.render_markdown(version.body),
        category=version.category,
        keywords=list(version.keywords),
        department=article.department,
        version=version.number,
        published_at=article.published_at,
        editor=editor,
    )


@router.get("/articles/{key}", response_model=schemas.ArticleRead)
def read_article(
    key: str,
    session: SessionDep,
    principal: MaybePrincipal,
    version: Annotated[int | None, Query(ge=1, description="editors: a given version")] = None,
) -> schemas.ArticleRead:
    """The published version (public); editors and reviewers get the newest version or any."""
    if principal is not None and principal.has_any(*_DRAFT_READERS):
        article = service.get_article(session, key)
        shown = service.get_version(session, article, version or article.current_version)
        return _article_read(article, shown, with_editor=True)
    if version is not None:
        raise AppError("auth.forbidden", "only editors read other versions", status_code=403)
    published = service.get_published(session, key)
    article = service.get_article(session, key)
    shown = service.get_version(session, article, published.version)
    return _article_read(article, shown, with_editor=False)


# -- hotline staff ----------------------------------------------------------------------------


@router.get("/suggest", response_model=list[schemas.SearchHit])
def suggest(
    session: SessionDep,
    _user: HotlineStaff,
    text: Annotated[str, Query(max_length=5000, description="the ticket's text")],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[dict]:
    """Articles that may answer a ticket, for the console."""
    return _hits(service.suggest_articles(session, text, limit=limit))


@router.post("/articles/{key}/views", response_model=schemas.CountersRead)
def record_view(
    key: str, session: SessionDep, _user: HotlineStaff, body: schemas.ViewBody | None = None
) -> dict:
    """The console tells that an agent opened the article during a call."""
    return service.record_view(session, key=key)


@router.post("/articles/{key}/votes", response_model=schemas.CountersRead)
def vote(key: str, body: schemas.VoteBody, session: SessionDep, _user: Staff) -> dict:
    """A helpful (or unhelpful) vote on a published article."""
    return service.vote(session, key=key, helpful=body.helpful)


@router.get("/articles/{key}/counters", response_model=schemas.CountersRead)
def article_counters(key: str, session: SessionDep, _user: Staff) -> dict:
    """Views during calls, error reports and votes of an article."""
    return service.counters(session, key=key)


def _flag_read(session, flag: Flag, article: Article) -> schemas.FlagRead:
    seen = service.get_version(session, article, flag.version)
    return schemas.FlagRead(
        id=flag.id,
        key=article.key,
        title=seen.title,
        question=flag.question,
        version=flag.version,
        kind=flag.kind,
        note=flag.note,
        call_id=flag.call_id,
        status=flag.status,
        created_by=flag.created_by,
        created_at=flag.created_at,
        resolved_by=flag.resolved_by,
        resolved_at=flag.resolved_at,
        resolution=flag.resolution,
        resolved_version=flag.resolved_version,
    )


@router.post("/articles/{key}/flags", response_model=schemas.FlagRead, status_code=201)
def flag_article(
    key: str, body: schemas.FlagCreate, session: SessionDep, agent: HotlineStaff
) -> schemas.FlagRead:
    """Report a published article as wrong, outdated or missing something (纠错)."""
    flag = service.flag_article(
        session,
        principal=agent,
        key=key,
        kind=body.kind,
        note=body.note,
        call_id=body.call_id,
        question=body.question,
    )
    return _flag_read(session, flag, service.get_article(session, key))


# -- editors: error reports -------------------------------------------------------------------


@router.get("/flags", response_model=list[schemas.FlagRead])
def list_flags(
    session: SessionDep,
    editor: Reviewer,
    status: Annotated[str | None, Query(pattern="^(open|resolved|declined)$")] = "open",
    key: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[schemas.FlagRead]:
    """Error reports, newest first (editors tied to departments see theirs)."""
    return [
        _flag_read(session, f, a)
        for f, a in service.list_flags(
            session, principal=editor, status=status, key=key, limit=limit
        )
    ]


@router.post("/flags/{flag_id}/resolve", response_model=schemas.FlagRead)
def resolve_flag(
    flag_id: int, body: schemas.FlagResolve, session: SessionDep, editor: Editor
) -> schemas.FlagRead:
    """Resolve an error report with a corrected new version of the article."""
    flag = service.resolve_flag(session, principal=editor, flag_id=flag_id, **body.model_dump())
    return _flag_read(session, flag, service.get_flag(session, flag_id)[1])


@router.post("/flags/{flag_id}/decline", response_model=schemas.FlagRead)
def decline_flag(
    flag_id: int, body: schemas.FlagDecline, session: SessionDep, editor: Editor
) -> schemas.FlagRead:
    """Decline an error report with a reason."""
    flag = service.decline_flag(session, principal=editor, flag_id=flag_id, reason=body.reason)
    return _flag_read(session, flag, service.get_flag(session, flag_id)[1])


# -- editors: articles and workflow -------------------------------------------------------------


def _current(session, article: Article) -> schemas.ArticleRead:
    return _article_read(article, service.head_version(session, article), with_editor=True)


@router.get("/articles", response_model=list[schemas.ArticleSummary])
def list_articles(
    session: SessionDep,
    _editor: Reviewer,
    status: Annotated[
        str | None, Query(pattern="^(draft|in_review|approved|published|retired)$")
    ] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    review_due_before: date | None = None,
    stale_months: Annotated[
        int | None, Query(ge=0, le=120, description="not reviewed for this many months")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="in the title or key")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict]:
    """The editors' work list, most recently changed first."""
    return service.list_articles(
        session,
        status=status,
        category=category,
        department=department,
        review_due_before=review_due_before,
        stale_months=stale_months,
        q=q,
        limit=limit,
        offset=offset,
    )


@router.get("/categories", response_model=list[schemas.CategoryCount])
def list_categories(session: SessionDep, _editor: Reviewer) -> list[dict]:
    """The categories in use, for the work list's filter."""
    return service.categories(session)


@router.post("/preview", response_model=schemas.PreviewRead)
def preview(body: schemas.PreviewBody, _editor: Editor) -> dict:
    """A Markdown body rendered exactly as agents and citizens will see it (saves nothing)."""
    return {"body_html": service.render_markdown(body.body)}


@router.get("/usage", response_model=schemas.UsageRead)
def usage(
    session: SessionDep,
    _editor: Reviewer,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    days: Annotated[int, Query(ge=1, le=366, description="gaps searched in these days")] = 90,
) -> dict:
    """The articles most opened during calls, and questions that found nothing (gaps)."""
    return service.usage(session, limit=limit, gap_days=days)


IMPORT_FORMAT = (
    "JSON lines (UTF-8): one object a line with key, title, body (Markdown), category, "
    "keywords, optionally department and review_by (YYYY-MM-DD)"
)


@router.get("/import", response_model=schemas.ImportLimits)
def import_limits(_editor: Editor) -> dict:
    """What the import takes: the file format and its largest size."""
    return {"max_bytes": get_settings().kb_import_max_bytes, "format": IMPORT_FORMAT}


@router.post("/import", response_model=schemas.ImportReportRead)
def import_file(
    session: SessionDep,
    editor: Editor,
    file: Annotated[UploadFile, File(description="a JSON lines file")],
) -> dict:
    """Import articles from a JSON lines file (the format of ``hotline kb import``) as new
    versions submitted for review: another editor approves and publishes them. A line equal
    to the newest version changes nothing; bad lines are reported with their numbers."""
    limit = get_settings().kb_import_max_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise AppError(
            "kb.import_too_large",
            f"the file is larger than {limit} bytes; split it or use `hotline kb import`",
            status_code=413,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AppError(
            "kb.import_not_utf8", f"the file is not UTF-8 text (byte {exc.start})"
        ) from exc
    if not text.strip():
        raise AppError("kb.import_empty", "the file has no lines")
    report = service.import_for_review(session, text.splitlines(), principal=editor)
    return {
        "lines": report.lines,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors": [{"line": line, "message": message} for line, message in report.errors],
    }


@router.post("/articles", response_model=schemas.ArticleRead, status_code=201)
def create_article(
    body: schemas.ArticleCreate, session: SessionDep, editor: Editor
) -> schemas.ArticleRead:
    """Create a draft (version 1)."""
    article = service.create_article(session, principal=editor, **body.model_dump())
    return _current(session, article)


@router.put("/articles/{key}", response_model=schemas.ArticleRead)
def edit_article(
    key: str, body: schemas.ArticleEdit, session: SessionDep, editor: Editor
) -> schemas.ArticleRead:
    """Save an edit as a new version (back to draft; the published version stays visible)."""
    given = body.model_dump(exclude_unset=True)
    article = service.edit_article(session, principal=editor, key=key, **given)
    return _current(session, article)


@router.post("/articles/{key}/submit", response_model=schemas.ArticleRead)
def submit_article(key: str, session: SessionDep, editor: Editor) -> schemas.ArticleRead:
    """Send the newest version to review."""
    return _current(session, service.submit_article(session, principal=editor, key=key))


@router.post("/articles/{key}/approve", response_model=schemas.ArticleRead)
def approve_article(
    key: str, session: SessionDep, reviewer: Reviewer, body: schemas.ApproveBody | None = None
) -> schemas.ArticleRead:
    """Approve the version under review (a reviewer who is not its author)."""
    body = body or schemas.ApproveBody()
    article = service.approve_article(
        session, principal=reviewer, key=key, comment=body.comment, publish=body.publish
    )
    return _current(session, article)


@router.post("/articles/{key}/reject", response_model=schemas.ArticleRead)
def reject_article(
    key: str, body: schemas.RejectBody, session: SessionDep, reviewer: Reviewer
) -> schemas.ArticleRead:
    """Send the version under review back to draft, with a comment for the author."""
    article = service.reject_article(session, principal=reviewer, key=key, comment=body.comment)
    return _current(session, article)


@router.post("/articles/{key}/publish", response_model=schemas.ArticleRead)
def publish_article(key: str, session: SessionDep, reviewer: Reviewer) -> schemas.ArticleRead:
    """Publish the approved version: agents and citizens see it from now on."""
    return _current(session, service.publish_article(session, principal=reviewer, key=key))


@router.post("/articles/{key}/retire", response_model=schemas.ArticleRead)
def retire_article(
    key: str, session: SessionDep, editor: Editor, body: schemas.RetireBody | None = None
) -> schemas.ArticleRead:
    """Take the article down (its history is kept)."""
    reason = body.reason if body else ""
    return _current(
        session, service.retire_article(session, principal=editor, key=key, reason=reason)
    )


@router.post("/articles/{key}/rollback", response_model=schemas.ArticleRead)
def rollback_article(
    key: str, body: schemas.RollbackBody, session: SessionDep, editor: Editor
) -> schemas.ArticleRead:
    """Copy an old version into a new draft version."""
    article = service.rollback_article(
        session, principal=editor, key=key, to_version=body.version, note=body.note
    )
    return _current(session, article)


@router.get("/articles/{key}/history", response_model=schemas.HistoryRead)
def article_history(key: str, session: SessionDep, _editor: Reviewer) -> dict:
    """Every version and review, newest first."""
    found = service.history(session, key=key)
    article = found["article"]
    return {
        "key": article.key,
        "status": article.status,
        "current_version": article.current_version,
        "published_version": article.published_version,
        "versions": found["versions"],
        "reviews": found["reviews"],
    }


@router.get("/articles/{key}/versions/{number}", response_model=schemas.VersionRead)
def article_version(key: str, number: int, session: SessionDep, _editor: Reviewer) -> dict:
    """One version with its body."""
    version = service.get_version(session, service.get_article(session, key), number)
    return {
        **schemas.VersionSummary.model_validate(version).model_dump(),
        "body": version.body,
        "body_html": service.render_markdown(version.body),
    }


@router.get("/articles/{key}/diff", response_model=schemas.DiffRead)
def article_diff(
    key: str,
    session: SessionDep,
    _editor: Reviewer,
    from_version: Annotated[int, Query(alias="from", ge=1)],
    to_version: Annotated[int, Query(alias="to", ge=1)],
) -> dict:
    """A unified diff between two versions."""
    diff = service.diff_versions(session, key=key, from_version=from_version, to_version=to_version)
    rows = service.diff_rows(session, key=key, from_version=from_version, to_version=to_version)
    return {
        "key": key,
        "from_version": from_version,
        "to_version": to_version,
        "diff": diff,
        "rows": rows,
    }


# -- editors: synonyms ------------------------------------------------------------------------


@router.get("/synonyms", response_model=list[schemas.SynonymRead])
def list_synonyms(session: SessionDep, _user: Staff) -> list[dict]:
    """The synonym list applied to questions: built-in entries and the editors'."""
    return service.list_synonyms(session)


@router.put("/synonyms/{term}", response_model=schemas.SynonymRead)
def save_synonym(
    term: str, body: schemas.SynonymWrite, session: SessionDep, editor: Editor
) -> dict:
    """Set the synonyms of a term (applies to the next search)."""
    return service.save_synonym(session, principal=editor, term=term, synonyms=body.synonyms)


@router.delete("/synonyms/{term}", status_code=204)
def delete_synonym(term: str, session: SessionDep, editor: Editor) -> Response:
    """Remove a term from the synonym list."""
    service.delete_synonym(session, principal=editor, term=term)
    return Response(status_code=204)
