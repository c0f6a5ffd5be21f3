// The department inbox (部门工单): open tickets, soonest deadline first; accept (签收),
// return (退回) with a reason, reply (回复), request an extension (延期). New tickets appear
// live from the department's websocket topic (tickets.dept.<CODE>) and are announced.

import { api, describeError } from "./api.js";
import { askInDialog } from "./dialog.js";
import {
  $, coalesce, deadlineBadge, fmtDateTime, h, reconcileList, statusBadge,
} from "./dom.js";
import { announce, markReady, prepareLive, showError, startPage } from "./shell.js";

const me = await startPage("/inbox");
if (me) await main(me);

async function main(me) {
  const isAdmin = me.roles.includes("admin");
  const mine = new Set(me.departments);
  const state = { due: "", tickets: [], fresh: new Set() };
  const list = $("#inbox-list");
  const dialog = $("#action-dialog");
  const names = new Map();
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

  async function load() {
    try {
      state.tickets = await api("/api/v1/tickets", { query: { due: state.due, limit: 200 } });
      showError($("#inbox-error"), "");
      drawDepartment();
      draw();
    } catch (error) {
      showError($("#inbox-error"), describeError(error));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }
  const loadSoon = coalesce(load, 250, 1000);

  function draw() {
    const { tickets } = state;
    const soon = tickets.filter((t) => t.deadline_status === "due_soon").length;
    const late = tickets.filter((t) => t.deadline_status === "overdue").length;
    $("#inbox-count").textContent = `共 ${tickets.length} 件，即将超期 ${soon} 件，已超期 ${late} 件`;
    reconcileList(list, tickets, {
      key: (t) => t.number,
      signature: (t) => `${t.version}|${t.deadline_status}|${state.fresh.has(t.number)}`,
      build: card,
      empty: h("li", { class: "empty" }, state.due ? "没有符合条件的工单。" : "暂无待办工单。"),
    });
  }

  function card(t) {
    const isNew = state.fresh.has(t.number);
    const dueLabel = t.status === "dispatched" ? "签收时限" : "办结时限";
    const actions = [];
    if (mayAct(t) && t.status === "dispatched") {
      actions.push(actionButton(t, "accept", "签收", "button-primary"));
      actions.push(actionButton(t, "return", "退回", "button-danger"));
    } else if (mayAct(t) && t.status === "accepted") {
      actions.push(actionButton(t, "reply", "回复办理结果", "button-primary"));
      actions.push(actionButton(t, "request-extension", "申请延期"));
    }
    const headingId = `ticket-${t.number}`;
    return h("li", {
      class: `ticket-card deadline-${t.deadline_status || "none"}${isNew ? " is-new" : ""}`,
      "data-number": t.number, "data-status": t.status,
    },
    h("article", { "aria-labelledby": headingId },
      h("h2", { id: headingId, tabindex: "-1" },
        h("span", { class: "ticket-number" }, t.number),
        isNew ? h("span", { class: "badge badge-new" }, "新") : null,
        t.urgent ? h("span", { class: "badge badge-urgent" }, "紧急") : null,
        statusBadge(t.status), deadlineBadge(t.deadline_status),
        mayAct(t) ? null : h("span", { class: "badge badge-ok" }, "协办")),
      h("p", { class: "ticket-content" }, t.content),
      h("dl", { class: "ticket-facts" },
        fact("事项", `${t.matter_code}（${t.kind}）`),
        fact("地址", t.address || "—"),
        fact("来电人", `${t.caller_name} ${t.caller_phone}`.trim() || "—"),
        fact("受理", fmtDateTime(t.received_at)),
        fact(dueLabel, fmtDateTime(t.due_at)),
        t.co_departments.length ? fact("协办部门", t.co_departments.join("、")) : null,
        t.return_count ? fact("退回次数", String(t.return_count)) : null),
      t.routing && t.routing.explanation
        ? h("details", { class: "routing-why" }, h("summary", {}, "派单理由"),
          h("ol", { class: "explanation" }, t.routing.explanation.map((s) => h("li", {}, s.message))))
        : null,
      actions.length ? h("div", { class: "button-row" }, actions) : null));
  }

  function fact(term, value) {
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  function actionButton(ticket, action, label, extraClass = "") {
    return h("button", {
      type: "button", class: extraClass, "data-action": action,
      on: { click: () => act(ticket, action) },
    }, label);
  }

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
      const done = {
        accept: "已签收", return: "已退回", reply: "已回复", "request-extension": "已提交延期申请",
      }[action];
      announce(`${done}：${updated.number}`);
      state.fresh.delete(ticket.number);
      await load();
      const heading = document.getElementById(`ticket-${updated.number}`);
      (heading || $("#inbox-heading")).focus();
    } catch (error) {
      showError($("#inbox-error"), describeError(error));
      await load();
    }
  }

  for (const button of document.querySelectorAll(".due-filter")) {
    button.addEventListener("click", () => {
      state.due = button.dataset.due;
      for (const b of document.querySelectorAll(".due-filter")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
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
    },
    onResync: () => load(),
  });
  await load();
  live.start();
  markReady();
}
