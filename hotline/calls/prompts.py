"""IVR prompt texts (语音提示词) for the Zhuhai 12345 hotline, and their safe filling.

A prompt is a ``str.format``-style template with named placeholders, such as
``您前面还有{position}位，请耐心等候。``.  ``render_text`` fills one, refusing anything that
could change what the caller hears beyond the intended word or number: unknown or missing
placeholders, and values that are not short plain numbers or plain text (no punctuation,
markup, whitespace or control characters, which would add clauses or pauses to the speech).

Rendered audio is cached by content: ``cache_key`` hashes the prompt key, the exact text and
the voice, so an edited text or a different voice never reuses stale audio.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from types import MappingProxyType

# Keys of the prompts the IVR flow plays.
GREETING = "greeting"  # 欢迎语
QUEUE_POSITION = "queue_position"  # 排队位置播报
ESTIMATED_WAIT = "estimated_wait"  # 预计等待时长播报
AFTER_HOURS = "after_hours"  # 非人工服务时段提示
EMERGENCY = "emergency"  # 应急插播（台风等）

PROMPT_KEYS: tuple[str, ...] = (GREETING, QUEUE_POSITION, ESTIMATED_WAIT, AFTER_HOURS, EMERGENCY)

# These texts are what the caller hears, so service numbers are written as spoken digits:
# the TTS reads "12345" as a cardinal (一万两千三百四十五) and "110" as 一百一十, while callers
# know them as 幺二三四五 and 幺幺零.
DEFAULT_PROMPTS: Mapping[str, str] = MappingProxyType(
    {
        GREETING: "您好，欢迎致电珠海幺二三四五政务服务便民热线。",
        QUEUE_POSITION: "您前面还有{position}位，请耐心等候。",
        ESTIMATED_WAIT: "预计等待时间约{minutes}分钟。",
        AFTER_HOURS: (
            "您好，现在是非人工服务时间，人工服务时间为每天{open_hour}点至{close_hour}点。"
            "请在提示音后留言，我们将在上班后尽快回复您。"
        ),
        EMERGENCY: (
            "紧急提示：受台风影响，珠海市已发布台风{signal}预警信号。"
            "请减少外出，远离海边和低洼地带，注意安全。"
            "如遇险情，请拨打幺幺零、幺幺九或幺二零求助。"
        ),
    }
)

MAX_PARAM_CHARS = 20
# A value is spoken as part of one clause: a plain number (digits, optionally one decimal
# part) or plain text of CJK ideographs, ASCII letters and digits.  No punctuation or spaces,
# which would split the clause or change its pauses, and nothing markup-like.
_PLAIN_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,3})?")
_PLAIN_TEXT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]+")
_PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Bumped when the meaning of a cache key changes (e.g. how audio is rendered from text).
CACHE_SCHEME_VERSION = 1


def template_placeholders(template: str) -> tuple[str, ...]:
    """The placeholder names in ``template``, sorted, each once.

    Raises ValueError for a malformed template or a placeholder that is not a plain
    name (positional ``{}``/``{0}``, attribute/index access, conversions, format specs):
    templates are data an operator may edit, and these would let them do more than insert
    a value.
    """
    if not isinstance(template, str):
        raise TypeError(f"template must be str, got {type(template).__name__}")
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed prompt template {template!r}: {exc}") from exc
    for _, field, format_spec, conversion in parsed:
        if field is None:
            continue
        if not _PLACEHOLDER_NAME.fullmatch(field) or format_spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{format_spec}" if format_spec else "") + "}"
            raise ValueError(
                f"prompt template placeholder {shown} is not allowed; use a plain name "
                "such as {position}"
            )
        names.add(field)
    return tuple(sorted(names))


def _check_value(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(
            f"value for {{{name}}} must be a short number or plain text, got {type(value).__name__}"
        )
    text = str(value)
    if isinstance(value, int) and value < 0:
        raise ValueError(f"value for {{{name}}} must not be negative, got {value}")
    if not text or len(text) > MAX_PARAM_CHARS:
        raise ValueError(
            f"value for {{{name}}} must have 1..{MAX_PARAM_CHARS} characters, got {len(text)}"
        )
    if not (_PLAIN_NUMBER.fullmatch(text) or _PLAIN_TEXT.fullmatch(text)):
        raise ValueError(
            f"value for {{{name}}} must be a plain number (e.g. 12 or 3.5) or plain text "
            f"(Chinese characters, letters, digits), got {text!r}"
        )
    return text


# What each placeholder the PBX fills stands for. A request's values are parsed by these
# types, so that only the few texts the IVR can actually say are rendered and cached: free
# text, or "007" beside "7", would each be a render job and a WAV file of their own.
SIGNAL_COLOURS = ("白色", "蓝色", "黄色", "橙色", "红色")  # typhoon warning signals
PARAMETER_RANGES: Mapping[str, range] = MappingProxyType(
    {
        "position": range(0, 1000),
        "minutes": range(0, 1000),
        "open_hour": range(0, 24),
        "close_hour": range(1, 25),
    }
)
PARAMETER_CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType({"signal": SIGNAL_COLOURS})


def typed_params(params: Mapping[str, str]) -> dict[str, str]:
    """``params`` with each known placeholder's value parsed by its type and written back in
    its one canonical form; ValueError names a value that does not fit its type. Names
    without a type are left for ``render_text`` to refuse or accept against the template."""
    typed = dict(params)
    for name, value in params.items():
        if name in PARAMETER_RANGES:
            allowed = PARAMETER_RANGES[name]
            text = str(value)
            if not (text.isascii() and text.isdigit() and len(text) <= 4):
                raise ValueError(
                    f"{{{name}}} must be a plain number, a whole one from {allowed.start} to "
                    f"{allowed.stop - 1}; got {text!r}"
                )
            if int(text) not in allowed:
                raise ValueError(
                    f"{{{name}}} must be from {allowed.start} to {allowed.stop - 1}; got {text}"
                )
            typed[name] = str(int(text))
        elif name in PARAMETER_CHOICES and value not in PARAMETER_CHOICES[name]:
            raise ValueError(
                f"{{{name}}} must be one of {', '.join(PARAMETER_CHOICES[name])}; got {value!r}"
            )
    return typed


def render_text(template: str, params: Mapping[str, str]) -> str:
    """Fill ``template``'s placeholders from ``params`` and return the text to speak.

    Every placeholder needs a value and every value needs a placeholder; otherwise a
    ValueError lists the expected names, the missing ones and the unknown ones.  Values
    are str (ints are accepted and spoken as numbers) of at most MAX_PARAM_CHARS characters,
    either a plain number or plain text; anything else is a ValueError naming the value.
    """
    expected = template_placeholders(template)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    missing = sorted(set(expected) - set(params))
    unknown = sorted(str(name) for name in set(params) - set(expected))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown: {', '.join(unknown)}")
        raise ValueError(
            f"prompt parameters do not match the template; expected: "
            f"{', '.join(expected) or '(none)'}; " + "; ".join(problems)
        )
    values = {name: _check_value(name, params[name]) for name in expected}
    return template.format_map(values)


def render_prompt(
    key: str, params: Mapping[str, str] | None = None, templates: Mapping[str, str] | None = None
) -> str:
    """``render_text`` for the prompt named ``key`` from ``templates`` (DEFAULT_PROMPTS).

    Raises KeyError naming the known keys when ``key`` has no template.
    """
    source = DEFAULT_PROMPTS if templates is None else templates
    if key not in source:
        raise KeyError(f"no prompt {key!r}; known prompts: {', '.join(sorted(source))}")
    return render_text(source[key], params or {})


def cache_key(key: str, text: str, voice: str, *, rate: int | None = None) -> str:
    """SHA-256 hex digest identifying the audio for ``text`` spoken by ``voice``.

    Equal inputs give equal keys; changing any of key, text, voice or rate (words per
    minute; None is the renderer's default) gives a different key.  The fields are
    JSON-encoded, so no choice of strings can make two different inputs collide by
    concatenation.
    """
    for name, value in (("key", key), ("text", text), ("voice", voice)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be str, got {type(value).__name__}")
    payload = json.dumps(
        [CACHE_SCHEME_VERSION, key, text, voice, rate], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
