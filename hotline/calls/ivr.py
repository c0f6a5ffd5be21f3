"""IVR prompts (语音导航提示音) as supervisors edit them and the PBX plays them.

The texts start as ``prompts.DEFAULT_PROMPTS``; an edited text is kept in ``PromptTemplate``
(one row per key). An edited template must use exactly the placeholders of the default one,
because the PBX always fills those (``{position}`` for the queue position …); the check is
``prompts.render_text`` with sample values, which also refuses malformed placeholders.

Audio is rendered by the rq job ``hotline.calls.jobs.render_prompt`` into
``<data_dir>/prompts/<cache_key>.wav``. The cache key hashes the prompt key, the filled text
and the voice, so an edited text never plays stale audio, and the job id is derived from it,
so any number of requests for the same audio render it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.calls import prompts
from hotline.calls.models import PromptTemplate
from hotline.calls.tts import MAX_TEXT_CHARS, split_clauses
from hotline.core.db import utcnow
from hotline.core.errors import AppError, NotFound
from hotline.core.jobs import enqueue_after_commit
from hotline.core.models import AuditEntry
from hotline.core.redis import get_redis
from hotline.core.settings import get_settings

# The espeak-ng Mandarin voice (see tts.PREFERRED_VOICES); part of every cache key.
VOICE = "cmn"
RENDER_JOB = "hotline.calls.jobs.render_prompt"
# Values used to check an edited template; real values come from the PBX.
SAMPLE_VALUES = {
    "position": "3",
    "minutes": "5",
    "open_hour": "8",
    "close_hour": "22",
    "signal": "红色",
}


class BadPrompt(AppError):
    status_code = 422


def prompts_dir() -> Path:
    """Where rendered prompts are cached: ``<data_dir>/prompts``."""
    return get_settings().resolved_data_dir / "prompts"


def wav_path(audio_key: str) -> Path:
    return prompts_dir() / f"{audio_key}.wav"


def render_job_id(audio_key: str) -> str:
    return f"ivr-render-{audio_key}"


def expected_placeholders(key: str) -> tuple[str, ...]:
    """The placeholders the PBX fills for prompt ``key`` (those of its default text)."""
    _check_key(key)
    return prompts.template_placeholders(prompts.DEFAULT_PROMPTS[key])


def _check_key(key: str) -> None:
    if key not in prompts.DEFAULT_PROMPTS:
        raise NotFound(
            "ivr.unknown_prompt",
            f"no prompt {key!r}; known prompts: {', '.join(prompts.PROMPT_KEYS)}",
        )


def template_text(session: Session, key: str) -> str:
    """The text in force for ``key``: the edited one, else the default."""
    _check_key(key)
    row = session.get(PromptTemplate, key)
    return row.text if row is not None else prompts.DEFAULT_PROMPTS[key]


def list_prompts(session: Session) -> list[dict[str, Any]]:
    """Every prompt key with its text in force, its default and who last edited it."""
    rows = {row.key: row for row in session.scalars(select(PromptTemplate))}
    result = []
    for key in prompts.PROMPT_KEYS:
        row = rows.get(key)
        default = prompts.DEFAULT_PROMPTS[key]
        text = row.text if row is not None else default
        placeholders = expected_placeholders(key)
        result.append(
            {
                "key": key,
                "text": text,
                "default_text": default,
                "is_default": text == default,
                "placeholders": list(placeholders),
                "sample_params": {name: SAMPLE_VALUES.get(name, "1") for name in placeholders},
                "updated_by": row.updated_by if row is not None else None,
                "updated_at": row.updated_at if row is not None else None,
                "wav_url": f"/api/v1/ivr/prompts/{key}.wav",
            }
        )
    return result


def check_template(key: str, text: str) -> str:
    """The text as it would sound with sample values; BadPrompt (422) says what is wrong."""
    expected = expected_placeholders(key)
    shown = ", ".join(f"{{{name}}}" for name in expected) or "no placeholders"
    try:
        used = prompts.template_placeholders(text)
    except ValueError as exc:
        raise BadPrompt("ivr.bad_template", str(exc), expected=list(expected)) from exc
    lacking = sorted(set(expected) - set(used))
    extra = sorted(set(used) - set(expected))
    if lacking or extra:
        problems = [
            f"{label}: {', '.join(f'{{{name}}}' for name in names)}"
            for label, names in (("missing", lacking), ("unknown", extra))
            if names
        ]
        raise BadPrompt(
            "ivr.bad_template",
            f"prompt {key!r} must use exactly {shown}, as the PBX fills them; "
            + "; ".join(problems),
            expected=list(expected),
        )
    spoken = prompts.render_text(text, {name: SAMPLE_VALUES.get(name, "1") for name in expected})
    if len(spoken) > MAX_TEXT_CHARS:
        raise BadPrompt(
            "ivr.bad_template", f"the prompt is longer than {MAX_TEXT_CHARS} characters"
        )
    if not split_clauses(spoken):
        raise BadPrompt("ivr.bad_template", "the prompt has nothing to speak")
    return spoken


def set_prompt(session: Session, key: str, text: str, actor: str) -> dict[str, Any]:
    """Store ``text`` for ``key`` (checked), audited; a prompt without placeholders is
    rendered ahead by an rq job, so the first caller to hear it does not wait."""
    _check_key(key)
    check_template(key, text)
    row = session.get(PromptTemplate, key)
    previous = row.text if row is not None else prompts.DEFAULT_PROMPTS[key]
    if row is None:
        row = PromptTemplate(key=key, text=text, updated_by=actor, updated_at=utcnow())
        session.add(row)
    else:
        row.text, row.updated_by, row.updated_at = text, actor, utcnow()
    session.add(
        AuditEntry(
            actor=actor,
            action="ivr.prompt_changed",
            entity="ivr_prompt",
            entity_id=key,
            detail={"previous": previous, "text": text},
        )
    )
    session.flush()
    if not prompts.template_placeholders(text):
        enqueue_render(session, key, text)
    return next(p for p in list_prompts(session) if p["key"] == key)


def fill(session: Session, key: str, params: dict[str, str]) -> tuple[str, str]:
    """The text to speak for ``key`` with ``params`` and its audio's cache key.

    BadPrompt (422, ``ivr.bad_params``) names the expected parameters when they do not fit.
    """
    template = template_text(session, key)
    try:
        text = prompts.render_text(template, prompts.typed_params(params))
    except ValueError as exc:
        expected = prompts.template_placeholders(template)
        raise BadPrompt("ivr.bad_params", str(exc), expected=list(expected)) from exc
    return text, prompts.cache_key(key, text, VOICE)


def enqueue_render(session: Session, key: str, text: str) -> str:
    """Ask for ``text`` to be rendered once the session commits; returns the cache key."""
    audio_key = prompts.cache_key(key, text, VOICE)
    # No retries: a render that failed fails the same way again; the next request asks anew.
    enqueue_after_commit(
        session, RENDER_JOB, text, VOICE, key, job_id=render_job_id(audio_key), retry=0
    )
    return audio_key


def forget_finished_render(audio_key: str) -> str | None:
    """Drop a finished or failed render job whose WAV is missing (deleted from the cache, or
    the render failed), so that the same job id can be asked for again.

    Returns the last failure's message when the job had failed; None otherwise or when Redis
    cannot be asked (the request then waits and reports that the render is pending).
    """
    try:
        job = Job.fetch(render_job_id(audio_key), connection=get_redis())
        status = job.get_status()
    except NoSuchJobError:
        return None
    except Exception:  # noqa: BLE001 - Redis down: the outbox keeps the job for later
        return None
    if status not in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return None
    failure = render_failure(audio_key) if status == JobStatus.FAILED else None
    job.delete()
    return failure


def render_failure(audio_key: str) -> str | None:
    """Why the render job of ``audio_key`` failed, if it did."""
    try:
        job = Job.fetch(render_job_id(audio_key), connection=get_redis())
        if job.get_status() != JobStatus.FAILED:
            return None
        result = job.latest_result()
        info = (result.exc_string if result else None) or "unknown error"
    except Exception:  # noqa: BLE001 - no job, or Redis down: nothing known about a failure
        return None
    return info.strip().splitlines()[-1][:300]


def workers_running() -> int | None:
    """How many rq workers are registered; None when Redis cannot be asked."""
    try:
        return len(Worker.all(connection=get_redis()))
    except Exception:  # noqa: BLE001 - Redis down
        return None
