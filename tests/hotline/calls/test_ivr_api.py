"""IVR prompts over HTTP: supervisors edit, real rq workers render through espeak-ng, the PBX
fetches WAVs (cached, rendered on demand while it waits, or told to retry)."""

from __future__ import annotations

import io
import shutil
import threading
import time
import wave
from pathlib import Path

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from hotline.calls import ivr, ivr_router, jobs
from hotline.calls.prompts import DEFAULT_PROMPTS, cache_key
from hotline.calls.tts import RenderError, find_voice, split_clauses
from hotline.core import db
from hotline.core.models import AuditEntry
from hotline.core.redis import get_redis
from hotline.core.worker import QUEUES

CTI = {"X-CTI-Token": "development-cti-token"}
NEW_GREETING = "您好，这里是珠海幺二三四五热线，请讲。"


@pytest.fixture(scope="module")
def mandarin_voice():
    if shutil.which("espeak-ng") is None:
        pytest.skip("missing system dependency: espeak-ng (scripts/system-deps installs it)")
    try:
        return find_voice("cmn")
    except RenderError as exc:
        pytest.skip(f"missing system dependency: a Mandarin espeak-ng voice ({exc})")


@pytest.fixture
def app(app):
    """The conftest app, with the IVR routes mounted if the composition root has not yet."""
    if not any(getattr(r, "original_router", None) is ivr_router.router for r in app.routes):
        app.include_router(ivr_router.router)
    return app


@pytest.fixture(autouse=True)
def empty_cache():
    shutil.rmtree(ivr.prompts_dir(), ignore_errors=True)
    yield
    shutil.rmtree(ivr.prompts_dir(), ignore_errors=True)


@pytest.fixture
def people(make_user):
    return {
        "supervisor": make_user("zhang", "supervisor"),
        "agent": make_user("agent1", "agent"),
        "department": make_user("xz", "department", departments=("XZ-MARKET",)),
    }


def queued_job_ids() -> set[str]:
    connection = get_redis()
    return {job_id for q in QUEUES for job_id in Queue(q, connection=connection).get_job_ids()}


def wav_seconds(path_or_bytes: Path | bytes, tmp_path: Path) -> float:
    if isinstance(path_or_bytes, bytes):
        path = tmp_path / "served.wav"
        path.write_bytes(path_or_bytes)
    else:
        path = path_or_bytes
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        return wav.getnframes() / wav.getframerate()


def assert_sounds_like(text: str, seconds: float) -> None:
    # Mandarin at espeak-ng's 200 wpm, as measured in the tts tests: 0.1-0.6 s per character.
    characters = sum(1 for clause in split_clauses(text) for char in clause if char.isalnum())
    assert 0.1 < seconds / characters < 0.6, (text, seconds)


def run_worker_when_queued(job_id: str, timeout: float = 10.0) -> None:
    """Wait until ``job_id`` is in rq, then work the queues in this (the main) thread."""
    deadline = time.monotonic() + timeout
    while job_id not in queued_job_ids():
        assert time.monotonic() < deadline, f"job {job_id} was never enqueued"
        time.sleep(0.02)  # waiting for the request thread to commit and enqueue
    connection = get_redis()
    SimpleWorker([Queue(q, connection=connection) for q in QUEUES], connection=connection).work(
        burst=True
    )


def fetch_in_background(client, url: str, headers: dict) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def fetch() -> None:
        result["response"] = client.get(url, headers=headers)

    thread = threading.Thread(target=fetch)
    thread.start()
    return thread, result


# ----------------------------------------------------------------------------- texts


def test_staff_see_every_prompt_with_its_placeholders(client, people):
    response = client.get("/api/v1/ivr/prompts", headers=people["agent"])
    assert response.status_code == 200
    prompts = {p["key"]: p for p in response.json()}
    assert list(prompts) == [
        "greeting",
        "queue_position",
        "estimated_wait",
        "after_hours",
        "emergency",
    ]
    assert prompts["greeting"]["text"] == DEFAULT_PROMPTS["greeting"]
    assert prompts["greeting"]["is_default"] and prompts["greeting"]["updated_by"] is None
    assert prompts["queue_position"]["placeholders"] == ["position"]
    assert prompts["after_hours"]["placeholders"] == ["close_hour", "open_hour"]
    assert client.get("/api/v1/ivr/prompts", headers=people["department"]).status_code == 403
    assert client.get("/api/v1/ivr/prompts").status_code == 401


def test_a_supervisor_edit_is_audited_and_rendered_ahead(
    client, people, run_jobs, mandarin_voice, tmp_path
):
    response = client.put(
        "/api/v1/ivr/prompts/greeting", json={"text": NEW_GREETING}, headers=people["supervisor"]
    )

    assert response.status_code == 200, response.text
    assert response.json()["text"] == NEW_GREETING and response.json()["updated_by"] == "zhang"
    listed = {
        p["key"]: p for p in client.get("/api/v1/ivr/prompts", headers=people["agent"]).json()
    }
    assert listed["greeting"]["text"] == NEW_GREETING and not listed["greeting"]["is_default"]
    with db.transaction() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.entity == "ivr_prompt")).all()
    assert [(a.actor, a.action, a.entity_id) for a in audit] == [
        ("zhang", "ivr.prompt_changed", "greeting")
    ]
    assert audit[0].detail == {"previous": DEFAULT_PROMPTS["greeting"], "text": NEW_GREETING}

    audio_key = cache_key("greeting", NEW_GREETING, ivr.VOICE)
    assert ivr.render_job_id(audio_key) in queued_job_ids()
    assert run_jobs() == 1
    path = ivr.prompts_dir() / f"{audio_key}.wav"
    assert path.parent == ivr.prompts_dir() and path.is_file()
    assert_sounds_like(NEW_GREETING, wav_seconds(path, tmp_path))

    served = client.get("/api/v1/ivr/prompts/greeting.wav", headers=CTI)
    assert served.status_code == 200
    assert served.headers["content-type"] == "audio/wav"
    assert served.headers["etag"] == f'"{audio_key}"'
    assert served.content == path.read_bytes()
    unchanged = client.get(
        "/api/v1/ivr/prompts/greeting.wav", headers={**CTI, "If-None-Match": f'"{audio_key}"'}
    )
    assert unchanged.status_code == 304


def test_prompts_with_placeholders_are_not_rendered_ahead(client, people):
    text = "您前面还有{position}位，请稍候。"
    response = client.put(
        "/api/v1/ivr/prompts/queue_position", json={"text": text}, headers=people["supervisor"]
    )
    assert response.status_code == 200, response.text
    assert queued_job_ids() == set()


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("queue_position", "您前面还有{pos}位。", "missing: {position}; unknown: {pos}"),
        ("queue_position", "请耐心等候。", "must use exactly {position}"),
        ("queue_position", "您前面还有{position!r}位。", "not allowed"),
        ("greeting", "您好{name}", "no placeholders, as the PBX fills them; unknown: {name}"),
        ("greeting", "。。。", "nothing to speak"),
    ],
)
def test_an_edit_must_keep_the_placeholders_the_pbx_fills(client, people, key, text, expected):
    response = client.put(
        f"/api/v1/ivr/prompts/{key}", json={"text": text}, headers=people["supervisor"]
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "ivr.bad_template"
    assert expected in error["message"]
    listed = {
        p["key"]: p for p in client.get("/api/v1/ivr/prompts", headers=people["agent"]).json()
    }
    assert listed[key]["is_default"]


def test_only_supervisors_edit_and_only_known_prompts(client, people):
    as_agent = client.put(
        "/api/v1/ivr/prompts/greeting", json={"text": NEW_GREETING}, headers=people["agent"]
    )
    assert as_agent.status_code == 403
    unknown = client.put(
        "/api/v1/ivr/prompts/farewell", json={"text": "再见。"}, headers=people["supervisor"]
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ivr.unknown_prompt"


# ----------------------------------------------------------------------------- audio


def test_audio_not_yet_rendered_is_rendered_by_a_worker_while_the_pbx_waits(
    client, mandarin_voice, tmp_path
):
    spoken = "您前面还有3位，请耐心等候。"
    audio_key = cache_key("queue_position", spoken, ivr.VOICE)
    thread, result = fetch_in_background(
        client, "/api/v1/ivr/prompts/queue_position.wav?position=3", CTI
    )
    try:
        run_worker_when_queued(ivr.render_job_id(audio_key))
    finally:
        thread.join(timeout=30)

    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{audio_key}"'
    assert_sounds_like(spoken, wav_seconds(response.content, tmp_path))
    assert (ivr.prompts_dir() / f"{audio_key}.wav").read_bytes() == response.content


def test_without_a_worker_the_pbx_is_told_to_retry_then_gets_the_audio(
    client, run_jobs, monkeypatch, mandarin_voice
):
    monkeypatch.setattr(ivr_router, "RENDER_WAIT_SECONDS", 0.3)
    pending = client.get("/api/v1/ivr/prompts/greeting.wav", headers=CTI)

    assert pending.status_code == 503
    assert pending.headers["retry-after"] == "5"
    assert pending.json()["error"]["code"] == "ivr.render_pending"
    assert "no rq worker is running" in pending.json()["error"]["message"]
    assert run_jobs() == 1
    ready = client.get("/api/v1/ivr/prompts/greeting.wav", headers=CTI)
    assert ready.status_code == 200 and ready.content[:4] == b"RIFF"


def test_a_failed_render_is_reported_and_leaves_no_file(client, monkeypatch):
    def broken(text, out_path, **_kwargs):
        raise RenderError("espeak-ng exploded")

    monkeypatch.setattr(jobs, "render_wav", broken)
    spoken = "预计等待时间约4分钟。"
    audio_key = cache_key("estimated_wait", spoken, ivr.VOICE)
    thread, result = fetch_in_background(
        client, "/api/v1/ivr/prompts/estimated_wait.wav?minutes=4", CTI
    )
    try:
        run_worker_when_queued(ivr.render_job_id(audio_key))
    finally:
        thread.join(timeout=30)

    response = result["response"]
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ivr.render_failed"
    assert "espeak-ng exploded" in response.json()["error"]["message"]
    assert not (ivr.prompts_dir() / f"{audio_key}.wav").exists()
    # The failed job does not block the next request's attempt: it is forgotten first.
    assert "espeak-ng exploded" in (ivr.forget_finished_render(audio_key) or "")
    assert ivr.render_job_id(audio_key) not in queued_job_ids()
    assert ivr.forget_finished_render(audio_key) is None


def test_the_render_job_refuses_unspeakable_text_and_writes_nothing():
    with pytest.raises(RenderError):
        jobs.render_prompt("。。。", ivr.VOICE, "greeting")
    assert not ivr.prompts_dir().exists() or not any(ivr.prompts_dir().iterdir())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?pos=3", "expected: position; missing: position; unknown: pos"),
        ("", "missing: position"),
        ("?position=3%EF%BC%8C", "plain number"),
        ("?position=3&position=4", "give each parameter once"),
    ],
)
def test_parameters_must_fit_the_template(client, query, expected):
    response = client.get(f"/api/v1/ivr/prompts/queue_position.wav{query}", headers=CTI)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "ivr.bad_params" and expected in error["message"]


def test_audio_needs_the_cti_token_or_a_hotline_login(client, people, run_jobs, mandarin_voice):
    client.put(
        "/api/v1/ivr/prompts/greeting", json={"text": NEW_GREETING}, headers=people["supervisor"]
    )
    run_jobs()
    url = "/api/v1/ivr/prompts/greeting.wav"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-CTI-Token": "wrong"}).status_code == 401
    assert client.get(url, headers=people["department"]).status_code == 403
    assert client.get(url, headers=people["agent"]).status_code == 200
    assert client.get("/api/v1/ivr/prompts/farewell.wav", headers=CTI).status_code == 404


def test_a_published_articles_answer_is_read_aloud_by_a_real_worker(client, make_user):
    """The knowledge base's answers go through the same renderer as the prompts."""
    from knowledgebase import service as kb_service

    if shutil.which("espeak-ng") is None:
        pytest.skip("missing system dependency: espeak-ng")
    with db.transaction() as session:
        kb_service.seed_sample(session)
    staff = make_user("agent-kb", "agent")

    thread, result = fetch_in_background(client, "/api/v1/ivr/articles/KB-SB-001.wav", staff)
    text = "社会保障卡挂失与补办。" + kb_service_text()
    run_worker_when_queued(ivr.render_job_id(cache_key("kb-KB-SB-001", text, ivr.VOICE)))
    thread.join()
    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert 10 < seconds < 120  # a paragraph of Chinese at espeak's default rate
    missing = client.get("/api/v1/ivr/articles/NO-SUCH.wav", headers=staff)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "kb.not_found"


def kb_service_text() -> str:
    from knowledgebase import service as kb_service

    with db.transaction() as session:
        return kb_service.get_published(session, "KB-SB-001").text
