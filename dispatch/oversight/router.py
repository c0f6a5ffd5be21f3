"""HTTP routes of the oversight reports (效能监察): supervisors and admins only.

The period is ``month`` (YYYY-MM) or ``start`` and ``end`` (local days, both included);
without either, last month. ``area`` is a district or functional area code (``none``: tickets
no place was found for), ``source`` narrows satisfaction to one source of follow-ups.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from dispatch.oversight import export, service
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import AppError
from hotline.core.moments import Day

router = APIRouter(prefix="/api/v1/oversight", tags=["oversight"])

Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
Area = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
Code = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Unit = Annotated[Literal["week", "month"], Query()]


def _requested_period(
    month: Month = None, start: Day | None = None, end: Day | None = None
) -> service.Period:
    return service.period(month=month, first=start, last=end)


# The same three query parameters on every route, read once.
RequestedPeriod = Annotated[service.Period, Depends(_requested_period)]


@router.get("/departments")
def departments(
    session: SessionDep,
    _user: Supervisor,
    the_period: RequestedPeriod,
    area: Area = None,
    source: Code = None,
    with_sources: bool = False,
) -> dict[str, Any]:
    """Each department's figures, rates and composite score (weights included), ranked, with
    the change from the previous period. ``with_sources``: the follow-ups' verdicts per source
    as well (one more pass over the period's visits)."""
    return service.departments_report(
        session,
        the_period=the_period,
        area=area,
        source=source,
        with_sources=with_sources,
    )


@router.get("/trends")
def trends(
    session: SessionDep,
    _user: Supervisor,
    the_period: RequestedPeriod,
    unit: Unit = "month",
    area: Area = None,
    department: Code = None,
    source: Code = None,
) -> dict[str, Any]:
    """Figures and score per week (13 weeks) or month (12 months) up to the period's end."""
    return service.trends(
        session,
        unit=unit,
        the_period=the_period,
        area=area,
        department=department,
        source=source,
    )


@router.get("/matters-by-area")
def matters_by_area(
    session: SessionDep,
    _user: Supervisor,
    the_period: RequestedPeriod,
    area: Area = None,
) -> dict[str, Any]:
    """Tickets received per matter and area: where the requests come from."""
    return service.matters_by_area(session, the_period=the_period, area=area)


@router.get("/drill")
def drill(
    session: SessionDep,
    _user: Supervisor,
    figure: Annotated[str, Query(max_length=32, pattern=r"^[a-z_]+$")],
    the_period: RequestedPeriod,
    area: Area = None,
    department: Code = None,
    matter: Code = None,
    source: Code = None,
    all_departments: bool = False,
    limit: Annotated[int, Query(ge=1, le=service.DRILL_LIMIT)] = service.DRILL_LIMIT,
) -> dict[str, Any]:
    """The tickets (or follow-up visits) behind one figure: the first ``limit``, newest first,
    and how many there are in all. ``all_departments``: the desk's tickets too (the matter ×
    area table counts every request)."""
    result = service.drill(
        session,
        figure=figure,
        filters=service.Filters(
            the_period,
            area=area,
            matter=matter,
            department=department,
            source=source,
        ),
        all_departments=all_departments,
        limit=limit,
    )
    return {
        "figure": result.figure,
        "label": service.FIGURES[result.figure].label,
        "total": result.total,
        "items": result.items,
    }


def _tables(session, the_period: service.Period, area, source) -> list:
    report = service.departments_report(
        session, the_period=the_period, area=area, source=source, with_sources=True
    )
    weeks = service.trends(session, unit="week", the_period=the_period, area=area, source=source)
    months = service.trends(session, unit="month", the_period=the_period, area=area, source=source)
    matrix = service.matters_by_area(session, the_period=the_period, area=area)
    return export.tables(report, weeks, months, matrix)


def _download(content: bytes | str, media_type: str, filename: str) -> Response:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
            )
        },
    )


def _filename(the_period: service.Period, area: str | None, extension: str) -> str:
    where = f"-{area}" if area else ""
    return (
        f"效能监察-{the_period.first.isoformat()}_{the_period.last.isoformat()}{where}.{extension}"
    )


@router.get("/export.xlsx", response_class=Response)
def export_xlsx(
    session: SessionDep,
    _user: Supervisor,
    the_period: RequestedPeriod,
    area: Area = None,
    source: Code = None,
) -> Response:
    """Every table of the page as a workbook, one formatted sheet each, Chinese headers."""
    all_tables = _tables(session, the_period, area, source)
    content = export.xlsx(all_tables, title=f"12345热线效能监察 {the_period.label}")
    return _download(
        content,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _filename(the_period, area, "xlsx"),
    )


@router.get("/export.csv", response_class=Response)
def export_csv(
    session: SessionDep,
    _user: Supervisor,
    the_period: RequestedPeriod,
    table: Annotated[
        Literal[
            "departments",
            "trend_week",
            "trend_month",
            "matters_by_area",
            "satisfaction_sources",
            "weights",
        ],
        Query(),
    ] = "departments",
    area: Area = None,
    source: Code = None,
) -> Response:
    """One table of the page as CSV (UTF-8 with a byte-order mark, for Excel)."""
    all_tables = _tables(session, the_period, area, source)
    chosen = next((t for t in all_tables if t.key == table), None)
    if chosen is None:  # pragma: no cover - the Literal admits only the keys above
        raise AppError("oversight.unknown_table", f"table is one of {list(export.TABLE_KEYS)}")
    return _download(
        export.csv_text(chosen),
        "text/csv; charset=utf-8",
        _filename(the_period, area, f"{table}.csv"),
    )
