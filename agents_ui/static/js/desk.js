// The dispatcher desk (派单台): tickets routing could not place (at DESK) are routed by hand,
// with the routing preview to start from, an optional final ruling (审定), and the
// dispatch action. The list follows ticket events live.

import { api, describeError } from "./api.js";
import {
  $, coalesce, fmtDateTime, h, reconcileList, replaceChildren, statusBadge,
} from "./dom.js";
import { hotspotsPanel } from "./hotspots.js";
import { markReady, notify, prepareLive, showError, startPage } from "./shell.js";

const LEVEL_GROUPS = [["city", "市级部门"], ["area", "区级部门和功能区"], ["town", "镇街"]];

const me = await startPage("/desk");
if (me) await main(me);

async function main(me) {
  const list = $("#desk-list");
  let departments = [];
  let tickets = [];

  async function loadDepartments() {
    try {
      departments = (await api("/api/v1/routing/departments"))
        .filter((d) => d.active && d.level !== "desk");
    } catch (error) {
      showError($("#desk-error"), describeError(error));
    }
  }

  async function load() {
    try {
      tickets = await api("/api/v1/tickets", { query: { status: "pending_dispatch", limit: 200 } });
      showError($("#desk-error"), "");
      $("#desk-count").textContent = `待派 ${tickets.length} 件`;
      reconcileList(list, tickets, {
        key: (t) => t.number,
        signature: (t) => String(t.version),
        build: card,
        empty: h("li", { class: "empty" }, "派单台没有待派工单。"),
      });
    } catch (error) {
      showError($("#desk-error"), describeError(error));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }
  const loadSoon = coalesce(load, 300, 1500);

  function departmentSelect(id) {
    const select = h("select", { id, name: "department", required: true },
      h("option", { value: "" }, "请选择主办部门"));
    for (const [level, label] of LEVEL_GROUPS) {
      const group = h("optgroup", { label });
      for (const d of departments.filter((x) => x.level === level)) {
        group.append(h("option", { value: d.code }, `${d.name}（${d.code}）`));
      }
      if (group.childElementCount) select.append(group);
    }
    return select;
  }

  function card(t) {
    const n = t.number;
    const headingId = `desk-${n}`;
    const select = departmentSelect(`dept-${n}`);
    const ruling = h("input", { type: "checkbox", id: `ruling-${n}`, name: "final_ruling" });
    const previewBox = h("div", { class: "desk-preview", "aria-live": "polite" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const form = h("form", { class: "dispatch-form", "aria-label": `派单 ${n}` },
      h("div", { class: "field" }, h("label", { for: `dept-${n}` }, "主办部门"), select),
      h("label", { class: "check", for: `ruling-${n}` }, ruling, "审定（部门不得再退回）"),
      h("button", { type: "button", on: { click: () => preview(t, select, previewBox) } }, "预览系统建议"),
      h("button", { type: "submit", class: "button-primary" }, "派单"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      dispatch(t, select, ruling, error);
    });
    const why = (t.routing && t.routing.explanation) || [];
    return h("li", { class: "ticket-card", "data-number": n },
      h("article", { "aria-labelledby": headingId },
        h("h2", { id: headingId, tabindex: "-1" }, h("span", { class: "ticket-number" }, n),
          t.urgent ? h("span", { class: "badge badge-urgent" }, "紧急") : null, statusBadge(t.status),
          t.return_count ? h("span", { class: "badge badge-due-soon" }, `被退回 ${t.return_count} 次`) : null),
        h("p", { class: "ticket-content" }, t.content),
        h("dl", { class: "ticket-facts" },
          fact("地址", t.address || "—"),
          fact("事项", `${t.matter_code}（${t.kind}）`),
          fact("来电人", `${t.caller_name} ${t.caller_phone}`.trim() || "—"),
          fact("受理", fmtDateTime(t.received_at)),
          fact("渠道", t.channel)),
        why.length
          ? h("details", { class: "routing-why", open: true }, h("summary", {}, "为什么在派单台"),
            h("ol", { class: "explanation" }, why.map((s) => h("li", {}, s.message))))
          : null,
        previewBox, form, error));
  }

  function fact(term, value) {
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  async function preview(ticket, select, box) {
    replaceChildren(box, h("p", { class: "meta" }, "预览中…"));
    try {
      const d = await api("/api/v1/routing/preview", {
        method: "POST",
        json: { text: ticket.content, address: ticket.address, matter_code: ticket.matter_code },
      });
      const desk = d.department.code === "DESK";
      const options = new Set([...select.options].map((o) => o.value));
      // A place that could be several towns: per candidate town, the department the rules
      // choose there (a district-level matter goes to that town's district department, a
      // town-level one to the town's office), labelled with the town.
      const places = d.candidates.length ? d.candidates : d.location.ambiguous;
      const choices = (d.by_town || []).filter((c) => options.has(c.department.code));
      replaceChildren(box,
        h("p", {}, "系统建议：", h("strong", {}, desk ? "仍需人工判断" : d.department.name),
          desk ? "" : `（${d.department.code}）`),
        places.length ? h("p", {}, "可能的属地：", places.map((c) => c.name).join("、")) : null,
        choices.length
          ? h("ul", { class: "town-choices", "aria-label": "按候选镇街的规则建议" }, choices.map((c) => h("li", {},
            h("button", {
              type: "button", class: "button-small", "data-town": c.town.code,
              "data-department": c.department.code,
              title: c.explanation.map((s) => s.message).join("；"),
              on: { click: () => { select.value = c.department.code; select.focus(); } },
            }, `若在${c.town.name}：选择${c.department.name}（${c.department.code}）`))))
          : null,
        desk ? null : h("ol", { class: "explanation" }, d.explanation.map((s) => h("li", {}, s.message))));
      if (!desk && options.has(d.department.code)) select.value = d.department.code;
    } catch (error) {
      replaceChildren(box, h("p", { class: "error" }, describeError(error)));
    }
  }

  async function dispatch(ticket, select, ruling, error) {
    if (!select.value) {
      showError(error, "请选择主办部门。");
      select.focus();
      return;
    }
    try {
      const updated = await api(`/api/v1/tickets/${encodeURIComponent(ticket.number)}/dispatch`, {
        method: "POST",
        json: { department: select.value, final_ruling: ruling.checked, version: ticket.version },
      });
      notify($("#desk-notice"), `已派单：${updated.number} → ${select.selectedOptions[0].textContent}`);
      await load();
      $("#desk-heading").focus();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  const hotspots = hotspotsPanel({
    list: $("#hotspots-list"), count: $("#hotspots-count"), error: $("#hotspots-error"), canMerge: true,
  });
  const live = await prepareLive(me, "desk", {
    // arrivals at the desk, returns, tickets leaving it; hot spots found, merged, dismissed
    topics: ["tickets.dept.DESK", "hotspots."],
    onEvent: (frame) => {
      if (frame.topic.startsWith("tickets.")) loadSoon();
      hotspots.onEvent(frame);
    },
    onResync: () => { load(); hotspots.load(); },
  });
  await loadDepartments();
  await Promise.all([load(), hotspots.load()]);
  live.start();
  markReady();
}
