"""Which topics a client gets: what it asks for, within what its role may see."""

from hotline.core.auth import Principal
from hotline.core.topics import narrow, visible_topic_prefixes

AGENT = visible_topic_prefixes(Principal(1, "amy", frozenset({"agent"}), frozenset()))
DEPARTMENT = visible_topic_prefixes(
    Principal(2, "xz", frozenset({"department"}), frozenset({"XZ-MARKET", "T-440402005"}))
)


def test_nothing_asked_for_is_everything_visible():
    assert narrow(AGENT, None) == AGENT
    assert narrow(AGENT, ["", " "]) == AGENT


def test_a_narrower_request_is_granted_as_asked():
    assert narrow(AGENT, ["agent.amy", "calls.agents.amy"]) == ["agent.amy", "calls.agents.amy"]


def test_a_broader_request_is_cut_down_to_what_is_visible():
    assert narrow(DEPARTMENT, ["tickets."]) == [
        "tickets.dept.T-440402005",
        "tickets.dept.XZ-MARKET",
    ]


def test_topics_of_others_are_never_granted():
    assert narrow(DEPARTMENT, ["agent.amy", "calls.", "tickets.dept.C-HRSS"]) == []
    assert narrow(AGENT, ["agent.bob"]) == []


def test_overlapping_requests_keep_the_broader_pattern_once():
    assert narrow(AGENT, ["calls.", "calls.agents.amy", "calls.queues"]) == ["calls."]
