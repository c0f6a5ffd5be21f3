"""Pure parts of the Open311 endpoint: dates, the POST form, and the XML it writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from dispatch.open311.cli import open311_app
from dispatch.open311.router import to_xml
from dispatch.open311.service import Open311Error, date_range, parse_datetime, parse_submission

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
PLACE = [("service_code", "SC-02"), ("address_string", "唐家湾镇")]


def test_dates_accept_w3c_forms_and_read_a_bare_time_in_local_time():
    assert parse_datetime("2026-01-01T00:00:00Z", "d") == datetime(2026, 1, 1, tzinfo=UTC)
    # "+08:00" sent unencoded in a query string arrives as " 08:00"
    assert parse_datetime("2026-01-01T08:00:00 08:00", "d") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_datetime("2026-01-01T08:00:00", "d") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(Open311Error) as raised:
        parse_datetime("01/02/2026", "start_date")
    assert raised.value.status_code == 400 and "start_date" in raised.value.message


def test_date_range_defaults_and_limits():
    assert date_range(None, None, NOW) == (NOW - timedelta(days=90), NOW)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert date_range("2026-01-01T00:00:00Z", None, NOW) == (start, start + timedelta(days=90))
    assert date_range(None, "2026-01-01T00:00:00Z", NOW) == (start - timedelta(days=90), start)
    assert date_range("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", NOW)[1] - start == (
        timedelta(days=90)
    )
    for start_date, end_date in [
        ("2026-01-01T00:00:00Z", "2026-04-01T00:00:01Z"),
        ("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    ]:
        with pytest.raises(Open311Error) as raised:
            date_range(start_date, end_date, NOW)
        assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ([("first_name", "三"), ("last_name", "张")], "张三"),
        ([("first_name", "John"), ("last_name", "Smith")], "John Smith"),
        ([("name", "李四"), ("first_name", "x")], "李四"),
        ([("last_name", "王")], "王"),
    ],
)
def test_names_follow_their_script(fields, name):
    assert parse_submission(PLACE + fields).name == name


def test_the_form_keeps_attributes_and_normalises_the_phone():
    sub = parse_submission(
        PLACE
        + [
            ("phone", "+86 138-1234 5678"),
            ("attribute[floor]", "3"),
            ("attribute[kinds][]", "a"),
            ("attribute[kinds][]", "b"),
            ("description", "  过期食品  "),
        ]
    )
    assert sub.phone == "+8613812345678"
    assert sub.attributes == {"floor": "3", "kinds": ["a", "b"]}
    assert sub.description == "过期食品"
    assert sub.lat is None and sub.address == "唐家湾镇"


def test_xml_is_well_formed_whatever_the_text():
    body = [{"description": "a\x00b\x1fc <&> \ufffe", "flag": True, "lat": None}]
    root = ET.fromstring(to_xml("service_requests", "request", body))
    request = root.find("request")
    assert request.findtext("description") == "abc <&> "
    assert request.findtext("flag") == "true" and request.find("lat").text is None


def test_service_definition_lists_nest_as_the_specification_shows():
    definition = {
        "service_code": "X",
        "attributes": [{"code": "k", "values": [{"key": "1", "name": "one"}]}],
    }
    root = ET.fromstring(to_xml("service_definition", None, definition))
    assert root.find("attributes/attribute/values/value/name").text == "one"


@pytest.mark.parametrize("words", [[], ["key"], ["key", "create"], ["key", "revoke"]])
def test_every_subcommand_has_help(words):
    result = CliRunner().invoke(open311_app, [*words, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
