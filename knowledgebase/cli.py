"""``hotline kb``: import and export the knowledge base as JSON lines.

The format is that of ``knowledgebase/reference/kb_sample.jsonl``: one JSON object a line with
``key``, ``category``, ``title``, ``keywords`` and ``body`` (Markdown), optionally
``department`` and ``review_by`` (YYYY-MM-DD). Imported articles are published.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hotline.core import migrate
from hotline.core.db import get_engine, transaction
from hotline.core.settings import get_settings
from knowledgebase import service

kb_app = typer.Typer(
    help="Knowledge base (政务知识库): import and export articles.", no_args_is_help=True
)

DEFAULT_BATCH = 1000
DEFAULT_PROGRESS_EVERY = 10_000


def _prepare_database() -> None:
    """Bring an embedded SQLite schema to head; on PostgreSQL insist on an upgraded schema."""
    if get_settings().sqlalchemy_url.startswith("sqlite"):
        migrate.upgrade()
        return
    # Compared as sets of heads: the migration history may branch (one branch per domain).
    heads = set(ScriptDirectory.from_config(migrate.alembic_config()).get_heads())
    with get_engine().connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != heads:
        typer.echo(
            f"database schema is at {sorted(current)}, the code needs {sorted(heads)}: "
            "run `hotline db upgrade`",
            err=True,
        )
        raise typer.Exit(2)


def _import_batch(batch: list[tuple[int, dict[str, Any]]], actor: str) -> service.ImportReport:
    try:
        with transaction() as session:
            return service.import_records(session, batch, actor=actor)
    except Exception:  # noqa: BLE001 - one bad record must not cost the batch's good ones
        if len(batch) == 1:
            line, _data = batch[0]
            report = service.ImportReport(lines=1)
            report.errors.append((line, f"{sys.exc_info()[1]!s}"[:300]))
            return report
        report = service.ImportReport()
        for item in batch:
            report.add(_import_batch([item], actor))
        return report


def run_import(
    lines: Iterable[str],
    *,
    actor: str = "import",
    batch_size: int = DEFAULT_BATCH,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
    progress: Callable[[str], None] | None = None,
) -> service.ImportReport:
    """Import JSON lines in batches, one transaction per batch; returns what happened.

    Bad lines are reported with their numbers and left out; the others are committed. A
    batch that fails as a whole (say, a key created at the same moment by someone else) is
    retried record by record so that only the failing record is lost.
    """
    report = service.ImportReport()
    batch: list[tuple[int, dict[str, Any]]] = []
    started = time.perf_counter()
    line_number = 0

    def flush() -> None:
        if batch:
            report.add(_import_batch(list(batch), actor))
            batch.clear()

    for line_number, line in enumerate(lines, start=1):
        parsed = service.parse_line(line, line_number)
        if isinstance(parsed, dict):
            batch.append((line_number, parsed))
        elif parsed is not None:
            report.lines += 1
            report.errors.append(parsed)
        if len(batch) >= batch_size:
            flush()
        if progress and progress_every and line_number % progress_every == 0:
            flush()
            rate = report.imported / max(time.perf_counter() - started, 1e-9)
            progress(f"kb import: line {line_number}: {report.summary()} ({rate:.0f} articles/s)")
    flush()
    return report


@kb_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="JSON lines file ('-' for standard input)")],
    batch_size: Annotated[
        int, typer.Option(min=1, help="articles per transaction")
    ] = DEFAULT_BATCH,
    progress_every: Annotated[
        int, typer.Option(min=0, help="report progress every N lines (0: never)")
    ] = DEFAULT_PROGRESS_EVERY,
    actor: Annotated[str, typer.Option(help="author recorded on new versions")] = "import",
) -> None:
    """Import articles (published; idempotent by key). Exits 1 if any line was bad."""
    _prepare_database()
    started = time.perf_counter()
    if str(file) == "-":
        stream: TextIO = sys.stdin
        report = run_import(
            stream,
            actor=actor,
            batch_size=batch_size,
            progress_every=progress_every,
            progress=lambda m: typer.echo(m, err=True),
        )
    else:
        if not file.is_file():
            typer.echo(f"error: no such file {file}", err=True)
            raise typer.Exit(2)
        with file.open(encoding="utf-8-sig") as stream:
            report = run_import(
                stream,
                actor=actor,
                batch_size=batch_size,
                progress_every=progress_every,
                progress=lambda m: typer.echo(m, err=True),
            )
    elapsed = time.perf_counter() - started
    for line, message in sorted(report.errors):
        typer.echo(f"line {line}: {message}", err=True)
    typer.echo(
        f"imported {report.summary()} in {elapsed:.1f}s "
        f"({report.imported / max(elapsed, 1e-9):.0f} articles/s)"
    )
    if report.errors:
        raise typer.Exit(1)


@kb_app.command("export")
def export_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")
    ] = None,
) -> None:
    """Export the published articles, ordered by key, in the import format."""
    _prepare_database()
    count = 0
    with transaction() as session:
        if output is None:
            for record in service.export_records(session):
                sys.stdout.write(service.export_line(record) + "\n")
                count += 1
            sys.stdout.flush()
        else:
            with output.open("w", encoding="utf-8") as stream:
                for record in service.export_records(session):
                    stream.write(service.export_line(record) + "\n")
                    count += 1
    typer.echo(f"exported {count} articles", err=True)
