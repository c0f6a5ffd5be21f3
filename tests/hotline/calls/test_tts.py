"""Spoken prompts: real espeak-ng renders through pyttsx3, clause splitting, templates."""

from __future__ import annotations

import array
import shutil
import threading
import wave
from pathlib import Path

import pytest

from hotline.calls import prompts, tts
from hotline.calls.prompts import DEFAULT_PROMPTS, cache_key, render_prompt, render_text
from hotline.calls.tts import RenderError, find_voice, render_wav, split_clauses


@pytest.fixture(scope="module")
def mandarin_voice() -> tts.VoiceInfo:
    """The Mandarin voice, or a skip saying what is missing (CI turns skips into failures)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/system-deps installs it)")
    try:
        return find_voice("cmn")
    except RenderError as exc:
        pytest.skip(f"no Mandarin (cmn) espeak-ng voice available to pyttsx3: {exc}")


def read_wav(path: Path) -> tuple[tuple[int, int, int], array.array]:
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        return params, array.array("h", wav.readframes(wav.getnframes()))


def speakable_chars(text: str) -> int:
    return sum(1 for clause in split_clauses(text) for char in clause if char.isalnum())


# ------------------------------------------------------------------ real renders (espeak)


def test_greeting_renders_every_clause_into_one_valid_wav(mandarin_voice, tmp_path):
    greeting = DEFAULT_PROMPTS["greeting"]
    out = tmp_path / "greeting.wav"

    result = render_wav(greeting, out)

    assert len(split_clauses(greeting)) == 2  # longer than one clause: the case pyttsx3 drops
    assert result.path == out
    assert result.clauses == 2
    params, samples = read_wav(out)
    assert params == (1, 2, 22050)
    assert len(samples) > 0
    assert result.duration_seconds == pytest.approx(len(samples) / 22050)
    # Mandarin at espeak's 200 wpm: measured 5.0 s for 23 characters; Mandarin speech runs at
    # roughly 3-6 syllables a second, so anything outside 1.5-30 s is broken audio.
    assert 1.5 < result.duration_seconds < 30
    per_char = result.duration_seconds / speakable_chars(greeting)
    assert 0.1 < per_char < 0.6
    assert max(samples) > 5000  # speech, not silence
    assert sorted(p.name for p in tmp_path.iterdir()) == ["greeting.wav"]  # no temp left


def test_joined_audio_is_exactly_the_clauses_in_order(mandarin_voice, tmp_path):
    first, second = "您前面还有12位，", "请耐心等候。"
    whole = render_wav(first + second, tmp_path / "whole.wav")
    part_one = render_wav(first, tmp_path / "one.wav")
    part_two = render_wav(second, tmp_path / "two.wav")

    _, whole_samples = read_wav(tmp_path / "whole.wav")
    _, one_samples = read_wav(tmp_path / "one.wav")
    _, two_samples = read_wav(tmp_path / "two.wav")
    assert whole.clauses == 2
    assert whole_samples == one_samples + two_samples
    assert whole.duration_seconds == pytest.approx(
        part_one.duration_seconds + part_two.duration_seconds
    )


def test_long_multi_sentence_prompt_is_complete(mandarin_voice, tmp_path):
    notice = render_prompt("emergency", {"signal": "橙色"})
    result = render_wav(notice, tmp_path / "emergency.wav")

    assert result.clauses == len(split_clauses(notice)) >= 6
    # Each clause adds audio: a truncated render (the naive pyttsx3 failure) is far shorter.
    assert result.duration_seconds > 0.15 * speakable_chars(notice)
    assert result.duration_seconds < 60


def test_renders_are_byte_identical_under_concurrency(mandarin_voice, tmp_path):
    text = DEFAULT_PROMPTS["greeting"]
    contents: list[bytes] = []
    errors: list[BaseException] = []

    def render(index: int) -> None:
        try:
            contents.append(render_wav(text, tmp_path / f"g{index}.wav").path.read_bytes())
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=render, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(contents) == 6
    # A shared engine's speech-rate race and carried-over state once varied the length.
    assert len(set(contents)) == 1


def test_slower_rate_gives_longer_audio(mandarin_voice, tmp_path):
    text = "预计等待时间约5分钟。"
    slow = render_wav(text, tmp_path / "slow.wav", rate=120)
    fast = render_wav(text, tmp_path / "fast.wav", rate=300)
    assert slow.duration_seconds > 1.5 * fast.duration_seconds


@pytest.mark.parametrize("text", ["。。。", "，！？", "   ", ""])
def test_text_without_speech_raises_and_leaves_no_file(tmp_path, text):
    out = tmp_path / "nothing.wav"
    with pytest.raises(RenderError, match="nothing speakable"):
        render_wav(text, out)
    assert list(tmp_path.iterdir()) == []


def test_clause_that_stays_silent_raises_after_retry_and_keeps_old_file(mandarin_voice, tmp_path):
    out = tmp_path / "prompt.wav"
    out.write_bytes(b"previous good render")
    # espeak-ng has no reading for an emoji and renders all-zero samples.
    with pytest.raises(RenderError, match="after a retry: only silence"):
        render_wav("您好，🙂。", out)
    assert out.read_bytes() == b"previous good render"
    assert [p.name for p in tmp_path.iterdir()] == ["prompt.wav"]


def test_cmn_prefers_the_voice_that_reads_pinyin_as_mandarin(mandarin_voice):
    assert mandarin_voice.id == "sit/cmn-latn-pinyin"
    assert find_voice("sit/cmn").id == "sit/cmn"  # an exact id still wins


def test_unknown_voice_is_a_render_error(mandarin_voice, tmp_path):
    with pytest.raises(RenderError, match="no TTS voice matches 'klingon-xx'"):
        render_wav("您好。", tmp_path / "x.wav", voice_hint="klingon-xx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- arguments (no espeak)


@pytest.mark.parametrize("rate", [0, 79, 451, True, 2.5])
def test_rate_out_of_range_is_rejected(tmp_path, rate):
    with pytest.raises(ValueError, match="rate"):
        render_wav("您好。", tmp_path / "x.wav", rate=rate)


def test_missing_output_directory_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="does not exist"):
        render_wav("您好。", tmp_path / "absent" / "x.wav")


def test_overlong_text_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="at most"):
        render_wav("好" * (tts.MAX_TEXT_CHARS + 1), tmp_path / "x.wav")


# ------------------------------------------------------------------------ split_clauses


def test_split_keeps_each_clause_with_its_marks():
    assert split_clauses("您好，欢迎致电珠海幺二三四五政务服务便民热线。") == [
        "您好，",
        "欢迎致电珠海幺二三四五政务服务便民热线。",
    ]


def test_split_handles_ascii_runs_quotes_and_trailing_text():
    text = "Hello, world! 真的吗？！“是的。”还有……最后一句"
    assert split_clauses(text) == [
        "Hello,",
        "world!",
        "真的吗？！",
        "“是的。”",
        "还有……",
        "最后一句",
    ]


def test_split_does_not_cut_inside_numbers():
    assert split_clauses("约3.5分钟，8:30开始，共1,200人。") == [
        "约3.5分钟，",
        "8:30开始，",
        "共1,200人。",
    ]


def test_split_drops_punctuation_only_pieces():
    assert split_clauses("。。，  \n您好。\n\n") == ["您好。"]
    assert split_clauses("…！") == []


# ---------------------------------------------------------------------------- templates


def test_default_prompts_cover_the_ivr_keys_with_their_placeholders():
    assert set(DEFAULT_PROMPTS) == set(prompts.PROMPT_KEYS)
    expected = {
        "greeting": (),
        "queue_position": ("position",),
        "estimated_wait": ("minutes",),
        "after_hours": ("close_hour", "open_hour"),
        "emergency": ("signal",),
    }
    assert {k: prompts.template_placeholders(v) for k, v in DEFAULT_PROMPTS.items()} == expected


def test_render_text_fills_placeholders():
    template = DEFAULT_PROMPTS["queue_position"]
    assert render_text(template, {"position": "3"}) == "您前面还有3位，请耐心等候。"
    assert render_text(template, {"position": 12}) == "您前面还有12位，请耐心等候。"
    assert render_prompt("estimated_wait", {"minutes": "3.5"}) == "预计等待时间约3.5分钟。"
    assert render_prompt("greeting") == DEFAULT_PROMPTS["greeting"]


def test_missing_placeholder_lists_expected_names():
    with pytest.raises(ValueError) as caught:
        render_text(DEFAULT_PROMPTS["after_hours"], {"open_hour": "8"})
    message = str(caught.value)
    assert "expected: close_hour, open_hour" in message
    assert "missing: close_hour" in message


def test_unknown_placeholder_lists_expected_names():
    with pytest.raises(ValueError) as caught:
        render_text(DEFAULT_PROMPTS["queue_position"], {"position": "3", "name": "张三"})
    assert "expected: position" in str(caught.value)
    assert "unknown: name" in str(caught.value)


def test_template_without_placeholders_rejects_any_parameter():
    with pytest.raises(ValueError, match=r"expected: \(none\); unknown: position"):
        render_text(DEFAULT_PROMPTS["greeting"], {"position": "1"})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1，2",  # punctuation would add a clause to the speech
        "三位。请挂机",
        "<speak>",
        "a b",
        "3\n",
        "x" * 21,
        "-1",
        "{minutes}",
        -1,
        1.5,
        True,
        None,
        ["3"],
    ],
)
def test_values_that_are_not_short_plain_numbers_or_text_are_rejected(value):
    with pytest.raises(ValueError, match=r"\{minutes\}"):
        render_text(DEFAULT_PROMPTS["estimated_wait"], {"minutes": value})


@pytest.mark.parametrize("value", ["3", "3.5", "120", "十", "橙色", "Level3"])
def test_plain_values_are_accepted(value):
    assert value in render_text("约{minutes}分钟。", {"minutes": value})


@pytest.mark.parametrize(
    "template",
    [
        "{}位",
        "{0}位",
        "{position.real}位",
        "{position[0]}位",
        "{position!r}位",
        "{position:>5}位",
        "{position位",
        "position}位",
    ],
)
def test_templates_with_anything_but_plain_names_are_rejected(template):
    with pytest.raises(ValueError):
        render_text(template, {"position": "3"})


def test_unknown_prompt_key_names_the_known_ones():
    with pytest.raises(KeyError, match="greeting"):
        render_prompt("goodbye")


def test_cache_key_is_a_content_hash():
    key = cache_key("greeting", DEFAULT_PROMPTS["greeting"], "sit/cmn-latn-pinyin")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == cache_key("greeting", DEFAULT_PROMPTS["greeting"], "sit/cmn-latn-pinyin")
    variants = {
        cache_key("greeting", DEFAULT_PROMPTS["greeting"] + " ", "sit/cmn-latn-pinyin"),
        cache_key("greeting", DEFAULT_PROMPTS["greeting"], "sit/cmn"),
        cache_key("welcome", DEFAULT_PROMPTS["greeting"], "sit/cmn-latn-pinyin"),
        cache_key("greeting", DEFAULT_PROMPTS["greeting"], "sit/cmn-latn-pinyin", rate=150),
    }
    assert key not in variants and len(variants) == 4
    # Field boundaries matter: moving characters between fields changes the key.
    assert cache_key("ab", "c", "v") != cache_key("a", "bc", "v")
