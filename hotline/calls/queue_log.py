"""Importing an Asterisk ``queue_log`` (呼叫队列日志) as call events.

Asterisk's app_queue writes one line per queue event::

    epoch|callid|queuename|agent|event|data1|data2|...

This module turns the lines that describe a caller's way through a queue into the events the
CTI would have sent (``hotline.calls.service.CallEventIn``), so a site can load the history of
its existing PBX and get the same answer-rate figures as from live events:

=================  ======================================  ================================
queue_log event    its data fields                          call event
=================  ======================================  ================================
ENTERQUEUE         url | callerid | position                ``offered`` (queue mapped)
CONNECT            holdtime | bridgedchannel | ringtime     ``answered`` (agent mapped)
ABANDON            position | origposition | waittime       ``abandoned``
EXITWITHTIMEOUT    position | origposition | waittime       ``abandoned``, reason ``timeout``
EXITEMPTY          position | origposition | waittime       ``abandoned``, reason ``empty``
EXITWITHKEY        key | position | origposition | wait     ``abandoned``, reason ``key``
COMPLETECALLER,    holdtime | calltime | origposition       ``ended``
COMPLETEAGENT
BLINDTRANSFER,     extension | context | holdtime | ...     ``transferred`` to the queue the
ATTENDEDTRANSFER,                                           extension reaches, when known;
TRANSFER                                                    else ``ended``
AGENTDUMP          (none)                                   ``ended``
=================  ======================================  ================================

Member and housekeeping lines (QUEUESTART, ADDMEMBER, PAUSE, RINGNOANSWER, AGENTLOGIN …) say
nothing about a caller and are skipped. Waits are not taken from the data fields but from the
timestamps of the lines, exactly as for live events, so both sources give the same figures.

Every event's id is derived from the line's content (``ql:<callid>:<epoch>:<EVENT>:<queue>``),
not from its position in the file, so importing the same file again, or a rotated file that
overlaps the previous one, adds nothing twice.

Mappings use the form ``ours=theirs``, as the command line does: ``queue_map`` maps Asterisk
queue names to our queue codes (default: the same name), ``agent_map`` Asterisk member names to
user names (default: the member with its technology and context stripped, ``SIP/agent1`` and
``Local/agent1@agents/n`` are ``agent1``), ``transfer_map`` dialled extensions to queue codes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotline.calls import service
from hotline.core.db import transaction

# Lines that describe queue members or the queue itself, never a caller's progress.
IGNORED_EVENTS = frozenset(
    {
        "QUEUESTART",
        "CONFIGRELOAD",
        "ADDMEMBER",
        "REMOVEMEMBER",
        "PAUSE",
        "UNPAUSE",
        "PAUSEALL",
        "UNPAUSEALL",
        "PENALTY",
        "RINGNOANSWER",
        "RINGCANCELED",
        "AGENTLOGIN",
        "AGENTLOGOFF",
        "AGENTCALLBACKLOGIN",
        "AGENTCALLBACKLOGOFF",
        "DID",
        "INFO",
        "SYSCOMPAT",
    }
)
_ABANDON_REASONS = {
    "ABANDON": None,
    "EXITWITHTIMEOUT": "timeout",
    "EXITEMPTY": "empty",
    "EXITWITHKEY": "key",
}
_TRANSFERS = frozenset({"BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER"})
# Asterisk 12+ writes ATTENDEDTRANSFER|BRIDGE|<bridge>|... (or APP / LINK): no extension.
_TRANSFER_METHODS = frozenset({"BRIDGE", "APP", "LINK"})
_NO_VALUE = frozenset({"", "NONE"})
_EVENT_ID_MAX = 64
_CALL_ID_MAX = 64
_CALLER_MAX = 32
_AGENT_MAX = 64
_MEMBER_TECH = re.compile(r"^[A-Za-z0-9_]+/")
# Keep this many problems in a report; the count covers all of them.
MAX_PROBLEMS_KEPT = 1000


@dataclass(frozen=True)
class Problem:
    """A line that gave no event, or whose event was refused, and why."""

    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did: lines read, events derived, and how ingestion took them."""

    lines: int = 0
    events: int = 0
    ignored: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add_problem(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def summary(self) -> str:
        return (
            f"{self.lines:,} lines, {self.events:,} call events: {self.accepted:,} new, "
            f"{self.duplicates:,} already known, {self.rejected:,} refused; "
            f"{self.ignored:,} member/housekeeping lines skipped; "
            f"{self.problem_count:,} problem(s)"
        )


def member_to_username(member: str, agent_map: Mapping[str, str] | None = None) -> str:
    """The user name of a queue member as queue_log names it.

    ``agent_map`` (Asterisk member → user name) is consulted with the name as written and
    again once stripped; otherwise the stripped name is the user name: technology prefix,
    dial context and the Local channel's ``/n`` go (``Local/agent1@agents/n`` → ``agent1``,
    ``SIP/agent1`` → ``agent1``, ``PJSIP/1001`` → ``1001``).
    """
    agent_map = agent_map or {}
    member = member.strip()
    if member in agent_map:
        return agent_map[member]
    name = _MEMBER_TECH.sub("", member, count=1)
    name = name.split("@", 1)[0].split("/", 1)[0]
    return agent_map.get(name, name)


def _event_id(callid: str, epoch: str, event: str, queue: str) -> str:
    event_id = f"ql:{callid}:{epoch}:{event}:{queue}"
    if len(event_id) <= _EVENT_ID_MAX:
        return event_id
    # Still derived from the content only, so a re-import finds the same id.
    return f"ql:{hashlib.sha256(event_id.encode()).hexdigest()[:40]}"


def _parse_epoch(value: str) -> datetime:
    seconds = float(value)
    if not 0 < seconds < 1e11:
        raise ValueError(value)
    return datetime.fromtimestamp(seconds, UTC)


def _field(fields: list[str], index: int) -> str:
    return fields[index].strip() if index < len(fields) else ""


def _transfer_target(
    data: list[str], queue_map: Mapping[str, str], transfer_map: Mapping[str, str]
) -> str | None:
    extension, context = _field(data, 0), _field(data, 1)
    if not extension or extension in _TRANSFER_METHODS:
        return None
    for candidate in (f"{extension}@{context}", extension):
        if candidate in transfer_map:
            return transfer_map[candidate]
    # Queues are often dialled by their own name (exten => 12345q,1,Queue(12345q)).
    return queue_map.get(extension)


def parse_line(
    line_number: int,
    line: str,
    *,
    queue_map: Mapping[str, str] | None = None,
    agent_map: Mapping[str, str] | None = None,
    transfer_map: Mapping[str, str] | None = None,
) -> dict[str, Any] | Problem | None:
    """One queue_log line as a call-event dict, a Problem, or None for a line to skip."""
    queue_map = queue_map or {}
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    fields = text.split("|")
    if len(fields) < 5:
        return Problem(
            line_number, f"expected at least 5 '|'-separated fields, got {len(fields)}", text
        )
    epoch, callid, queue_name, member, event = (f.strip() for f in fields[:5])
    data = fields[5:]
    event = event.upper()
    if event in IGNORED_EVENTS:
        return None
    try:
        at = _parse_epoch(epoch)
    except ValueError:
        return Problem(line_number, f"timestamp {epoch!r} is not epoch seconds", text)
    if callid in _NO_VALUE:
        return Problem(line_number, f"{event} line without a call id", text)
    if len(callid) > _CALL_ID_MAX:
        return Problem(
            line_number, f"call id {callid[:20]!r}… is longer than {_CALL_ID_MAX} characters", text
        )
    queue = queue_map.get(queue_name, queue_name)
    base: dict[str, Any] = {
        "event_id": _event_id(callid, epoch, event, queue_name),
        "call_id": callid,
        "at": at.isoformat(),
    }
    if event == "ENTERQUEUE":
        if queue_name in _NO_VALUE:
            return Problem(line_number, "ENTERQUEUE without a queue name", text)
        caller = _field(data, 1)
        offered = {**base, "type": "offered", "queue": queue}
        if caller and caller not in _NO_VALUE and len(caller) <= _CALLER_MAX:
            offered["caller"] = caller
        return offered
    if event == "CONNECT":
        if member in _NO_VALUE:
            return Problem(line_number, "CONNECT without an agent", text)
        agent = member_to_username(member, agent_map)
        if not agent or len(agent) > _AGENT_MAX:
            return Problem(line_number, f"agent {member!r} gives no usable user name", text)
        return {**base, "type": "answered", "agent": agent}
    if event in _ABANDON_REASONS:
        abandoned = {**base, "type": "abandoned"}
        if _ABANDON_REASONS[event]:
            abandoned["reason"] = _ABANDON_REASONS[event]
        return abandoned
    if event in ("COMPLETECALLER", "COMPLETEAGENT", "AGENTDUMP"):
        return {**base, "type": "ended"}
    if event in _TRANSFERS:
        target = _transfer_target(data, queue_map, transfer_map or {})
        if target:
            return {**base, "type": "transferred", "queue": target}
        return {**base, "type": "ended"}
    return Problem(line_number, f"unknown queue_log event {event!r}", text)


def iter_queue_log(
    lines: Iterable[str],
    *,
    queue_map: Mapping[str, str] | None = None,
    agent_map: Mapping[str, str] | None = None,
    transfer_map: Mapping[str, str] | None = None,
) -> Iterator[tuple[int, dict[str, Any] | Problem | None]]:
    """(line number from 1, what ``parse_line`` made of it) for every line, lazily."""
    for number, line in enumerate(lines, start=1):
        yield (
            number,
            parse_line(
                number, line, queue_map=queue_map, agent_map=agent_map, transfer_map=transfer_map
            ),
        )


def parse_queue_log(
    lines: Iterable[str],
    queue_map: Mapping[str, str] | None = None,
    agent_map: Mapping[str, str] | None = None,
    transfer_map: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The call events of a queue_log, in file order, and the lines that gave none and why.

    A bad line never stops the parse; skipped member/housekeeping lines are neither.
    """
    events: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for _number, parsed in iter_queue_log(
        lines, queue_map=queue_map, agent_map=agent_map, transfer_map=transfer_map
    ):
        if isinstance(parsed, Problem):
            problems.append(parsed)
        elif parsed is not None:
            events.append(parsed)
    return events, problems


def parse_mapping(pairs: str | Iterable[str] | None, what: str = "mapping") -> dict[str, str]:
    """``"general=12345q,social_security=sbq"`` (ours=theirs) as {theirs: ours}.

    Several of their names may map to one of ours (``general=12345q,general=zhq``).
    Raises ValueError naming the malformed entry.
    """
    if pairs is None:
        return {}
    items = (
        pairs.split(",")
        if isinstance(pairs, str)
        else [part for chunk in pairs for part in chunk.split(",")]
    )
    mapping: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ValueError(f"{what} entry {item!r} is not of the form ours=theirs")
        mapping[theirs.strip()] = ours.strip()
    return mapping


def _ingest_batch(batch: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
    with transaction() as session:
        # History: no live agent states or screen pops for calls long over.
        result = service.ingest(session, [event for _, event in batch], follow_agents=False)
    report.accepted += result.accepted
    report.duplicates += result.duplicates
    report.rejected += result.rejected
    for (line_number, _event), outcome in zip(batch, result.results, strict=True):
        if outcome["status"] == "rejected":
            report.add_problem(Problem(line_number, f"refused: {outcome['error']}"))


def import_file(
    path: str | Path,
    *,
    batch: int = 1000,
    progress: Callable[[ImportReport], None] | None = None,
    queue_map: Mapping[str, str] | None = None,
    agent_map: Mapping[str, str] | None = None,
    transfer_map: Mapping[str, str] | None = None,
) -> ImportReport:
    """Import the queue_log at ``path`` through ``service.ingest``, ``batch`` events per
    transaction, calling ``progress`` after each batch.

    The file is streamed, so its size does not matter. Bad lines and refused events are
    reported with their line numbers and never stop the import; events already stored
    (an earlier import of the same lines) count as duplicates and change nothing.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = ImportReport()
    pending: list[tuple[int, dict[str, Any]]] = []
    # errors="replace": a stray byte in a caller name must not make the whole file unreadable.
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, parsed in iter_queue_log(
            handle, queue_map=queue_map, agent_map=agent_map, transfer_map=transfer_map
        ):
            report.lines = number
            if isinstance(parsed, Problem):
                report.add_problem(parsed)
            elif parsed is None:
                report.ignored += 1
            else:
                report.events += 1
                pending.append((number, parsed))
                if len(pending) >= batch:
                    _ingest_batch(pending, report)
                    pending = []
                    if progress:
                        progress(report)
    if pending:
        _ingest_batch(pending, report)
        if progress:
            progress(report)
    # Refusals are learnt a batch later than parse problems; show them all in file order.
    report.problems.sort(key=lambda p: p.line)
    return report
