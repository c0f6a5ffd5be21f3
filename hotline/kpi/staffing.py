"""Agent staffing (排班人力测算) for the hotline: Erlang C and Erlang A.

Two queueing models, both with Poisson arrivals (rate λ per second), exponential handle
times (mean AHT seconds, μ = 1/AHT) and ``n`` agents answering first come, first served:

* **Erlang C** (M/M/n): callers never hang up.  Needs ``n > A`` where ``A = λ·AHT`` is the
  offered traffic in Erlangs; otherwise the queue grows without bound.
* **Erlang A** (Palm's M/M/n+M): each waiting caller hangs up after an exponential patience
  with mean ``patience_s`` (θ = 1/patience).  Stable for every ``n`` and usually closer to a
  real hotline, whose callers do abandon.

Service level (服务水平) is "answered within ``threshold_s`` seconds, over all offered
calls", so under Erlang A a caller who abandons counts as a miss whenever they hung up.

Numerical notes.  Erlang B is evaluated with the recursion ``B(k) = A·B(k-1)/(k + A·B(k-1))``,
which never forms a factorial or a power and stays in [0, 1], so a thousand agents are fine.
Erlang A is evaluated with the Mandelbaum–Zeltyn closed forms, written with the lower
incomplete gamma function γ(x, y) at x = nμ/θ, y = λ/θ.  These arguments reach millions when
patience is long, so γ is computed in log space (series below ``a + 1``, Lentz continued
fraction above); the abandonment probability is summed as a positive series and the
service level written as a ratio of series, because their closed forms cancel badly for long
patience.  Checked against an exact Markov-chain solution in the tests.

Erlang A formulas used (x = nμ/θ, y = λ/θ, E = Erlang B for n agents, ρ = λ/(nμ)):

* A(x, y) = x·e^y·y^(-x)·γ(x, y) = Σ_{j≥0} y^j / Π_{i=1..j}(x + i)  (= Σ_j π_{n+j} / π_n)
* π_n = E / (1 + (A - 1)·E),   P(W > 0) = A·π_n   (PASTA)
* P(Ab) = P(W > 0)·(1 - 1/ρ + 1/(ρ·A))
* A caller finding j others queued reaches an agent after a sum of exponentials with rates
  nμ + iθ, i = 0..j; e^(-θV) is then Beta(x, j + 1) distributed.  Averaging over j gives
  P(answered, 0 < W <= t) = π_n·x·e^y·y^(-(x+1))·[γ(x+1, y) - γ(x+1, y·e^(-θt))],
  and service level = 1 - P(W > 0) + that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

StaffingModel = Literal["erlang_c", "erlang_a"]

HALF_HOUR_SECONDS = 1800
DEFAULT_MAX_AGENTS = 5000
# Longest finite mean patience accepted (about 32 years); math.inf means Erlang C.
MAX_FINITE_PATIENCE_S = 1e9

# Relative accuracy at which the incomplete-gamma series and continued fraction stop.
_EPSILON = 1e-15
# Hard caps on iterations; reaching one means the arguments are outside anything a call
# centre produces, and an error beats silently returning a half-converged number.
_MAX_SERIES_TERMS = 2_000_000
_MAX_FRACTION_TERMS = 100_000


class StaffingTargetUnreachableError(ValueError):
    """No agent count up to ``max_agents`` reaches the requested service level."""


@dataclass(frozen=True)
class ErlangAMetrics:
    """Steady-state performance of an M/M/n+M queue (all probabilities per offered call)."""

    agents: int
    offered_load_erlangs: float
    wait_probability: float
    """P(W > 0): the caller finds every agent busy and has to queue."""
    abandon_probability: float
    """P(Ab): the caller hangs up before being answered."""
    service_level: float
    """P(answered and waited at most ``threshold_s``)."""
    mean_wait_s: float
    """E[W] over all offered calls, counting an abandoning caller's time in queue."""
    occupancy: float
    """Fraction of agent time spent on calls: λ(1 - P(Ab))·AHT / n."""


@dataclass(frozen=True)
class StaffingResult:
    """The smallest agent count meeting a service-level target, and how it performs."""

    agents: int
    service_level: float
    model: StaffingModel
    offered_load_erlangs: float
    wait_probability: float
    mean_wait_s: float
    """Erlang C: average speed of answer (ASA).  Erlang A: E[W] including abandoners."""
    occupancy: float
    abandon_probability: float
    """Always 0.0 under Erlang C, whose callers never hang up."""


# --------------------------------------------------------------------------- Erlang B / C


def _check_nonnegative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_agents(agents: int) -> None:
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 0:
        raise ValueError(f"agents must be an int >= 0, got {agents!r}")


def erlang_b_blocking_probability(traffic_erlangs: float, agents: int) -> float:
    """Erlang B: probability that all ``agents`` are busy in M/M/n/n (no waiting room).

    Exact up to rounding for any size; uses the recursion, never factorials.
    """
    _check_nonnegative("traffic_erlangs", traffic_erlangs)
    _check_agents(agents)
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic_erlangs * blocking / (k + traffic_erlangs * blocking)
    return blocking


def _erlang_c_from_b(traffic_erlangs: float, agents: int, blocking: float) -> float:
    if agents <= traffic_erlangs:
        return 1.0
    return agents * blocking / (agents - traffic_erlangs * (1.0 - blocking))


def erlang_c_wait_probability(traffic_erlangs: float, agents: int) -> float:
    """Erlang C: probability that a caller has to wait, P(W > 0), in M/M/n.

    Returns 1.0 when ``agents <= traffic_erlangs`` (the queue is unstable, everyone waits)
    and 0.0 when there is no traffic.
    """
    _check_nonnegative("traffic_erlangs", traffic_erlangs)
    _check_agents(agents)
    if traffic_erlangs == 0:
        return 0.0
    blocking = erlang_b_blocking_probability(traffic_erlangs, agents)
    return _erlang_c_from_b(traffic_erlangs, agents, blocking)


def erlang_c_service_level(
    arrival_rate_per_s: float, aht_s: float, agents: int, threshold_s: float
) -> float:
    """Erlang C service level: P(W <= threshold_s) = 1 - C·exp(-(n - A)·t / AHT).

    Returns 0.0 when the queue is unstable (``agents <= λ·AHT``): in the long run waits grow
    without bound, so no call is answered within any finite threshold.
    """
    _check_nonnegative("arrival_rate_per_s", arrival_rate_per_s)
    _check_positive("aht_s", aht_s)
    _check_agents(agents)
    _check_nonnegative("threshold_s", threshold_s)
    traffic = arrival_rate_per_s * aht_s
    if traffic == 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    wait_probability = erlang_c_wait_probability(traffic, agents)
    return 1.0 - wait_probability * math.exp(-(agents - traffic) * threshold_s / aht_s)


def _erlang_c_result(
    arrival_rate_per_s: float, aht_s: float, agents: int, threshold_s: float, blocking: float
) -> StaffingResult:
    traffic = arrival_rate_per_s * aht_s
    if traffic == 0:
        return StaffingResult(agents, 1.0, "erlang_c", 0.0, 0.0, 0.0, 0.0, 0.0)
    if agents <= traffic:
        return StaffingResult(agents, 0.0, "erlang_c", traffic, 1.0, math.inf, 1.0, 0.0)
    wait_probability = _erlang_c_from_b(traffic, agents, blocking)
    service_level = 1.0 - wait_probability * math.exp(-(agents - traffic) * threshold_s / aht_s)
    average_speed_of_answer = wait_probability * aht_s / (agents - traffic)
    return StaffingResult(
        agents=agents,
        service_level=service_level,
        model="erlang_c",
        offered_load_erlangs=traffic,
        wait_probability=wait_probability,
        mean_wait_s=average_speed_of_answer,
        occupancy=traffic / agents,
        abandon_probability=0.0,
    )


# --------------------------------------------------------------- incomplete gamma (log space)


def _lower_gamma_series(a: float, z: float) -> tuple[float, float]:
    """Return (S0, S1) with S0 = Σ_{k≥0} w_k and S1 = Σ_{k≥1} k·w_k, w_k = z^k / Π_{i=1..k}(a+i).

    S0 is Mandelbaum–Zeltyn's A(a, z) = a·e^z·z^(-a)·γ(a, z).  Only for z < a + 1, where the
    terms decrease from the first one on.
    """
    term = 1.0
    weighted_sum = 1.0
    moment_sum = 0.0
    for k in range(1, _MAX_SERIES_TERMS):
        term *= z / (a + k)
        weighted_sum += term
        moment_sum += k * term
        if k * term <= _EPSILON * moment_sum and term <= _EPSILON * weighted_sum:
            return weighted_sum, moment_sum
    raise ArithmeticError(f"incomplete gamma series did not converge for a={a}, z={z}")


def _upper_gamma_regularized_fraction(a: float, z: float) -> float:
    """Q(a, z) = Γ(a, z)/Γ(a) by the modified Lentz continued fraction; for z >= a + 1."""
    tiny = 1e-300
    b = z + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, _MAX_FRACTION_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) <= _EPSILON:
            return math.exp(-z + a * math.log(z) - math.lgamma(a)) * fraction
    raise ArithmeticError(f"incomplete gamma fraction did not converge for a={a}, z={z}")


def _log_lower_gamma(a: float, z: float) -> float:
    """log γ(a, z), the unregularised lower incomplete gamma, without under/overflow."""
    if z <= 0:
        return -math.inf
    if z < a + 1.0:
        series, _ = _lower_gamma_series(a, z)
        return a * math.log(z) - z - math.log(a) + math.log(series)
    return math.lgamma(a) + math.log1p(-_upper_gamma_regularized_fraction(a, z))


def regularized_lower_gamma(a: float, z: float) -> float:
    """P(a, z) = γ(a, z)/Γ(a), the regularised lower incomplete gamma function (a > 0)."""
    _check_positive("a", a)
    _check_nonnegative("z", z)
    return math.exp(_log_lower_gamma(a, z) - math.lgamma(a))


def _log_add_exp(x: float, y: float) -> float:
    if x == -math.inf:
        return y
    if y == -math.inf:
        return x
    high, low = max(x, y), min(x, y)
    return high + math.log1p(math.exp(low - high))


# --------------------------------------------------------------------------------- Erlang A


def _erlang_a_from_b(
    arrival_rate_per_s: float,
    aht_s: float,
    agents: int,
    patience_s: float,
    threshold_s: float,
    blocking: float,
) -> ErlangAMetrics:
    traffic = arrival_rate_per_s * aht_s
    if traffic == 0:
        return ErlangAMetrics(agents, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    if agents == 0:
        # Nobody answers: every caller waits and eventually hangs up.
        return ErlangAMetrics(0, traffic, 1.0, 1.0, 0.0, patience_s, 0.0)

    service_rate = 1.0 / aht_s
    abandon_rate = 1.0 / patience_s
    # x = nμ/θ and y = λ/θ: the queue's death and birth rates measured in units of θ.
    x = agents * service_rate / abandon_rate
    y = arrival_rate_per_s / abandon_rate
    load_per_agent = arrival_rate_per_s / (agents * service_rate)  # ρ

    # A(x, y) = Σ_j π_{n+j}/π_n; π_n = E/(1 + (A - 1)E) with E the Erlang B value.
    if y < x + 1.0:
        a_series, moment_series = _lower_gamma_series(x, y)
        log_a = math.log(a_series)
    else:
        moment_series = math.nan  # unused: P(Ab) has no cancellation in this regime
        log_a = math.log(x) + y - x * math.log(y) + _log_lower_gamma(x, y)
    log_blocking = math.log(blocking) if blocking > 0 else -math.inf
    log_pi_n = log_blocking - _log_add_exp(math.log1p(-blocking), log_a + log_blocking)

    wait_probability = min(1.0, math.exp(log_pi_n + log_a))
    if y < x + 1.0:
        # P(Ab) = π_n Σ_j w_j (j+1)/(x+j+1) = π_n S1 / y: all terms positive, so it stays
        # accurate when patience is long and P(Ab) is tiny (the closed form cancels there).
        abandon_probability = math.exp(log_pi_n) * moment_series / y
    else:
        abandon_given_wait = 1.0 - 1.0 / load_per_agent + math.exp(-log_a) / load_per_agent
        abandon_probability = wait_probability * abandon_given_wait
    abandon_probability = min(max(abandon_probability, 0.0), wait_probability)

    # P(answered after waiting, wait <= t) = π_n [G1(y) - G1(y e^{-θt})] with
    # G1(u) = x e^y y^{-(x+1)} γ(x+1, u); see the formulas in the module docstring.
    shrunk = y * math.exp(-abandon_rate * threshold_s)
    if y < x + 1.0:
        # With γ(a, z) = z^a e^{-z} S(a, z)/a: π_n G1(y) = π_n x/(x+1) S(x+1, y), and
        # G1(y')/G1(y) = exp(-(nμ+θ)t + y(1 - e^{-θt})) S(x+1, y')/S(x+1, y).  Written this
        # way no term of size x·log y (1e10 and more for long patience) has to cancel.
        full_series, _ = _lower_gamma_series(x + 1.0, y)
        shrunk_series, _ = _lower_gamma_series(x + 1.0, shrunk)
        log_ratio = (
            -(agents * service_rate + abandon_rate) * threshold_s
            - y * math.expm1(-abandon_rate * threshold_s)
            + math.log(shrunk_series / full_series)
        )
        answered_after_wait = (
            math.exp(log_pi_n) * x / (x + 1.0) * full_series * -math.expm1(log_ratio)
        )
    else:
        # Overloaded (λ > nμ + θ): G1 through log γ.  x and y are only large enough here to
        # cost precision when patience is very long, and then hardly anyone is answered
        # within the threshold anyway.
        log_g1_prefix = math.log(x) + y - (x + 1.0) * math.log(y)
        log_g1_full = log_g1_prefix + _log_lower_gamma(x + 1.0, y)
        log_g1_shrunk = log_g1_prefix + _log_lower_gamma(x + 1.0, shrunk)
        answered_after_wait = math.exp(log_pi_n + log_g1_full) * -math.expm1(
            log_g1_shrunk - log_g1_full
        )
    service_level = (1.0 - wait_probability) + answered_after_wait
    service_level = min(max(service_level, 0.0), 1.0)

    return ErlangAMetrics(
        agents=agents,
        offered_load_erlangs=traffic,
        wait_probability=wait_probability,
        abandon_probability=abandon_probability,
        service_level=service_level,
        # Little's law on the abandonment stream: λ·P(Ab) = θ·E[Q] = θ·λ·E[W].
        mean_wait_s=abandon_probability * patience_s,
        occupancy=min(1.0, traffic * (1.0 - abandon_probability) / agents),
    )


def erlang_a_metrics(
    arrival_rate_per_s: float,
    aht_s: float,
    agents: int,
    patience_s: float,
    threshold_s: float,
) -> ErlangAMetrics:
    """Erlang A (M/M/n+M) steady-state metrics with exponential patience of mean patience_s.

    Implements the Garnett–Mandelbaum–Reiman / Mandelbaum–Zeltyn formulas.  Valid for any
    ``agents >= 0`` (abandonment keeps the queue stable even when n < λ·AHT).
    ``patience_s=math.inf`` gives the Erlang C values; finite patience above
    MAX_FINITE_PATIENCE_S is a ValueError.
    ``service_level`` counts calls answered within ``threshold_s`` over all offered calls.
    """
    _check_nonnegative("arrival_rate_per_s", arrival_rate_per_s)
    _check_positive("aht_s", aht_s)
    _check_agents(agents)
    _check_patience(patience_s)
    _check_nonnegative("threshold_s", threshold_s)
    traffic = arrival_rate_per_s * aht_s
    blocking = erlang_b_blocking_probability(traffic, agents)
    if math.isinf(patience_s):
        return _erlang_a_without_abandonment(
            _erlang_c_result(arrival_rate_per_s, aht_s, agents, threshold_s, blocking)
        )
    return _erlang_a_from_b(arrival_rate_per_s, aht_s, agents, patience_s, threshold_s, blocking)


def _check_patience(patience_s: float) -> None:
    if not (isinstance(patience_s, int | float) and patience_s > 0):
        raise ValueError(f"patience_s must be > 0 seconds, got {patience_s!r}")
    if math.isfinite(patience_s) and patience_s > MAX_FINITE_PATIENCE_S:
        # Past this the answer equals Erlang C to about 1e-6, while the gamma series near
        # full load would need millions of terms.
        raise ValueError(
            f"patience_s {patience_s:g} exceeds {MAX_FINITE_PATIENCE_S:g} s; "
            "pass math.inf for callers who never hang up"
        )


def _erlang_a_without_abandonment(result: StaffingResult) -> ErlangAMetrics:
    return ErlangAMetrics(
        agents=result.agents,
        offered_load_erlangs=result.offered_load_erlangs,
        wait_probability=result.wait_probability,
        abandon_probability=0.0,
        service_level=result.service_level,
        mean_wait_s=result.mean_wait_s,
        occupancy=result.occupancy,
    )


def _erlang_a_result(metrics: ErlangAMetrics) -> StaffingResult:
    return StaffingResult(
        agents=metrics.agents,
        service_level=metrics.service_level,
        model="erlang_a",
        offered_load_erlangs=metrics.offered_load_erlangs,
        wait_probability=metrics.wait_probability,
        mean_wait_s=metrics.mean_wait_s,
        occupancy=metrics.occupancy,
        abandon_probability=metrics.abandon_probability,
    )


# --------------------------------------------------------------------------------- staffing


def agents_for_service_level(
    arrival_rate_per_s: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    model: StaffingModel = "erlang_c",
    patience_s: float | None = None,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> StaffingResult:
    """Smallest agent count whose service level is at least ``target`` (0 < target < 1).

    ``model='erlang_a'`` needs ``patience_s`` (mean caller patience); an infinite patience
    is the Erlang C model.  No traffic needs no agents.  Raises
    StaffingTargetUnreachableError when even ``max_agents`` agents miss the target.
    """
    _check_nonnegative("arrival_rate_per_s", arrival_rate_per_s)
    _check_positive("aht_s", aht_s)
    _check_nonnegative("threshold_s", threshold_s)
    if not (isinstance(target, int | float) and 0 < target < 1):
        raise ValueError(f"target must be a fraction strictly between 0 and 1, got {target!r}")
    if model not in ("erlang_c", "erlang_a"):
        raise ValueError(f"model must be 'erlang_c' or 'erlang_a', got {model!r}")
    if model == "erlang_a":
        if patience_s is None:
            raise ValueError("model='erlang_a' needs patience_s (mean caller patience, seconds)")
        _check_patience(patience_s)
    _check_agents(max_agents)

    traffic = arrival_rate_per_s * aht_s
    if traffic == 0:
        if model == "erlang_a":
            return StaffingResult(0, 1.0, "erlang_a", 0.0, 0.0, 0.0, 0.0, 0.0)
        return _erlang_c_result(arrival_rate_per_s, aht_s, 0, threshold_s, 1.0)

    patience = math.inf if patience_s is None else float(patience_s)
    use_erlang_c = model == "erlang_c" or math.isinf(patience)
    # Service level is at most the answered fraction, which is at most n/A (agents can only
    # carry n Erlangs); Erlang C also needs n > A.  Start the upward search at that bound.
    first = math.floor(traffic) + 1 if use_erlang_c else max(1, math.ceil(target * traffic) - 1)
    blocking = erlang_b_blocking_probability(traffic, min(first, max_agents + 1))
    last_service_level = 0.0
    for agents in range(first, max_agents + 1):
        if agents > first:
            blocking = traffic * blocking / (agents + traffic * blocking)
        if use_erlang_c:
            result = _erlang_c_result(arrival_rate_per_s, aht_s, agents, threshold_s, blocking)
            if model == "erlang_a":
                result = replace(result, model="erlang_a")
        else:
            metrics = _erlang_a_from_b(
                arrival_rate_per_s, aht_s, agents, patience, threshold_s, blocking
            )
            result = _erlang_a_result(metrics)
        last_service_level = result.service_level
        if result.service_level >= target:
            return result
    raise StaffingTargetUnreachableError(
        f"{max_agents} agents reach a service level of {last_service_level:.4f}, "
        f"below the target {target} ({traffic:.2f} Erlangs offered)"
    )


def half_hour_requirements(
    arrivals_per_half_hour: Sequence[int],
    aht_s: float,
    threshold_s: float,
    target: float,
    model: StaffingModel = "erlang_c",
    patience_s: float | None = None,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> list[StaffingResult]:
    """Agents needed in each half-hour slot, one StaffingResult per slot, in order.

    Each slot is treated as its own steady state with arrival rate count/1800 s, as
    workforce-management tools do; a slot with no calls needs 0 agents.  Agents here are
    on the phones: shrinkage (breaks, training, absence) is the caller's to add.
    """
    results = []
    for slot, arrivals in enumerate(arrivals_per_half_hour):
        if isinstance(arrivals, bool) or not isinstance(arrivals, int) or arrivals < 0:
            raise ValueError(f"slot {slot}: arrivals must be an int >= 0, got {arrivals!r}")
        results.append(
            agents_for_service_level(
                arrivals / HALF_HOUR_SECONDS,
                aht_s,
                threshold_s,
                target,
                model=model,
                patience_s=patience_s,
                max_agents=max_agents,
            )
        )
    return results
