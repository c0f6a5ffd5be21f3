"""Versions of the matter classifier: training on the corpus and people's choices, activation.

The training signal beyond the shipped corpus is the matter people finally chose for a text:
an agent's explicit matter at intake and a dispatcher's correction when (re)dispatching - a
department's return that ended in another matter is such a correction. Both are written to
``matter_choices`` (``routing.service.record_choice``); for one text the latest choice wins.

Every training stores a new version (with its held-out figures) and makes it active; an admin
can activate an earlier one (rollback). Activating bumps the routing revision, so every process
suggests with the new version on its next request.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatch.routing import classifier
from dispatch.routing import models as m
from hotline.core.db import utcnow
from hotline.core.errors import NotFound
from hotline.core.jobs import enqueue_after_commit
from hotline.core.models import AuditEntry
from hotline.core.settings import get_settings

log = logging.getLogger(__name__)

TRAIN_JOB = "dispatch.routing.jobs.train_matter_model"


def feedback_examples(session: Session) -> list[tuple[str, str]]:
    """(text, final matter) of every text a person decided; the latest decision per text."""
    final: dict[str, tuple[str, str]] = {}
    rows = session.execute(
        select(m.MatterChoice.text, m.MatterChoice.matter_code).order_by(m.MatterChoice.id)
    )
    for text, code in rows:
        final[classifier.normalise(text)] = (text, code)
    return list(final.values())


def train_version(
    session: Session, *, actor: str, kind: str = "logreg", activate: bool = True
) -> m.MatterModelVersion:
    """Train on the shipped corpus and the feedback, store the version and (default) activate it."""
    from dispatch.routing import service as routing_service

    known = {code for (code,) in session.execute(select(m.Matter.code))}
    settings = get_settings()
    examples = classifier.limit_per_matter(
        classifier.load_corpus("train"), settings.matter_model_corpus_limit
    )
    model = classifier.train(
        examples, feedback=feedback_examples(session), known_codes=known or None, kind=kind
    )
    heldout = [e for e in classifier.load_corpus("heldout") if e.matter_code in model.classes]
    version = m.MatterModelVersion(
        created_by=actor,
        kind=kind,
        trained_on=model.trained_on,
        metrics=classifier.evaluate(model, heldout),
        active=False,
        model=model.dumps(),
    )
    session.add(version)
    session.flush()
    _audit(session, actor, "routing.model_trained", version)
    if activate:
        _make_active(session, version)
        routing_service.bump_revision(session)
    return version


def list_versions(session: Session) -> list[m.MatterModelVersion]:
    return list(
        session.scalars(select(m.MatterModelVersion).order_by(m.MatterModelVersion.id.desc()))
    )


def activate(session: Session, *, version_id: int, actor: str) -> m.MatterModelVersion:
    """Make an earlier (or later) version the one that suggests: rollback and roll forward."""
    from dispatch.routing import service as routing_service

    version = session.get(m.MatterModelVersion, version_id)
    if version is None:
        raise NotFound("routing.unknown_model", f"no matter model version {version_id}")
    _make_active(session, version)
    _audit(session, actor, "routing.model_activated", version)
    routing_service.bump_revision(session)
    return version


def _make_active(session: Session, version: m.MatterModelVersion) -> None:
    session.execute(
        update(m.MatterModelVersion)
        .where(m.MatterModelVersion.id != version.id)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    version.active = True
    session.flush()


def _audit(session: Session, actor: str, action: str, version: m.MatterModelVersion) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            entity="matter_model",
            entity_id=str(version.id),
            detail={"trained_on": version.trained_on, "metrics": version.metrics},
        )
    )


_loaded_lock = threading.Lock()
_loaded: dict[int, classifier.MatterModel] = {}


def active_model(session: Session) -> tuple[int, classifier.MatterModel] | None:
    """The active version and its model, unpickled once per process and version."""
    version_id = session.scalar(
        select(m.MatterModelVersion.id).where(m.MatterModelVersion.active.is_(True))
    )
    if version_id is None:
        return None
    with _loaded_lock:
        model = _loaded.get(version_id)
        if model is None:
            blob = session.scalar(
                select(m.MatterModelVersion.model).where(m.MatterModelVersion.id == version_id)
            )
            model = classifier.MatterModel.loads(blob)
            _loaded.clear()  # one active model per process is enough; a rollback reloads
            _loaded[version_id] = model
        return version_id, model


def describe(version: m.MatterModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "created_at": version.created_at,
        "created_by": version.created_by,
        "kind": version.kind,
        "trained_on": version.trained_on,
        "metrics": version.metrics,
        "active": version.active,
    }


def next_nightly_run(now: datetime | None = None) -> datetime:
    """The next ``matter_model_train_hour`` o'clock, local time, after ``now``."""
    settings = get_settings()
    local = (now or utcnow()).astimezone(settings.tz)
    at = datetime.combine(local.date(), time(settings.matter_model_train_hour), tzinfo=settings.tz)
    return at if at > local else at + timedelta(days=1)


def schedule_nightly(session: Session, now: datetime | None = None) -> datetime:
    """Ask for the next night's retraining; its job id names the night, so asking twice is one."""
    at = next_nightly_run(now)
    night: date = at.date()
    enqueue_after_commit(
        session, TRAIN_JOB, "nightly", job_id=f"matter-model-nightly:{night.isoformat()}", at=at
    )
    return at


def request_training(session: Session, *, actor: str) -> str:
    """Train now, in the worker (an admin's request); returns the job id."""
    job_id = f"matter-model-train:{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    enqueue_after_commit(session, TRAIN_JOB, "request", actor, job_id=job_id, retry=0)
    # Audited when asked for; the version is audited again when the worker has trained it.
    session.add(
        AuditEntry(
            actor=actor,
            action="routing.model_training_requested",
            entity="matter_model",
            entity_id=job_id,
            detail={},
        )
    )
    return job_id
