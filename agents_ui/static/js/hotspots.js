// Hot spots (热点诉求) on the wall and the desk: surges and incidents the detector found,
// live over the gateway (topic hotspots.city). On the desk a dispatcher merges an
// incident's tickets under one parent (并单) or undoes it.

import { api, describeError } from "./api.js";
import { $, coalesce, fmtTime, h, reconcileList, replaceChildren } from "./dom.js";
import { announce, showError } from "./shell.js";

const KIND = { incident: "聚集事件", surge: "诉求突增" };

export function hotspotsPanel({ list, count, error, canMerge, compact = false }) {
  let spots = [];

  async function load() {
    try {
      const [open, merged] = await Promise.all([
        api("/api/v1/hotspots", { query: { status: "open" } }),
        canMerge ? api("/api/v1/hotspots", { query: { status: "merged" } }) : [],
      ]);
      spots = [...open, ...merged];
      showError(error, "");
      if (count) {
        count.textContent = `待处理热点 ${open.length} 个${merged.length ? `，已并单 ${merged.length} 个` : ""}`;
      }
      reconcileList(list, spots, {
        key: (s) => String(s.id),
        signature: (s) => `${s.status}:${s.ticket_numbers.length}:${s.parent}`,
        build: compact ? line : card,
        empty: compact ? h("li", {}, h("span", {}, "暂无热点诉求")) : h("li", { class: "empty" }, "暂无热点诉求。"),
      });
    } catch (err) {
      showError(error, describeError(err));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // One line on the wall: what, where, how many.
  function line(s) {
    return h("li", { "data-hotspot": String(s.id), "data-kind": s.kind },
      h("span", {}, `【${KIND[s.kind]}】${s.summary}`),
      h("span", { class: "count overdue-count" }, `${s.ticket_numbers.length} 件`));
  }

  function card(s) {
    const headingId = `hotspot-${s.id}`;
    const where = s.place_name || s.town_code || s.area_code || "";
    const buttons = [];
    if (canMerge && s.status === "open" && s.ticket_numbers.length > 1) {
      buttons.push(h("button", { type: "button", class: "button-primary", on: { click: () => act(s, "merge") } },
        `并单（${s.ticket_numbers.length} 件合并到 ${s.ticket_numbers[0]}）`));
    }
    if (canMerge && s.status === "merged") {
      buttons.push(h("button", { type: "button", on: { click: () => act(s, "unmerge") } }, "取消并单"));
    }
    return h("li", { class: "ticket-card hotspot-card", "data-hotspot": String(s.id), "data-kind": s.kind },
      h("article", { "aria-labelledby": headingId },
        h("h3", { id: headingId },
          h("span", { class: `badge ${s.kind === "incident" ? "badge-urgent" : "badge-due-soon"}` }, KIND[s.kind]),
          " ", s.summary),
        h("p", { class: "meta" },
          `事项 ${s.matter_code} · 属地 ${where} · 首次 ${fmtTime(s.first_at)} · 评分 ${s.score}`,
          s.parent ? ` · 已并单到 ${s.parent}` : ""),
        h("p", { class: "hotspot-tickets" }, "工单：", s.ticket_numbers.join("、")),
        buttons.length ? h("div", { class: "button-row" }, buttons) : null));
  }

  async function act(s, action) {
    try {
      const result = await api(`/api/v1/hotspots/${s.id}/${action}`, { method: "POST", json: {} });
      announce(action === "merge"
        ? `已并单：${result.ticket_numbers.length} 件工单合并到 ${result.parent}`
        : "已取消并单");
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  const loadSoon = coalesce(load, 300, 1500);
  return {
    load,
    onEvent(frame) {
      if (frame.topic.startsWith("hotspots.")) {
        if (frame.type === "hotspot.opened") announce("发现新的热点诉求");
        loadSoon();
      }
    },
  };
}

