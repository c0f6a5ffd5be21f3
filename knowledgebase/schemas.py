"""Request and response bodies of the knowledge-base API (pydantic v2)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hotline.core.moments import Day


class SearchHit(BaseModel):
    key: str
    title: str
    snippet: str = Field(description="HTML: matched terms in <mark>, everything else escaped")
    score: float
    category: str


# Keywords are search terms (the sample articles' longest has 6 characters): a few, short.
MAX_KEYWORDS = 20
Keyword = Annotated[str, Field(min_length=1, max_length=32)]


class ArticleCreate(BaseModel):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000, description="Markdown")
    category: str = Field(min_length=1, max_length=64)
    keywords: list[Keyword] = Field(default_factory=list, max_length=MAX_KEYWORDS)
    department: str | None = Field(None, max_length=32, description="owning department code")
    review_by: Day | None = Field(None, description="reviewed again by this day (reminder)")
    note: str | None = Field(None, max_length=1000)


class ArticleEdit(BaseModel):
    """Fields left out keep their value; ``department`` and ``review_by`` may be set to null."""

    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=100_000)
    keywords: list[Keyword] | None = Field(None, max_length=MAX_KEYWORDS)
    category: str | None = Field(None, min_length=1, max_length=64)
    department: str | None = Field(None, max_length=32)
    review_by: Day | None = None
    note: str | None = Field(None, max_length=1000)
    base_version: int | None = Field(None, ge=1, description="the version the edit started from")


class EditorView(BaseModel):
    """What editors and reviewers see beyond the content."""

    model_config = ConfigDict(from_attributes=True)

    status: str
    current_version: int
    published_version: int | None
    review_by: date | None
    created_by: str
    author: str = Field(description="author of the version shown")
    views_in_calls: int
    flag_count: int
    helpful_votes: int
    unhelpful_votes: int


class ArticleRead(BaseModel):
    key: str
    title: str
    body: str = Field(description="Markdown source")
    body_html: str = Field(description="the body rendered to safe HTML")
    category: str
    keywords: list[str]
    department: str | None
    version: int = Field(description="the version shown")
    published_at: datetime | None
    editor: EditorView | None = Field(None, description="only for editors and reviewers")


class ArticleSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    title: str = Field(description="title of the newest version")
    category: str
    department: str | None
    status: str
    current_version: int
    published_version: int | None
    review_by: date | None
    updated_at: datetime
    views_in_calls: int
    flag_count: int
    helpful_votes: int
    unhelpful_votes: int
    created_by: str
    last_reviewed_at: datetime = Field(
        description="the newest approval; never approved: when published, else created"
    )


class CategoryCount(BaseModel):
    category: str
    articles: int


class VersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    title: str
    keywords: list[str]
    category: str
    author: str
    created_at: datetime
    note: str | None


class VersionRead(VersionSummary):
    body: str
    body_html: str


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    reviewer: str
    decision: str
    comment: str
    created_at: datetime


class HistoryRead(BaseModel):
    key: str
    status: str
    current_version: int
    published_version: int | None
    versions: list[VersionSummary] = Field(description="newest first")
    reviews: list[ReviewRead] = Field(description="newest first")


class DiffBlock(BaseModel):
    op: Literal["equal", "replace", "delete", "insert"]
    left: list[str] = Field(description="lines of the older version")
    right: list[str] = Field(description="lines of the newer version")


class DiffRead(BaseModel):
    key: str
    from_version: int
    to_version: int
    diff: str = Field(description="unified diff of title, keywords, category and body")
    rows: list[DiffBlock] = Field(description="the same, side by side, in blocks of lines")


class ApproveBody(BaseModel):
    comment: str = Field("", max_length=2000)
    publish: bool = Field(False, description="publish at once after approving")


class RejectBody(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


class RetireBody(BaseModel):
    reason: str = Field("", max_length=2000)


class RollbackBody(BaseModel):
    version: int = Field(ge=1, description="the version to copy into a new one")
    note: str | None = Field(None, max_length=1000)


class FlagCreate(BaseModel):
    kind: Literal["wrong", "outdated", "missing"]
    note: str = Field("", max_length=2000)
    call_id: str | None = Field(None, max_length=64)
    question: str | None = Field(
        None, max_length=500, description="what the caller asked (the agent's search)"
    )


class FlagRead(BaseModel):
    id: int
    key: str
    title: str = Field(description="title of the version the agent saw")
    question: str | None
    version: int
    kind: str
    note: str
    call_id: str | None
    status: str
    created_by: str
    created_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    resolved_version: int | None


class FlagResolve(BaseModel):
    """The correction, saved as a new version of the article (then reviewed as usual)."""

    note: str = Field("", max_length=2000)
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=100_000)
    keywords: list[Keyword] | None = Field(None, max_length=MAX_KEYWORDS)
    category: str | None = Field(None, min_length=1, max_length=64)


class FlagDecline(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class VoteBody(BaseModel):
    helpful: bool = True


class ViewBody(BaseModel):
    call_id: str | None = Field(None, max_length=64)


class CountersRead(BaseModel):
    views_in_calls: int
    flags: int
    open_flags: int
    helpful_votes: int
    unhelpful_votes: int


class PreviewBody(BaseModel):
    body: str = Field(max_length=100_000, description="Markdown")


class PreviewRead(BaseModel):
    body_html: str = Field(description="the body rendered to safe HTML, as agents will see it")


class ViewedArticle(BaseModel):
    key: str
    title: str
    category: str
    views_in_calls: int
    helpful_votes: int
    unhelpful_votes: int
    flag_count: int


class SearchGapRead(BaseModel):
    query: str = Field(description="the question, normalized (NFKC, lower case)")
    searches: int
    first_at: datetime
    last_at: datetime
    found_now: int = Field(description="articles the same question finds now")


class UsageRead(BaseModel):
    most_viewed: list[ViewedArticle]
    gaps: list[SearchGapRead] = Field(description="questions that found nothing, most asked first")


class ImportLimits(BaseModel):
    max_bytes: int
    format: str


class ImportLineError(BaseModel):
    line: int
    message: str


class ImportReportRead(BaseModel):
    lines: int
    created: int
    updated: int
    unchanged: int
    errors: list[ImportLineError]


class SynonymRead(BaseModel):
    term: str
    synonyms: list[str]
    source: Literal["default", "custom"]
    updated_by: str | None = None


class SynonymWrite(BaseModel):
    synonyms: list[str] = Field(min_length=1, max_length=50)
