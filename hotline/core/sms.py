"""Text messages to citizens' phones (verification codes), through a pluggable sender.

``outbox`` (development and tests): nothing leaves the machine; each message is logged and
appended as a JSON line to ``sms-outbox.jsonl`` in the data dir, where tests and the demo read
the code. ``http`` (production): each message is POSTed as JSON ``{"phone", "text"}`` to
``HOTLINE_SMS_GATEWAY_URL`` with ``Authorization: Bearer HOTLINE_SMS_GATEWAY_TOKEN``; any
2xx answer counts as sent. A sender that fails raises ``SmsUnavailable`` (503) so the citizen
is told to try again instead of waiting for a code that never comes.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx

from hotline.core.errors import AppError
from hotline.core.settings import Settings, get_settings

log = logging.getLogger(__name__)
OUTBOX_FILE = "sms-outbox.jsonl"


class SmsUnavailable(AppError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__("sms.unavailable", "the text message could not be sent; try again soon")
        self.headers = {"Retry-After": "10"}


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class OutboxSender:
    """Development and tests: messages go to a file, never to a phone."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, phone: str, text: str) -> None:
        line = json.dumps(
            {"at": datetime.now(UTC).isoformat(), "phone": phone, "text": text},
            ensure_ascii=False,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        log.info("SMS to %s*** (outbox, not sent): %s", phone[:3], text)


class HttpSender:
    """Production: an SMS gateway's HTTP API."""

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, phone: str, text: str) -> None:
        try:
            response = httpx.post(
                self.url,
                json={"phone": phone, "text": text},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            log.warning("SMS gateway unreachable: %s", exc)
            raise SmsUnavailable() from exc
        if not response.is_success:
            log.warning("SMS gateway answered %s: %s", response.status_code, response.text[:200])
            raise SmsUnavailable()


def outbox_path(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.resolved_data_dir / OUTBOX_FILE


def read_outbox(path: Path, phone: str) -> list[str]:
    """The texts sent to ``phone`` through the outbox sender, oldest first (for tests)."""
    if not path.exists():
        return []
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message["phone"] == phone:
            texts.append(message["text"])
    return texts


_override: SmsSender | None = None


def use_sender(sender: SmsSender | None) -> None:
    """Replace the configured sender (tests); ``None`` goes back to the settings."""
    global _override
    _override = sender


def sender() -> SmsSender:
    """The sender the settings name."""
    if _override is not None:
        return _override
    settings = get_settings()
    if settings.sms_sender == "http":
        if not settings.sms_gateway_url:
            raise SmsUnavailable()
        return HttpSender(settings.sms_gateway_url, settings.sms_gateway_token.get_secret_value())
    return OutboxSender(outbox_path(settings))
