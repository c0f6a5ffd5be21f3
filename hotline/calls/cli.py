"""Commands of call intake: ``hotline calls import-queue-log`` and ``hotline simulate``.

The composition root (``hotline/cli.py``) mounts ``calls_app`` as ``hotline calls`` and
registers ``simulate`` as the top-level ``hotline simulate``; both also work on their own.
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from hotline.calls import queue_log
from hotline.calls import simulator as sim
from hotline.core import migrate
from hotline.core.settings import get_settings

calls_app = typer.Typer(
    help="Call intake: import an Asterisk queue_log, simulate traffic.", no_args_is_help=True
)

_PROBLEMS_SHOWN = 20


@calls_app.command("import-queue-log")
def import_queue_log(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="queue_log file")
    ],
    queue_map: Annotated[
        str | None,
        typer.Option(help="our queue = Asterisk queue, e.g. general=12345q,social_security=sbq"),
    ] = None,
    agent_map: Annotated[
        str | None,
        typer.Option(help="user name = Asterisk member, e.g. agent1=SIP/1001 (default: stripped)"),
    ] = None,
    transfer_map: Annotated[
        str | None,
        typer.Option(help="our queue = dialled extension, e.g. social_security=8002"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="events per transaction")] = 1000,
) -> None:
    """Import FILE, an Asterisk queue_log, as call events (importing it again adds nothing).

    Exits with 1 when some lines could not be read or some events were refused (the rest is
    imported all the same), so a script can tell a partial import from a complete one.
    """
    try:
        migrate.prepare_database()
    except migrate.SchemaBehind as exc:
        raise typer.Exit(f"error: {exc}") from exc
    try:
        maps = {
            "queue_map": queue_log.parse_mapping(queue_map, "--queue-map"),
            "agent_map": queue_log.parse_mapping(agent_map, "--agent-map"),
            "transfer_map": queue_log.parse_mapping(transfer_map, "--transfer-map"),
        }
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    def show(report: queue_log.ImportReport) -> None:
        typer.echo(
            f"… line {report.lines:,}: {report.accepted:,} new, "
            f"{report.duplicates:,} already known, {report.rejected:,} refused"
        )

    report = queue_log.import_file(file, batch=batch, progress=show, **maps)
    typer.echo(report.summary())
    for problem in report.problems[:_PROBLEMS_SHOWN]:
        typer.echo(f"  {problem}", err=True)
    if report.problem_count > _PROBLEMS_SHOWN:
        typer.echo(f"  … and {report.problem_count - _PROBLEMS_SHOWN:,} more", err=True)
    if report.problem_count:
        raise typer.Exit(1)


def _parse_agents(value: str) -> dict[str, int]:
    """``15`` (every simulated queue) or ``general=12,social_security=10``."""
    value = value.strip()
    if re.fullmatch(r"\d+", value):
        return dict.fromkeys(sim.DEFAULT_AGENTS, int(value))
    agents: dict[str, int] = {}
    for item in value.split(","):
        queue, sep, count = item.partition("=")
        if not sep or not queue.strip() or not count.strip().isdigit():
            raise typer.BadParameter(f"--agents entry {item!r} is not queue=count")
        agents[queue.strip()] = int(count)
    return agents


def _parse_window(value: str | None) -> tuple[float, float | None]:
    """``START-END`` minutes after the start of the simulated period (END may be empty)."""
    if not value:
        return 0.0, None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)?\s*", value)
    if not match:
        raise typer.BadParameter(f"--surge-window {value!r} is not START-END in minutes")
    start = float(match.group(1)) * 60
    end = float(match.group(2)) * 60 if match.group(2) else None
    if end is not None and end <= start:
        raise typer.BadParameter("--surge-window must end after it starts")
    return start, end


def simulate(
    url: Annotated[str, typer.Option(help="the server to drive")] = "http://127.0.0.1:8000",
    cti_token: Annotated[
        str | None, typer.Option(help="X-CTI-Token (default: HOTLINE_CTI_TOKEN)")
    ] = None,
    calls_per_day: Annotated[
        float, typer.Option(min=1, help="mean calls a day (2017: 4,426)")
    ] = sim.DEFAULT_CALLS_PER_DAY,
    agents: Annotated[
        str, typer.Option(help="agents per queue: 15, or general=15,social_security=12")
    ] = "general=15,social_security=15",
    surge: Annotated[
        bool, typer.Option(help="typhoon surge: more calls, shorter patience")
    ] = False,
    surge_factor: Annotated[float, typer.Option(min=1, help="arrivals × this in a surge")] = 4.0,
    surge_window: Annotated[
        str | None,
        typer.Option(help="START-END minutes into the simulated period (default: all of it)"),
    ] = None,
    hotspot: Annotated[
        list[str] | None,
        typer.Option(
            help="inject a hot spot: incident@30:8/30 (an incident 30 min in, 8 callers over "
            "30 min) or surge@90:20/60; repeatable"
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="same seed, same traffic")] = None,
    speed: Annotated[float, typer.Option(min=0.01, help="60: an hour in a minute")] = 1.0,
    duration: Annotated[
        float | None, typer.Option(min=0, help="stop after this many wall-clock seconds")
    ] = None,
    backfill: Annotated[
        float | None,
        typer.Option(min=0.01, help="send this many past HOURS as fast as possible, then stop"),
    ] = None,
    tickets: Annotated[bool, typer.Option(help="agents file tickets for some calls")] = True,
    general_agent: Annotated[
        str, typer.Option(help="user filing tickets for general-desk calls")
    ] = "agent1",
    social_agent: Annotated[
        str, typer.Option(help="user filing tickets for social-security calls")
    ] = "agent2",
    password: Annotated[
        str, typer.Option(help="their password (the demo's by default)")
    ] = sim.DEMO_PASSWORD,
) -> None:
    """Simulate hotline traffic through the HTTP API: calls, agents' states, tickets."""
    agent_counts = _parse_agents(agents)
    start, end = _parse_window(surge_window)
    try:
        plans = tuple(sim.HotspotPlan.parse(text) for text in hotspot or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    config = sim.SimulationConfig(
        calls_per_day=calls_per_day,
        agents=agent_counts,
        surge=sim.Surge(start=start, end=end, factor=surge_factor) if surge else None,
        hotspots=plans,
    )
    token = cti_token or get_settings().cti_token.get_secret_value()
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        # `hotline demo` stops its processes with SIGTERM: end the calls in flight as on Ctrl+C.
        previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = sim.run_simulation(
            url=url,
            cti_token=token,
            config=config,
            seed=seed,
            speed=speed,
            duration=duration,
            backfill_hours=backfill,
            logins={
                sim.GENERAL: (general_agent, password),
                sim.SOCIAL_SECURITY: (social_agent, password),
            },
            file_tickets=tickets,
            progress=typer.echo,
        )
    except sim.SimulationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    for problem in report.problems[:_PROBLEMS_SHOWN]:
        typer.echo(f"  {problem}", err=True)


calls_app.command("simulate")(simulate)
