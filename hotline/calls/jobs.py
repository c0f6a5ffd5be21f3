"""rq jobs of call intake."""

from __future__ import annotations

from hotline.calls import ivr
from hotline.calls.prompts import cache_key
from hotline.calls.tts import render_wav


def render_prompt(text: str, voice_hint: str, key: str) -> str:
    """Render ``text`` (already filled) into ``<data_dir>/prompts/<cache_key>.wav``.

    Promises: on success the file holds the complete audio (tts.render_wav writes a
    temporary file and renames it, so no reader ever sees an empty or partial WAV); a file
    already there is kept, so running the job twice is harmless; a RenderError fails the job
    and leaves no file. Returns the file's path.
    """
    path = ivr.prompts_dir() / f"{cache_key(key, text, voice_hint)}.wav"
    if path.is_file() and path.stat().st_size > 0:
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_wav(text, path, voice_hint=voice_hint)
    return str(path)
