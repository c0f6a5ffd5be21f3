"""Spoken IVR prompts (语音导航提示音): text to a WAV file through pyttsx3 and espeak-ng.

Why this module does not simply call ``engine.save_to_file(text, path); engine.runAndWait()``
---------------------------------------------------------------------------------------------
With pyttsx3 2.99's espeak driver that pair returns before any audio exists.  ``runAndWait``
queues an end-of-loop command; ``save_to_file`` does not mark the driver busy, so the queue
runs the end-of-loop command at once, and the loop exits about 10 ms after it started.  Only
then does espeak-ng synthesise, on its own thread (the driver initialises it in
``AUDIO_OUTPUT_RETRIEVAL`` mode), and the driver writes the WAV from that thread when the
message ends.  Hence what was measured here:

* a short clause (synthesised within the driver's 10 ms sleep) seems to work;
* anything longer leaves no file, or an empty one, at the moment ``runAndWait`` returns;
* the next ``save_to_file`` on the same engine overwrites the pending output path and resets
  the audio buffer, so one text's audio can land in another's file or be lost;
* a reused engine carries espeak state from one utterance into the next, and whether it
  does depends on timing: the second clause of the same greeting came out 111,418 or
  111,636 samples long from run to run;
* a process forked after espeak started (an rq work horse, a pre-forking server) has no
  espeak thread, as threads do not survive fork, so nothing would synthesise there;
* the speech rate was a race: the driver sets rate 200 through espeak's command queue, and
  a voice change resets it to the voice's 175 whenever the queue ran first (the same
  greeting came out 7.0 s or 8.1 s long under load).

The workaround, measured reliable (320 renders from 8 threads: no empty file, every text
byte-identical every time):

1. ``split_clauses`` cuts the text at Chinese and ASCII punctuation, so each synthesis is
   short and a failure costs one clause, not the prompt.
2. Each clause is synthesised by a fresh interpreter (``python -I this_file``) owning one
   engine: no process-global engine in the server, no thread-safety or fork question, no
   state carried between clauses, output byte-identical to the ``espeak-ng`` command line
   at the same rate and voice, and a hang is cut off by a timeout.  The child sets voice,
   then rate and volume, and waits for the driver's ``finished-utterance`` notification
   (sent only after the WAV is written) instead of trusting ``runAndWait``.  Up to
   PARALLEL_CLAUSE_WORKERS clauses run at once.  Cost on this 2-core machine: about 150 ms
   for the two-clause greeting, 600 ms for the nine-clause typhoon notice, mostly
   interpreter start-up; audio is cached by content (prompts.cache_key), so each text
   pays it once.
3. The parent checks every clause WAV: readable, 16-bit, frames present and not silence.
   A clause that fails is rendered once more in a new interpreter; failing again raises
   RenderError.
4. Clauses are joined with the stdlib ``wave`` module into a temporary file in the target
   directory, renamed over ``out_path`` only when complete.  A failed render leaves
   ``out_path`` as it was.

Voice: ``voice_hint="cmn"`` picks ``sit/cmn-latn-pinyin``, not ``sit/cmn``; see
PREFERRED_VOICES for why.  Espeak-ng reads digit strings as numbers (12345 → 一万两千三百四十五);
prompt authors who want digits read one by one write them as characters (幺二三四五).
"""

from __future__ import annotations

import array
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_TEXT_CHARS = 1000
MIN_RATE_WPM = 80
MAX_RATE_WPM = 450
PYTTSX3_DEFAULT_RATE_WPM = 200
# A clause whose loudest sample stays under this is silence, not speech (espeak-ng renders
# punctuation-only or unknown symbols as all-zero samples; real speech peaks above 10,000).
SILENCE_PEAK = 64
# Clause renders run side by side; each is mostly interpreter start-up, and more than a few at
# once only queue for the CPU.
PARALLEL_CLAUSE_WORKERS = 3
_WORKER_START_TIMEOUT_S = 20.0
_WORKER_TIMEOUT_PER_CLAUSE_S = 10.0

# Marks that end a clause.  ASCII . , : only count outside numbers, so "3.5" and "8:30" stay.
_CLAUSE_END_MARKS = frozenset("。！？；，、：…．!?;,.:\n")
_DIGIT_INTERNAL_MARKS = frozenset(".,:")
# Closing quotes and brackets belong to the clause they close.
_CLOSING_MARKS = frozenset("”’」』）》】〉)]\"'")


class RenderError(RuntimeError):
    """A prompt could not be rendered to audio; the message says which clause and why."""


@dataclass(frozen=True)
class RenderResult:
    """A finished render: the WAV at ``path`` lasts ``duration_seconds`` over ``clauses``."""

    path: Path
    duration_seconds: float
    clauses: int


@dataclass(frozen=True)
class VoiceInfo:
    """One espeak-ng voice as pyttsx3 reports it (``id`` is what selects it)."""

    id: str
    name: str
    languages: tuple[str, ...]


# ------------------------------------------------------------------------------ clauses


def _is_speakable(char: str) -> bool:
    return unicodedata.category(char)[0] not in "PZC"


def split_clauses(text: str) -> list[str]:
    """Split ``text`` into clauses at Chinese/ASCII punctuation, keeping each clause's marks.

    The closing mark stays with its clause because it shapes espeak's intonation (a
    question rises).  Clauses with nothing but punctuation or whitespace are dropped, so
    ``split_clauses("。。。")`` is ``[]``.  Joining the result gives back the text minus
    whitespace around clauses and punctuation-only runs.
    """
    clauses: list[str] = []
    current: list[str] = []

    def finish() -> None:
        clause = "".join(current).strip()
        current.clear()
        if any(_is_speakable(char) for char in clause):
            clauses.append(clause)

    index = 0
    while index < len(text):
        char = text[index]
        current.append(char)
        index += 1
        if char not in _CLAUSE_END_MARKS:
            continue
        inside_number = (
            char in _DIGIT_INTERNAL_MARKS
            and len(current) >= 2
            and current[-2].isdigit()
            and index < len(text)
            and text[index].isdigit()
        )
        if inside_number:
            continue
        # Runs such as "……", "！？" or "。”" end one clause, not several.
        while index < len(text) and (
            text[index] in _CLAUSE_END_MARKS or text[index] in _CLOSING_MARKS
        ):
            current.append(text[index])
            index += 1
        finish()
    finish()
    return clauses


# ------------------------------------------------------------------------------- voices

# Debian's espeak-ng 1.51 Mandarin data spells most hanzi as tone-numbered pinyin ("您" is
# "nin2").  The plain ``sit/cmn`` voice reads Latin text as English, so a caller hears
# "nin two hao three"; ``sit/cmn-latn-pinyin`` reads that pinyin as Mandarin.  Measured
# with ``espeak-ng -x``: the default greeting has 6 English-read words in the first voice,
# none in the second.  Hence "cmn" means the pinyin variant when it exists.
PREFERRED_VOICES: dict[str, str] = {"cmn": "sit/cmn-latn-pinyin", "zh": "sit/cmn-latn-pinyin"}


def _run_worker(request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run this file as a fresh interpreter and exchange one JSON request/response."""
    # -I keeps the child's sys.path clean (no script directory, no PYTHONPATH, no user site):
    # the worker needs only the standard library and pyttsx3.
    command = [sys.executable, "-I", str(Path(__file__).resolve()), "--tts-worker"]
    try:
        completed = subprocess.run(
            command,
            input=json.dumps(request, ensure_ascii=False),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"the TTS worker did not finish within {timeout_s:.0f} s") from exc
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise RenderError(f"the TTS worker exited with status {completed.returncode}: {detail[0]}")
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RenderError("the TTS worker gave no readable answer") from exc


@functools.lru_cache(maxsize=1)
def _cached_voices() -> tuple[VoiceInfo, ...]:
    response = _run_worker({"command": "voices"}, _WORKER_START_TIMEOUT_S)
    if "error" in response:
        raise RenderError(f"cannot list TTS voices: {response['error']}")
    return tuple(
        VoiceInfo(str(v["id"]), str(v["name"]), tuple(v["languages"])) for v in response["voices"]
    )


def available_voices() -> list[VoiceInfo]:
    """The voices pyttsx3's espeak driver offers on this machine.

    Raises RenderError when pyttsx3 cannot start espeak-ng (e.g. it is not installed).
    The answer is cached for the life of the process.
    """
    return list(_cached_voices())


def find_voice(voice_hint: str = "cmn") -> VoiceInfo:
    """The voice best matching ``voice_hint``, case-insensitively.

    Preference: a voice whose id is exactly the hint (``sit/cmn`` selects that voice), then
    the voice PREFERRED_VOICES names for the hint, then one whose language is exactly the
    hint, whose id ends in it, and finally any id, name or language containing it.  Raises
    RenderError, listing what is available, when nothing matches.
    """
    hint = voice_hint.strip().lower()
    if not hint:
        raise ValueError("voice_hint must not be empty")
    voices = available_voices()
    preferred = PREFERRED_VOICES.get(hint, "")
    ranked = (
        [v for v in voices if v.id.lower() == hint],
        [v for v in voices if v.id.lower() == preferred],
        [v for v in voices if hint in (lang.lower() for lang in v.languages)],
        [v for v in voices if v.id.lower().rsplit("/", 1)[-1] == hint],
        [
            v
            for v in voices
            if hint in v.id.lower()
            or hint in v.name.lower()
            or any(hint in lang.lower() for lang in v.languages)
        ],
    )
    for candidates in ranked:
        if candidates:
            return candidates[0]
    sample = ", ".join(v.id for v in voices[:20]) or "none"
    raise RenderError(f"no TTS voice matches {voice_hint!r}; available: {sample}")


# ------------------------------------------------------------------------------- render


@dataclass(frozen=True)
class _ClauseAudio:
    params: tuple[int, int, int]  # channels, sample width, frame rate
    frames: bytes


def _read_clause(path: Path) -> _ClauseAudio | str:
    """The clause's audio, or a reason why it is not usable audio."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with wave.open(str(path), "rb") as wav:
            params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            frames = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        return "no file written"
    except (wave.Error, EOFError) as exc:
        return f"unreadable WAV ({exc})"
    if params[1] != 2:
        return f"unexpected sample width {params[1]} bytes"
    if not frames:
        return "no audio frames"
    samples = array.array("h", frames)
    if max(samples) < SILENCE_PEAK and -min(samples) < SILENCE_PEAK:
        return "only silence"
    return _ClauseAudio(params, frames)


def _render_clause(text: str, path: Path, voice_id: str, rate: int | None) -> _ClauseAudio | str:
    """One clause in one fresh interpreter: its audio, or why there is none."""
    request = {
        "command": "render",
        "voice": voice_id,
        "rate": rate,
        "text": text,
        "path": str(path),
        "timeout_s": _WORKER_TIMEOUT_PER_CLAUSE_S,
    }
    try:
        response = _run_worker(request, _WORKER_START_TIMEOUT_S + _WORKER_TIMEOUT_PER_CLAUSE_S)
    except RenderError as exc:
        return str(exc)
    if "error" in response:
        return f"TTS worker failed: {response['error']}"
    if not response["finished"]:
        return "synthesis did not finish (no finished-utterance notification)"
    return _read_clause(path)


def _render_clauses(
    clauses: Sequence[str], paths: Sequence[Path], voice_id: str, rate: int | None
) -> list[_ClauseAudio | str]:
    workers = min(PARALLEL_CLAUSE_WORKERS, len(clauses))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tts-clause") as pool:
        return list(
            pool.map(
                lambda job: _render_clause(job[0], job[1], voice_id, rate),
                zip(clauses, paths, strict=True),
            )
        )


def _check_rate(rate: int | None) -> None:
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise ValueError(f"rate must be an int (words per minute) or None, got {rate!r}")
    if not MIN_RATE_WPM <= rate <= MAX_RATE_WPM:
        raise ValueError(f"rate must be within {MIN_RATE_WPM}..{MAX_RATE_WPM}, got {rate}")


def render_wav(
    text: str, out_path: Path, *, voice_hint: str = "cmn", rate: int | None = None
) -> RenderResult:
    """Speak ``text`` into the WAV file ``out_path`` (16-bit mono, espeak-ng's 22,050 Hz).

    ``voice_hint`` selects the voice (see find_voice); ``rate`` is words per minute, None
    means pyttsx3's default (200).  Promises: on return ``out_path`` holds the complete
    audio of every clause, in order; on RenderError (text with nothing speakable, a clause
    that stays silent after one retry, no voice, espeak-ng missing) ``out_path`` is left
    untouched and no temporary file remains.  The same text, voice and rate always give
    the same bytes.  Safe to call from several threads at once: every clause is
    synthesised in its own interpreter.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    _check_rate(rate)
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise RenderError(f"output directory {out_path.parent} does not exist")
    clauses = split_clauses(text)
    if not clauses:
        raise RenderError(f"nothing speakable in {text!r} (only punctuation or whitespace)")
    voice = find_voice(voice_hint)

    with tempfile.TemporaryDirectory(prefix="hotline-tts-") as work_dir:
        paths = [Path(work_dir, f"clause-{i:03d}.wav") for i in range(len(clauses))]
        outcome = _render_clauses(clauses, paths, voice.id, rate)
        failed = [i for i, audio in enumerate(outcome) if isinstance(audio, str)]
        if failed:
            retry_paths = [Path(work_dir, f"retry-{i:03d}.wav") for i in failed]
            retried = _render_clauses([clauses[i] for i in failed], retry_paths, voice.id, rate)
            for index, audio in zip(failed, retried, strict=True):
                if isinstance(audio, str):
                    raise RenderError(
                        f"clause {index + 1}/{len(clauses)} {clauses[index]!r} produced no "
                        f"audio with voice {voice.id} after a retry: {audio}"
                    )
                outcome[index] = audio
        # Every entry is audio by now: failures were either replaced above or raised.
        audios = [audio for audio in outcome if not isinstance(audio, str)]
        return _write_joined(audios, out_path, len(clauses))


def _write_joined(audios: Sequence[_ClauseAudio], out_path: Path, clauses: int) -> RenderResult:
    params = audios[0].params
    for index, audio in enumerate(audios):
        if audio.params != params:
            raise RenderError(
                f"clause {index + 1} has WAV params {audio.params}, clause 1 has {params}"
            )
    channels, sample_width, frame_rate = params
    temp_path = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.part")
    # os.open rather than mkstemp: mkstemp's 0600 would make the prompt unreadable to a
    # media server running as another user; 0666 lets the umask decide, as for any file.
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as raw, wave.open(raw, "wb") as joined:
            joined.setnchannels(channels)
            joined.setsampwidth(sample_width)
            joined.setframerate(frame_rate)
            for audio in audios:
                joined.writeframes(audio.frames)
        os.replace(temp_path, out_path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    total_frames = sum(len(audio.frames) for audio in audios) // (channels * sample_width)
    return RenderResult(out_path, total_frames / frame_rate, clauses)


# ------------------------------------------------------------------------------- worker
# Runs in the child interpreter started by _run_worker.  Standard library and pyttsx3 only:
# the child does not import the hotline package.


def _worker_voices(engine: Any) -> list[dict[str, object]]:
    return [
        {"id": v.id, "name": v.name, "languages": list(v.languages or [])}
        for v in engine.getProperty("voices")
    ]


def _worker_render(engine: Any, request: dict[str, Any]) -> dict[str, object]:
    import threading

    finished = threading.Event()
    # Sent by the driver from espeak's thread after it has written the WAV.
    engine.connect("finished-utterance", lambda **_: finished.set())
    # Voice first, then rate and volume: espeak-ng applies parameters through its command
    # queue while a voice change is immediate and resets the rate to the voice's own (175),
    # so relying on the driver's start-up values made the speed a race.
    engine.setProperty("voice", request["voice"])
    engine.setProperty("rate", request.get("rate") or PYTTSX3_DEFAULT_RATE_WPM)
    engine.setProperty("volume", 1.0)
    started = time.monotonic()
    engine.save_to_file(request["text"], request["path"])
    engine.runAndWait()
    done = finished.wait(request["timeout_s"])
    return {"finished": done, "seconds": round(time.monotonic() - started, 4)}


def _worker_main() -> int:
    answer_stream = sys.stdout
    # The espeak driver prints "Audio saved to …" on stdout; keep stdout for the answer.
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.read())
    try:
        import pyttsx3

        engine = pyttsx3.init("espeak")
        if request["command"] == "voices":
            answer: dict[str, Any] = {"voices": _worker_voices(engine)}
        else:
            answer = _worker_render(engine, request)
    except Exception as exc:  # noqa: BLE001 - the parent turns this into a RenderError
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer_stream.write(json.dumps(answer, ensure_ascii=False) + "\n")
    answer_stream.flush()
    # Skip interpreter teardown: everything worth keeping is written, and pyttsx3's espeak
    # driver itself warns that espeak "has issues when terminating from python".
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__" and sys.argv[1:] == ["--tts-worker"]:
    _worker_main()
