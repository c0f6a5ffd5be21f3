"""Background jobs of the knowledge base, run by rq at their time.

Each job opens its own transaction and re-reads the article, so a job whose article changed
in the meantime (a new review-by date, retired) does nothing, and running it twice is harmless.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.db import transaction
from knowledgebase import service
from knowledgebase.models import Article


def review_due(article_id: int, review_by_iso: str) -> str:
    """Announce ``kb.review_due`` for an article whose review-by date approaches (once)."""
    with transaction() as session:
        return service.remind_review_due(
            session, article_id=article_id, review_by=date.fromisoformat(review_by_iso)
        )


def reschedule_review_reminders(session: Session) -> int:
    """Ask again for the review reminder of every article that has a review-by date (after
    Redis lost its data); ids are deterministic, so one Redis still holds is not doubled."""
    articles = session.scalars(
        select(Article).where(Article.review_by.is_not(None), Article.status != "retired")
    ).all()
    for article in articles:
        service.schedule_review_reminder(session, article)
    return len(articles)
