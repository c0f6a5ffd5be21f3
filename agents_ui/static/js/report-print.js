// The printable monthly report (效能监察月报): the oversight page's tables and charts laid out
// for A4 paper (static/css/print.css); the browser's print dialog makes the paper or a PDF.

import { describeError } from "./api.js";
import { $, fmtPercent, replaceChildren } from "./dom.js";
import {
  AREA_NONE, departmentTable, lastMonth, loadAll, matrixTable, scopeQuery, trendChart, trendTable,
  weightsLine,
} from "./oversight.js";
import { markReady, showError, startPage } from "./shell.js";

// A4 portrait less 2 × 12 mm margins is 186 mm: about 700 CSS pixels.
const CHART_WIDTH = 700;

const me = await startPage("/reports");
if (me) {
  const params = new URLSearchParams(location.search);
  const scope = {
    month: /^\d{4}-\d{2}$/.test(params.get("month") || "") ? params.get("month") : lastMonth(),
    area: params.get("area") || "",
    source: params.get("source") || "",
  };
  $("#back-link").href = `/reports?${new URLSearchParams(scopeQuery(scope))}`;
  $("#print-button").addEventListener("click", () => window.print());
  try {
    const { report, weeks, months, matrix } = await loadAll(scope);
    const area = scope.area
      ? (report.areas.find((a) => a.key === scope.area) || { name: scope.area === AREA_NONE ? "未定位" : scope.area }).name
      : "全市";
    document.title = `效能监察月报 ${report.period.label} ${area} · 珠海12345热线`;
    $("#print-title").textContent = `珠海12345热线效能监察月报（${report.period.label} · ${area}）`;
    $("#print-meta").textContent = `统计范围：${report.period.first} 至 ${report.period.last} 受理的工单；对比上期 ${report.previous_period.label}。生成于 ${new Date(report.generated_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" })}`;
    const t = report.totals;
    $("#print-summary").textContent = `本期受理 ${t.counts.received} 件，按时签收率 ${fmtPercent(t.rates.accept_on_time)}，按时办结率 ${fmtPercent(t.rates.finish_on_time)}，` +
      `退回 ${t.counts.returned} 件，延期 ${t.counts.extended} 件，重办 ${t.counts.reopened} 件，当前超期 ${t.counts.overdue_now} 件；` +
      `回访 ${t.counts.visits} 次，满意 ${t.counts.satisfied}、基本满意 ${t.counts.basically_satisfied}、不满意 ${t.counts.unsatisfied}，满意率 ${fmtPercent(t.rates.satisfaction)}。`;
    $("#print-weights").textContent = `综合得分 = ${weightsLine(report)}`;
    replaceChildren($("#print-departments"), departmentTable(report));
    for (const [id, trend, caption] of [["week", weeks, "近13周趋势"], ["month", months, "近12个月趋势"]]) {
      trendChart($(`#print-${id}-chart`), trend, { width: CHART_WIDTH, height: 220 });
      replaceChildren($(`#print-${id}-table`), trendTable(trend, { caption }));
    }
    replaceChildren($("#print-matrix"), matrixTable(matrix, { limit: 30 }));
  } catch (error) {
    showError($("#print-error"), describeError(error));
  }
  markReady();
}
