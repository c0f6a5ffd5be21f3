"""One spelling per phone number, so a caller's history and duplicates find every ticket.

The same person reaches the hotline as ``13812349999`` from the PBX, ``+86 138-1234-9999``
from an app and ``0086 13812349999`` from the 110 hand-over; a landline as ``0756-2123456``
or, dialled locally, ``2123456``. Stored and looked up in canonical form: a mainland mobile as
its 11 digits, a mainland landline with its area code (``07562123456``), any other country
with ``+`` and its country code (Hong Kong and Macao callers are common in Zhuhai).
"""

from __future__ import annotations

import re

from hotline.core.settings import get_settings

_SEPARATORS = re.compile(r"[\s\-().\u3000（）－]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LOCAL_LANDLINE = re.compile(r"[2-9]\d{6,7}")  # 7 or 8 digits, dialled without the area code


def normalise_phone(raw: str) -> str:
    """The canonical form of ``raw``; what is not recognisably a number comes back trimmed."""
    compact = _SEPARATORS.sub("", raw or "")
    if not compact:
        return ""
    if compact.startswith("+"):
        international = compact[1:]
    elif compact.startswith("00"):
        international = compact[2:]
    else:
        international = None
    if international is not None:
        if not international.isdigit():
            return compact
        if not international.startswith("86"):
            return "+" + international
        compact = international[2:]
    elif compact.startswith("86") and _MOBILE.fullmatch(compact[2:]):
        compact = compact[2:]  # the country code without a plus, as some PBXs pass it
    if not compact.isdigit():
        return compact
    if _MOBILE.fullmatch(compact) or compact.startswith("0"):
        return compact
    if _LOCAL_LANDLINE.fullmatch(compact):
        return get_settings().local_area_code + compact
    if international is not None and len(compact) >= 9:
        return "0" + compact  # +86 756 2123456: the area code without its trunk prefix
    return compact
