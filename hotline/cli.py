"""The ``hotline`` command: the composition root for operators and developers."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from dispatch.open311.cli import open311_app
from dispatch.routing import service as routing_service
from hotline.calls import police
from hotline.calls import service as calls_service
from hotline.calls.cli import calls_app, simulate
from hotline.core import migrate
from hotline.core.settings import get_settings
from knowledgebase import service as kb_service
from knowledgebase.cli import kb_app

app = typer.Typer(help="珠海12345 hotline & ticket dispatch.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations (alembic).", no_args_is_help=True)
user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(open311_app, name="open311")
app.add_typer(kb_app, name="kb")
app.add_typer(calls_app, name="calls")
app.command("simulate")(simulate)
route_app = typer.Typer(help="Route a request by 属地管理、分级负责 and explain why.")
app.add_typer(route_app, name="route")

# Migrations announce every step at INFO; operators only need to hear about problems.
logging.getLogger("alembic").setLevel(logging.WARNING)


def _setup_logging() -> None:
    from hotline.core.redaction import install_on_root

    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_on_root()


def _is_sqlite() -> bool:
    return get_settings().sqlalchemy_url.startswith("sqlite")


def _prepare_database(*, upgrade_postgres: bool = False) -> None:
    try:
        migrate.prepare_database(upgrade_postgres=upgrade_postgres)
    except migrate.SchemaBehind as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.callback()
def _one_shot_commands_start_no_redis(ctx: typer.Context) -> None:
    """珠海12345 hotline & ticket dispatch."""
    # seed, user create and the like relay what they can to a Redis that runs and leave the
    # rest in the outbox: a command that exits must not leave an embedded server behind.
    # The long-running commands (serve, worker, demo) allow it again in _prepare_redis.
    from hotline.core.redis import allow_embedded_start

    allow_embedded_start(False)
    # Called in-process (tests, scripts), the command must not change the caller's rule.
    ctx.call_on_close(allow_embedded_start)


def _prepare_redis() -> str:
    """For long-running commands: the Redis URL, starting the embedded server if needed and
    counting this process among its users (see _release_redis)."""
    from hotline.core.redis import redis_url, use_embedded_redis

    if get_settings().uses_embedded_redis:
        return use_embedded_redis()
    return redis_url()


def _release_redis(wait: float = 0.0) -> None:
    """The last long-running process of a data dir stops the embedded server on its way out."""
    from hotline.core.redis import release_embedded_redis

    if release_embedded_redis(wait=wait):
        typer.echo("embedded Redis stopped (no other hotline process used it)", err=True)


def _register_reschedulers() -> None:
    from hotline.app import register_reschedulers

    register_reschedulers()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API and the browser pages (upgrades an embedded SQLite database on start)."""
    _setup_logging()
    _prepare_database()
    _prepare_redis()
    import uvicorn

    from hotline.core.redaction import uvicorn_log_config

    try:
        uvicorn.run(
            "hotline.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=get_settings().log_level.lower(),
            **proxy_trust_options(),
            # Old websocket clients put their token in the URL: blanked in every log line.
            log_config=uvicorn_log_config(),
        )
    finally:
        _release_redis()


def proxy_trust_options() -> dict:
    """uvicorn's options for X-Forwarded-For/-Proto: believed only from HOTLINE_FORWARDED_ALLOW_IPS.

    uvicorn's own default believes them from 127.0.0.1 (or from FORWARDED_ALLOW_IPS), so any
    local process, or a proxy that passes the header on unchecked, could choose the address
    that log-in throttling and the public lookup count by."""
    allowed = get_settings().forwarded_allow_ips
    if not allowed:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(allowed)}


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="exit once the queues are empty")] = False,
    name: Annotated[str | None, typer.Option(help="worker name shown in /healthz")] = None,
) -> None:
    """Run an rq worker with its scheduler (reminders, renders, imports)."""
    _setup_logging()
    _prepare_redis()
    _register_reschedulers()
    from hotline.core.worker import run_worker

    try:
        run_worker(burst=burst, name=name)
    finally:
        _release_redis()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the schema to REVISION (default: head)."""
    migrate.upgrade(revision)
    typer.echo(f"database at {migrate.current_revision()}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Downgrade the schema to REVISION."""
    migrate.downgrade(revision)
    typer.echo(f"database at {migrate.current_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database and the head of the code."""
    typer.echo(f"current: {migrate.current_revision()}  head: {migrate.head_revision()}")


def _seed_reference_data() -> list[str]:
    from hotline.core.db import transaction

    loaded: list[str] = []
    with transaction() as session:
        for loader in SEED_LOADERS:
            loaded.append(loader(session))
    return loaded


# Each domain contributes a loader of the reference data it owns; the CLI only orders them.
SEED_LOADERS = [
    routing_service.seed_reference,
    calls_service.seed_queues,
    police.seed_police_matters,
    kb_service.seed_sample,
]


@app.command()
def seed() -> None:
    """Load the shipped reference data (gazetteer, departments, matters, knowledge base)."""
    _setup_logging()
    _prepare_database()
    for line in _seed_reference_data():
        typer.echo(line)


def _user_command(change) -> None:
    """Run ``change(session)`` in one transaction; an AppError is printed, exit code 2."""
    from hotline.core.db import transaction
    from hotline.core.errors import AppError

    _prepare_database()
    try:
        with transaction() as session:
            change(session)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


# Audit entries name who did it: the operator's login on this machine, as far as we know it.
def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="user name to log in with")],
    role: Annotated[list[str], typer.Option(help="role (repeatable)")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    department: Annotated[
        list[str] | None, typer.Option(help="department code (repeatable; the department role)")
    ] = None,
    full_name: Annotated[str, typer.Option(help="display name")] = "",
    reset_password: Annotated[
        bool,
        typer.Option(
            "--reset-password",
            help="the user exists: set this password, roles and departments (ends its sessions)",
        ),
    ] = False,
) -> None:
    """Create a user with ROLE(s) and department(s); an existing name needs --reset-password."""
    from hotline.core.auth import add_user, update_user
    from hotline.core.errors import AppError

    def change(session) -> None:
        unknown = routing_service.unknown_departments(session, department or [])
        if unknown:
            raise AppError("auth.unknown_department", f"unknown department(s) {unknown}")
        fields = dict(username=name, password=password, roles=role, departments=department or [])
        if reset_password:
            update_user(session, **fields, full_name=full_name or None, actor=_operator())
        else:
            try:
                add_user(session, **fields, full_name=full_name, actor=_operator())
            except AppError as exc:
                if exc.code == "auth.user_exists":
                    exc.message += "; give --reset-password to change it"
                raise

    _user_command(change)
    typer.echo(f"user {name} saved with roles {sorted(set(role))}")


@user_app.command("password")
def user_password(
    name: Annotated[str, typer.Argument(help="user name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a new password for NAME; its tokens stop working and its open sockets close."""
    from hotline.core.auth import change_password

    _user_command(
        lambda session: change_password(
            session, username=name, new_password=password, actor=_operator()
        )
    )
    typer.echo(f"password of {name} changed; its sessions ended")


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Disable NAME: no log-in, its tokens stop working and its open sockets close."""
    from hotline.core.auth import set_user_active

    _user_command(lambda session: set_user_active(session, name, False, actor=_operator()))
    typer.echo(f"user {name} disabled")


@user_app.command("enable")
def user_enable(name: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Enable NAME again (it logs in anew: tokens from before the disabling stay invalid)."""
    from hotline.core.auth import set_user_active

    _user_command(lambda session: set_user_active(session, name, True, actor=_operator()))
    typer.echo(f"user {name} enabled")


@route_app.callback(invoke_without_command=True)
def route(
    ctx: typer.Context,
    address: Annotated[str, typer.Option(help="where it happened")] = "",
    text: Annotated[str, typer.Option(help="what the citizen said")] = "",
    matter: Annotated[str | None, typer.Option(help="matter code; default: best guess")] = None,
    date: Annotated[str | None, typer.Option(help="day received, YYYY-MM-DD")] = None,
    major: Annotated[bool, typer.Option(help="重大: escalate to the city")] = False,
    multi_area: Annotated[bool, typer.Option(help="spans several areas")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Print where a request goes and the explanation, as the preview API gives it."""
    if ctx.invoked_subcommand is not None:
        return
    if not (address or text):
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    from datetime import datetime

    from hotline.core.db import transaction
    from hotline.core.errors import AppError

    received_at = None
    if date:
        try:
            received_at = datetime.fromisoformat(date).replace(tzinfo=get_settings().tz, hour=12)
        except ValueError as exc:
            typer.echo(f"error: --date must be YYYY-MM-DD, got {date!r}", err=True)
            raise typer.Exit(2) from exc
    _prepare_database()
    try:
        with transaction() as session:
            result = routing_service.decide(
                session,
                text=text,
                address=address,
                matter_code=matter,
                received_at=received_at,
                major=major,
                multi_area=multi_area,
            )
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        import json

        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    typer.echo(routing_service.format_decision(result))


@route_app.command("replay")
def route_replay(
    rules: Annotated[Path, typer.Option(help="draft rules (YAML: matters, departments)")],
    since: Annotated[str, typer.Option(help="replay tickets received from YYYY-MM-DD")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """What-if: re-route past tickets under draft rules and report, per department, what moves."""
    from datetime import date as Date

    from dispatch import replay
    from hotline.core.db import transaction
    from hotline.core.errors import AppError

    try:
        since_day = Date.fromisoformat(since)
    except ValueError as exc:
        typer.echo(f"error: --since must be YYYY-MM-DD, got {since!r}", err=True)
        raise typer.Exit(2) from exc
    _prepare_database()
    try:
        draft = replay.load_draft(rules)
        with transaction() as session:
            report = replay.replay(session, draft, since_day)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        import json

        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(replay.format_report(report, since_day))


@route_app.command("train")
def route_train(
    activate: Annotated[bool, typer.Option(help="make the new version active")] = True,
) -> None:
    """Train a new version of the matter classifier now (corpus + people's final choices)."""
    from dispatch.routing import training
    from hotline.core.db import transaction

    _setup_logging()
    _prepare_database()
    with transaction() as session:
        version = training.train_version(session, actor="cli", activate=activate)
        typer.echo(
            f"matter model {version.id}: trained on {version.trained_on}, "
            f"held-out {version.metrics}{', active' if version.active else ''}"
        )


kpi_app = typer.Typer(help="KPI maintenance.", no_args_is_help=True)
app.add_typer(kpi_app, name="kpi")


@kpi_app.command("rebuild")
def kpi_rebuild() -> None:
    """Recompute the hourly answer-rate buckets (after changing the threshold settings)."""
    from hotline.core.db import transaction
    from hotline.kpi import service as kpi_service

    _prepare_database()
    with transaction() as session:
        count = kpi_service.rebuild_buckets(session)
    typer.echo(f"rebuilt the answer-rate buckets from {count} requests")


jobs_app = typer.Typer(help="Background job maintenance.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("reschedule")
def jobs_reschedule() -> None:
    """Ask again for every scheduled job the database implies (ticket reminders and deadline
    checks, article review reminders, the nightly matter model training): after Redis lost its
    data. Safe to run at any time."""
    from hotline.core import reconcile

    _setup_logging()
    _prepare_database()
    _register_reschedulers()
    counts = reconcile.reschedule_all()
    tickets, articles = counts["tickets"], counts["articles"]
    typer.echo(f"asked again for the jobs of {tickets} running tickets and {articles} articles")


def _create_demo_data() -> int:
    from hotline import demo as demo_data
    from hotline.core.db import transaction

    with transaction() as session:
        demo_data.create_demo_users(session)
    with transaction() as session:
        return demo_data.create_demo_tickets(session)


def _prepare_simulated_traffic() -> bool:
    """Close the calls an earlier simulator left open; whether the wall needs a backfill."""
    from hotline import demo as demo_data
    from hotline.core.db import transaction

    with transaction() as session:
        closed = demo_data.close_abandoned_simulated_calls(session)
    if closed:
        typer.echo(f"ended {closed} simulated call(s) an earlier run left open")
    with transaction() as session:
        backfill = demo_data.needs_backfill(session)
    if not backfill:
        typer.echo("the last two hours already hold simulated calls: no backfill")
    return backfill


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise typer.Exit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise typer.Exit(f"the server did not become healthy within {timeout:.0f}s")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port of the web server")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    simulate_calls: Annotated[
        bool, typer.Option("--simulate/--no-simulate", help="run the call simulator")
    ] = True,
) -> None:
    """Start everything with demo data (server, worker, call simulator); print URLs, logins."""
    from hotline import demo as demo_data

    _setup_logging()
    settings = get_settings()
    typer.echo(f"data dir: {settings.resolved_data_dir}")
    _prepare_database(upgrade_postgres=True)
    _prepare_redis()
    for line in _seed_reference_data():
        typer.echo(line)
    created = _create_demo_data()
    if created:
        typer.echo(f"demo tickets: {created} created")

    env = dict(os.environ)
    # The simulator makes several requests a second: at INFO their access log would bury the
    # URLs and logins printed below. An explicit HOTLINE_LOG_LEVEL still wins.
    env.setdefault("HOTLINE_LOG_LEVEL", "WARNING")
    python = sys.executable
    # Each in its own session: a terminal's Ctrl+C reaches the whole foreground group, which
    # would stop the server while the simulator still ends its calls. Only `hotline demo` gets
    # it, and stops them in order below.
    own_session = {"env": env, "start_new_session": True}
    processes = [
        subprocess.Popen(
            [python, "-m", "hotline", "serve", "--host", host, "--port", str(port)], **own_session
        ),
        subprocess.Popen(
            [python, "-m", "hotline", "worker", "--name", "demo-worker"], **own_session
        ),
    ]
    url = f"http://{host}:{port}"
    try:
        _wait_healthy(url, processes[0])
        backfill = simulate_calls and _prepare_simulated_traffic()
        if backfill:
            typer.echo("simulating the last two hours of calls for the wall…")
            subprocess.run(
                [
                    python,
                    "-m",
                    "hotline",
                    "simulate",
                    "--url",
                    url,
                    "--backfill",
                    str(demo_data.BACKFILL_HOURS),
                    "--seed",
                    "12345",
                ],
                env=env,
                check=False,
                timeout=300,
                stdout=subprocess.DEVNULL,
            )
        if simulate_calls:
            processes.append(
                subprocess.Popen(
                    # An incident and a surge for the desk and the wall to show (热点); the
                    # incident's fifth caller comes some seven minutes in, soon after opening.
                    [python, "-m", "hotline", "simulate", "--url", url]
                    + ["--hotspot", "incident@2:8/12", "--hotspot", "surge@15:20/30"],
                    stdout=subprocess.DEVNULL,
                    **own_session,
                )
            )
        # Ctrl+C stops the demo even when it was started with SIGINT ignored (from a background
        # shell, which passes the ignoring on through exec); SIGTERM stops it the same way.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        typer.echo("\n珠海12345 demo is running:")
        typer.echo(f"  log in      {url}/            (each role lands on its own page)")
        typer.echo(f"  console     {url}/console     (agents)")
        typer.echo(f"  KPI wall    {url}/wall        (supervisors)")
        typer.echo(f"  inbox       {url}/inbox       (departments)")
        typer.echo(f"  desk        {url}/desk        (dispatchers)")
        typer.echo(
            f"  citizens    {url}/m           (the mobile portal; SMS codes are written to "
            f"{settings.resolved_data_dir / 'sms-outbox.jsonl'})"
        )
        typer.echo(f"  API docs    {url}/docs")
        typer.echo(f"  health      {url}/healthz")
        typer.echo(f"\nlogins (password {demo_data.DEMO_PASSWORD}):")
        for username, roles, departments, description in demo_data.DEMO_USERS:
            where = f" [{', '.join(departments)}]" if departments else ""
            typer.echo(f"  {username:<12} {','.join(roles):<11} {description}{where}")
        typer.echo("\nCtrl+C stops everything.")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        typer.echo("a demo process exited; stopping the rest", err=True)
    except KeyboardInterrupt:
        typer.echo("\nstopping…")
    finally:
        # The simulator first, while the server still takes the ends of its calls in flight.
        for group in (processes[2:], processes[:2]):
            _terminate(group)
        # Its children have ended, but their own children (a worker's scheduler) may still be
        # giving their locks back for a moment.
        _release_redis(wait=10)


def _terminate(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def main() -> None:  # pragma: no cover - entry point for `python -m hotline`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
