"""A queue's figures two ways: by the queue that answered, and by the queue first entered.

Calls on 2026-11-27 from 10:00 (Asia/Shanghai), social_security (社保专席) overflowing to general:

  s1 social_security  answered after 10 s                       within
  s2 social_security  overflowed to general at 30 s, answered at 35 s    late
  s3 social_security  overflowed to general at 30 s, abandoned at 60 s   abandoned
  s4 social_security  transferred to general while waiting, answered at 12 s   within
  g1 general          answered after 5 s                        within
  g2 general          answered after 30 s                       late
  s5 social_security  overflowed to general, never ends         lost (days have passed)

By answering queue: social_security 1 offered, 1 within (1.0); general 5 offered, 2 within
(0.4), 1 abandoned, 1 lost. By first queue: social_security 4 offered, 2 within (0.5),
1 abandoned, 1 lost; general 2 offered, 1 within (0.5). All queues: 6 offered, 3 within.
"""

from datetime import timedelta

import pytest

from hotline.core import db
from tests.hotline.kpi.test_answer_rate import BASE, DAY, ev, post, queues, supervisor  # noqa: F401

EDGE = (BASE, BASE + timedelta(minutes=30))  # read request by request, not from the buckets


def overflow_stream() -> list[dict]:
    return [
        ev("s1-o", "s1", "offered", 0, queue="social_security"),
        ev("s1-a", "s1", "answered", 10, agent="agent1"),
        ev("s1-e", "s1", "ended", 70),
        ev("s2-o", "s2", "offered", 100, queue="social_security"),
        ev("s2-o2", "s2", "offered", 130, queue="general"),
        ev("s2-a", "s2", "answered", 135, agent="agent2"),
        ev("s2-e", "s2", "ended", 200),
        ev("s3-o", "s3", "offered", 200, queue="social_security"),
        ev("s3-o2", "s3", "offered", 230, queue="general"),
        ev("s3-x", "s3", "abandoned", 260),
        ev("s4-o", "s4", "offered", 300, queue="social_security"),
        ev("s4-t", "s4", "transferred", 310, queue="general"),
        ev("s4-a", "s4", "answered", 312, agent="agent1"),
        ev("s4-e", "s4", "ended", 400),
        ev("g1-o", "g1", "offered", 400, queue="general"),
        ev("g1-a", "g1", "answered", 405, agent="agent2"),
        ev("g1-e", "g1", "ended", 500),
        ev("g2-o", "g2", "offered", 500, queue="general"),
        ev("g2-a", "g2", "answered", 530, agent="agent1"),
        ev("g2-e", "g2", "ended", 600),
        ev("s5-o", "s5", "offered", 600, queue="social_security"),
        ev("s5-o2", "s5", "offered", 630, queue="general"),
    ]


def figures(client, headers, window, queue=None, by=None):
    params = {"start": window[0].isoformat(), "end": window[1].isoformat()}
    if queue:
        params["queue"] = queue
    if by:
        params["by"] = by
    response = client.get("/api/v1/kpi/answer-rate", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return (
        body["by"],
        body["offered"],
        body["answered"],
        body["answered_within_threshold"],
        body["abandoned"],
        body["lost"],
        body["rate"],
    )


EXPECTED = {
    ("social_security", "answering_queue"): ("answering_queue", 1, 1, 1, 0, 0, 1.0),
    ("general", "answering_queue"): ("answering_queue", 5, 4, 2, 1, 1, 0.4),
    ("social_security", "first_queue"): ("first_queue", 4, 3, 2, 1, 1, 0.5),
    ("general", "first_queue"): ("first_queue", 2, 2, 1, 0, 0, 0.5),
    (None, "answering_queue"): ("answering_queue", 6, 5, 3, 1, 1, 0.5),
    (None, "first_queue"): ("first_queue", 6, 5, 3, 1, 1, 0.5),
}


@pytest.mark.parametrize("window", [DAY, EDGE], ids=["buckets", "requests"])
def test_overflowed_calls_count_in_either_queue_as_asked(client, supervisor, window):  # noqa: F811
    post(client, overflow_stream())
    for (queue, by), expected in EXPECTED.items():
        assert figures(client, supervisor, window, queue, by) == expected, (queue, by)
    # The default is the queue that answered, as before.
    assert (
        figures(client, supervisor, window, "general") == EXPECTED[("general", "answering_queue")]
    )


def test_first_queue_figures_survive_a_rebuild_and_events_in_any_order(client, supervisor):  # noqa: F811
    from hotline.kpi import service as kpi_service

    stream = overflow_stream()
    for event in reversed(stream):
        post(client, [event])
    with db.transaction() as session:
        kpi_service.rebuild_buckets(session)
    for (queue, by), expected in EXPECTED.items():
        assert figures(client, supervisor, DAY, queue, by) == expected, (queue, by)


def test_an_unknown_basis_is_refused(client, supervisor):  # noqa: F811
    params = {"start": DAY[0].isoformat(), "end": DAY[1].isoformat(), "by": "caller"}
    response = client.get("/api/v1/kpi/answer-rate", params=params, headers=supervisor)
    assert response.status_code == 422


def test_buckets_kept_before_the_first_queue_rows_are_recounted_by_themselves(client, supervisor):  # noqa: F811
    from sqlalchemy import delete

    from hotline.calls import service as calls_service
    from hotline.calls.models import KpiBucket
    from hotline.core.models import Counter

    post(client, overflow_stream())
    with db.transaction() as session:  # as a database of the previous release left them
        session.execute(delete(KpiBucket).where(KpiBucket.shard >= 100))
        session.execute(delete(Counter).where(Counter.name == "kpi_basis.bucket_layout"))
    calls_service.forget_bucket_basis()
    for (queue, by), expected in EXPECTED.items():
        assert figures(client, supervisor, DAY, queue, by) == expected, (queue, by)
