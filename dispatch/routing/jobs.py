"""Routing jobs: retraining the matter classifier, nightly and on an admin's request."""

from __future__ import annotations

from dispatch.routing import training
from hotline.core.db import transaction


def train_matter_model(reason: str = "nightly", actor: str = "system") -> int:
    """Train, store and activate a new version of the matter model; returns its id.

    The nightly run asks for the next night's run in the same transaction, so the chain goes
    on as long as a worker runs (``hotline jobs reschedule`` starts it again after a Redis loss).
    """
    with transaction() as session:
        version = training.train_version(session, actor=actor)
        if reason == "nightly":
            training.schedule_nightly(session)
        return version.id
