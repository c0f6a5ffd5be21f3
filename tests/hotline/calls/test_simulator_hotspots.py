"""The simulator injects hot spots (热点) into ordinary or typhoon traffic, in varied words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline.calls import simulator as sim

START = datetime(2026, 6, 3, 1, 0, tzinfo=UTC)  # 09:00 in Zhuhai


def tickets(config: sim.SimulationConfig, minutes: int = 90) -> list[sim.SimItem]:
    items = sim.generate_traffic(
        config, start=START, seed=5, until=START + timedelta(minutes=minutes), drain=False
    )
    return [i for i in items if i.kind == "ticket"]


def test_an_injected_incident_brings_its_callers_in_their_own_words():
    plain = tickets(sim.SimulationConfig())
    plan = sim.HotspotPlan.parse("incident@20:8/30")
    assert plan == sim.HotspotPlan("incident", 20.0, 8, 30)
    injected = tickets(sim.SimulationConfig(hotspots=(plan,)))
    extra = [i for i in injected if "call_id" not in i.body]
    assert len(injected) == len(plain) + 8 and len(extra) == 8
    assert all(
        START + timedelta(minutes=20) <= i.at <= START + timedelta(minutes=50) for i in extra
    )
    assert len({i.body["content"] for i in extra}) >= 6  # not one sentence repeated
    # Ordinary tickets vary as well: no single sentence dominates the general desk.
    general = [i.body["content"] for i in plain if i.body["address"]]
    assert len(set(general)) > 0.8 * len(general)


def test_a_surge_in_a_typhoon_day():
    storm = sim.Surge(start=0, end=None)
    plan = sim.HotspotPlan("surge", 0, 15, 60)
    items = tickets(sim.SimulationConfig(surge=storm, hotspots=(plan,)), minutes=60)
    extra = [i for i in items if "call_id" not in i.body]
    assert len(extra) == 15
    assert len({i.body["matter_code"] for i in extra}) <= 3  # one matter (a few misfiled)


@pytest.mark.parametrize("text", ["fire@1:5/5", "incident@x", "surge@10:0/30"])
def test_bad_plans_are_refused(text):
    with pytest.raises(ValueError):
        sim.HotspotPlan.parse(text)
