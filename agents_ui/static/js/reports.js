// The oversight page (效能监察): departments compared over a month and an area, their trends,
// where requests come from, and the tickets behind every figure; exports and the printable
// monthly report. The period and area live in the address, so a view can be shared.

import { api, ApiError, describeError, getToken, goToLogin } from "./api.js";
import { $, fmtDateTime, h, replaceChildren, STATUS_LABELS } from "./dom.js";
import {
  AREA_NONE, departmentTable, lastMonth, loadAll, matrixTable, scopeQuery, trendChart,
  trendTable, weightsLine,
} from "./oversight.js";
import { announce, markReady, showError, startPage } from "./shell.js";

const state = { scope: null, data: null, charts: [] };

// The trail's actions as the hotline calls them (dispatch/tickets/service.py).
const ACTION_LABELS = {
  create: "受理", dispatch: "派单", accept: "签收", return: "退回", "request-extension": "申请延期",
  "decide-extension": "审批延期", reply: "回复", visit: "回访", close: "办结", supervise: "督办",
  "answer-directly": "直接答复", link: "关联重复件", unlink: "取消关联", follow_parent: "随主件办结",
};

function scopeFromAddress() {
  const params = new URLSearchParams(location.search);
  const month = /^\d{4}-\d{2}$/.test(params.get("month") || "") ? params.get("month") : lastMonth();
  return { month, area: params.get("area") || "", source: params.get("source") || "" };
}

function fillForm(report) {
  const areaSelect = $("#scope-area");
  if (areaSelect.options.length <= 1) {
    for (const area of report.areas) areaSelect.append(h("option", { value: area.key }, area.name));
    areaSelect.append(h("option", { value: AREA_NONE }, "未定位"));
  }
  const sourceSelect = $("#scope-source");
  if (sourceSelect.options.length <= 1) {
    for (const [key, label] of Object.entries(report.sources)) sourceSelect.append(h("option", { value: key }, label));
  }
  $("#scope-month").value = state.scope.month;
  areaSelect.value = state.scope.area;
  sourceSelect.value = state.scope.source;
}

async function load() {
  const status = $("#report-status");
  status.textContent = "正在统计…";
  try {
    state.data = await loadAll(state.scope);
    showError($("#report-error"), "");
    draw();
    const print = new URLSearchParams(scopeQuery(state.scope));
    $("#print-link").href = `/reports/print?${print}`;
    status.textContent = `${state.data.report.period.label} · 已更新`;
    announce(`${state.data.report.period.label}的效能统计已更新`);
  } catch (error) {
    status.textContent = "";
    showError($("#report-error"), describeError(error));
  }
}

function draw() {
  const { report, weeks, months, matrix } = state.data;
  fillForm(report);
  const areaName = state.scope.area
    ? (report.areas.find((a) => a.key === state.scope.area) || { name: "未定位" }).name : "全市";
  $("#report-title").textContent = `${report.period.label} · ${areaName}`;
  $("#weights-line").textContent = `综合得分 = ${weightsLine(report)}（各项折算为0–100分；退回、重办、超期按“未发生率”计）`;
  replaceChildren($("#department-table-box"), report.rows.length
    ? departmentTable(report, { drill: openDrill, onDepartment: openDepartment })
    : h("p", { class: "empty" }, "该期间没有工单。"));
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  for (const [id, trend, caption] of [
    ["week", weeks, "近13周趋势"],
    ["month", months, "近12个月趋势"],
  ]) {
    const box = $(`#trend-${id}-chart`);
    replaceChildren(box);
    state.charts.push(trendChart(box, trend, { width: box.clientWidth }));
    replaceChildren($(`#trend-${id}-table`), trendTable(trend, { drill: openDrill, caption }));
  }
  replaceChildren($("#matrix-box"), matrix.rows.length
    ? matrixTable(matrix, { drill: openDrill })
    : h("p", { class: "empty" }, "该期间没有工单。"));
}

// -- drilling down ------------------------------------------------------------------------------

async function openDepartment(row) {
  await openDrill({ figure: "received", department: row.key, title: `${row.name} · 受理量`, withTrend: row });
}

async function openDrill({ figure, department, matter, area, all, start, end, title, withTrend }) {
  const panel = $("#drill");
  panel.hidden = false;
  const query = { ...scopeQuery(state.scope), figure, department, matter };
  if (area !== undefined) query.area = area;
  if (all) query.all_departments = "true";
  if (start && end) {
    delete query.month;
    query.start = start;
    query.end = end;
  }
  $("#drill-heading").textContent = title;
  replaceChildren($("#drill-body"), h("p", { class: "meta" }, "正在读取…"));
  panel.scrollIntoView({ block: "start" });
  $("#drill-heading").focus();
  try {
    const [result, trend] = await Promise.all([
      api("/api/v1/oversight/drill", { query }),
      withTrend ? api("/api/v1/oversight/trends", {
        query: { ...scopeQuery(state.scope), unit: "month", department: withTrend.key },
      }) : null,
    ]);
    replaceChildren($("#drill-body"),
      trend ? trendTable(trend, { caption: `${withTrend.name} 近12个月趋势` }) : null,
      h("p", { class: "meta", "data-testid": "drill-total" },
        `共 ${result.total} ${result.items[0] && result.items[0].satisfaction ? "次回访" : "件工单"}` +
        (result.total > result.items.length ? `，显示最新 ${result.items.length} 条` : "")),
      h("ol", { class: "drill-list", "data-testid": "drill-list" }, result.items.map(drillItem)));
    announce(`${title}：共 ${result.total} 条`);
  } catch (error) {
    replaceChildren($("#drill-body"), h("p", { class: "error" }, describeError(error)));
  }
}

function drillItem(item) {
  const detail = h("div", { class: "drill-detail", hidden: true });
  const button = h("button", {
    type: "button", class: "link-button ticket-number", "aria-expanded": "false",
    on: { click: () => toggleTicket(item.number, button, detail) },
  }, item.number);
  return h("li", { "data-number": item.number },
    button,
    h("span", { class: "meta" },
      ` ${fmtDateTime(item.received_at)} 受理 · ${STATUS_LABELS[item.status] || item.status} · ${item.matter_code}` +
      (item.satisfaction ? ` · 回访：${{ satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" }[item.satisfaction]}` : "")),
    detail);
}

async function toggleTicket(number, button, detail) {
  const open = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", String(!open));
  detail.hidden = open;
  if (open || detail.childElementCount) return;
  try {
    const t = await api(`/api/v1/tickets/${encodeURIComponent(number)}`);
    replaceChildren(detail, h("dl", { class: "ticket-facts" },
      h("dt", {}, "状态"), h("dd", {}, STATUS_LABELS[t.status] || t.status),
      h("dt", {}, "主办部门"), h("dd", {}, t.lead_department),
      h("dt", {}, "事项"), h("dd", {}, `${t.matter_code}（${t.kind}）`),
      h("dt", {}, "诉求"), h("dd", {}, t.content),
      h("dt", {}, "答复"), h("dd", {}, t.reply || "—"),
      h("dt", {}, "流转"), h("dd", {}, t.trail.map((a) => `${fmtDateTime(a.at)} ${ACTION_LABELS[a.action] || a.action}`).join("；"))));
  } catch (error) {
    replaceChildren(detail, h("p", { class: "error" }, describeError(error)));
  }
}

// -- exports ------------------------------------------------------------------------------------

async function download(path, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } });
  if (response.status === 401) goToLogin();
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(response.status, body.error?.code, body.error?.message);
  }
  const disposition = response.headers.get("content-disposition") || "";
  const match = disposition.match(/filename\*=UTF-8''([^;]+)/);
  const name = match ? decodeURIComponent(match[1]) : "report";
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  announce(`已导出 ${name}`);
}

function exportButton(selector, path, extra = () => ({})) {
  $(selector).addEventListener("click", async () => {
    try {
      showError($("#report-error"), "");
      await download(path, { ...scopeQuery(state.scope), ...extra() });
    } catch (error) {
      showError($("#report-error"), describeError(error));
    }
  });
}

// -- start --------------------------------------------------------------------------------------

const me = await startPage("/reports");
if (me) {
  state.scope = scopeFromAddress();
  $("#scope-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.scope = {
      month: $("#scope-month").value || lastMonth(),
      area: $("#scope-area").value,
      source: $("#scope-source").value,
    };
    history.replaceState(null, "", `/reports?${new URLSearchParams(scopeQuery(state.scope))}`);
    $("#drill").hidden = true;
    load();
  });
  $("#drill-close").addEventListener("click", () => { $("#drill").hidden = true; });
  exportButton("#export-xlsx", "/api/v1/oversight/export.xlsx");
  exportButton("#export-csv", "/api/v1/oversight/export.csv", () => ({ table: $("#csv-table").value }));
  await load();
  markReady();
}
