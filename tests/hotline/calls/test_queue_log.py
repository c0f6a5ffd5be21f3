"""Importing an Asterisk queue_log: a crafted log of one morning, checked request by request.

The log (2026-11-27, times after 09:00:00 Asia/Shanghai = epoch 1764205200):

  c1  12345q  answered by agent1 after 12 s (one member did not answer first), talk 180 s
  c2  12345q  abandoned after 40 s
  c3  sbq     timed out after 300 s
  c4  12345q  answered after 8 s, blind-transferred to extension 8002 (the social-security
              seat) after 60 s; re-entering there 1 s later, answered by agent2 20 s after
              the re-entry, talk 100 s
  c5  12345q  answered after 5 s, attended transfer through a bridge (target unknown): ended
  c6  vipq    a queue we do not have: refused, with its line number

plus member/housekeeping lines, a blank line and four bad lines.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hotline.calls import queue_log
from hotline.calls import service as calls_service
from hotline.calls.cli import calls_app
from hotline.calls.models import CallEvent, CallOffer
from hotline.core import db

T0 = 1764205200  # 2026-11-27 09:00:00 +08:00

LOG_LINES = [
    f"{T0 - 600}|NONE|NONE|NONE|QUEUESTART|",
    f"{T0 - 590}|NONE|12345q|Local/agent1@agents/n|ADDMEMBER|",
    f"{T0 - 590}|NONE|12345q|Local/agent3@agents/n|ADDMEMBER|",
    f"{T0 - 590}|NONE|sbq|SIP/agent2|ADDMEMBER|",
    f"{T0 - 500}|NONE|sbq|SIP/agent2|UNPAUSE|",
    # c1
    f"{T0}|1764205200.11|12345q|NONE|ENTERQUEUE||13800000001|1",
    f"{T0 + 6}|1764205200.11|12345q|Local/agent3@agents/n|RINGNOANSWER|6000",
    f"{T0 + 12}|1764205200.11|12345q|Local/agent1@agents/n|CONNECT|12|1764205210.12|4",
    f"{T0 + 192}|1764205200.11|12345q|Local/agent1@agents/n|COMPLETECALLER|12|180|1",
    # c2
    f"{T0 + 30}|1764205230.13|12345q|NONE|ENTERQUEUE||13800000002|2",
    f"{T0 + 70}|1764205230.13|12345q|NONE|ABANDON|2|2|40",
    "",
    # c3
    f"{T0 + 100}|1764205300.14|sbq|NONE|ENTERQUEUE||13800000003|1",
    f"{T0 + 400}|1764205300.14|sbq|NONE|EXITWITHTIMEOUT|1|1|300",
    # c4
    f"{T0 + 200}|1764205400.15|12345q|NONE|ENTERQUEUE||13800000004|1",
    f"{T0 + 208}|1764205400.15|12345q|Local/agent3@agents/n|CONNECT|8|1764205408.16|3",
    f"{T0 + 268}|1764205400.15|12345q|Local/agent3@agents/n|BLINDTRANSFER|8002|from-int|8|60|1",
    f"{T0 + 269}|1764205400.15|sbq|NONE|ENTERQUEUE||13800000004|1",
    f"{T0 + 289}|1764205400.15|sbq|SIP/agent2|CONNECT|20|1764205489.17|2",
    f"{T0 + 389}|1764205400.15|sbq|SIP/agent2|COMPLETEAGENT|20|100|1",
    # c5
    f"{T0 + 500}|1764205700.18|12345q|NONE|ENTERQUEUE||13800000005|1",
    f"{T0 + 505}|1764205700.18|12345q|Local/agent1@agents/n|CONNECT|5|1764205705.19|2",
    f"{T0 + 565}|1764205700.18|12345q|Local/agent1@agents/n|ATTENDEDTRANSFER|BRIDGE|a1b2|5|60|1",
    # c6: an Asterisk queue without a mapping
    f"{T0 + 600}|1764205800.20|vipq|NONE|ENTERQUEUE||13800000006|1",
    # bad lines
    "garbage without separators",
    "yesterday|1764205900.21|12345q|NONE|ENTERQUEUE||13800000007|1",
    f"{T0 + 700}|1764205900.22|12345q|NONE|TELEPORT|x",
    f"{T0 + 710}|1764205900.23|12345q|NONE|CONNECT|3|x|1",
    f"{T0 + 800}|NONE|12345q|Local/agent1@agents/n|PAUSE|lunch",
]
# 1-based line numbers of what must be reported
VIPQ_LINE = 24
BAD_LINES = {25: "5 '|'", 26: "timestamp", 27: "TELEPORT", 28: "CONNECT without an agent"}
MAPS = {
    "queue_map": queue_log.parse_mapping("general=12345q,social_security=sbq"),
    "transfer_map": queue_log.parse_mapping("social_security=8002"),
}


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "queue_log"
    path.write_text("\n".join(LOG_LINES) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def queues(database):
    with db.transaction() as session:
        calls_service.seed_queues(session)


def offers() -> dict[tuple[str, int], CallOffer]:
    with db.transaction() as session:
        rows = session.scalars(select(CallOffer)).all()
    return {(row.call_id, row.seq): row for row in rows}


# -------------------------------------------------------------------------- pure parsing


def test_lines_become_call_events_with_times_queues_agents_and_reasons():
    events, problems = queue_log.parse_queue_log(LOG_LINES, **MAPS)

    by_call: dict[str, list[dict]] = {}
    for event in events:
        by_call.setdefault(event["call_id"], []).append(event)
    assert [e["type"] for e in by_call["1764205200.11"]] == ["offered", "answered", "ended"]
    offered, answered, _ = by_call["1764205200.11"]
    assert offered["queue"] == "general" and offered["caller"] == "13800000001"
    assert datetime.fromisoformat(offered["at"]) == at(0)
    assert answered["agent"] == "agent1" and datetime.fromisoformat(answered["at"]) == at(12)
    assert by_call["1764205230.13"][-1]["type"] == "abandoned"
    assert "reason" not in by_call["1764205230.13"][-1]
    assert by_call["1764205300.14"][-1] == {
        "event_id": f"ql:1764205300.14:{T0 + 400}:EXITWITHTIMEOUT:sbq",
        "call_id": "1764205300.14",
        "at": at(400).isoformat(),
        "type": "abandoned",
        "reason": "timeout",
    }
    transfer = by_call["1764205400.15"][2]
    assert transfer["type"] == "transferred" and transfer["queue"] == "social_security"
    assert by_call["1764205700.18"][-1]["type"] == "ended"  # a bridge: target unknown
    assert by_call["1764205800.20"][0]["queue"] == "vipq"  # unmapped: the name as it is
    assert sorted(p.line for p in problems) == sorted(BAD_LINES)
    for problem in problems:
        assert BAD_LINES[problem.line] in problem.reason


def test_event_ids_depend_on_the_line_not_on_its_position():
    first, _ = queue_log.parse_queue_log(LOG_LINES, **MAPS)
    rotated, _ = queue_log.parse_queue_log(["", "1|NONE|NONE|NONE|QUEUESTART|", *LOG_LINES[7:]])
    ids = {e["event_id"] for e in first}
    assert len(ids) == len(first)
    assert {e["event_id"] for e in rotated} <= ids
    assert all(len(event_id) <= 64 for event_id in ids)


def test_a_very_long_call_id_still_gives_a_short_stable_event_id():
    line = f"{T0}|{'x' * 40}|{'q' * 60}|NONE|ENTERQUEUE||1|1"
    (event,), problems = queue_log.parse_queue_log([line])
    again, _ = queue_log.parse_queue_log([line])
    assert problems == [] and len(event["event_id"]) <= 64
    assert again[0]["event_id"] == event["event_id"]


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("Local/agent1@agents/n", "agent1"),
        ("SIP/agent1", "agent1"),
        ("PJSIP/1001", "1001"),
        ("agent7", "agent7"),
        ("SIP/1001-0000001a", "1001-0000001a"),
    ],
)
def test_member_names_become_user_names(member, expected):
    assert queue_log.member_to_username(member) == expected


def test_agent_map_wins_over_stripping():
    assert queue_log.member_to_username("PJSIP/1001", {"1001": "li.ming"}) == "li.ming"
    assert queue_log.member_to_username("PJSIP/1001", {"PJSIP/1001": "wang"}) == "wang"


def test_mapping_option_is_ours_equals_theirs():
    assert queue_log.parse_mapping("general=12345q, general=zhq,social_security=sbq") == {
        "12345q": "general",
        "zhq": "general",
        "sbq": "social_security",
    }
    with pytest.raises(ValueError, match="ours=theirs"):
        queue_log.parse_mapping("general")


# ------------------------------------------------------------------------ into the database


def test_import_derives_the_requests_and_reports_bad_lines(queues, log_file):
    seen: list[int] = []
    report = queue_log.import_file(
        log_file, batch=4, progress=lambda r: seen.append(r.accepted), **MAPS
    )

    assert report.lines == len(LOG_LINES)
    assert report.events == 17
    assert (report.accepted, report.duplicates, report.rejected) == (16, 0, 1)
    assert report.ignored == 8  # member and housekeeping lines, RINGNOANSWER and a blank
    assert [p.line for p in report.problems] == sorted([VIPQ_LINE, *BAD_LINES])
    vipq = next(p for p in report.problems if p.line == VIPQ_LINE)
    assert "unknown queue 'vipq'" in vipq.reason
    assert len(seen) == 5 and seen == sorted(seen)  # one progress call per batch of 4

    rows = offers()
    c1 = rows[("1764205200.11", 0)]
    assert (c1.queue, c1.outcome, c1.wait_seconds, c1.agent) == (
        "general",
        "answered",
        12,
        "agent1",
    )
    assert c1.talk_seconds == 180 and c1.caller == "13800000001"
    c2 = rows[("1764205230.13", 0)]
    assert (c2.outcome, c2.wait_seconds) == ("abandoned", 40)
    c3 = rows[("1764205300.14", 0)]
    assert (c3.queue, c3.outcome, c3.wait_seconds) == ("social_security", "timeout", 300)
    c4_general, c4_social = rows[("1764205400.15", 0)], rows[("1764205400.15", 1)]
    assert (c4_general.outcome, c4_general.wait_seconds, c4_general.agent) == (
        "answered",
        8,
        "agent3",
    )
    assert c4_general.transferred_at == at(268) and c4_general.talk_seconds == 60
    assert (c4_social.queue, c4_social.outcome, c4_social.agent) == (
        "social_security",
        "answered",
        "agent2",
    )
    # The wait starts at the re-entry (ENTERQUEUE at 269), not at the transfer line (268).
    assert c4_social.offered_at == at(269) and c4_social.wait_seconds == 20
    assert c4_social.talk_seconds == 100
    c5 = rows[("1764205700.18", 0)]
    assert (c5.outcome, c5.wait_seconds, c5.talk_seconds) == ("answered", 5, 60)
    assert set(rows) == {
        ("1764205200.11", 0),
        ("1764205230.13", 0),
        ("1764205300.14", 0),
        ("1764205400.15", 0),
        ("1764205400.15", 1),
        ("1764205700.18", 0),
    }


def test_importing_the_same_file_again_changes_nothing(queues, log_file):
    queue_log.import_file(log_file, **MAPS)
    before = {key: (o.outcome, o.wait_seconds, o.talk_seconds) for key, o in offers().items()}
    with db.transaction() as session:
        stored = len(session.scalars(select(CallEvent.event_id)).all())

    again = queue_log.import_file(log_file, batch=7, **MAPS)

    assert (again.accepted, again.duplicates, again.rejected) == (0, 16, 1)
    after = {key: (o.outcome, o.wait_seconds, o.talk_seconds) for key, o in offers().items()}
    assert after == before
    with db.transaction() as session:
        assert len(session.scalars(select(CallEvent.event_id)).all()) == stored


def test_command_prints_progress_summary_and_problems(queues, log_file):
    result = CliRunner().invoke(
        calls_app,
        [
            "import-queue-log",
            str(log_file),
            "--queue-map",
            "general=12345q,social_security=sbq",
            "--transfer-map",
            "social_security=8002",
        ],
    )
    assert result.exit_code == 1, result.output  # a partial import: some lines had problems
    assert "16 new, 0 already known, 1 refused" in result.output
    assert f"line {VIPQ_LINE}: refused: unknown queue 'vipq'" in result.output
    assert "line 27: unknown queue_log event 'TELEPORT'" in result.output
    assert len(offers()) == 6


def test_command_refuses_a_malformed_mapping(log_file):
    result = CliRunner().invoke(calls_app, ["import-queue-log", str(log_file), "--queue-map", "x"])
    assert result.exit_code == 2
    assert "ours=theirs" in result.output


def test_command_exits_0_when_every_line_was_imported(queues, tmp_path):
    clean = tmp_path / "clean_queue_log"
    clean.write_text(
        "1764300000|c1|12345q|NONE|ENTERQUEUE||13800000000|1\n"
        "1764300004|c1|12345q|SIP/agent1|CONNECT|4|c1.1|2\n"
        "1764300064|c1|12345q|SIP/agent1|COMPLETECALLER|4|60|1\n"
    )
    result = CliRunner().invoke(
        calls_app, ["import-queue-log", str(clean), "--queue-map", "general=12345q"]
    )
    assert result.exit_code == 0, result.output
    assert "3 new, 0 already known, 0 refused" in result.output
    assert "0 problem(s)" in result.output
