"""``hotline open311 key create|revoke|list``: API keys for Open311 clients, from a terminal.

Mounted by the composition root as ``app.add_typer(open311_app, name="open311")``.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Annotated

import typer

from dispatch.open311 import service
from hotline.core import migrate
from hotline.core.db import transaction
from hotline.core.errors import AppError
from hotline.core.settings import get_settings

open311_app = typer.Typer(help="Open311 GeoReport v2 endpoint (/open311/v2).", no_args_is_help=True)
key_app = typer.Typer(help="Issue, list and revoke Open311 API keys.", no_args_is_help=True)
open311_app.add_typer(key_app, name="key")


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without /etc/passwd entries
        user = "unknown"
    return f"cli:{user}"[:64]


def _prepare_database() -> None:
    # The embedded SQLite database is brought up to date on use; PostgreSQL only by an operator.
    if get_settings().sqlalchemy_url.startswith("sqlite"):
        migrate.upgrade()
        return
    current, head = migrate.current_revision(), migrate.head_revision()
    if current != head:
        typer.echo(
            f"database schema is at {current}, the code needs {head}: run `hotline db upgrade`",
            err=True,
        )
        raise typer.Exit(2)


@key_app.command("create")
def key_create(name: Annotated[str, typer.Argument(help="who the key is for")]) -> None:
    """Issue a key for client NAME and print it (the last line); it is never shown again."""
    _prepare_database()
    try:
        with transaction() as session:
            row, key = service.create_key(session, name=name, actor=_actor())
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Open311 API key {row.prefix} for {row.name}; keep it now, it is not shown again:")
    typer.echo(key)


@key_app.command("revoke")
def key_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix (see list)")]) -> None:
    """Revoke the key with PREFIX; its client is refused from its next request on."""
    _prepare_database()
    try:
        with transaction() as session:
            row = service.revoke_key(session, prefix=prefix, actor=_actor())
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"revoked {row.prefix} ({row.name})")


@key_app.command("list")
def key_list() -> None:
    """List the keys: prefix, state, when issued, when last used, and the client's name."""
    _prepare_database()
    tz = get_settings().tz

    def when(moment: datetime | None) -> str:
        return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}" if moment else "never"

    with transaction() as session:
        lines = [
            f"{r.prefix:<9} {'active' if r.active else 'revoked':<8} "
            f"issued {when(r.created_at):<17} used {when(r.last_used_at):<17} {r.name}"
            for r in service.list_keys(session)
        ]
    typer.echo("\n".join(lines) if lines else "no Open311 API keys")


if __name__ == "__main__":  # pragma: no cover - `python -m dispatch.open311.cli` before wiring
    open311_app()
