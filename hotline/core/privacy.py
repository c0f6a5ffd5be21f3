"""Callers' personal data (个人信息) in what department users read: who sees it, and the masks.

The rule: a principal holding a hotline role (agent, dispatcher, supervisor, admin) sees the
original; everyone else — a department user (承办单位) above all — sees it masked. Masking works
on JSON-like structures in two ways:

* by key, for fields known to hold personal data (``caller_phone``, ``email``, ``id_number``…);
* by pattern, on every string: mainland mobile numbers (with or without +86/0086, spaces or
  dashes), landlines with an area code, 18- and 15-digit ID-card numbers (身份证号) and e-mail
  addresses, wherever they stand in free text.

What stays is enough to be useful and to recognise a repeat caller, never enough to call or
profile them: ``138****9999``, ``0756-***3456``, ``4404**********123X``, ``j***@example.com``.
Digit runs glued to Latin letters (ticket numbers such as ZH20261205000123, codes, hashes)
and numbers of other lengths (dates, amounts, house numbers) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotline.core.auth import Principal

HOTLINE_ROLES = frozenset({"agent", "dispatcher", "supervisor", "admin"})

# A number starts where no digit or Latin letter precedes it, so that the digits inside a
# ticket number or a code are never taken for a phone.
_START = r"(?<![0-9A-Za-z\d])"
_END = r"(?!\d)"
_SEP = r"[ \t\u3000\-－]?"  # one space, ideographic space or dash between digit groups

_ID_18 = re.compile(
    _START
    + r"[1-9]\d{5}"
    + _SEP
    + r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    + _SEP
    + r"\d{3}[\dXx](?![0-9A-Za-z\d])"
)
_ID_15 = re.compile(
    _START
    + r"[1-9]\d{5}"
    + _SEP
    + r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    + _SEP
    + r"\d{3}(?![0-9A-Za-z\d])"
)
_MOBILE = re.compile(
    r"(?<![0-9A-Za-z\d+])"
    + r"(?:(?:\+|00)?86[ \-]?|[(（]\+?86[)）] ?)?"
    + r"(?P<head>1[3-9]\d)"
    + _SEP
    + r"\d{4}"
    + _SEP
    + r"(?P<tail>\d{4})"
    + _END
)
_AREA = r"(?:10|2\d|[3-9]\d{2})"  # 010, 02x and the four-digit codes, without the leading 0
_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z\d+])"
    + r"(?:(?:\+|00)86[ \-]?(?P<intl>"
    + _AREA
    + r")"
    + _SEP
    + r"|[(（]0(?P<paren>"
    + _AREA
    + r")[)）] ?"
    + r"|0(?P<area>"
    + _AREA
    + r")"
    + _SEP
    + r")(?P<local>[1-9]\d{6,7})"
    + _END
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])(?P<first>[A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*"
    r"@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+)"
)


def _id_mask(match: re.Match[str]) -> str:
    return mask_id_number(re.sub(r"[^\dXx]", "", match.group(0)))


def _mobile_mask(match: re.Match[str]) -> str:
    return f"{match['head']}****{match['tail']}"


def _landline_mask(match: re.Match[str]) -> str:
    area = match["intl"] or match["paren"] or match["area"]
    local = match["local"]
    return f"0{area}-{'*' * (len(local) - 4)}{local[-4:]}"


def _email_mask(match: re.Match[str]) -> str:
    return f"{match['first']}***@{match['domain']}"


# ID numbers first: their digits would otherwise be read as shorter numbers' digits.
_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_ID_18, _id_mask),
    (_ID_15, _id_mask),
    (_MOBILE, _mobile_mask),
    (_LANDLINE, _landline_mask),
    (_EMAIL, _email_mask),
)
# Cheap pre-checks: most strings (statuses, codes, names) have no run of digits or no "@".
_MAY_HOLD_NUMBER = re.compile(r"\d{3}")
# Full-width digits and signs (typed with a Chinese input method) are read as ASCII ones, so
# that the patterns, which are written for ASCII, see the number; the view shows them so.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")
_HAS_FULL_WIDTH = re.compile("[０-９＋]")


def sees_personal_data(principal: Principal) -> bool:
    """Whether ``principal`` sees callers' personal data as it is: only the hotline's own roles."""
    return not HOTLINE_ROLES.isdisjoint(principal.roles)


def mask_phone(phone: str) -> str:
    """Departments see 138****1234: enough to call back through the hotline, not to profile."""
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def mask_email(email: str) -> str:
    """``j***@example.com``; something that is not an address is masked as free text."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return mask_text(email)
    return f"{local[:1]}***@{domain}"


def mask_id_number(number: str) -> str:
    """``4404**********123X``: the region and the last four characters."""
    if len(number) >= 12:
        return number[:4] + "*" * (len(number) - 8) + number[-4:]
    return "*" * len(number)


def mask_name(name: str) -> str:
    """The family name and two stars (张**), whatever the length of the given name."""
    return name[:1] + "**" if name else ""


# Keys whose whole value is personal data, lower-cased.
FIELD_MASKS: dict[str, Callable[[str], str]] = {
    **dict.fromkeys(
        (
            "caller_phone",
            "phone",
            "mobile",
            "telephone",
            "tel",
            "phone_number",
            "contact_phone",
            "caller",
        ),
        mask_phone,
    ),
    **dict.fromkeys(("email", "e_mail", "caller_email", "contact_email"), mask_email),
    **dict.fromkeys(
        ("id_number", "id_card", "idcard", "id_no", "identity_number", "caller_id_number"),
        mask_id_number,
    ),
    **dict.fromkeys(("caller_name", "contact_name", "first_name", "last_name"), mask_name),
}


def mask_text(text: str, known: Mapping[str, str] | None = None) -> str:
    """``text`` with every phone number, ID number and e-mail address masked.

    ``known`` maps literal strings (a ticket's own caller phone and name, which may not look
    like any pattern) to their masks; they are replaced first, the longest first.
    """
    if known:
        for original in sorted(known, key=len, reverse=True):
            if original and original in text:
                text = text.replace(original, known[original])
    if "@" not in text and not _MAY_HOLD_NUMBER.search(text):
        return text
    if _HAS_FULL_WIDTH.search(text):
        text = text.translate(_FULL_WIDTH)
    for pattern, mask in _PATTERNS:
        text = pattern.sub(mask, text)
    return text


def mask_value(value: Any, known: Mapping[str, str] | None = None) -> Any:
    """A copy of a JSON-like ``value`` (dicts, lists, strings) with personal data masked: by
    key where ``FIELD_MASKS`` knows the key, by pattern in every other string."""
    if isinstance(value, str):
        return mask_text(value, known)
    if isinstance(value, Mapping):
        return {key: _mask_field(key, item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item, known) for item in value]
    return value


def _mask_field(key: Any, item: Any, known: Mapping[str, str] | None) -> Any:
    if isinstance(item, str) and isinstance(key, str):
        field_mask = FIELD_MASKS.get(key.lower())
        if field_mask is not None:
            return field_mask(item)
    return mask_value(item, known)


def mask_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event of the bus (``hotline.core.events``) with its data masked."""
    return {**event, "data": mask_value(event.get("data"))}


def known_caller(phone: str = "", name: str = "") -> dict[str, str]:
    """The ``known`` literals of one caller: the phone (7+ characters) and the name (2+)."""
    known = {}
    if len(phone) >= 7:
        known[phone] = mask_phone(phone)
    if len(name) >= 2:
        known[name] = mask_name(name)
    return known


def for_principal(principal: Principal, value: Any, known: Mapping[str, str] | None = None) -> Any:
    """``value`` as ``principal`` may see it: unchanged for hotline roles, masked otherwise."""
    if sees_personal_data(principal):
        return value
    return mask_value(value, known)
