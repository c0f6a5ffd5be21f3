// The department inbox (部门工单): the department's tickets in tabs — everything still to do,
// 待签收 to accept, 办理中 in progress, 已回复 replied, 已办结 closed, and 协办 the tickets it
// co-handles — searchable by number and text. A compact list (one line per ticket) sits
// beside the open ticket's page: its full content, deadlines, reply and trail. Actions:
// accept (签收), return (退回) with a reason, reply (回复), request an extension (延期); each
// ends with a visible confirmation that says where the ticket went. New tickets appear live
// from the department's websocket topic (tickets.dept.<CODE>) and are announced.

import { api, describeError } from "./api.js";
import { askInDialog } from "./dialog.js";
import {
  $, coalesce, deadlineBadge, fmtDateTime, h, reconcileList, replaceChildren, STATUS_LABELS,
  statusBadge,
} from "./dom.js";
import { announce, markReady, prepareLive, notify, showError, startPage } from "./shell.js";

// Tab id -> what it lists. `due`: the deadline filter applies (tickets still on a clock).
const TABS = [
  { id: "todo", label: "全部待办", query: {}, due: true, empty: "暂无待办工单。" },
  { id: "dispatched", label: "待签收", query: { status: "dispatched", role: "lead" }, due: true,
    empty: "没有待签收的工单。" },
  { id: "accepted", label: "办理中", query: { status: "accepted", role: "lead" }, due: true,
    empty: "没有办理中的工单。" },
  { id: "replied", label: "已回复", query: { status: "replied,visited", role: "lead" },
    empty: "没有已回复的工单。" },
  { id: "closed", label: "已办结", query: { status: "closed", role: "lead" },
    empty: "没有已办结的工单。" },
  { id: "co", label: "协办", query: { role: "co" }, empty: "没有协办工单。" },
];
const PAGE_SIZE = 200;

// 办理轨迹 the trail's actions, in the words the hotline uses.
const ACTION_LABELS = {
  create: "受理", dispatch: "派单", accept: "签收", return: "退回",
  "request-extension": "申请延期", "decide-extension": "延期审批", reply: "回复办理结果",
  visit: "回访", close: "办结", supervise: "督办", "answer-directly": "当场答复",
  link: "合并为重复件", unlink: "取消合并",
};
const DETAIL_LABELS = {
  reason: "理由", reply: "办理结果", note: "说明", comment: "意见", answer: "答复",
  working_days: "延长工作日", hours: "延长小时", to: "派往", from: "原部门",
  satisfaction: "满意度", finish_deadline: "办结时限", approved: "审批",
};
const SATISFACTION_LABELS = {
  satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意",
};
const DONE = {
  accept: ["已签收", "accepted"],
  return: ["已退回热线派单台", null],
  reply: ["已回复", "replied"],
  "request-extension": ["已提交延期申请", "accepted"],
};

const me = await startPage("/inbox");
if (me) await main(me);

async function main(me) {
  const isAdmin = me.roles.includes("admin");
  const mine = new Set(me.departments);
  const params = new URLSearchParams(location.search);
  const state = {
    tab: TABS.some((t) => t.id === params.get("tab")) ? params.get("tab") : "todo",
    due: "",
    q: params.get("q") || "",
    tickets: [],
    fresh: new Set(),
    open: params.get("ticket") || null,
    openTicket: null,
  };
  const list = $("#inbox-list");
  const dialog = $("#action-dialog");
  const detail = $("#ticket-detail");
  const notice = $("#inbox-notice");
  const names = new Map();
  const tabButtons = new Map();
  $("#inbox-q").value = state.q;

  function drawDepartment() {
    // A department may not read the department list; its name comes with its tickets.
    for (const t of state.tickets) {
      const routed = t.routing && t.routing.department;
      if (routed && routed.code === t.lead_department) names.set(routed.code, routed.name);
    }
    $("#inbox-department").textContent = me.departments.length
      ? `部门：${me.departments.map((c) => names.get(c) || c).join("、")}`
      : (isAdmin ? "管理员：全部部门的工单" : "未绑定部门");
  }

  const mayAct = (ticket) => isAdmin || mine.has(ticket.lead_department);
  const tab = () => TABS.find((t) => t.id === state.tab);

  function remember() {
    const query = new URLSearchParams();
    if (state.tab !== "todo") query.set("tab", state.tab);
    if (state.q) query.set("q", state.q);
    if (state.open) query.set("ticket", state.open);
    const search = query.toString();
    history.replaceState(null, "", search ? `/inbox?${search}` : "/inbox");
  }

  // -- tabs ---------------------------------------------------------------------------------------

  function drawTabs() {
    const bar = $(".inbox-tabs");
    for (const t of TABS) {
      const button = h("button", {
        type: "button", role: "tab", id: `tab-${t.id}`, class: "inbox-tab", "data-tab": t.id,
        "aria-controls": "inbox-panel",
        on: { click: () => selectTab(t.id), keydown: (event) => tabKeys(event, t.id) },
      }, t.label, h("span", { class: "tab-count", "data-count-for": t.id }, ""));
      tabButtons.set(t.id, button);
      bar.append(button);
    }
    markTabs();
  }

  function markTabs() {
    for (const [id, button] of tabButtons) {
      const selected = id === state.tab;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
    }
    $("#inbox-panel").setAttribute("aria-labelledby", `tab-${state.tab}`);
    $("#due-filters").hidden = !tab().due;
  }

  function tabKeys(event, id) {
    const index = TABS.findIndex((t) => t.id === id);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = TABS[(index + step + TABS.length) % TABS.length].id;
    selectTab(next);
    tabButtons.get(next).focus();
  }

  function selectTab(id) {
    if (id === state.tab) return;
    state.tab = id;
    if (!tab().due) setDue("");
    markTabs();
    remember();
    list.setAttribute("aria-busy", "true");
    load();
  }

  function setDue(due) {
    state.due = due;
    for (const b of document.querySelectorAll(".due-filter")) {
      b.setAttribute("aria-pressed", String(b.dataset.due === due));
    }
  }

  // -- the list -----------------------------------------------------------------------------------

  async function load() {
    const current = tab();
    const query = { ...current.query, limit: PAGE_SIZE };
    if (current.due && state.due) query.due = state.due;
    if (state.q) query.q = state.q;
    try {
      const [tickets, todo] = await Promise.all([
        api("/api/v1/tickets", { query }),
        // The counts beside 待签收 and 办理中: the open inbox, whatever tab is shown.
        api("/api/v1/tickets", { query: { limit: PAGE_SIZE } }),
      ]);
      if (current !== tab()) return; // the user moved on while this was loading
      state.tickets = tickets;
      showError($("#inbox-error"), "");
      drawDepartment();
      drawCounts(todo);
      draw();
    } catch (error) {
      showError($("#inbox-error"), describeError(error));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }
  const loadSoon = coalesce(load, 250, 1000);

  function drawCounts(todo) {
    const counts = {
      todo: todo.length,
      dispatched: todo.filter((t) => t.status === "dispatched" && mayAct(t)).length,
      accepted: todo.filter((t) => t.status === "accepted" && mayAct(t)).length,
    };
    for (const el of document.querySelectorAll("[data-count-for]")) {
      const n = counts[el.dataset.countFor];
      el.textContent = n === undefined ? "" : String(n >= PAGE_SIZE ? `${PAGE_SIZE}+` : n);
    }
  }

  function draw() {
    const { tickets } = state;
    const soon = tickets.filter((t) => t.deadline_status === "due_soon").length;
    const late = tickets.filter((t) => t.deadline_status === "overdue").length;
    const what = state.q ? `“${state.q}”的搜索结果` : tab().label;
    $("#inbox-count").textContent = tab().due
      ? `${what}：共 ${tickets.length} 件，即将超期 ${soon} 件，已超期 ${late} 件`
      : `${what}：共 ${tickets.length} 件`;
    const more = $("#inbox-more");
    more.hidden = tickets.length < PAGE_SIZE;
    more.textContent = `只显示前 ${PAGE_SIZE} 件，请用搜索缩小范围。`;
    reconcileList(list, tickets, {
      key: (t) => t.number,
      signature: (t) => `${t.version}|${t.deadline_status}|${state.fresh.has(t.number)}|${state.open === t.number}`,
      build: row,
      empty: h("li", { class: "empty" }, state.q ? `没有找到“${state.q}”。` : (state.due ? "没有符合条件的工单。" : tab().empty)),
    });
  }

  function dueOf(t) {
    if (t.status === "dispatched") return ["签收时限", t.accept_deadline || t.due_at];
    if (t.status === "accepted") return ["办结时限", t.finish_deadline || t.due_at];
    return ["办结时限", t.finish_deadline];
  }

  function row(t) {
    const isNew = state.fresh.has(t.number);
    const [dueLabel, dueAt] = dueOf(t);
    const headingId = `ticket-${t.number}`;
    const isOpen = state.open === t.number;
    return h("li", {
      class: `ticket-card ticket-row deadline-${t.deadline_status || "none"}${isNew ? " is-new" : ""}${isOpen ? " is-open" : ""}`,
      "data-number": t.number, "data-status": t.status,
    },
    h("div", { class: "row-id" },
      h("h2", { id: headingId, class: "row-head", tabindex: "-1" },
        h("button", {
          type: "button", class: "link-button ticket-number", "aria-expanded": String(isOpen),
          "aria-controls": "ticket-detail", title: "查看工单详情",
          on: { click: () => openTicket(t.number, { focus: true }) },
        }, t.number)),
      h("span", { class: "row-badges" },
        isNew ? h("span", { class: "badge badge-new" }, "新") : null,
        t.urgent ? h("span", { class: "badge badge-urgent" }, "紧急") : null,
        statusBadge(t.status), deadlineBadge(t.deadline_status),
        mayAct(t) ? null : h("span", { class: "badge badge-ok" }, "协办"))),
    h("div", { class: "row-main" },
      h("p", { class: "ticket-content", title: t.content }, t.content),
      h("p", { class: "row-sub" }, `${t.matter_code}（${t.kind}）· ${t.address || "地址不详"} · 受理 ${fmtDateTime(t.received_at)}`)),
    h("p", { class: "row-due" }, h("span", { class: "row-due-label" }, dueLabel),
      h("span", {}, dueAt ? fmtDateTime(dueAt) : "—")),
    h("div", { class: "row-actions" }, actionsFor(t, true)));
  }

  function actionsFor(t, small = false) {
    const size = small ? " button-small" : "";
    if (mayAct(t) && t.status === "dispatched") {
      return [actionButton(t, "accept", "签收", `button-primary${size}`),
        actionButton(t, "return", "退回", `button-danger${size}`)];
    }
    if (mayAct(t) && t.status === "accepted") {
      return [actionButton(t, "reply", "回复办理结果", `button-primary${size}`),
        actionButton(t, "request-extension", "申请延期", size.trim())];
    }
    return [];
  }

  function actionButton(ticket, action, label, extraClass = "") {
    return h("button", {
      type: "button", class: extraClass, "data-action": action,
      on: { click: () => act(ticket, action) },
    }, label);
  }

  // -- the ticket's page ----------------------------------------------------------------------------

  async function openTicket(number, { focus = false } = {}) {
    const previous = state.open;
    state.open = number;
    remember();
    if (previous !== number) draw();
    replaceChildren(detail, h("h2", { id: "detail-heading" }, `工单 ${number}`),
      h("p", { class: "meta" }, "加载中…"));
    try {
      const ticket = await api(`/api/v1/tickets/${encodeURIComponent(number)}`);
      if (state.open !== number) return;
      state.openTicket = ticket;
      drawDetail(ticket);
    } catch (error) {
      replaceChildren(detail, h("h2", { id: "detail-heading" }, `工单 ${number}`),
        h("p", { class: "error" }, describeError(error)));
    }
    if (focus) detail.focus();
  }

  function closeTicket() {
    const number = state.open;
    state.open = null;
    state.openTicket = null;
    remember();
    replaceChildren(detail, h("h2", { id: "detail-heading" }, "工单详情"),
      h("p", { class: "hint" }, "在左侧列表中点击工单号，查看完整内容、时限、办理轨迹和回复。"));
    draw();
    const button = number && document.querySelector(`#ticket-${CSS.escape(number)} button`);
    if (button) button.focus();
  }

  function drawDetail(t) {
    const co = t.co_departments.length ? t.co_departments.map((c) => names.get(c) || c).join("、") : null;
    const lead = (t.routing && t.routing.department && t.routing.department.code === t.lead_department)
      ? `${t.routing.department.name}（${t.lead_department}）` : t.lead_department;
    const actions = actionsFor(t);
    replaceChildren(detail,
      h("div", { class: "detail-head" },
        h("h2", { id: "detail-heading" }, h("span", { class: "ticket-number" }, t.number)),
        h("button", { type: "button", class: "button-quiet button-small", on: { click: closeTicket } }, "关闭详情")),
      h("p", { class: "row-badges" },
        t.urgent ? h("span", { class: "badge badge-urgent" }, "紧急") : null,
        statusBadge(t.status), deadlineBadge(t.deadline_status),
        mayAct(t) ? null : h("span", { class: "badge badge-ok" }, "协办")),
      h("p", { class: "detail-content", "data-testid": "detail-content" }, t.content),
      actions.length ? h("div", { class: "button-row" }, actions) : null,
      h("dl", { class: "detail-facts" },
        fact("事项", `${t.matter_code}（${t.kind}）`),
        fact("地址", t.address || "—"),
        fact("来电人", `${t.caller_name} ${t.caller_phone}`.trim() || "—"),
        fact("主办部门", lead),
        co ? fact("协办部门", co) : null,
        fact("受理时间", fmtDateTime(t.received_at)),
        fact("签收时限", t.accept_deadline ? fmtDateTime(t.accept_deadline) : "—"),
        fact("办结时限", t.finish_deadline ? fmtDateTime(t.finish_deadline) : "—"),
        t.return_count ? fact("退回次数", String(t.return_count)) : null,
        t.reopen_count ? fact("重办次数", String(t.reopen_count)) : null,
        t.supervise_count ? fact("督办次数", String(t.supervise_count)) : null,
        t.satisfaction ? fact("回访满意度", SATISFACTION_LABELS[t.satisfaction] || t.satisfaction) : null),
      t.reply
        ? h("section", { class: "detail-reply", "aria-labelledby": "detail-reply-heading" },
          h("h3", { id: "detail-reply-heading" }, "办理结果（回复）"),
          h("p", { "data-testid": "detail-reply" }, t.reply))
        : null,
      t.routing && t.routing.explanation
        ? h("details", { class: "routing-why" }, h("summary", {}, "派单理由"),
          h("ol", { class: "explanation" }, t.routing.explanation.map((s) => h("li", {}, s.message))))
        : null,
      h("section", { "aria-labelledby": "detail-trail-heading" },
        h("h3", { id: "detail-trail-heading" }, "办理轨迹"),
        h("ol", { class: "trail", "data-testid": "ticket-trail" }, t.trail.map(trailItem))));
  }

  function trailItem(a) {
    const lines = Object.entries(a.detail || {})
      .filter(([key, value]) => DETAIL_LABELS[key] && value !== null && value !== "" && value !== undefined)
      .map(([key, value]) => h("div", {}, h("dt", {}, DETAIL_LABELS[key]), h("dd", {}, detailValue(key, value))));
    return h("li", {},
      h("p", { class: "trail-head" },
        h("time", { datetime: a.at }, fmtDateTime(a.at)), " ",
        h("strong", {}, ACTION_LABELS[a.action] || a.action),
        a.to_status ? ` → ${STATUS_LABELS[a.to_status] || a.to_status}` : "",
        h("span", { class: "meta" }, `（${a.actor}${a.department_code ? ` · ${names.get(a.department_code) || a.department_code}` : ""}）`)),
      lines.length ? h("dl", { class: "trail-detail" }, lines) : null);
  }

  function detailValue(key, value) {
    if (key === "finish_deadline") return fmtDateTime(value);
    if (key === "approved") return value ? "同意" : "不同意";
    if (key === "satisfaction") return SATISFACTION_LABELS[value] || value;
    return String(value);
  }

  function fact(term, value) {
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  // -- actions --------------------------------------------------------------------------------------

  async function act(ticket, action) {
    let body = { version: ticket.version };
    if (action === "return") {
      const values = await askInDialog(dialog, {
        title: `退回工单 ${ticket.number}`,
        intro: "退回后工单回到热线派单台重新派单；请写明不属于本部门职责的理由。",
        fields: [{ name: "reason", label: "退回理由", kind: "textarea", required: true }],
        submitLabel: "确认退回",
      });
      if (!values) return;
      body = { ...body, ...values };
    } else if (action === "reply") {
      const values = await askInDialog(dialog, {
        title: `回复工单 ${ticket.number}`,
        intro: "写明办理过程和结果，热线将据此回访市民。",
        fields: [{ name: "reply", label: "办理结果", kind: "textarea", required: true, maxlength: 5000 }],
        submitLabel: "提交回复",
      });
      if (!values) return;
      body = { ...body, ...values };
    } else if (action === "request-extension") {
      const unit = ticket.urgent
        ? { name: "hours", label: "延长小时数（紧急工单按小时）", max: 240 }
        : { name: "working_days", label: "延长工作日数", max: 60 };
      const values = await askInDialog(dialog, {
        title: `申请延期 ${ticket.number}`,
        intro: `当前办结时限：${fmtDateTime(ticket.due_at)}。延期需派单员或值班长批准。`,
        fields: [
          { ...unit, kind: "number", min: 1, required: true, value: "1" },
          { name: "reason", label: "延期理由", kind: "textarea", required: true },
        ],
        submitLabel: "提交申请",
      });
      if (!values) return;
      body = { ...body, ...values };
    }
    try {
      const updated = await api(`/api/v1/tickets/${encodeURIComponent(ticket.number)}/${action}`, {
        method: "POST", json: body,
      });
      state.fresh.delete(ticket.number);
      const [done, goesTo] = DONE[action];
      const where = TABS.find((t) => t.id === goesTo);
      const stays = !where || where.id === state.tab || (state.tab === "todo" && where.due);
      notify(notice, `${done}：工单 ${updated.number}${where && !stays ? `，已移到“${where.label}”` : ""}`, {
        action: where && !stays ? {
          label: `在“${where.label}”中查看`,
          run: () => { selectTab(where.id); openTicket(updated.number, { focus: true }); },
        } : null,
      });
      await load();
      if (state.open === updated.number) await openTicket(updated.number);
      const heading = document.getElementById(`ticket-${updated.number}`);
      (heading || notice).focus();
    } catch (error) {
      showError($("#inbox-error"), describeError(error));
      notify(notice, `操作未完成：${describeError(error)}`, { kind: "error" });
      await load();
    }
  }

  // -- search and filters ------------------------------------------------------------------------

  $("#inbox-search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = $("#inbox-q").value.trim();
    $("#inbox-q-clear").hidden = !state.q;
    remember();
    list.setAttribute("aria-busy", "true");
    load();
  });
  $("#inbox-q-clear").hidden = !state.q;
  $("#inbox-q-clear").addEventListener("click", () => {
    $("#inbox-q").value = "";
    $("#inbox-search").requestSubmit();
    $("#inbox-q").focus();
  });

  for (const button of document.querySelectorAll(".due-filter")) {
    button.addEventListener("click", () => {
      setDue(button.dataset.due);
      load();
    });
  }

  const live = await prepareLive(me, "inbox", {
    topics: ["tickets.dept."], // the gateway narrows it to the user's own departments
    onEvent: (frame) => {
      if (!frame.topic.startsWith("tickets.")) return;
      const data = frame.data || {};
      const arrived = (frame.event === "ticket.created" || frame.event === "ticket.dispatch")
        && data.status === "dispatched" && (isAdmin || mine.has(data.lead_department));
      if (arrived && !state.fresh.has(data.number)) {
        state.fresh.add(data.number);
        announce(`新工单 ${data.number}${data.urgent ? "（紧急）" : ""}`);
      }
      loadSoon();
      if (state.open && data.number === state.open) openTicket(state.open);
    },
    onResync: () => load(),
  });
  drawTabs();
  await load();
  if (state.open) await openTicket(state.open);
  live.start();
  markReady();
}
