"""A reference calculator of the 15-second answer rate: small, slow, and meant to be obviously
right. It shares no code with hotline.calls or hotline.kpi; it follows the rules as
docs/kpi.md states them, one call at a time, and counts a window by looking at every request.

Events are plain dicts as the CTI sends them (``at`` an aware datetime or ISO text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby


@dataclass
class Rules:
    threshold: float = 15
    short_abandon: float = 0
    skew: float = 2
    lost_waiting: float = 7200
    lost_talking: float = 28800


@dataclass
class Request:
    queue: str
    entered: datetime
    answered: datetime | None = None
    gone: datetime | None = None  # abandoned or hung up while waiting
    talk_over: bool = False  # ended or transferred after the answer
    needs_entry: bool = False  # made by a transfer; the caller's entry may still come

    def phase(self) -> str:
        if self.answered is not None:
            return "over" if self.talk_over else "talking"
        return "over" if self.gone is not None else "waiting"


def _time(value) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def requests_of_call(events: list[dict], rules: Rules) -> list[Request]:
    """The requests of one call."""
    skew = timedelta(seconds=rules.skew)
    events = sorted(events, key=lambda e: (_time(e["at"]), e["event_id"]))
    requests: list[Request] = []
    early_answer: datetime | None = None
    last_transfer: tuple[datetime, str] | None = None

    def current() -> Request | None:
        return requests[-1] if requests else None

    def phase() -> str:
        return current().phase() if current() else "none"

    def start(queue: str, when: datetime, by_transfer: bool) -> None:
        nonlocal early_answer
        requests.append(Request(queue, when, needs_entry=by_transfer))
        if early_answer is not None and when - early_answer <= skew:
            requests[-1].answered, early_answer = when, None

    # What happens first among events of one instant, in each phase of the call.
    first_when = {
        "none": ["offered", "transferred", "answered", "abandoned", "ended"],
        "waiting": ["offered", "answered", "abandoned", "transferred", "ended"],
        "talking": ["ended", "transferred", "offered", "answered", "abandoned"],
        "over": ["offered", "transferred", "answered", "abandoned", "ended"],
    }
    for when, same in groupby(events, key=lambda e: _time(e["at"])):
        left = [e for e in same if e["type"] in first_when["none"]]
        while left:
            left.sort(key=lambda e: (first_when[phase()].index(e["type"]), e["event_id"]))
            event = left.pop(0)
            kind, request = event["type"], current()
            if kind == "offered":
                if phase() == "waiting":
                    if request.needs_entry:
                        request.entered, request.queue = when, event["queue"]
                        request.needs_entry = False
                        if early_answer is not None and when - early_answer <= skew:
                            request.answered, early_answer = when, None
                    else:
                        request.queue = event["queue"]  # an overflow
                elif request and request.queue == event["queue"] and when - request.entered <= skew:
                    pass  # the same offer again
                else:
                    if phase() == "talking":
                        request.talk_over = True
                    start(event["queue"], when, by_transfer=False)
            elif kind == "transferred":
                if last_transfer and (
                    last_transfer[1] == event["queue"] and when - last_transfer[0] <= skew
                ):
                    continue  # the same transfer again
                last_transfer = (when, event["queue"])
                if phase() == "waiting":
                    request.queue = event["queue"]
                else:
                    if phase() == "talking":
                        request.talk_over = True
                    start(event["queue"], when, by_transfer=True)
            elif kind == "answered":
                if phase() == "waiting":
                    request.answered = when
                else:
                    early_answer = when
            elif kind == "abandoned":
                if phase() == "waiting":
                    request.gone = when
            elif kind == "ended" and request is not None:
                if phase() == "waiting":
                    request.gone = when
                elif phase() == "talking":
                    request.talk_over = True
    return requests


def figures(
    events: list[dict],
    start: datetime,
    end: datetime,
    now: datetime,
    rules: Rules,
    queue: str | None = None,
) -> dict:
    """The window's figures as the API names them."""
    by_call: dict[str, list[dict]] = {}
    for event in events:
        by_call.setdefault(event["call_id"], []).append(event)
    out = dict.fromkeys(
        ("offered", "answered", "within", "abandoned", "short", "waiting", "lost", "lost_talking"),
        0,
    )
    for call_events in by_call.values():
        for request in requests_of_call(call_events, rules):
            if not (start <= request.entered < end) or (queue and request.queue != queue):
                continue
            if request.answered is not None:
                wait = (request.answered - request.entered).total_seconds()
                out["offered"] += 1
                out["answered"] += 1
                out["within"] += wait <= rules.threshold
                talking_for = (now - request.answered).total_seconds()
                if not request.talk_over and talking_for >= rules.lost_talking:
                    out["lost_talking"] += 1
            elif request.gone is not None:
                if (request.gone - request.entered).total_seconds() < rules.short_abandon:
                    out["short"] += 1
                else:
                    out["offered"] += 1
                    out["abandoned"] += 1
            else:
                waited = (now - request.entered).total_seconds()
                if waited < rules.threshold:
                    out["waiting"] += 1
                elif waited >= rules.lost_waiting:
                    out["lost"] += 1
                else:
                    out["offered"] += 1  # a miss: still waiting past the threshold
    out["rate"] = round(out["within"] / out["offered"], 6) if out["offered"] else None
    return out


def as_api(fig: dict) -> dict:
    """The reference's figures under the names /api/v1/kpi/answer-rate uses."""
    return {
        "offered": fig["offered"],
        "answered": fig["answered"],
        "answered_within_threshold": fig["within"],
        "abandoned": fig["abandoned"],
        "short_abandoned": fig["short"],
        "waiting": fig["waiting"],
        "lost": fig["lost"],
        "lost_talking": fig["lost_talking"],
        "rate": fig["rate"],
    }
