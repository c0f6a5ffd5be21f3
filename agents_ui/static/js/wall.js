// The supervisors' KPI wall (KPI大屏): the 15-second answer rate against its target, the last
// hours, calls waiting, agents, abandons, staffing, overdue tickets and alerts. It never
// needs a reload: events refetch the snapshot (coalesced), and a timer keeps the rolling
// windows rolling when nothing happens.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api, describeError } from "./api.js";
import {
  $, AGENT_STATE_LABELS, coalesce, fmtClock, fmtDuration, fmtPercent, fmtTime, h,
  replaceChildren, TIME_ZONE,
} from "./dom.js";
import { hotspotsPanel } from "./hotspots.js";
import { announce, markReady, prepareLive, showError, startPage } from "./shell.js";

const WALL_REFRESH_MS = 15000;
const SLOW_REFRESH_MS = 60000;
const CHART_HOURS = 8;
const ALERTS_KEPT = 6;
const STATE_ORDER = ["ready", "on_call", "after_call_work", "break", "logged_out"];

const state = {
  wall: null,
  fetchedAt: 0,
  departments: new Map(),
  alerts: [],
  chart: null,
  chartFigures: null, // [windows, figures] last drawn, to redraw at another type size
  chartFontPx: 0,
};

function verdict(rate, target) {
  if (rate === null || rate === undefined) return { cls: "rate-none", text: "暂无呼入" };
  return rate >= target
    ? { cls: "rate-good", text: "达标" }
    : { cls: "rate-bad", text: "低于目标" };
}

async function loadWall() {
  try {
    const wall = await api("/api/v1/kpi/wall");
    state.wall = wall;
    state.fetchedAt = Date.now();
    showError($("#wall-error"), "");
    drawWall(wall);
  } catch (error) {
    showError($("#wall-error"), describeError(error));
  }
}

function drawWall(wall) {
  const { rolling, target } = wall;
  const now = rolling.last_15_minutes;
  const v = verdict(now.rate, target);
  const rateEl = $("#rate-15m");
  rateEl.textContent = fmtPercent(now.rate);
  rateEl.className = `big-number ${v.cls}`;
  const verdictEl = $("#rate-verdict");
  verdictEl.textContent = v.text;
  verdictEl.className = `rate-verdict ${v.cls}`;
  $("#rate-target").textContent = fmtPercent(target);
  // Which queue an overflowed call counts in (the API's `basis`), so the figure is not misread.
  $("#rate-basis").textContent =
    wall.basis === "first_queue" ? "溢出计入首入队列" : "溢出/转接计入接听队列";
  $("#rate-15m-offered").textContent = String(now.offered);
  $("#rate-15m-within").textContent = String(now.answered_within_threshold);
  for (const [id, key] of [["hour", "last_hour"], ["today", "today"], ["quarter", "quarter"]]) {
    const figures = rolling[key];
    const el = $(`#rate-${id}`);
    el.textContent = fmtPercent(figures.rate);
    el.className = verdict(figures.rate, target).cls;
    $(`#rate-${id}-offered`).textContent = `呼入 ${figures.offered} 通`;
  }

  $("#waiting-count").textContent = String(wall.waiting);
  // Calls whose end event never came (data quality): not waiting, not in the rate.
  $("#lost-calls").textContent = String(wall.lost_calls ?? 0);
  drawLongestWait();
  replaceChildren($("#queue-list"), wall.queues.map((q) =>
    h("li", {}, h("span", {}, q.name), h("span", { class: "count" },
      `${q.waiting} 通${q.waiting ? `（最长 ${fmtDuration(q.longest_wait_seconds)}）` : ""}`))));

  const byState = wall.agents_by_state || {};
  const states = [...STATE_ORDER, ...Object.keys(byState).filter((s) => !STATE_ORDER.includes(s))];
  replaceChildren($("#agents-list"), states.map((s) =>
    h("li", { "data-state": s }, h("span", {}, AGENT_STATE_LABELS[s] || s),
      h("span", { class: "count" }, `${byState[s] || 0} 人`))));

  $("#abandon-15m").textContent = fmtPercent(now.abandon_rate);
  $("#abandon-today").textContent = fmtPercent(rolling.today.abandon_rate);

  const overdue = wall.overdue_by_department || [];
  replaceChildren($("#overdue-list"), overdue.length
    ? overdue.slice(0, 8).map((row) => h("li", {},
      h("span", {}, state.departments.get(row.department) || row.department),
      h("span", { class: "count overdue-count" }, `${row.overdue} 件`)))
    : [h("li", {}, h("span", {}, "没有超期工单"))]);

  drawChannels(wall.tickets_by_channel || {});

  const banner = $("#wall-alert");
  if (wall.alert && wall.alert.active) {
    replaceChildren(banner, h("p", { class: "alert-banner" },
      h("span", { "aria-hidden": "true" }, "⚠ "),
      `告警：近15分钟接通率低于目标 ${fmtPercent(target)}（自 ${fmtTime(wall.alert.since)} 起）`));
  } else {
    banner.replaceChildren();
  }
  drawAlerts();
  $("#updated-at").textContent = fmtClock(state.fetchedAt);
}

// Today's tickets by the channel they came in through: the share of the citizens' own
// channels (the app above all) is the 分流 taken off the phone lines.
const CHANNEL_LABELS = {
  phone: "电话", app: "手机应用", web: "网站", wechat: "微信", open311: "开放接口", 110: "110转办",
};

function drawChannels(byChannel) {
  const rows = Object.entries(byChannel).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  const others = total - (byChannel.phone || 0);
  $("#channel-share").textContent = total ? fmtPercent(others / total) : "—";
  replaceChildren($("#channel-list"), rows.length
    ? rows.map(([channel, n]) => h("li", { "data-channel": channel },
      h("span", {}, CHANNEL_LABELS[channel] || channel),
      h("span", { class: "count" }, `${n} 件`)))
    : [h("li", {}, h("span", {}, "今日暂无工单"))]);
}

function drawLongestWait() {
  const wall = state.wall;
  if (!wall) return;
  // Between refreshes the longest wait keeps growing by itself: the wall should not freeze.
  const extra = wall.waiting ? (Date.now() - state.fetchedAt) / 1000 : 0;
  $("#longest-wait").textContent = fmtDuration(wall.longest_wait_seconds + extra);
}

function drawAlerts() {
  const list = $("#alert-list");
  const rows = state.alerts.map((a) => h("li", {}, h("span", {}, a.text),
    h("span", { class: "meta" }, fmtTime(a.at))));
  if (!rows.length) {
    const quiet = state.wall && !(state.wall.alert && state.wall.alert.active);
    rows.push(h("li", {}, h("span", { class: "alert-ok" }, quiet ? "当前无告警" : "—")));
  }
  replaceChildren(list, rows);
}

function noteAlert(frame) {
  const d = frame.data || {};
  const text = frame.event === "kpi.answer_rate_low"
    ? `接通率降至 ${fmtPercent(d.rate)}，低于目标 ${fmtPercent(d.target)}`
    : frame.event === "kpi.answer_rate_recovered"
      ? `接通率恢复至 ${fmtPercent(d.rate)}`
      : `${frame.event}`;
  state.alerts.unshift({ text, at: frame.at });
  state.alerts.length = Math.min(state.alerts.length, ALERTS_KEPT);
  announce(`告警：${text}`, { assertive: frame.event === "kpi.answer_rate_low" });
  drawAlerts();
}

// -- the chart of the last hours ----------------------------------------------------------------

async function loadChart() {
  const hourMs = 3600 * 1000;
  const now = Date.now();
  const currentHour = Math.floor(now / hourMs) * hourMs; // Asia/Shanghai has whole-hour offsets
  const windows = [];
  for (let i = CHART_HOURS - 1; i >= 0; i -= 1) {
    const start = currentHour - i * hourMs;
    windows.push({ start, end: i === 0 ? now + 1000 : start + hourMs });
  }
  try {
    const figures = await Promise.all(windows.map((w) => api("/api/v1/kpi/answer-rate", {
      query: { start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString() },
    })));
    drawChart(windows, figures);
  } catch (error) {
    showError($("#wall-error"), describeError(error));
  }
}

function drawChart(windows, figures) {
  const target = state.wall ? state.wall.target : 0.9;
  const xs = windows.map((w) => w.start / 1000);
  const rates = figures.map((f) => (f.rate === null ? null : Math.round(f.rate * 1000) / 10));
  const targets = windows.map(() => target * 100);
  const data = [xs, rates, targets];
  const box = $("#rate-chart");
  const width = Math.max(300, box.clientWidth || 600);
  state.chartFigures = [windows, figures];
  if (!state.chart) {
    // Canvas text does not follow CSS: the axes take the page's type size (larger on a TV).
    const px = rootFontPx();
    state.chartFontPx = px;
    const font = `${Math.round(px * 0.8)}px system-ui, sans-serif`;
    const axis = {
      stroke: "#cbd5e1", grid: { stroke: "#24324b" }, ticks: { stroke: "#24324b" }, font,
    };
    state.chart = new uPlot({
      width,
      height: CHART_HEIGHT,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), TIME_ZONE),
      padding: [Math.round(px * 0.6), Math.round(px * 1.8), 0, 0], // room for the last label
      scales: { y: { range: (u, min) => [Math.min(50, Math.floor((min ?? 100) / 10) * 10), 100] } },
      axes: [
        { ...axis, values: (u, ticks) => ticks.map((t) => fmtTime(t * 1000)),
          size: Math.round(px * 2.6), space: Math.round(px * 4.5) },
        { ...axis, values: (u, ticks) => ticks.map((t) => `${t}%`), size: Math.round(px * 3.6),
          space: Math.round(px * 2.2) },
      ],
      series: [
        { label: "时段", value: (u, v) => (v === null ? "—" : fmtTime(v * 1000)) },
        { label: "接通率", stroke: "#4ade80", width: 3, points: { show: true, size: 9, fill: "#4ade80" },
          value: (u, v) => (v === null ? "—" : `${v}%`), spanGaps: false },
        { label: "目标", stroke: "#fca5a5", width: 2, dash: [8, 6], points: { show: false },
          value: (u, v) => (v === null ? "—" : `${v}%`) },
      ],
      legend: { live: false },
    }, data, box);
    if (!state.chartObserved) {
      new ResizeObserver(fitChart).observe(box);
      state.chartObserved = true;
    }
    fitChart();
  } else {
    state.chart.setData(data);
  }
  replaceChildren($("#rate-table tbody"), windows.map((w, i) => h("tr", {},
    h("td", {}, `${fmtTime(w.start)}–${fmtTime(Math.min(w.start + 3600000, Date.now()))}`),
    h("td", {}, fmtPercent(figures[i].rate)), h("td", {}, `${figures[i].offered} 通`))));
}

const CHART_HEIGHT = 230;

/** The chart fills its box: 230 px on the normal wall, the tile's remaining height on a TV. */
function rootFontPx() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

function fitChart() {
  const box = $("#rate-chart");
  if (!state.chart || !box.clientWidth) return;
  if (Math.abs(rootFontPx() - state.chartFontPx) > 0.5 && state.chartFigures) {
    state.chart.destroy();
    state.chart = null;
    drawChart(...state.chartFigures);
    return;
  }
  let height = CHART_HEIGHT;
  if (document.body.classList.contains("tv")) {
    const legend = box.querySelector(".u-legend");
    height = Math.max(80, box.clientHeight - (legend ? legend.offsetHeight : 0) - 8);
  }
  const size = { width: box.clientWidth, height };
  if (state.chart.width !== size.width || Math.abs(state.chart.height - size.height) > 1) {
    state.chart.setSize(size);
  }
}

// -- staffing --------------------------------------------------------------------------------------

async function loadStaffing() {
  try {
    const slots = await api("/api/v1/kpi/staffing");
    const now = Date.now();
    const slot = slots.find((s) => {
      const start = Date.parse(s.start);
      return start <= now && now < start + 30 * 60 * 1000;
    });
    if (!slot) return;
    const start = Date.parse(slot.start);
    $("#staff-slot").textContent = `${fmtTime(start)}–${fmtTime(start + 30 * 60 * 1000)}`;
    const needed = slot.erlang_a_agents ?? slot.erlang_c_agents;
    $("#staff-needed").textContent = String(needed);
    $("#staff-on-duty").textContent = String(slot.on_duty);
    const model = slot.erlang_a_agents !== null ? "Erlang A（计入放弃）" : "Erlang C";
    const gap = needed - slot.on_duty;
    $("#staff-gap").textContent = gap > 0
      ? `缺 ${gap} 人 · 按${model}，本时段呼入 ${slot.arrivals} 通`
      : `人力充足 · 按${model}，本时段呼入 ${slot.arrivals} 通`;
  } catch (error) {
    showError($("#wall-error"), describeError(error));
  }
}

async function loadDepartments() {
  try {
    const departments = await api("/api/v1/routing/departments");
    state.departments = new Map(departments.map((d) => [d.code, d.name]));
  } catch (error) {
    // Codes are shown instead of names: the wall still works.
  }
}

// -- full screen for a TV ------------------------------------------------------------------------------

function setTv(on) {
  document.body.classList.toggle("tv", on);
  document.documentElement.classList.toggle("tv", on); // the root font follows the screen
  fitChart();
  $("#fullscreen-button").setAttribute("aria-pressed", String(on));
  $("#fullscreen-button").firstChild.textContent = on ? "退出全屏 " : "全屏显示 ";
}

async function toggleFullscreen() {
  if (document.fullscreenElement) {
    await document.exitFullscreen();
    return;
  }
  if (document.body.classList.contains("tv")) {
    setTv(false);
    return;
  }
  setTv(true);
  try {
    await document.documentElement.requestFullscreen();
  } catch (error) {
    // Not allowed (no user gesture, or a kiosk that is full screen already): the CSS mode
    // alone still gives the TV layout.
  }
}

async function main() {
  const me = await startPage("/wall");
  if (!me) return;
  if (new URLSearchParams(location.search).get("tv") === "1") setTv(true);
  document.addEventListener("fullscreenchange", () => setTv(Boolean(document.fullscreenElement)));
  $("#fullscreen-button").addEventListener("click", toggleFullscreen);
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (event.code === "KeyF" && !event.ctrlKey && !event.altKey && !event.metaKey && !typing) {
      event.preventDefault();
      toggleFullscreen();
    }
  });
  const clock = () => { $("#wall-clock").textContent = fmtClock(); drawLongestWait(); };
  clock();
  setInterval(clock, 1000);

  const wallSoon = coalesce(loadWall, 400, 2000);
  const chartSoon = coalesce(loadChart, 5000, 15000);
  const hotspots = hotspotsPanel({
    list: $("#hotspots-list"), error: $("#hotspots-error"), canMerge: false, compact: true,
  });
  const live = await prepareLive(me, "wall", {
    topics: ["calls.", "kpi.", "tickets.dept.", "hotspots."],
    onEvent: (frame) => {
      hotspots.onEvent(frame);
      if (frame.topic === "kpi.alerts") noteAlert(frame);
      if (/^(calls|kpi|tickets)\./.test(frame.topic)) wallSoon();
      if (frame.topic === "calls.queues") chartSoon();
    },
    onResync: () => { loadWall(); loadChart(); hotspots.load(); },
  });
  await loadDepartments();
  await Promise.all([loadWall(), hotspots.load()]);
  await Promise.all([loadChart(), loadStaffing()]);
  live.start();
  markReady();
  setInterval(loadWall, WALL_REFRESH_MS);
  setInterval(() => { loadChart(); loadStaffing(); }, SLOW_REFRESH_MS);
}

await main();
