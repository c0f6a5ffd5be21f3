"""HTTP routes of the IVR prompts: supervisors edit the texts, the PBX fetches the audio.

``GET /api/v1/ivr/prompts/{key}.wav`` is what the PBX plays (e.g. Asterisk
``Playback(${CURL(.../queue_position.wav?position=3)})`` or a fetch into its sound cache).
It accepts either the PBX's ``X-CTI-Token`` header, the same shared secret the telephony
system uses for call events, or a hotline staff member's bearer token (so supervisors can
listen to an edited prompt in the browser). Template parameters are the query arguments.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from hotline.calls import ivr, prompts
from hotline.calls.tts import MAX_TEXT_CHARS
from hotline.core.auth import (
    AuthError,
    Principal,
    SessionDep,
    oauth2_scheme,
    principal_from_token,
    require_roles,
)
from hotline.core.db import transaction
from hotline.core.errors import Forbidden, error_body
from hotline.core.settings import get_settings
from knowledgebase import service as kb_service

router = APIRouter(prefix="/api/v1/ivr", tags=["ivr"])

STAFF_ROLES = ("agent", "supervisor", "dispatcher")
HotlineStaff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]

# How long a request for audio not rendered yet waits for the render job.
RENDER_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.1
RETRY_AFTER_SECONDS = 5


def _unavailable(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        error_body(code, message),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class PromptText(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


@router.get("/prompts")
def get_prompts(session: SessionDep, _user: HotlineStaff) -> list[dict[str, Any]]:
    """Every prompt: the text in force, the default, its placeholders and last editor."""
    return ivr.list_prompts(session)


@router.put("/prompts/{key}")
def put_prompt(
    key: str, body: PromptText, session: SessionDep, principal: Supervisor
) -> dict[str, Any]:
    """Replace a prompt's text (it must keep the default's placeholders); audited. A prompt
    without placeholders is rendered ahead of its first caller."""
    return ivr.set_prompt(session, key, body.text, principal.username)


def pbx_or_staff(
    x_cti_token: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> str:
    """``cti`` for the PBX (X-CTI-Token), else the user name of a hotline staff member.

    Opens its own short transaction: the audio route must hold no database transaction
    while it waits for a render.
    """
    if x_cti_token is not None:
        expected = get_settings().cti_token.get_secret_value()
        if hmac.compare_digest(x_cti_token, expected):
            return "cti"
        raise AuthError("calls.bad_cti_token", "wrong X-CTI-Token header")
    with transaction() as session:
        principal = principal_from_token(session, token)
    if not principal.has_any(*STAFF_ROLES, "admin"):
        raise Forbidden("auth.forbidden", f"this needs X-CTI-Token or one of {list(STAFF_ROLES)}")
    return principal.username


def _audio(path, audio_key: str) -> FileResponse:
    return FileResponse(
        path,
        media_type="audio/wav",
        headers={"ETag": f'"{audio_key}"', "Cache-Control": "public, max-age=86400"},
    )


@router.get(
    "/prompts/{key}.wav",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "the spoken prompt"},
        304: {"description": "unchanged since the ETag given in If-None-Match"},
        422: {"description": "parameters do not fit the template (`ivr.bad_params`)"},
        503: {"description": "still rendering (`ivr.render_pending`), see Retry-After"},
    },
)
def get_prompt_wav(
    key: str,
    request: Request,
    _caller: Annotated[str, Depends(pbx_or_staff)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The prompt as a WAV, template parameters as query arguments
    (``queue_position.wav?position=3``). Served from the cache when rendered; otherwise
    rendered by an rq job, waited for up to 10 s, else 503 with Retry-After."""
    params = dict(request.query_params)
    if len(params) != len(request.query_params.multi_items()):
        raise ivr.BadPrompt("ivr.bad_params", "give each parameter once")
    with transaction() as session:
        text, audio_key = ivr.fill(session, key, params)
    return _serve_or_render(key, text, audio_key, if_none_match)


def _serve_or_render(key: str, text: str, audio_key: str, if_none_match: str | None) -> Response:
    """Serve the cached WAV of ``text``, or have an rq worker render it and wait for it."""
    path = ivr.wav_path(audio_key)
    if if_none_match and if_none_match.strip('W/"') == audio_key and path.is_file():
        return Response(status_code=304, headers={"ETag": f'"{audio_key}"'})
    if path.is_file():
        return _audio(path, audio_key)

    earlier_failure = ivr.forget_finished_render(audio_key)
    # A transaction of its own, committed here: the job is handed to rq on commit, which
    # must happen before the wait below, not when the response is sent.
    with transaction() as session:
        ivr.enqueue_render(session, key, text)
    deadline = time.monotonic() + RENDER_WAIT_SECONDS
    checks = 0
    while time.monotonic() < deadline:
        if path.is_file():
            return _audio(path, audio_key)
        checks += 1
        if checks % 5 == 0 and (failure := ivr.render_failure(audio_key)):
            return _unavailable("ivr.render_failed", f"rendering the prompt failed: {failure}")
        time.sleep(_POLL_SECONDS)  # waiting for the worker's file to appear
    if path.is_file():
        return _audio(path, audio_key)
    workers = ivr.workers_running()
    if workers is None:
        why = "Redis cannot be reached, so no worker can render it"
    elif workers == 0:
        why = "no rq worker is running (start one with `hotline worker`)"
    else:
        why = f"{workers} rq worker(s) running, the render is queued"
    if earlier_failure:
        why += f"; the previous attempt failed: {earlier_failure}"
    return _unavailable(
        "ivr.render_pending",
        f"the prompt is being rendered; retry in {RETRY_AFTER_SECONDS} s ({why})",
    )


@router.get(
    "/articles/{article_key}.wav",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "the article's answer, spoken"},
        404: {"description": "no published article with this key (`kb.not_found`)"},
        503: {"description": "still rendering (`ivr.render_pending`), see Retry-After"},
    },
)
def get_article_wav(
    article_key: str,
    _caller: Annotated[str, Depends(pbx_or_staff)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A published knowledge-base article's answer read aloud through the same renderer as
    the prompts, so the IVR can play answers to common questions without an agent."""
    with transaction() as session:
        article = kb_service.get_published(session, article_key)
    # Long answers are cut at the renderer's limit: a caller hears the gist, an agent the rest.
    text = f"{article.title}。{article.text}"[:MAX_TEXT_CHARS]
    key = f"kb-{article.key}"
    return _serve_or_render(key, text, prompts.cache_key(key, text, ivr.VOICE), if_none_match)
