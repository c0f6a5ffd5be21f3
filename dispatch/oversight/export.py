"""The oversight tables as files: XLSX (one formatted sheet per table) and CSV (one table).

The tables are built once from the reports' dicts (``tables``), so the workbook, the CSV and
the page show the same numbers: counts as integers, rates as fractions (formatted as percent
in the workbook), scores as the API gives them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter

from dispatch.oversight.service import PARTS, SOURCES

PERCENT, SCORE, COUNT = "percent", "score", "count"


@dataclass
class Table:
    key: str
    title: str  # the sheet's name: at most 31 characters, none of []:*?/\
    columns: list[tuple[str, str]]  # (Chinese header, kind: text | count | percent | score)
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _department_table(report: dict[str, Any]) -> Table:
    columns = [
        ("排名", COUNT),
        ("部门编码", "text"),
        ("部门", "text"),
        ("综合得分", SCORE),
        ("得分变化", SCORE),
        ("排名变化", COUNT),
        ("受理量", COUNT),
        ("受理量变化", COUNT),
        ("已签收", COUNT),
        ("按时签收", COUNT),
        ("按时签收率", PERCENT),
        ("已办结", COUNT),
        ("按时办结", COUNT),
        ("按时办结率", PERCENT),
        ("退回", COUNT),
        ("延期", COUNT),
        ("重办", COUNT),
        ("当前超期", COUNT),
        ("回访", COUNT),
        ("满意", COUNT),
        ("基本满意", COUNT),
        ("不满意", COUNT),
        ("满意率", PERCENT),
    ]
    table = Table(
        "departments",
        "部门排名",
        columns,
        note=f"{report['period']['label']} · 对比上期 {report['previous_period']['label']}",
    )
    for r in report["rows"]:
        c, rate, change = r["counts"], r["rates"], r["change"]
        table.rows.append(
            [
                r["rank"],
                r["key"],
                r["name"],
                r["score"],
                change["score"],
                change["rank"],
                c["received"],
                change["received"],
                c["accepted"],
                c["accepted_on_time"],
                rate["accept_on_time"],
                c["finished"],
                c["finished_on_time"],
                rate["finish_on_time"],
                c["returned"],
                c["extended"],
                c["reopened"],
                c["overdue_now"],
                c["visits"],
                c["satisfied"],
                c["basically_satisfied"],
                c["unsatisfied"],
                rate["satisfaction"],
            ]
        )
    return table


def _sources_table(report: dict[str, Any]) -> Table:
    table = Table(
        "satisfaction_sources",
        "满意度按来源",
        [
            ("部门编码", "text"),
            ("部门", "text"),
            ("来源", "text"),
            ("满意", COUNT),
            ("基本满意", COUNT),
            ("不满意", COUNT),
        ],
    )
    for r in report["rows"]:
        for source, verdicts in sorted(r["satisfaction_by_source"].items()):
            table.rows.append(
                [
                    r["key"],
                    r["name"],
                    SOURCES.get(source, source),
                    verdicts.get("satisfied", 0),
                    verdicts.get("basically_satisfied", 0),
                    verdicts.get("unsatisfied", 0),
                ]
            )
    return table


def _weights_table(report: dict[str, Any]) -> Table:
    total = sum(report["weights"].values()) or 1
    table = Table("weights", "评分权重", [("指标", "text"), ("权重", SCORE), ("占比", PERCENT)])
    for part, label in PARTS.items():
        weight = report["weights"][part]
        table.rows.append([label, weight, weight / total])
    return table


def _trend_table(trend: dict[str, Any]) -> Table:
    unit = "周" if trend["unit"] == "week" else "月"
    table = Table(
        f"trend_{trend['unit']}",
        f"趋势（按{unit}）",
        [
            ("周期", "text"),
            ("起", "text"),
            ("止", "text"),
            ("受理量", COUNT),
            ("按时签收率", PERCENT),
            ("按时办结率", PERCENT),
            ("满意率", PERCENT),
            ("退回", COUNT),
            ("延期", COUNT),
            ("重办", COUNT),
            ("当前超期", COUNT),
            ("综合得分", SCORE),
        ],
    )
    for p in trend["points"]:
        c, rate = p["counts"], p["rates"]
        table.rows.append(
            [
                p["label"],
                p["first"],
                p["last"],
                c["received"],
                rate["accept_on_time"],
                rate["finish_on_time"],
                rate["satisfaction"],
                c["returned"],
                c["extended"],
                c["reopened"],
                c["overdue_now"],
                p["score"],
            ]
        )
    return table


def _matrix_table(matrix: dict[str, Any]) -> Table:
    columns = [("事项编码", "text"), ("事项", "text")]
    columns += [(c["name"], COUNT) for c in matrix["columns"]] + [("合计", COUNT)]
    table = Table("matters_by_area", "事项×区域", columns)
    for r in matrix["rows"]:
        cells = [r["cells"][c["key"]] for c in matrix["columns"]]
        table.rows.append([r["key"], r["name"], *cells, r["total"]])
    table.rows.append(
        ["", "合计", *(matrix["totals"][c["key"]] for c in matrix["columns"]), matrix["total"]]
    )
    return table


def tables(
    report: dict[str, Any], weeks: dict[str, Any], months: dict[str, Any], matrix: dict[str, Any]
) -> list[Table]:
    return [
        _department_table(report),
        _trend_table(weeks),
        _trend_table(months),
        _matrix_table(matrix),
        _sources_table(report),
        _weights_table(report),
    ]


TABLE_KEYS = (
    "departments",
    "trend_week",
    "trend_month",
    "matters_by_area",
    "satisfaction_sources",
    "weights",
)

_HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_THIN = Side(style="thin", color="B7B7B7")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_FORMATS = {PERCENT: "0.0%", SCORE: "0.00", COUNT: "#,##0"}


def xlsx(all_tables: list[Table], *, title: str) -> bytes:
    """A workbook with one sheet per table: a title line, bold headers on a fill, frozen
    panes below the headers, number formats per column, widths that fit Chinese text."""
    book = Workbook()
    book.remove(book.active)
    # A named style per kind of column: setting a border and a format cell by cell hashes the
    # style objects for every cell, which was most of the time a workbook took.
    for kind in (None, *_FORMATS):
        style = NamedStyle(name=f"body-{kind}", border=_BORDER)
        if kind in _FORMATS:
            style.number_format = _FORMATS[kind]
        book.add_named_style(style)
    for table in all_tables:
        sheet = book.create_sheet(table.title)
        sheet.append([f"{title} · {table.title}" + (f"（{table.note}）" if table.note else "")])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append([header for header, _ in table.columns])
        for cell in sheet[2]:
            cell.fill, cell.font, cell.border = _HEADER_FILL, _HEADER_FONT, _BORDER
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in table.rows:
            sheet.append(row)
        for index, (header, kind) in enumerate(table.columns, start=1):
            letter = get_column_letter(index)
            style = f"body-{kind if kind in _FORMATS else None}"
            for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
                cell.style = style
            values = [header] + [str(r[index - 1] or "") for r in table.rows]
            # CJK characters take about two columns of width.
            width = max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in v) for v in values)
            sheet.column_dimensions[letter].width = min(max(width + 2, 8), 40)
        sheet.freeze_panes = "A3"
        sheet.print_options.gridLines = False
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
        sheet.page_setup.fitToWidth = 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv_value(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == PERCENT:
        return f"{value * 100:.1f}%"
    return str(value)


def csv_text(table: Table) -> str:
    """One table as CSV with Chinese headers, a byte-order mark so that Excel reads UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([header for header, _ in table.columns])
    for row in table.rows:
        kinds = [kind for _, kind in table.columns]
        writer.writerow([_csv_value(v, kind) for v, kind in zip(row, kinds, strict=True)])
    return out.getvalue()
