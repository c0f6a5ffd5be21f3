"""A traffic simulator (话务模拟器) that drives the real system through its HTTP API.

Two halves:

* ``TrafficSimulation`` is a pure, seeded discrete-event model of the hotline. It yields
  ``SimItem`` (time, kind, body) in time order: call events exactly as the CTI sends them
  (``ivr_entered`` … ``ended``), agents' state changes the CTI reports, and tickets an agent
  files after a call. No clock, no network: the same seed and start give the same items.
* ``run_simulation`` sends those items to a running server: in real time (``speed`` times
  faster than the clock, each event stamped with the wall-clock moment it is sent, so the KPI
  wall moves live) or as a backfill of past hours (as fast as the server takes it, 500 events
  per request, every timestamp in the past).

The model
---------
Arrivals are a non-homogeneous Poisson process (thinning) whose rate follows ``HOURLY_PROFILE``
in local time, scaled to ``calls_per_day``: 4,426 by default, the 2017 daily average of the
Zhuhai 12345 hotline (1.615 million calls in the year). A caller spends a few seconds in the IVR
(a few hang up there), presses 1 for the social-security seat (社保专席) or 2 for the general desk
(综合专席), waits in that queue first come first served, and hangs up after an exponential
patience (mean 60 s) unless answered first; a caller still waiting after ``max_wait_seconds``
is timed out by the queue. The split between the seats follows the 2017 report: about 450,000
calls to 社保业务专席 and 440,000 to 综合业务专席, so 45/89 ≈ 50.6 % social security.

Agents of a queue answer after a short ring, talk for an exponential handle time (mean 180 s,
at least 10 s), do after-call work, occasionally take a break, and become ready again. Some
general-desk calls are transferred to the social-security seat, where the caller queues anew.
``on_call`` and ``after_call_work`` follow from the call events on the server (an ``answered``
puts the agent on the call, an ``ended`` into after-call work), so the CTI only reports the
other changes: ``ready``, ``break``, and after-call work of an agent who transferred a call.

A typhoon surge multiplies arrivals (4× by default) during its window; the extra calls are
typhoon matters for the general desk, and callers' patience is shorter (more abandons).

People in the console
---------------------
In real time the simulator also calls the people who try the console. Every few seconds it
reads the agents' states (``GET /api/v1/agents``, the service the console itself uses); an
agent who is not one of its own ``sim-`` agents and is ``ready`` gets a call in the first of
their skills' queues. The console has no answer button: a call reaches it as the screen pop of
``call.answered``. So the simulator plays the telephone: after a short ring (3 s) it sends
``answered`` for that person, whose console pops the call. The caller stays on the line while
the person is on it; when the person leaves the call (clicks 话后处理 after-call work, 就绪 or
小休 in the console) or after ``HUMAN_MAX_TALK_SECONDS`` at the latest, the simulator ends the
call. Someone who leaves ``ready`` while the phone rings lets the caller hang up (abandoned).
The simulator never answers for a person and never changes a person's state.

Stopping and starting again
---------------------------
A run that stops (its duration, ``stop``, Ctrl+C or SIGTERM via ``hotline simulate``) ends every
call it has in flight: waiting callers abandon, calls being talked end. Every call id starts
with ``sim`` (``CALL_ID_PREFIX``), so a later start can close what a killed run left open (see
``hotline.demo.close_abandoned_simulated_calls``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import httpx

log = logging.getLogger(__name__)

DEFAULT_CALLS_PER_DAY = 4426
# 2017 work report: 社保业务专席 about 450,000 calls, 综合业务专席 about 440,000.
SOCIAL_SECURITY_SHARE = 45 / 89
GENERAL, SOCIAL_SECURITY = "general", "social_security"
IVR_OPTIONS = {SOCIAL_SECURITY: "1", GENERAL: "2"}
# Relative call volume by local hour: quiet at night, peaks 9–11 and 14–17, a lunch dip.
HOURLY_PROFILE: tuple[float, ...] = (
    0.15, 0.10, 0.07, 0.06, 0.06, 0.10, 0.25, 0.60,  # 00–07
    1.40, 2.10, 2.20, 1.90, 1.00, 1.10, 1.90, 2.00,  # 08–15
    1.90, 1.50, 1.00, 0.90, 0.80, 0.60, 0.40, 0.25,  # 16–23
)  # fmt: skip
DEFAULT_AGENTS = {GENERAL: 15, SOCIAL_SECURITY: 15}
BACKFILL_BATCH = 500
DEMO_PASSWORD = "demo12345"
CALL_ID_PREFIX = "sim"
HUMAN_RING_SECONDS = 3.0
HUMAN_MAX_TALK_SECONDS = 300.0
HUMAN_POLL_SECONDS = 2.0

# (what the citizen asked, matter code, address) — matters from dispatch/reference/matters.yaml.
TICKET_TOPICS: dict[str, list[tuple[str, str, str]]] = {
    SOCIAL_SECURITY: [
        ("社保卡丢失了，咨询如何挂失和补卡", "RS-02", ""),
        ("灵活就业人员养老保险怎么参保缴费", "RS-03", ""),
        ("咨询失业金申领需要哪些材料", "RS-04", ""),
        ("异地就医备案怎么办理，报销比例是多少", "YB-01", ""),
        ("公司拖欠工资三个月未发，要求处理", "RS-01", "香洲区前山街道"),
    ],
    GENERAL: [
        ("小区物业乱收物业费，要求查处", "ZJ-01", "斗门区井岸镇"),
        ("商家拒绝退款，要求处理", "SC-01", "香洲区拱北夏湾"),
        ("晚上工地施工噪音太大影响休息", "ZJ-02", "金湾区三灶镇"),
        ("路边有人占道经营摆摊", "CG-01", "香洲区吉大水湾路"),
        ("路灯坏了好几天没人修", "CG-04", "香洲区梅华街道"),
        ("出租车司机拒载", "JT-01", "香洲区拱北口岸"),
        ("小区停水了，什么时候恢复供水", "GS-01", "香洲区翠香街道"),
        ("公交车到站不停站", "JT-02", "斗门区井岸镇"),
    ],
    "typhoon": [
        ("台风过后小区门口大树倒下压住车辆", "YJ-01", "香洲区南屏镇"),
        ("路口水浸严重，车辆无法通行", "SW-02", "香洲区前山街道"),
        ("广告牌被台风吹得松动，有坠落危险", "CG-05", "香洲区吉大景山公园"),
        ("台风后整片小区停电", "GD-01", "斗门区白蕉镇"),
    ],
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁"


class SimulationError(RuntimeError):
    """The simulation cannot go on (server unreachable, wrong CTI token, unknown queue)."""


@dataclass(frozen=True)
class Surge:
    """A typhoon surge: ``factor`` × arrivals from ``start`` to ``end`` (seconds after the
    simulation's start; ``end`` None: to the end), callers' patience × ``patience_factor``."""

    start: float = 0.0
    end: float | None = None
    factor: float = 4.0
    patience_factor: float = 0.6

    def active(self, offset: float) -> bool:
        return offset >= self.start and (self.end is None or offset < self.end)


@dataclass(frozen=True)
class HotspotPlan:
    """A hot spot to inject (热点): an ``incident`` (``size`` callers about one thing at one
    place, each in their own words) or a ``surge`` (``size`` extra requests of one matter
    across one town), starting ``at_minutes`` into the run and spread over ``minutes``. Its
    tickets come on top of the calls' own (filed by the general desk's agent)."""

    kind: Literal["incident", "surge"]
    at_minutes: float
    size: int = 8
    minutes: int = 30

    @classmethod
    def parse(cls, text: str) -> HotspotPlan:
        """``incident@30:8/30``: kind @ start minute : size / minutes."""
        kind, _, rest = text.strip().partition("@")
        start, _, shape = rest.partition(":")
        size, _, minutes = shape.partition("/")
        if kind not in ("incident", "surge"):
            raise ValueError(f"{text!r}: kind must be incident or surge")
        plan = cls(kind, float(start or 0), int(size or 8), int(minutes or 30))  # type: ignore[arg-type]
        if plan.size < 1 or plan.minutes < 1 or plan.at_minutes < 0:
            raise ValueError(f"{text!r}: size and minutes must be positive")
        return plan


@dataclass(frozen=True)
class SimulationConfig:
    """Everything the model's behaviour depends on (times in seconds)."""

    calls_per_day: float = DEFAULT_CALLS_PER_DAY
    agents: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_AGENTS))
    social_security_share: float = SOCIAL_SECURITY_SHARE
    mean_handle_seconds: float = 180.0
    min_handle_seconds: float = 10.0
    mean_patience_seconds: float = 60.0
    max_wait_seconds: float = 300.0
    mean_after_call_seconds: float = 30.0
    ivr_hangup_share: float = 0.03
    transfer_share: float = 0.06  # of answered general-desk calls, to social security
    break_share: float = 0.04  # of after-call work periods followed by a break
    mean_break_seconds: float = 600.0
    ticket_share: float = 0.3  # of completed answered calls an agent files a ticket for
    surge: Surge | None = None
    hotspots: tuple[HotspotPlan, ...] = ()
    # Tickets in callers' own words at places all over the city (the matter corpus and the
    # gazetteer), not one fixed sentence per matter: the hot-spot detector must not see every
    # repeated topic as an incident.
    varied_tickets: bool = True
    hourly_profile: tuple[float, ...] = HOURLY_PROFILE
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.calls_per_day <= 0:
            raise ValueError("calls_per_day must be positive")
        if len(self.hourly_profile) != 24 or min(self.hourly_profile) < 0:
            raise ValueError("hourly_profile needs 24 non-negative weights")
        if not self.agents or min(self.agents.values()) < 0:
            raise ValueError("agents: at least one queue, no negative counts")
        for name in ("social_security_share", "ivr_hangup_share", "transfer_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie within 0..1")


class SimItem(NamedTuple):
    """One thing that happens: ``kind`` is ``call_event`` (body: a CallEventIn dict),
    ``agent_state`` (body: username, state) or ``ticket`` (body: the ticket to file)."""

    at: datetime
    kind: Literal["call_event", "agent_state", "ticket"]
    body: dict[str, Any]


@dataclass(eq=False)
class _Call:
    id: str
    caller: str
    typhoon: bool
    queue: str | None = None
    state: str = "ivr"  # ivr, waiting, ringing, talking, done
    leg: int = 0
    transferred: bool = False
    events: int = 0


@dataclass(eq=False)
class _Agent:
    name: str
    queue: str
    state: str = "ready"  # ready, reserved (phone ringing), on_call, after_call_work, break
    idle_since: float = 0.0


class TrafficSimulation:
    """The seeded model; iterate ``items()`` once.

    ``until`` (aware datetime) ends arrivals; with ``drain`` the calls in progress then run to
    their natural end (item times may pass ``until``), without it they are ended at ``until``.
    ``until`` None runs for ever. ``close(at)`` ends every call still in progress, e.g. when
    a live run is interrupted.
    """

    def __init__(
        self,
        config: SimulationConfig,
        *,
        start: datetime,
        seed: int,
        until: datetime | None = None,
        drain: bool = True,
    ) -> None:
        if start.tzinfo is None or (until is not None and until.tzinfo is None):
            raise ValueError("start and until must be timezone-aware")
        self.config = config
        self.start = start.astimezone(UTC)
        self.seed = seed
        self.until = None if until is None else (until - start).total_seconds()
        self.drain = drain
        self.rng = random.Random(seed)
        self.tz = ZoneInfo(config.timezone)
        self.now = 0.0
        self.agents = [
            _Agent(f"sim-{queue}-{i:02d}", queue)
            for queue, count in config.agents.items()
            for i in range(1, count + 1)
        ]
        self.waiting: dict[str, deque[_Call]] = {queue: deque() for queue in config.agents}
        self.calls: dict[str, _Call] = {}
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._order = itertools.count()
        self._out: list[SimItem] = []
        self._call_numbers = itertools.count(1)
        self._prefix = f"{CALL_ID_PREFIX}{seed}-{int(self.start.timestamp())}"
        weights = config.hourly_profile
        mean_weight = sum(weights) / 24
        per_second = config.calls_per_day / 86400
        self._hour_rate = [w / mean_weight * per_second for w in weights]
        surge_factor = max(1.0, config.surge.factor) if config.surge else 1.0
        self._max_rate = max(self._hour_rate) * surge_factor
        self._finished = False
        self._inject(config.hotspots)

    def _inject(self, plans: tuple[HotspotPlan, ...]) -> None:
        if not plans:
            return
        from dispatch.hotspots import scenarios

        # A random stream of its own: injecting leaves the ordinary traffic as it was.
        rng = random.Random(self.seed * 7919 + 1)
        for index, plan in enumerate(plans):
            start = self.start + timedelta(minutes=plan.at_minutes)
            _, requests = scenarios.inject(
                plan.kind,
                f"{plan.kind}-{index}",
                start,
                plan.size,
                plan.minutes,
                seed=self.seed * 1000 + index,
            )
            for number, request in enumerate(requests):
                offset = (request.at - self.start).total_seconds()
                if self.until is not None and offset > self.until:
                    continue
                body = {
                    "queue": GENERAL,
                    "content": request.content,
                    "address": request.address,
                    "matter_code": request.matter_code,
                    "caller_phone": f"139{self.seed % 1000:03d}{index:02d}{number:03d}",
                    "caller_name": rng.choice(_SURNAMES) + rng.choice(("先生", "女士")),
                }
                self._schedule(offset, "injected", body)

    # -- the clock and the agenda ----------------------------------------------------------

    def at(self, offset: float) -> datetime:
        return self.start + timedelta(seconds=offset)

    def rate(self, offset: float) -> float:
        """Arrivals per second at ``offset`` seconds after the start (surge included)."""
        hour = self.at(offset).astimezone(self.tz).hour
        rate = self._hour_rate[hour]
        surge = self.config.surge
        if surge and surge.active(offset):
            rate *= surge.factor
        return rate

    def _schedule(self, offset: float, action: str, *args: Any) -> None:
        heapq.heappush(self._heap, (offset, next(self._order), action, args))

    def _emit(self, kind: str, body: dict[str, Any]) -> None:
        self._out.append(SimItem(self.at(self.now), kind, body))  # type: ignore[arg-type]

    def _call_event(self, call: _Call, type_: str, **fields: Any) -> None:
        call.events += 1
        body = {
            "event_id": f"{call.id}:{call.events}",
            "type": type_,
            "call_id": call.id,
            "at": self.at(self.now).isoformat(),
        }
        body.update({k: v for k, v in fields.items() if v is not None})
        self._emit("call_event", body)

    def _agent_state(self, agent: _Agent, state: str) -> None:
        self._emit("agent_state", {"username": agent.name, "state": state})

    def _next_arrival(self) -> None:
        if self._max_rate <= 0:
            return
        offset = self.now
        while True:
            offset += self.rng.expovariate(self._max_rate)
            if self.until is not None and offset > self.until:
                return
            if self.rng.random() * self._max_rate <= self.rate(offset):
                self._schedule(offset, "arrival")
                return

    # -- the run ---------------------------------------------------------------------------

    def items(self) -> Iterator[SimItem]:
        """Everything that happens, in time order (equal times in the order they happened)."""
        for agent in self.agents:
            self._agent_state(agent, "ready")
        yield from self._flush()
        self._next_arrival()
        while self._heap:
            offset, _, action, args = heapq.heappop(self._heap)
            if self.until is not None and offset > self.until and not self.drain:
                yield from self.close(self.at(self.until))
                return
            self.now = offset
            getattr(self, f"_on_{action}")(*args)
            yield from self._flush()
        self._finished = True

    def _flush(self) -> Iterator[SimItem]:
        out, self._out = self._out, []
        yield from out

    def close(self, at: datetime) -> list[SimItem]:
        """End every call still in progress at ``at`` (callers still waiting count as
        abandoned); nothing more happens afterwards."""
        self.now = max(self.now, (at - self.start).total_seconds())
        for call in self.calls.values():
            if call.state != "done":
                call.state = "done"
                self._call_event(call, "ended")
        self.calls.clear()
        self._heap.clear()
        self._finished = True
        return list(self._flush())

    # -- what happens ----------------------------------------------------------------------

    def _on_arrival(self) -> None:
        config, rng = self.config, self.rng
        surge = config.surge
        base_rate = self._hour_rate[self.at(self.now).astimezone(self.tz).hour]
        # Of the arrivals during a surge, the share above the normal rate is typhoon calls.
        typhoon = bool(surge and surge.active(self.now)) and (
            rng.random() >= base_rate / max(self.rate(self.now), 1e-12)
        )
        number = next(self._call_numbers)
        caller = "1" + rng.choice("3589") + f"{rng.randrange(10**9):09d}"
        call = _Call(id=f"{self._prefix}-{number:06d}", caller=caller, typhoon=typhoon)
        self.calls[call.id] = call
        self._call_event(call, "ivr_entered", caller=caller)
        if rng.random() < config.ivr_hangup_share:
            self._schedule(self.now + rng.uniform(3, 15), "ivr_hangup", call)
        else:
            self._schedule(self.now + rng.uniform(6, 18), "ivr_choice", call)
        self._next_arrival()

    def _on_ivr_hangup(self, call: _Call) -> None:
        self._finish(call)

    def _on_ivr_choice(self, call: _Call) -> None:
        queues = list(self.config.agents)
        if call.typhoon or SOCIAL_SECURITY not in queues:
            queue = GENERAL if GENERAL in queues else queues[0]
        elif GENERAL not in queues:
            queue = SOCIAL_SECURITY
        else:
            share = self.config.social_security_share
            queue = SOCIAL_SECURITY if self.rng.random() < share else GENERAL
        self._call_event(call, "ivr_selected", option=IVR_OPTIONS.get(queue, "0"))
        self._call_event(call, "offered", queue=queue, caller=call.caller)
        self._enqueue(call, queue)

    def _enqueue(self, call: _Call, queue: str) -> None:
        call.queue, call.state = queue, "waiting"
        call.leg += 1
        self.waiting[queue].append(call)
        mean = self.config.mean_patience_seconds
        surge = self.config.surge
        if surge and surge.active(self.now):
            mean *= surge.patience_factor
        patience = self.rng.expovariate(1 / mean)
        if patience >= self.config.max_wait_seconds:
            self._schedule(self.now + self.config.max_wait_seconds, "give_up", call, call.leg, True)
        else:
            self._schedule(self.now + patience, "give_up", call, call.leg, False)
        self._assign(queue)

    def _assign(self, queue: str) -> None:
        waiting = self.waiting[queue]
        while waiting:
            ready = [a for a in self.agents if a.queue == queue and a.state == "ready"]
            if not ready:
                return
            call = waiting.popleft()
            if call.state != "waiting":
                continue
            agent = min(ready, key=lambda a: (a.idle_since, a.name))  # longest idle first
            agent.state, call.state = "reserved", "ringing"
            self._schedule(self.now + self.rng.uniform(2, 6), "answer", call, call.leg, agent)

    def _on_give_up(self, call: _Call, leg: int, timed_out: bool) -> None:
        if call.leg != leg or call.state not in ("waiting", "ringing"):
            return
        self._call_event(call, "abandoned", reason="timeout" if timed_out else None)
        self._finish(call)

    def _finish(self, call: _Call) -> None:
        call.state = "done"
        self._call_event(call, "ended")
        self.calls.pop(call.id, None)

    def _on_answer(self, call: _Call, leg: int, agent: _Agent) -> None:
        if call.leg != leg or call.state != "ringing":
            # The caller hung up while the phone rang: the agent is free again.
            self._ready(agent)
            return
        call.state, agent.state = "talking", "on_call"
        self._call_event(call, "answered", agent=agent.name)
        config, rng = self.config, self.rng
        if (
            call.queue == GENERAL
            and not call.transferred
            and SOCIAL_SECURITY in config.agents
            and rng.random() < config.transfer_share
        ):
            self._schedule(self.now + rng.uniform(20, 90), "transfer", call, agent)
            return
        handle = config.min_handle_seconds + rng.expovariate(
            1 / max(1.0, config.mean_handle_seconds - config.min_handle_seconds)
        )
        self._schedule(self.now + handle, "hangup", call, agent)

    def _on_transfer(self, call: _Call, agent: _Agent) -> None:
        if call.state != "talking":
            return
        call.transferred = True
        self._call_event(call, "transferred", queue=SOCIAL_SECURITY)
        # The server only moves an agent to after-call work when the call ends; this agent's
        # part ended with the transfer, so the CTI says so.
        self._after_call(agent, report=True)
        self._enqueue(call, SOCIAL_SECURITY)

    def _on_hangup(self, call: _Call, agent: _Agent) -> None:
        if call.state != "talking":
            return
        self._finish(call)
        after_call = self._after_call(agent, report=False)
        if self.rng.random() < self.config.ticket_share:
            self._schedule(self.now + after_call / 2, "ticket", call)

    def _after_call(self, agent: _Agent, *, report: bool) -> float:
        agent.state = "after_call_work"
        if report:
            self._agent_state(agent, "after_call_work")
        minimum = 10.0
        duration = minimum + self.rng.expovariate(
            1 / max(1.0, self.config.mean_after_call_seconds - minimum)
        )
        self._schedule(self.now + duration, "after_call_done", agent)
        return duration

    def _on_after_call_done(self, agent: _Agent) -> None:
        if self.rng.random() < self.config.break_share:
            agent.state = "break"
            self._agent_state(agent, "break")
            pause = self.rng.expovariate(1 / self.config.mean_break_seconds)
            self._schedule(self.now + pause, "break_done", agent)
        else:
            self._ready(agent, report=True)

    def _on_break_done(self, agent: _Agent) -> None:
        self._ready(agent, report=True)

    def _ready(self, agent: _Agent, *, report: bool = False) -> None:
        agent.state, agent.idle_since = "ready", self.now
        if report:
            self._agent_state(agent, "ready")
        self._assign(agent.queue)

    def _on_injected(self, body: dict[str, Any]) -> None:
        self._emit("ticket", body)

    def _on_ticket(self, call: _Call) -> None:
        rng = self.rng
        topics = TICKET_TOPICS["typhoon" if call.typhoon else call.queue or GENERAL]
        content, matter_code, address = rng.choice(topics)
        if self.config.varied_tickets and address:
            from dispatch.hotspots import scenarios

            content, address = scenarios.varied_request(rng, matter_code)
        self._emit(
            "ticket",
            {
                "call_id": call.id,
                "queue": call.queue,
                "content": content,
                "matter_code": matter_code,
                "address": address,
                "caller_phone": call.caller,
                "caller_name": rng.choice(_SURNAMES) + rng.choice(("先生", "女士")),
            },
        )


def generate_traffic(
    config: SimulationConfig,
    *,
    start: datetime,
    seed: int,
    until: datetime | None = None,
    drain: bool = True,
) -> Iterator[SimItem]:
    """The items of a ``TrafficSimulation`` (see there), in time order."""
    return TrafficSimulation(config, start=start, seed=seed, until=until, drain=drain).items()


# ----------------------------------------------------------------------------- sending


@dataclass
class SimulationReport:
    """What a run sent and how the server took it."""

    seed: int
    mode: str
    calls: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    state_changes: int = 0
    tickets: int = 0
    ticket_failures: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    call_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if problem not in self.problems and len(self.problems) < 50:
            self.problems.append(problem)
            log.warning("simulator: %s", problem)

    def summary(self) -> str:
        window = ""
        if self.first_at and self.last_at:
            window = f" from {self.first_at:%Y-%m-%d %H:%M:%S} to {self.last_at:%H:%M:%S} UTC"
        return (
            f"{self.mode} (seed {self.seed}){window}: {self.calls:,} calls, "
            f"{self.events_sent:,} events sent ({self.accepted:,} accepted, "
            f"{self.duplicates:,} duplicates, {self.rejected:,} rejected), "
            f"{self.state_changes:,} agent state changes, {self.tickets:,} tickets filed"
            + (f", {self.ticket_failures:,} ticket(s) refused" if self.ticket_failures else "")
        )


class _Api:
    """The few endpoints the simulator uses, with the CTI token and agents' log-ins."""

    def __init__(
        self,
        client: httpx.Client,
        cti_token: str,
        logins: Mapping[str, tuple[str, str]],
        report: SimulationReport,
        *,
        file_tickets: bool = True,
    ) -> None:
        self.client = client
        self.cti = {"X-CTI-Token": cti_token}
        self.logins = dict(logins)
        self.report = report
        self.file_tickets = file_tickets
        self.tokens: dict[str, str | None] = {}

    def check_server(self) -> None:
        try:
            response = self.client.get("/healthz")
        except httpx.HTTPError as exc:
            raise SimulationError(f"cannot reach {self.client.base_url}: {exc}") from exc
        if response.status_code != 200:
            # Degraded (e.g. Redis down) still takes events; say so and carry on.
            self.report.note(f"/healthz answered {response.status_code}: {response.text[:200]}")

    def send_events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        response = self._request("POST", "/api/v1/calls/events", json=events, headers=self.cti)
        if response is None:
            self.report.note(f"{len(events)} call events could not be delivered")
            return
        if response.status_code == 401:
            raise SimulationError("the server refused the CTI token (see --cti-token)")
        if response.status_code != 200:
            self.report.note(f"call events refused: {response.status_code} {response.text[:200]}")
            return
        body = response.json()
        self.report.events_sent += len(events)
        self.report.accepted += body["accepted"]
        self.report.duplicates += body["duplicates"]
        self.report.rejected += body["rejected"]
        for result in body["results"]:
            if result["status"] == "rejected":
                self.report.note(f"event refused: {result['error']}")

    def set_state(self, username: str, state: str) -> None:
        response = self._request(
            "PUT", f"/api/v1/agents/{username}/state", json={"state": state}, headers=self.cti
        )
        if response is not None and response.status_code == 200:
            self.report.state_changes += 1
        elif response is not None and response.status_code == 401:
            raise SimulationError("the server refused the CTI token (see --cti-token)")
        else:
            status = "no answer" if response is None else response.status_code
            self.report.note(f"agent state {username}→{state} not accepted ({status})")

    def token(self, queue: str) -> str | None:
        """A bearer token of the agent who files tickets for ``queue`` (None: cannot)."""
        login = self.logins.get(queue) or self.logins.get(GENERAL)
        if login is None:
            return None
        username, password = login
        if username not in self.tokens:
            response = self._request(
                "POST", "/api/v1/auth/token", data={"username": username, "password": password}
            )
            if response is None or response.status_code != 200:
                self.report.note(
                    f"cannot log in as {username}; no tickets will be filed for {queue} "
                    "(create the demo users with `hotline demo`, or see --general-agent)"
                )
                self.tokens[username] = None
            else:
                self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def check_queues(self, queues: list[str]) -> None:
        token = self.token(GENERAL) or self.token(SOCIAL_SECURITY)
        if token is None:
            return  # without a log-in the events' results will tell
        response = self._request(
            "GET", "/api/v1/calls/queues", headers={"Authorization": f"Bearer {token}"}
        )
        if response is None or response.status_code != 200:
            return
        known = {q["queue"] for q in response.json()}
        missing = sorted(set(queues) - known)
        if missing:
            raise SimulationError(
                f"the server has no queue {', '.join(missing)}; load them with `hotline seed`"
            )

    def agents(self) -> list[dict[str, Any]] | None:
        """Every agent's state as the console sees it (None: cannot read them)."""
        token = self.token(GENERAL) or self.token(SOCIAL_SECURITY)
        if token is None:
            return None
        response = self._request(
            "GET", "/api/v1/agents", headers={"Authorization": f"Bearer {token}"}
        )
        if response is None or response.status_code != 200:
            status = "no answer" if response is None else response.status_code
            self.report.note(f"cannot read the agents' states ({status})")
            return None
        return response.json()

    def file_ticket(self, body: dict[str, Any], received_at: datetime | None) -> None:
        token = self.token(body["queue"]) if self.file_tickets else None
        if token is None:
            return
        payload = {k: v for k, v in body.items() if k != "queue" and v != ""}
        payload["channel"] = "phone"
        if received_at is not None:
            payload["received_at"] = received_at.isoformat()
        response = self._request(
            "POST", "/api/v1/tickets", json=payload, headers={"Authorization": f"Bearer {token}"}
        )
        if response is not None and response.status_code == 201:
            self.report.tickets += 1
        else:
            self.report.ticket_failures += 1
            status = "no answer" if response is None else f"{response.status_code}"
            detail = "" if response is None else response.text[:200]
            self.report.note(f"ticket refused ({status}) {detail}")

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """The response, retried on network errors and 5xx twice; None if it never came."""
        for attempt in range(3):
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                problem = f"{method} {path}: {exc}"
            else:
                if response.status_code < 500:
                    return response
                problem = f"{method} {path}: {response.status_code}"
            if attempt < 2:
                time.sleep(0.5 * (attempt + 1))  # back off before retrying the server
        self.report.note(problem)
        return None


def _stamp(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {**body, "at": at.isoformat()}


def run_simulation(
    *,
    url: str = "http://127.0.0.1:8000",
    cti_token: str = "development-cti-token",
    config: SimulationConfig | None = None,
    seed: int | None = None,
    speed: float = 1.0,
    duration: float | None = None,
    backfill_hours: float | None = None,
    logins: Mapping[str, tuple[str, str]] | None = None,
    file_tickets: bool = True,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    client: httpx.Client | None = None,
) -> SimulationReport:
    """Drive the server at ``url`` with simulated traffic and return what was sent.

    Real time (``backfill_hours`` None): items are sent when their time comes, ``speed``
    times faster than the clock, each call event stamped with the wall-clock moment of its
    sending (so at ``speed`` > 1 waits and talk times shrink by that factor). It stops after
    ``duration`` wall seconds (calls still in progress are ended then), when ``stop`` is set,
    or on KeyboardInterrupt; never by itself without ``duration``.

    Backfill: ``backfill_hours`` of traffic ending now, sent as fast as the server takes it,
    500 call events per request; every call runs to its end and every timestamp lies in the
    past; tickets carry the time the agent filed them. Agents' states cannot be backdated
    through the API, so only their final state is reported. ``duration`` caps the run.

    Either way the simulated agents are logged out at the end. Tickets are filed as the
    ``logins`` (queue → user name, password; default agent1/agent2 with the demo password).
    Raises SimulationError when the server cannot be reached, refuses the CTI token or
    lacks a simulated queue.
    """
    config = config or SimulationConfig()
    if speed <= 0:
        raise ValueError("speed must be positive")
    seed = secrets.randbelow(10**6) if seed is None else seed
    say = progress or (lambda _line: None)
    mode = f"backfill of {backfill_hours:g} h" if backfill_hours else f"real time ×{speed:g}"
    report = SimulationReport(seed=seed, mode=mode)
    logins = (
        logins
        if logins is not None
        else {GENERAL: ("agent1", DEMO_PASSWORD), SOCIAL_SECURITY: ("agent2", DEMO_PASSWORD)}
    )
    own_client = client is None
    http = client or httpx.Client(base_url=url, timeout=60)
    stop = stop or threading.Event()
    api = _Api(http, cti_token, logins, report, file_tickets=file_tickets)
    agents: list[str] = []
    say(f"simulating {mode} against {url} (seed {seed}; --seed {seed} repeats this traffic)")
    try:
        api.check_server()
        api.check_queues(list(config.agents))
        if backfill_hours:
            agents = _backfill(api, config, seed, backfill_hours, duration, report, say, stop)
        else:
            agents = _real_time(api, config, seed, speed, duration, report, say, stop)
    finally:
        try:
            for username in agents:
                api.set_state(username, "logged_out")
        except SimulationError:
            pass  # the run failed for this very reason; its error is the one to report
        finally:
            if own_client:
                http.close()
    say(report.summary())
    return report


def _count(item: SimItem, report: SimulationReport) -> None:
    if item.kind == "call_event" and item.body["type"] == "ivr_entered":
        report.calls += 1
        if len(report.call_ids) < 1000:
            report.call_ids.append(item.body["call_id"])


def _backfill(
    api: _Api,
    config: SimulationConfig,
    seed: int,
    hours: float,
    duration: float | None,
    report: SimulationReport,
    say: Callable[[str], None],
    stop: threading.Event,
) -> list[str]:
    now = datetime.now(UTC)
    simulation = TrafficSimulation(
        config, start=now - timedelta(hours=hours), seed=seed, until=now, drain=True
    )
    # Agents' states are not sent in a backfill: an agent back from a break after "now" must
    # neither stretch the shift below nor count as traffic.
    items = [i for i in simulation.items() if i.kind != "agent_state"]
    # Calls that were still going at "now" ran on; shift everything back so they ended too.
    overshoot = max(0.0, (items[-1].at - now).total_seconds()) if items else 0.0
    shift = timedelta(seconds=math.ceil(overshoot) + 1 if overshoot else 0)
    started = time.monotonic()
    events: list[dict[str, Any]] = []
    tickets: list[tuple[dict[str, Any], datetime]] = []
    for item in items:
        at = item.at - shift
        _count(item, report)
        report.first_at = report.first_at or at
        report.last_at = at
        if item.kind == "call_event":
            events.append(_stamp(item.body, at))
        elif item.kind == "ticket":
            tickets.append((item.body, at))
    for index in range(0, len(events), BACKFILL_BATCH):
        if stop.is_set() or (duration is not None and time.monotonic() - started > duration):
            report.note("stopped before the backfill was complete")
            return [a.name for a in simulation.agents]
        api.send_events(events[index : index + BACKFILL_BATCH])
        say(f"backfill: {min(index + BACKFILL_BATCH, len(events)):,}/{len(events):,} events")
    for number, (body, at) in enumerate(tickets, start=1):
        if stop.is_set() or (duration is not None and time.monotonic() - started > duration):
            report.note("stopped before every ticket was filed")
            break
        api.file_ticket(body, at)
        if number % 100 == 0:
            say(f"backfill: {number:,}/{len(tickets):,} tickets")
    return [a.name for a in simulation.agents]


@dataclass(eq=False)
class _HumanCall:
    id: str
    agent: str
    caller: str
    answer_at: float  # time.monotonic()
    answered_at: float | None = None
    events: int = 0


class _HumanAgents:
    """Calls for the people in the console (see the module docstring); times are wall
    seconds on ``time.monotonic()``, whatever the simulation's speed."""

    def __init__(self, api: _Api, prefix: str, queues: list[str], seed: int) -> None:
        self.api = api
        self.prefix = prefix
        self.queues = queues
        self.rng = random.Random(seed)
        self.numbers = itertools.count(1)
        self.calls: dict[str, _HumanCall] = {}  # by agent
        self.next_poll = 0.0
        self.ring_seconds = HUMAN_RING_SECONDS
        self.max_talk_seconds = HUMAN_MAX_TALK_SECONDS
        self.poll_seconds = HUMAN_POLL_SECONDS

    def due(self) -> float:
        """When ``tick`` has something to do next."""
        moments = [self.next_poll]
        for call in self.calls.values():
            if call.answered_at is None:
                moments.append(call.answer_at)
            else:
                moments.append(call.answered_at + self.max_talk_seconds)
        return min(moments)

    def tick(self, now: float) -> None:
        states: dict[str, dict[str, Any]] | None = None
        if now >= self.next_poll:
            self.next_poll = now + self.poll_seconds
            states = self._states()
        if states is not None:
            for username, status in states.items():
                if (
                    not username.startswith("sim-")
                    and status["state"] == "ready"
                    and username not in self.calls
                ):
                    self._offer(status, now)
        for call in list(self.calls.values()):
            if call.answered_at is None:
                if now < call.answer_at:
                    continue
                if states is None:
                    states = self._states() or {}
                if states.get(call.agent, {}).get("state") == "ready":
                    call.answered_at = now
                    self._send(call, "answered", agent=call.agent)
                else:
                    self._end(call)  # the person left while the phone rang
            elif now >= call.answered_at + self.max_talk_seconds:
                self._end(call)
            elif states is not None:
                status = states.get(call.agent, {})
                if not (
                    status.get("state") == "on_call" and status.get("current_call_id") == call.id
                ):
                    self._end(call)  # the person left the call in the console

    def close(self) -> None:
        for call in list(self.calls.values()):
            self._end(call)

    def _states(self) -> dict[str, dict[str, Any]] | None:
        agents = self.api.agents()
        return None if agents is None else {a["username"]: a for a in agents}

    def _offer(self, status: dict[str, Any], now: float) -> None:
        skills = status.get("skills") or []
        queue = next((q for q in skills if q in self.queues), None) or (
            GENERAL if GENERAL in self.queues else self.queues[0]
        )
        caller = "1" + self.rng.choice("3589") + f"{self.rng.randrange(10**9):09d}"
        call = _HumanCall(
            id=f"{self.prefix}-h{next(self.numbers):05d}",
            agent=status["username"],
            caller=caller,
            answer_at=now + self.ring_seconds,
        )
        self.calls[call.agent] = call
        self._send(call, "ivr_entered", caller=caller)
        self._send(call, "ivr_selected", option=IVR_OPTIONS.get(queue, "0"))
        self._send(call, "offered", queue=queue, caller=caller)

    def _end(self, call: _HumanCall) -> None:
        if call.answered_at is None:
            self._send(call, "abandoned")
        self._send(call, "ended")
        self.calls.pop(call.agent, None)

    def _send(self, call: _HumanCall, type_: str, **fields: Any) -> None:
        call.events += 1
        body = {
            "event_id": f"{call.id}:{call.events}",
            "type": type_,
            "call_id": call.id,
            "at": datetime.now(UTC).isoformat(),
            **fields,
        }
        if type_ == "ivr_entered":
            self.api.report.calls += 1
        self.api.send_events([body])


def _real_time(
    api: _Api,
    config: SimulationConfig,
    seed: int,
    speed: float,
    duration: float | None,
    report: SimulationReport,
    say: Callable[[str], None],
    stop: threading.Event,
) -> list[str]:
    wall_start = datetime.now(UTC)
    clock_start = time.monotonic()
    until = None if duration is None else wall_start + timedelta(seconds=duration * speed)
    simulation = TrafficSimulation(config, start=wall_start, seed=seed, until=until, drain=False)
    agents = [a.name for a in simulation.agents]
    pending: list[dict[str, Any]] = []
    last_progress = clock_start

    def wall(at: datetime) -> tuple[float, datetime]:
        offset = (at - wall_start).total_seconds() / speed
        return offset, wall_start + timedelta(seconds=offset)

    def flush() -> None:
        api.send_events(pending)
        pending.clear()

    def deliver(item: SimItem, stamped: datetime) -> None:
        _count(item, report)
        report.first_at = report.first_at or stamped
        report.last_at = stamped
        if item.kind == "call_event":
            pending.append(_stamp(item.body, stamped))
            if len(pending) >= BACKFILL_BATCH:
                flush()
            return
        flush()  # the server must know the call before a state change or ticket about it
        if item.kind == "agent_state":
            api.set_state(item.body["username"], item.body["state"])
        else:
            api.file_ticket(item.body, None)

    humans = _HumanAgents(api, f"{simulation._prefix}-p", list(config.agents), seed)
    try:
        for item in simulation.items():
            offset, stamped = wall(item.at)
            stopped = False
            while True:
                humans.tick(time.monotonic())
                delay = offset - (time.monotonic() - clock_start)
                if delay <= 0:
                    break
                flush()
                # Waiting for the simulated moment (or the people's calls), interruptible.
                wait = min(delay, max(0.0, humans.due() - time.monotonic()))
                if stop.wait(wait):
                    stopped = True
                    break
            if stopped:
                break
            deliver(item, stamped)
            if time.monotonic() - last_progress >= 10:
                last_progress = time.monotonic()
                local = item.at.astimezone(simulation.tz)
                say(f"simulated {local:%H:%M}: {report.calls:,} calls, {report.tickets} tickets")
        else:
            flush()
            humans.close()
            return agents
    except KeyboardInterrupt:
        pass
    # Interrupted: whatever is still in progress ends now.
    elapsed = time.monotonic() - clock_start
    now_sim = wall_start + timedelta(seconds=elapsed * speed)
    for item in simulation.close(now_sim):
        deliver(item, wall(item.at)[1])
    flush()
    humans.close()
    return agents
