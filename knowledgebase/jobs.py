"""Background jobs of the knowledge base, run by rq at their time.

Each job opens its own transaction and re-reads the article, so a job whose article changed
in the meantime (a new review-by date, retired) does nothing, and running it twice is harmless.
"""

from __future__ import annotations

from datetime import date

from hotline.core.db import transaction
from knowledgebase import service


def review_due(article_id: int, review_by_iso: str) -> str:
    """Announce ``kb.review_due`` for an article whose review-by date approaches (once)."""
    with transaction() as session:
        return service.remind_review_due(
            session, article_id=article_id, review_by=date.fromisoformat(review_by_iso)
        )
