"""What-if replay: past tickets re-routed under draft rules, tallied per department."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from dispatch.routing import service as routing_service
from dispatch.tickets import service as ticket_service
from hotline.cli import app
from hotline.core import db

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def past_tickets(database):
    with db.transaction() as session:
        routing_service.seed_reference(session)
    cases = [
        ("商家拒绝退款", "唐家湾镇金鼎", "SC-01", datetime(2026, 3, 2, 10, tzinfo=TZ)),
        ("商家拒绝退款", "唐家湾镇会同村", "SC-01", datetime(2026, 3, 3, 10, tzinfo=TZ)),
        ("商家拒绝退款", "斗门区井岸镇", "SC-01", datetime(2026, 3, 4, 10, tzinfo=TZ)),
        ("公交不停站", "拱北", "JT-02", datetime(2026, 3, 5, 10, tzinfo=TZ)),
        ("商家拒绝退款", "唐家湾镇", "SC-01", datetime(2025, 12, 1, 10, tzinfo=TZ)),  # too early
    ]
    with db.transaction() as session:
        for content, address, matter, received_at in cases:
            ticket_service.create(
                session,
                actor="agent1",
                channel="phone",
                content=content,
                address=address,
                matter_code=matter,
                received_at=received_at,
            )


def test_replay_reports_per_department_what_would_move(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "matters:\n"
        "  - {code: SC-01, level: city, type: market}\n"
        "  - {code: JT-02, level: area, type: transport}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # JT-02 at area level stays with the city: 香洲区 (拱北) has no transport department.
    assert report["tickets"] == 4 and report["moved"] == 3
    moves = {(m["from"], m["to"]): m["tickets"] for m in report["moves"]}
    assert moves == {("GX-MARKET", "C-MARKET"): 2, ("DM-MARKET", "C-MARKET"): 1}
    assert report["per_department"]["GX-MARKET"] == {"before": 2, "after": 0, "lose": 2, "gain": 0}
    assert report["per_department"]["C-MARKET"]["gain"] == 3

    table = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert "GX-MARKET" in table.output and "GX-MARKET → C-MARKET: 2" in table.output


def test_deactivating_a_department_in_the_draft(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "departments:\n"
        "  - {code: GX-MARKET, name: x, level: area, area: GX, types: [market], active: false}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01", "--json"]
    )
    moves = {(m["from"], m["to"]): m["tickets"] for m in json.loads(result.output)["moves"]}
    assert moves == {("GX-MARKET", "XZ-MARKET"): 2}


def test_bad_drafts_are_clear_errors(past_tickets, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text("matters:\n  - {code: NOPE, level: city, type: market}\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert result.exit_code == 2 and "unknown matter" in result.output
    draft.write_text("tickets: []\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(draft), "--since", "2026-01-01"]
    )
    assert result.exit_code == 2
    missing = CliRunner().invoke(
        app, ["route", "replay", "--rules", str(tmp_path / "none.yaml"), "--since", "2026-01-01"]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output
