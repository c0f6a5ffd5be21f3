"""Secrets out of log lines: access tokens that old websocket clients put in the URL.

Current clients send their token in a header (``Authorization``, or ``Sec-WebSocket-Protocol``
on the websocket); an old one may still connect to ``/ws?token=…``, and uvicorn writes request
lines, query string included, to its access and error logs. The filter blanks the value of every
``token=``/``access_token=`` parameter before any handler writes the line, for uvicorn's loggers
and the application's alike.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

_SECRET_PARAMETER = re.compile(r"(?i)\b((?:access_)?token=)[^&\s\"']+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _SECRET_PARAMETER.sub(rf"\g<1>{REDACTED}", text)


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Blanks token query values in a record's message and arguments (kept as arguments:
    uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def install_on_root() -> None:
    """Put the filter on every handler of the root logger (where ``basicConfig`` writes)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on each of its handlers (it applies
    it in every worker process it starts)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
