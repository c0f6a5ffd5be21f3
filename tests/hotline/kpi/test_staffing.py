"""Erlang C / Erlang A staffing against published values and independent exact oracles."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.kpi.staffing import (
    StaffingTargetUnreachableError,
    agents_for_service_level,
    erlang_a_metrics,
    erlang_b_blocking_probability,
    erlang_c_service_level,
    erlang_c_wait_probability,
    half_hour_requirements,
    regularized_lower_gamma,
)

# ------------------------------------------------------------------------------ oracles


def erlang_c_by_hand(traffic: Fraction, agents: int) -> Fraction:
    """The textbook formula, in exact rationals with factorials (fine for small n)."""
    top = traffic**agents / math.factorial(agents) * Fraction(agents) / (agents - traffic)
    bottom = sum(traffic**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


def service_level_by_hand(
    arrivals_per_hour: int, aht_s: int, agents: int, threshold_s: int
) -> float:
    traffic = Fraction(arrivals_per_hour * aht_s, 3600)
    wait = erlang_c_by_hand(traffic, agents)
    return 1 - float(wait) * math.exp(-float(agents - traffic) * threshold_s / aht_s)


def erlang_a_by_ctmc(
    arrival_rate: float, aht_s: float, agents: int, patience_s: float, threshold_s: float
) -> dict[str, float]:
    """M/M/n+M solved directly: birth-death stationary law plus a tagged-caller chain.

    Shares no formula with the module: the stationary law comes from detailed balance on a
    truncated state space, abandonment from Little's law on the queue, and the service
    level from uniformising the tagged caller's own pure-death chain.
    """
    mu, theta = 1.0 / aht_s, 1.0 / patience_s
    queue_cap = 400
    weights = [1.0]
    for k in range(1, agents + queue_cap + 1):
        death = min(k, agents) * mu + max(k - agents, 0) * theta
        weights.append(weights[-1] * arrival_rate / death)
    total = sum(weights)
    pi = [w / total for w in weights]
    wait_probability = sum(pi[agents:])
    mean_queue = sum((k - agents) * p for k, p in enumerate(pi) if k > agents)
    abandon_probability = theta * mean_queue / arrival_rate

    # Tagged caller who found j callers queued ahead: state i = callers still ahead.
    # From i the head moves at rate n·mu + i·theta; the caller abandons at rate theta.
    ahead = pi[agents:]
    uniform_rate = agents * mu + (len(ahead) + 1) * theta
    poisson_mean = uniform_rate * threshold_s
    state = list(ahead)
    answered = 0.0
    poisson_weight = math.exp(-poisson_mean)
    cumulative = 0.0  # P(answered within m uniformised steps)
    within = 0.0
    for step in range(int(poisson_mean + 12 * math.sqrt(poisson_mean) + 50)):
        within += poisson_weight * cumulative
        poisson_weight *= poisson_mean / (step + 1)
        moved = [(agents * mu + i * theta) / uniform_rate * p for i, p in enumerate(state)]
        stay = [
            (1 - (agents * mu + i * theta + theta) / uniform_rate) * p for i, p in enumerate(state)
        ]
        answered += moved[0]
        cumulative = answered
        state = [stay[i] + (moved[i + 1] if i + 1 < len(state) else 0.0) for i in range(len(state))]
    service_level = (1 - wait_probability) + within
    return {
        "wait_probability": wait_probability,
        "abandon_probability": abandon_probability,
        "mean_wait_s": mean_queue / arrival_rate,
        "service_level": service_level,
    }


# ------------------------------------------------------------------------------ Erlang C


def test_thirty_erlangs_with_37_agents_answer_91_3_percent_in_15_seconds():
    # 1 call every 6 s, 180 s handle time: 30 Erlangs.  Published: 91.3 %.
    service_level = erlang_c_service_level(1 / 6, 180, 37, 15)
    assert service_level == pytest.approx(0.913, abs=0.0005)
    assert service_level == pytest.approx(service_level_by_hand(600, 180, 37, 15), rel=1e-12)
    assert erlang_c_wait_probability(30, 37) == pytest.approx(0.1553, abs=0.00005)


def test_classic_360_calls_an_hour_240_s_80_in_20_needs_29_agents():
    # 360 calls/h x 240 s = 24 Erlangs.  By hand: 28 agents give 76.1 %, 29 give 84.0 %.
    assert service_level_by_hand(360, 240, 28, 20) == pytest.approx(0.7613, abs=0.0001)
    assert service_level_by_hand(360, 240, 29, 20) == pytest.approx(0.8403, abs=0.0001)

    result = agents_for_service_level(360 / 3600, 240, 20, 0.80)

    assert result.agents == 29
    assert result.model == "erlang_c"
    assert result.offered_load_erlangs == pytest.approx(24)
    assert result.service_level == pytest.approx(service_level_by_hand(360, 240, 29, 20))
    assert result.wait_probability == pytest.approx(0.2423, abs=0.0001)
    assert result.mean_wait_s == pytest.approx(11.63, abs=0.01)  # ASA = C·AHT/(n - A)
    assert result.occupancy == pytest.approx(24 / 29)
    assert result.abandon_probability == 0.0


@pytest.mark.parametrize("traffic", [Fraction(1, 2), Fraction(7, 3), Fraction(24), Fraction(48)])
def test_erlang_c_matches_the_factorial_formula(traffic):
    for agents in range(math.floor(traffic) + 1, math.floor(traffic) + 15):
        assert erlang_c_wait_probability(float(traffic), agents) == pytest.approx(
            float(erlang_c_by_hand(traffic, agents)), rel=1e-12
        )


def test_erlang_b_recursion_handles_a_thousand_agents_without_overflow():
    # log-space oracle: B = exp(log term_n - log sum_k term_k), term_k = A^k / k!
    traffic, agents = 950.0, 1000
    log_terms = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents + 1)]
    peak = max(log_terms)
    log_sum = peak + math.log(math.fsum(math.exp(t - peak) for t in log_terms))
    expected = math.exp(log_terms[-1] - log_sum)
    assert erlang_b_blocking_probability(traffic, agents) == pytest.approx(expected, rel=1e-9)
    wait = erlang_c_wait_probability(traffic, agents)
    assert 0 < wait < 1 and math.isfinite(wait)
    result = agents_for_service_level(5000 / 180, 180, 20, 0.8, max_agents=6000)
    assert 5000 < result.agents < 5100 and result.service_level >= 0.8


def test_unstable_erlang_c_queue():
    assert erlang_c_wait_probability(30, 30) == 1.0
    assert erlang_c_service_level(1 / 6, 180, 29, 15) == 0.0
    assert erlang_c_wait_probability(0, 3) == 0.0
    assert erlang_c_service_level(0, 180, 0, 15) == 1.0


def test_half_hour_requirements_staff_each_slot_on_its_own_volume():
    volumes = [0, 12, 90, 360, 45]
    results = half_hour_requirements(volumes, aht_s=240, threshold_s=20, target=0.8)

    assert [r.agents for r in results] == [
        agents_for_service_level(v / 1800, 240, 20, 0.8).agents if v else 0 for v in volumes
    ]
    assert results[0].agents == 0 and results[0].service_level == 1.0
    # 360 calls in half an hour = 48 Erlangs: 53 agents miss 80 %, 54 make it (by hand).
    assert service_level_by_hand(720, 240, 53, 20) < 0.8 <= service_level_by_hand(720, 240, 54, 20)
    assert results[3].agents == 54
    assert all(r.service_level >= 0.8 for r in results)
    assert results[2].agents < results[3].agents


def test_half_hour_requirements_with_erlang_a_need_fewer_agents():
    with_abandons = half_hour_requirements([360], 240, 20, 0.8, model="erlang_a", patience_s=120)[0]
    assert with_abandons.model == "erlang_a"
    assert with_abandons.agents <= 54
    assert with_abandons.abandon_probability > 0


# ------------------------------------------------------------------------------ Erlang A


@pytest.mark.parametrize(
    ("arrival_rate", "agents", "patience_s"),
    [(1 / 20, 6, 60), (1 / 20, 9, 300), (1 / 20, 11, 300), (1 / 20, 11, 30), (0.2, 40, 120)],
)
def test_erlang_a_matches_the_exact_markov_chain(arrival_rate, agents, patience_s):
    metrics = erlang_a_metrics(arrival_rate, 180, agents, patience_s, 20)
    oracle = erlang_a_by_ctmc(arrival_rate, 180, agents, patience_s, 20)

    assert metrics.wait_probability == pytest.approx(oracle["wait_probability"], rel=1e-9)
    assert metrics.abandon_probability == pytest.approx(oracle["abandon_probability"], rel=1e-9)
    assert metrics.mean_wait_s == pytest.approx(oracle["mean_wait_s"], rel=1e-9)
    assert metrics.service_level == pytest.approx(oracle["service_level"], abs=1e-9)


@pytest.mark.parametrize("agents", [31, 33, 37, 45])
def test_erlang_a_with_very_long_patience_converges_to_erlang_c(agents):
    erlang_c_sl = erlang_c_service_level(1 / 6, 180, agents, 15)
    erlang_c_wait = erlang_c_wait_probability(30, agents)
    previous_gap = math.inf
    for patience_s in (1e4, 1e6, 1e8, 1e9):
        metrics = erlang_a_metrics(1 / 6, 180, agents, patience_s, 15)
        gap = abs(metrics.service_level - erlang_c_sl)
        assert gap <= previous_gap
        previous_gap = gap
    # The gap shrinks like 1/patience; at 1e9 s it is about 1e-6 even at 97 % occupancy.
    assert metrics.service_level == pytest.approx(erlang_c_sl, abs=2e-6)
    assert metrics.wait_probability == pytest.approx(erlang_c_wait, abs=2e-6)
    assert metrics.abandon_probability < 1e-6
    never_hangs_up = erlang_a_metrics(1 / 6, 180, agents, math.inf, 15)
    assert never_hangs_up.service_level == erlang_c_sl
    assert never_hangs_up.wait_probability == pytest.approx(erlang_c_wait, rel=1e-12)
    assert never_hangs_up.abandon_probability == 0.0
    assert metrics.mean_wait_s == pytest.approx(erlang_c_wait * 180 / (agents - 30), rel=1e-3)


def test_short_patience_abandons_more_and_waits_less():
    patient = erlang_a_metrics(1 / 6, 180, 32, 600, 15)
    impatient = erlang_a_metrics(1 / 6, 180, 32, 30, 15)

    assert impatient.abandon_probability > 2 * patient.abandon_probability
    assert impatient.wait_probability < patient.wait_probability
    assert impatient.mean_wait_s < patient.mean_wait_s


def test_erlang_a_is_stable_with_fewer_agents_than_erlangs():
    metrics = erlang_a_metrics(1 / 6, 180, 25, 60, 15)  # 30 Erlangs, 25 agents
    oracle = erlang_a_by_ctmc(1 / 6, 180, 25, 60, 15)
    # Agents can carry at most 25 of the 30 Erlangs, so at least 1/6 must hang up.
    assert metrics.abandon_probability >= 1 - 25 / 30
    assert metrics.abandon_probability == pytest.approx(oracle["abandon_probability"], rel=1e-9)
    assert metrics.service_level == pytest.approx(oracle["service_level"], abs=1e-9)
    assert 0 < metrics.occupancy <= 1


def test_erlang_a_at_a_thousand_agents_is_finite_and_consistent():
    metrics = erlang_a_metrics(1100 / 180, 180, 1000, 120, 20)  # overloaded by 10 %
    assert metrics.abandon_probability == pytest.approx(1 - 1000 / 1100, rel=0.05)
    assert 0 <= metrics.service_level <= 1
    long_patience = erlang_a_metrics(990 / 180, 180, 1000, 1e7, 20)
    assert long_patience.service_level == pytest.approx(
        erlang_c_service_level(990 / 180, 180, 1000, 20), abs=1e-4
    )


def test_erlang_a_staffing_meets_target_with_fewer_agents_than_erlang_c():
    erlang_c = agents_for_service_level(1 / 6, 180, 15, 0.9)
    erlang_a = agents_for_service_level(1 / 6, 180, 15, 0.9, model="erlang_a", patience_s=120)
    assert erlang_a.model == "erlang_a"
    assert erlang_a.service_level >= 0.9
    assert erlang_a_metrics(1 / 6, 180, erlang_a.agents - 1, 120, 15).service_level < 0.9
    assert erlang_a.agents <= erlang_c.agents
    infinite = agents_for_service_level(1 / 6, 180, 15, 0.9, model="erlang_a", patience_s=math.inf)
    assert infinite.agents == erlang_c.agents and infinite.model == "erlang_a"


# ------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(
    traffic=st.floats(min_value=0.1, max_value=200),
    aht_s=st.floats(min_value=30, max_value=900),
    extra=st.integers(min_value=0, max_value=40),
    threshold_s=st.floats(min_value=0, max_value=120),
    patience_s=st.floats(min_value=5, max_value=1e5),
)
def test_more_agents_never_lower_service_level(traffic, aht_s, extra, threshold_s, patience_s):
    rate = traffic / aht_s
    agents = max(1, math.floor(traffic * 0.7) + extra)
    c_now = erlang_c_service_level(rate, aht_s, agents, threshold_s)
    c_next = erlang_c_service_level(rate, aht_s, agents + 1, threshold_s)
    assert c_next >= c_now - 1e-12
    assert erlang_c_wait_probability(traffic, agents + 1) <= erlang_c_wait_probability(
        traffic, agents
    )
    a_now = erlang_a_metrics(rate, aht_s, agents, patience_s, threshold_s)
    a_next = erlang_a_metrics(rate, aht_s, agents + 1, patience_s, threshold_s)
    assert a_next.service_level >= a_now.service_level - 1e-9
    assert a_next.wait_probability <= a_now.wait_probability + 1e-12
    assert a_next.abandon_probability <= a_now.abandon_probability + 1e-12
    for metrics in (a_now, a_next):
        assert 0 <= metrics.abandon_probability <= metrics.wait_probability <= 1
        assert 0 <= metrics.service_level <= 1


@settings(max_examples=80, deadline=None)
@given(
    traffic=st.floats(min_value=0.5, max_value=300),
    target=st.floats(min_value=0.5, max_value=0.95),
    threshold_s=st.integers(min_value=5, max_value=60),
)
def test_staffing_returns_the_smallest_sufficient_agent_count(traffic, target, threshold_s):
    rate = traffic / 240
    result = agents_for_service_level(rate, 240, threshold_s, target)
    assert result.service_level >= target
    assert erlang_c_service_level(rate, 240, result.agents - 1, threshold_s) < target


# ------------------------------------------------------------------ incomplete gamma


@pytest.mark.parametrize("a", [1, 3, 10, 50])
@pytest.mark.parametrize("z", [0.5, 2.0, 9.0, 30.0, 49.0, 52.0, 80.0])
def test_regularized_lower_gamma_matches_the_integer_closed_form(a, z):
    # For integer a, P(a, z) = e^-z Σ_{k>=a} z^k / k!: a positive series, exact to rounding
    # even where P is tiny.  The cases cover both the series and the fraction branch.
    expected = math.fsum(
        math.exp(-z + k * math.log(z) - math.lgamma(k + 1)) for k in range(a, a + 600)
    )
    assert regularized_lower_gamma(a, z) == pytest.approx(expected, rel=1e-10)


def test_regularized_lower_gamma_half_integer_is_erf():
    for z in (0.01, 0.7, 3.0, 20.0):
        assert regularized_lower_gamma(0.5, z) == pytest.approx(math.erf(math.sqrt(z)), rel=1e-12)


# ------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("target", [0, 1, 1.2, -0.1])
def test_target_must_be_a_fraction(target):
    with pytest.raises(ValueError, match="target"):
        agents_for_service_level(0.1, 240, 20, target)


def test_erlang_a_needs_patience():
    with pytest.raises(ValueError, match="patience_s"):
        agents_for_service_level(0.1, 240, 20, 0.8, model="erlang_a")


def test_unreachable_target_is_reported():
    with pytest.raises(StaffingTargetUnreachableError, match="below the target 0.8"):
        agents_for_service_level(0.1, 240, 20, 0.8, max_agents=26)


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang_c_service_level(-1, 180, 3, 15),
        lambda: erlang_c_service_level(1, 0, 3, 15),
        lambda: erlang_c_wait_probability(3, -1),
        lambda: erlang_c_wait_probability(3, 2.5),
        lambda: erlang_a_metrics(1, 180, 3, 0, 15),
        lambda: erlang_a_metrics(1, 180, 3, 1e10, 15),  # use math.inf instead
        lambda: half_hour_requirements([10, -1], 180, 15, 0.8),
        lambda: agents_for_service_level(0.1, 240, 20, 0.8, model="erlang_b"),
    ],
)
def test_invalid_arguments_are_value_errors(call):
    with pytest.raises(ValueError):
        call()
