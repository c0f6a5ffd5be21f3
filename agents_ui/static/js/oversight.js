// What the oversight page (效能监察) and its printable monthly report share: reading the
// oversight API, the tables and the trend charts. Every figure comes from the API as it is;
// nothing is computed here but its formatting.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api } from "./api.js";
import { fmtPercent, h } from "./dom.js";

export const AREA_NONE = "none";

/** The query of a period and area, as the API and the page's address take it. */
export function scopeQuery({ month, area, source }) {
  const query = { month };
  if (area) query.area = area;
  if (source) query.source = source;
  return query;
}

/** The four reports of a period, fetched side by side. */
export async function loadAll(scope) {
  const query = scopeQuery(scope);
  const [report, weeks, months, matrix] = await Promise.all([
    api("/api/v1/oversight/departments", { query }),
    api("/api/v1/oversight/trends", { query: { ...query, unit: "week" } }),
    api("/api/v1/oversight/trends", { query: { ...query, unit: "month" } }),
    api("/api/v1/oversight/matters-by-area", { query: { month: query.month, area: query.area } }),
  ]);
  return { report, weeks, months, matrix };
}

/** The month before this one (YYYY-MM), the default period: the last whole month. */
export function lastMonth(now = new Date()) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit" })
    .formatToParts(now);
  let year = Number(parts.find((p) => p.type === "year").value);
  let month = Number(parts.find((p) => p.type === "month").value) - 1;
  if (month === 0) { year -= 1; month = 12; }
  return `${year}-${String(month).padStart(2, "0")}`;
}

export function fmtScore(score) {
  return score === null || score === undefined ? "—" : score.toFixed(2);
}

/** A change told in words and a symbol, not by colour alone. */
export function changeText(value, { unit = "", better = "up" } = {}) {
  if (value === null || value === undefined) return { text: "—", cls: "change-none", label: "上期无数据" };
  if (value === 0) return { text: "持平", cls: "change-none", label: "与上期持平" };
  const up = value > 0;
  const good = better === "up" ? up : !up;
  const magnitude = Math.abs(value);
  const shown = Number.isInteger(magnitude) ? String(magnitude) : magnitude.toFixed(2);
  return {
    text: `${up ? "▲" : "▼"}${shown}${unit}`,
    cls: good ? "change-good" : "change-bad",
    label: `${up ? "上升" : "下降"}${shown}${unit}`,
  };
}

export function weightsLine(report) {
  const total = Object.values(report.weights).reduce((a, b) => a + b, 0) || 1;
  return Object.entries(report.parts)
    .filter(([part]) => report.weights[part] > 0)
    .map(([part, label]) => `${label}×${Math.round((report.weights[part] / total) * 1000) / 10}%`)
    .join(" + ");
}

// The department table's columns: [header, figure or null, how to show a row].
export const DEPARTMENT_COLUMNS = [
  ["受理量", "received"],
  ["按时签收", "accepted_on_time", "accept_on_time"],
  ["按时办结", "finished_on_time", "finish_on_time"],
  ["退回", "returned"],
  ["延期", "extended"],
  ["重办", "reopened"],
  ["当前超期", "overdue_now"],
  ["满意", "satisfied"],
  ["基本满意", "basically_satisfied"],
  ["不满意", "unsatisfied"],
];

/**
 * The ranked department table. `drill({figure, department, title})`: when given, each count is
 * a button that lists the tickets behind it; `onDepartment(row)`: the name opens the department.
 */
export function departmentTable(report, { drill, onDepartment } = {}) {
  const count = (row, figure) => {
    const n = row.counts[figure];
    if (!drill || !n) return String(n);
    return h("button", {
      type: "button", class: "figure-button", "data-figure": figure, "data-department": row.key,
      "aria-label": `${row.name} ${report.figures[figure]} ${n}，查看工单`,
      on: { click: () => drill({ figure, department: row.key, title: `${row.name} · ${report.figures[figure]}` }) },
    }, String(n));
  };
  const head = h("thead", {}, h("tr", {},
    h("th", { scope: "col" }, "排名"),
    h("th", { scope: "col" }, "部门"),
    h("th", { scope: "col" }, "综合得分"),
    h("th", { scope: "col" }, "较上期"),
    ...DEPARTMENT_COLUMNS.map(([label]) => h("th", { scope: "col" }, label)),
    h("th", { scope: "col" }, "满意率")));
  const body = h("tbody", {}, report.rows.map((row) => {
    const score = changeText(row.change.score);
    const rank = changeText(row.change.rank, { unit: "名" });
    const change = row.previous
      ? [h("span", { class: score.cls, title: `得分${score.label}` }, score.text),
        h("span", { class: `rank-change ${rank.cls}`, title: `排名${rank.label}` }, ` 排名${rank.text}`)]
      : h("span", { class: "change-none" }, "上期无数据");
    return h("tr", { "data-department": row.key },
      h("td", { class: "num" }, String(row.rank)),
      h("th", { scope: "row" }, onDepartment
        ? h("button", {
          type: "button", class: "link-button", "data-testid": "department-link",
          on: { click: () => onDepartment(row) },
        }, row.name)
        : row.name, h("span", { class: "code" }, row.key)),
      h("td", { class: "num score" }, fmtScore(row.score)),
      h("td", { class: "num" }, change),
      ...DEPARTMENT_COLUMNS.map(([, figure, rate]) => h("td", { class: "num" },
        count(row, figure),
        rate ? h("span", { class: "rate" }, ` ${fmtPercent(row.rates[rate])}`) : null)),
      h("td", { class: "num" }, fmtPercent(row.rates.satisfaction)));
  }));
  const totals = report.totals;
  const foot = h("tfoot", {}, h("tr", {},
    h("td", {}, ""), h("th", { scope: "row" }, "合计"), h("td", {}, ""), h("td", {}, ""),
    ...DEPARTMENT_COLUMNS.map(([, figure, rate]) => h("td", { class: "num" }, String(totals.counts[figure]),
      rate ? h("span", { class: "rate" }, ` ${fmtPercent(totals.rates[rate])}`) : null)),
    h("td", { class: "num" }, fmtPercent(totals.rates.satisfaction))));
  return h("table", { class: "data-table", "data-testid": "department-table" },
    h("caption", {}, `${report.period.label} 各部门效能排名（对比 ${report.previous_period.label}）`),
    head, body, foot);
}

/** A trend's table: each bucket's received count drills down to its tickets. */
export function trendTable(trend, { drill, caption }) {
  return h("table", { class: "data-table compact" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...["周期", "受理量", "按时签收率", "按时办结率", "满意率", "当前超期", "综合得分"]
      .map((label) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, trend.points.map((p) => h("tr", {},
      h("th", { scope: "row" }, p.label),
      h("td", { class: "num" }, drill && p.counts.received
        ? h("button", {
          type: "button", class: "figure-button",
          "aria-label": `${p.label} 受理量 ${p.counts.received}，查看工单`,
          on: { click: () => drill({ figure: "received", start: p.first, end: p.last, title: `${p.first} 至 ${p.last} · 受理量` }) },
        }, String(p.counts.received))
        : String(p.counts.received)),
      h("td", { class: "num" }, fmtPercent(p.rates.accept_on_time)),
      h("td", { class: "num" }, fmtPercent(p.rates.finish_on_time)),
      h("td", { class: "num" }, fmtPercent(p.rates.satisfaction)),
      h("td", { class: "num" }, String(p.counts.overdue_now)),
      h("td", { class: "num" }, fmtScore(p.score))))));
}

/** The matter × area table: each cell drills down to the requests of that matter there. */
export function matrixTable(matrix, { drill, limit } = {}) {
  const rows = limit ? matrix.rows.slice(0, limit) : matrix.rows;
  const cell = (row, column) => {
    const n = row.cells[column.key];
    if (!drill || !n) return String(n);
    return h("button", {
      type: "button", class: "figure-button",
      "aria-label": `${row.name} · ${column.name} ${n}件，查看工单`,
      on: { click: () => drill({ figure: "received", matter: row.key, area: column.key, all: true, title: `${row.name} · ${column.name}` }) },
    }, String(n));
  };
  return h("table", { class: "data-table compact", "data-testid": "matter-area-table" },
    h("caption", {}, `${matrix.period.label} 诉求事项 × 区域（受理量${limit && matrix.rows.length > limit ? `，前${limit}项` : ""}）`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "事项"),
      ...matrix.columns.map((c) => h("th", { scope: "col" }, c.name)), h("th", { scope: "col" }, "合计"))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      h("th", { scope: "row" }, row.name, h("span", { class: "code" }, row.key)),
      ...matrix.columns.map((c) => h("td", { class: "num" }, cell(row, c))),
      h("td", { class: "num" }, String(row.total))))),
    h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "合计"),
      ...matrix.columns.map((c) => h("td", { class: "num" }, String(matrix.totals[c.key]))),
      h("td", { class: "num" }, String(matrix.total)))));
}

const pct = (rate) => (rate === null || rate === undefined ? null : Math.round(rate * 1000) / 10);

/**
 * A trend chart: tickets received as bars (left axis), the on-time and satisfaction rates as
 * lines (right axis, %). The chart is a picture for the eye; the table beside it carries the
 * same figures for everyone else (the box is aria-hidden).
 */
export function trendChart(box, trend, { width, height = 240 } = {}) {
  const xs = trend.points.map((_, i) => i);
  // Short labels under the bars: "11月" for months, the Monday ("11/9") for weeks.
  const labels = trend.points.map((p) => (trend.unit === "month" ? p.label
    : `${Number(p.first.slice(5, 7))}/${Number(p.first.slice(8, 10))}`));
  const data = [
    xs,
    trend.points.map((p) => p.counts.received),
    trend.points.map((p) => pct(p.rates.finish_on_time)),
    trend.points.map((p) => pct(p.rates.satisfaction)),
    trend.points.map((p) => pct(p.rates.accept_on_time)),
  ];
  const axis = { stroke: "#334155", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } };
  const bars = uPlot.paths.bars({ size: [0.6, 40] });
  const rate = (label, stroke, dash) => ({
    label, stroke, width: 2, dash, scale: "%", spanGaps: true,
    points: { show: true, size: 6, fill: stroke },
    value: (u, v) => (v === null ? "—" : `${v}%`),
  });
  return new uPlot({
    width: Math.max(320, width || box.clientWidth || 640),
    height,
    scales: { x: { time: false, range: [-0.6, xs.length - 0.4] }, "%": { range: [0, 100] } },
    axes: [
      { ...axis, values: (u, ticks) => ticks.map((t) => labels[t] ?? ""), splits: () => xs, gap: 4 },
      { ...axis, label: "受理量", size: 60 },
      { ...axis, scale: "%", side: 1, grid: { show: false }, values: (u, ticks) => ticks.map((t) => `${t}%`), size: 52 },
    ],
    series: [
      { label: "周期", value: (u, v) => (v === null ? "—" : labels[v] ?? "") },
      { label: "受理量", stroke: "#1d4ed8", fill: "rgba(29, 78, 216, 0.25)", paths: bars, points: { show: false } },
      rate("按时办结率", "#15803d"),
      rate("满意率", "#b45309", [6, 4]),
      rate("按时签收率", "#7c3aed", [2, 3]),
    ],
    legend: { live: false },
  }, data, box);
}
