// The agent console (话务台): state switcher, the answered call with the caller's history
// (screen pop from the websocket), the ticket form with matter suggestions and the routing
// preview, the knowledge base, my recent tickets, and keyboard shortcuts for all of them.

import { api, describeError } from "./api.js";
import {
  $, AGENT_STATE_LABELS, debounce, deadlineBadge, fmtDateTime, h, replaceChildren, statusBadge,
} from "./dom.js";
import { mountKbPane } from "./kb.js";
import { announce, markReady, prepareLive, showError, startPage } from "./shell.js";

const LEVEL_LABELS = { city: "市级", area: "区级", town: "镇街" };
// The catch-all matter (其他综合诉求) offered whenever the system is unsure of the matter.
const CATCH_ALL = "QT-01";
// The routing found no place at all (neither town nor area): the desk would have to guess.
const NO_PLACE = "desk.unresolved";
const ASK_FOR_PLACE = "未识别地点：请询问来电人事发地点";
const TAKE_FIRST_KEY = "Alt+M";
const MY_TICKETS_KEPT = 10;
// A screen pop replayed after a reload is shown again only while the call may still be on.
const POP_FRESH_MS = 10 * 60 * 1000;

// The call on the line: {call_id, caller, tickets: [numbers filed during it]}. It stays until
// the call ends, so every ticket the caller asks for in one call is linked to that call.
let currentCall = null;

async function main(me) {
  const form = $("#ticket-form");
  const kb = mountKbPane($("#kb-pane"));
  const myTickets = new MyTickets(me.username, $("#my-tickets"));
  const live = await prepareLive(me, "console", {
    // Only this agent's screen pops, state and tickets: not every change in the city.
    topics: [`agent.${me.username}`, `calls.agents.${me.username}`, `tickets.by.${me.username}`],
    onEvent: (frame) => {
      if (frame.topic === `agent.${me.username}` && frame.event === "call.answered") {
        if (Date.now() - Date.parse(frame.at) < POP_FRESH_MS) showCall(frame.data);
      } else if (frame.topic === `calls.agents.${me.username}`) {
        showState(frame.data.state);
      } else if (frame.topic.startsWith("tickets.") && frame.data.number) {
        myTickets.changed(frame.data.number);
      }
    },
    onResync: () => { loadState(me); myTickets.load(); },
  });
  for (const button of document.querySelectorAll(".state-button")) {
    button.addEventListener("click", () => setState(button.dataset.state));
  }
  // Short delays: the suggest route answers in a few milliseconds, and the agent should see
  // what the system understood while still typing.
  const previewSoon = debounce(() => preview(form), 300);
  const suggestSoon = debounce(() => suggest(form, previewSoon), 150);
  form.content.addEventListener("input", () => { suggestSoon(); previewSoon(); });
  form.address.addEventListener("input", previewSoon);
  for (const name of ["matter_code", "urgent", "major", "multi_area"]) {
    form[name].addEventListener("change", previewSoon);
  }
  form.matter_code.addEventListener("change", () => markChosen(form));
  $("#preview-button").addEventListener("click", () => { previewSoon.cancel(); preview(form); });
  $("#new-button").addEventListener("click", () => newTicket(form));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    previewSoon.cancel();
    submitTicket(form, myTickets);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey && event.key === "Enter" && !event.altKey) {
      // Not from another form (a knowledge-base error report): that one is submitted there.
      const inForm = event.target.closest && event.target.closest("form");
      if (inForm && inForm !== form) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    const states = { Digit1: "ready", Digit2: "break", Digit3: "after_call_work" };
    if (states[event.code]) {
      event.preventDefault();
      setState(states[event.code]);
    } else if (event.code === "KeyS") {
      event.preventDefault();
      kb.input.focus();
      kb.input.select();
    } else if (event.code === "KeyN") {
      event.preventDefault();
      newTicket(form);
    } else if (event.code === "KeyP") {
      event.preventDefault();
      previewSoon.cancel();
      preview(form);
    } else if (event.code === "KeyM") {
      event.preventDefault();
      suggestSoon.cancel();
      takeFirstSuggestion(form, previewSoon);
    }
  });

  await Promise.all([loadState(me), loadMatters(), myTickets.load()]);
  live.start();
  markReady();
}

// -- agent state ------------------------------------------------------------------------------

async function loadState(me) {
  try {
    const agents = await api("/api/v1/agents");
    const mine = agents.find((a) => a.username === me.username);
    showState(mine ? mine.state : "logged_out");
  } catch (error) {
    showError($("#state-error"), describeError(error));
  }
}

function showState(state) {
  // The agent left the call (the telephony's end event moved them to 话后整理, or they
  // changed state by hand): the call is over, and the next ticket is not linked to it.
  if (state !== "on_call" && currentCall) endCall();
  $("#state-current").textContent = AGENT_STATE_LABELS[state] || state;
  $("#state-current").dataset.state = state;
  for (const button of document.querySelectorAll(".state-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.state === state));
  }
}

async function setState(state) {
  const error = $("#state-error");
  try {
    const status = await api("/api/v1/agents/me/state", { method: "PUT", json: { state } });
    showError(error, "");
    showState(status.state);
    announce(`坐席状态：${AGENT_STATE_LABELS[status.state]}`);
  } catch (err) {
    showError(error, describeError(err));
  }
}

// -- the call and the caller's history ------------------------------------------------------------

function showCall(call) {
  if (!currentCall || currentCall.call_id !== call.call_id) {
    currentCall = { call_id: call.call_id, caller: call.caller, tickets: [] };
  }
  const panel = $("[data-testid=incoming-call]");
  panel.dataset.callId = call.call_id;
  panel.classList.add("has-call");
  const history = call.history || [];
  const open = history.filter((t) => t.open).length;
  const caller = call.caller || "未知号码";
  const summary = `来电 ${caller} 已接通（通话编号 ${call.call_id}）。历史工单 ${history.length} 件，`
    + `其中未办结 ${open} 件。`;
  $("#call-summary").textContent = summary;
  drawHistory(history);
  const form = $("#ticket-form");
  // A new call fills the caller's number unless the agent is already writing something.
  if (call.caller && (!form.caller_phone.value || !form.content.value.trim())) {
    form.caller_phone.value = call.caller;
  }
  linkForm(form);
  drawCallTickets();
}

/** Link the ticket form to the current call (again after each ticket filed during it). */
function linkForm(form) {
  const link = $("#call-link");
  if (!currentCall) {
    delete form.dataset.callId;
    link.hidden = true;
    return;
  }
  form.dataset.callId = currentCall.call_id;
  link.textContent = `本工单将关联通话 ${currentCall.call_id}`;
  link.hidden = false;
}

/** The tickets filed during the current call, shown in the call panel until it ends. */
function drawCallTickets() {
  const box = $("#call-tickets");
  const numbers = currentCall ? currentCall.tickets : [];
  box.hidden = !numbers.length;
  replaceChildren(box, numbers.length
    ? [h("span", {}, `本次通话已提交工单 ${numbers.length} 件：`),
      numbers.map((n, i) => [i ? "、" : "", h("span", { class: "ticket-number", "data-number": n }, n)])]
    : []);
}

function endCall() {
  const ended = currentCall;
  currentCall = null;
  const panel = $("[data-testid=incoming-call]");
  panel.classList.remove("has-call");
  panel.dataset.callId = "";
  const filed = ended.tickets.length ? `，已提交工单 ${ended.tickets.join("、")}` : "";
  $("#call-summary").textContent = `通话 ${ended.call_id} 已结束${filed}。`;
  drawCallTickets();
  const form = $("#ticket-form");
  if (form.dataset.callId === ended.call_id) linkForm(form);
}

function drawHistory(history) {
  const list = $("#caller-history");
  if (!history.length) {
    replaceChildren(list, h("li", { class: "empty" }, "该号码没有历史工单。"));
    return;
  }
  replaceChildren(list, history.map((t) =>
    h("li", { class: t.open ? "history-item is-open" : "history-item" },
      h("div", { class: "history-head" },
        h("span", { class: "ticket-number" }, t.number), statusBadge(t.status),
        h("span", { class: "meta" }, `${fmtDateTime(t.received_at)} · ${t.matter_code} · ${t.lead_department}`)),
      h("p", { class: "history-content" }, t.content),
      t.reply ? h("p", { class: "history-reply" }, `答复：${t.reply}`) : null)));
}

// -- the ticket form --------------------------------------------------------------------------------

async function loadMatters() {
  const select = $("#matter-code");
  try {
    const matters = await api("/api/v1/routing/matters");
    const groups = new Map();
    for (const m of matters) {
      if (!groups.has(m.category)) groups.set(m.category, h("optgroup", { label: m.category }));
      groups.get(m.category).append(h("option", { value: m.code }, `${m.code} ${m.name}`));
    }
    select.append(...groups.values());
  } catch (error) {
    showError($("#ticket-error"), describeError(error));
  }
}

let suggestRound = 0;
// The text the suggestions on screen were made for, and what they were.
let suggested = { q: "", items: [] };

function emptySuggestions(text) {
  suggested = { q: "", items: [] };
  showSuggestNote(false);
  replaceChildren($("#matter-suggestions"), h("li", { class: "empty" }, text));
}

function showSuggestNote(unsure) {
  const note = $("#suggest-note");
  note.hidden = !unsure;
  // A hidden element named by aria-describedby is still read out: refer to it only when shown.
  const list = $("#matter-suggestions");
  if (unsure) list.setAttribute("aria-describedby", "suggest-note");
  else list.removeAttribute("aria-describedby");
}

async function suggest(form, previewSoon) {
  const list = $("#matter-suggestions");
  const q = form.content.value.trim();
  const round = ++suggestRound;
  if (!q) {
    emptySuggestions("输入诉求内容后显示推荐。");
    return [];
  }
  try {
    const found = await api("/api/v1/routing/suggest", { query: { q, limit: 5 } });
    if (round !== suggestRound) return null;
    if (!found.length) {
      emptySuggestions("没有匹配的事项，可在下方手动选择。");
      return [];
    }
    const unsure = found.some((s) => s.low_confidence);
    const items = unsure ? withCatchAll(found) : found;
    suggested = { q, items };
    showSuggestNote(unsure);
    // Every suggestion the server sends is shown: an urgent matter is never cut off.
    replaceChildren(list, items.map((s, index) => h("li", {},
      suggestionButton(s, index === 0, form, () => chooseMatter(form, s.code, previewSoon)))));
    markChosen(form);
    return items;
  } catch (error) {
    if (round === suggestRound) replaceChildren(list, h("li", { class: "error" }, describeError(error)));
    return null;
  }
}

// The server offers the catch-all when unsure; should it not, it is offered here all the same.
function withCatchAll(found) {
  if (found.some((s) => s.code === CATCH_ALL)) return found;
  const option = $(`#matter-code option[value="${CATCH_ALL}"]`);
  if (!option) return found;
  const name = option.textContent.replace(`${CATCH_ALL} `, "");
  return [...found, { code: CATCH_ALL, name, score: null, urgent: false }];
}

function percent(score) {
  if (score === null || score === undefined) return "—";
  const value = Math.round(score * 100);
  return value < 1 && score > 0 ? "<1%" : `${value}%`;
}

function suggestionButton(s, first, form, onChoose) {
  const bar = h("span", { class: "confidence-fill" });
  bar.style.setProperty("width", `${Math.round((s.score || 0) * 100)}%`);
  return h("button", {
    type: "button",
    class: s.urgent ? "suggestion is-urgent" : "suggestion",
    "aria-pressed": String(form.matter_code.value === s.code),
    "aria-keyshortcuts": first ? TAKE_FIRST_KEY : null,
    "data-code": s.code,
    on: { click: onChoose },
  },
  h("span", { class: "suggestion-code" }, s.code), " ",
  h("span", { class: "suggestion-name" }, s.name), " ",
  s.urgent
    ? h("span", { class: "urgent-marker" }, h("span", { "aria-hidden": "true" }, "⚠"), "紧急")
    : null,
  " ",
  h("span", { class: "confidence" },
    h("span", { class: "confidence-bar", "aria-hidden": "true" }, bar),
    h("span", { class: "visually-hidden" }, "置信度 "), percent(s.score)),
  first ? h("kbd", { class: "suggestion-key", "aria-hidden": "true" }, TAKE_FIRST_KEY) : null);
}

function markChosen(form) {
  for (const b of $("#matter-suggestions").querySelectorAll("button[data-code]")) {
    b.setAttribute("aria-pressed", String(b.dataset.code === form.matter_code.value));
  }
}

function chooseMatter(form, code, previewSoon, { toggle = true } = {}) {
  form.matter_code.value = toggle && form.matter_code.value === code ? "" : code;
  markChosen(form);
  previewSoon();
}

async function takeFirstSuggestion(form, previewSoon) {
  // Pressed right after typing, the suggestions on screen may be for an older text.
  const q = form.content.value.trim();
  const items = q && q === suggested.q ? suggested.items : await suggest(form, previewSoon);
  if (!items || !items.length) {
    announce("没有可采用的推荐事项。");
    return;
  }
  const first = items[0];
  chooseMatter(form, first.code, previewSoon, { toggle: false });
  announce(`已选事项：${first.code} ${first.name}${first.urgent ? "（紧急）" : ""}`);
}

function ticketFields(form) {
  return {
    text: form.content.value.trim(),
    address: form.address.value.trim(),
    matter_code: form.matter_code.value || null,
    major: form.major.checked,
    multi_area: form.multi_area.checked,
  };
}

let previewRound = 0;

async function preview(form) {
  const box = $("#routing-preview");
  const fields = ticketFields(form);
  const round = ++previewRound;
  if (!fields.text && !fields.address) {
    replaceChildren(box, h("p", { class: "empty" }, "填写诉求内容和地址后，这里显示将派往的部门和理由。"));
    askForPlace(false);
    return null;
  }
  try {
    const decision = await api("/api/v1/routing/preview", { method: "POST", json: fields });
    if (round !== previewRound) return decision;
    drawPreview(box, decision);
    return decision;
  } catch (error) {
    if (round === previewRound) replaceChildren(box, h("p", { class: "error" }, describeError(error)));
    return null;
  }
}

function drawPreview(box, d) {
  const desk = d.department.code === "DESK";
  const where = [d.location.area && d.location.area.name, d.location.town && d.location.town.name]
    .filter(Boolean).join(" ");
  replaceChildren(box,
    h("p", { class: desk ? "preview-target is-desk" : "preview-target" },
      desk ? "转派单台人工派单：" : "将派往：",
      h("strong", { class: "preview-department", "data-code": d.department.code }, d.department.name),
      h("span", { class: "meta" }, `（${d.department.code}）`)),
    h("dl", { class: "preview-facts" },
      h("dt", {}, "事项"), h("dd", {}, `${d.matter.code} ${d.matter.name}`),
      h("dt", {}, "层级"), h("dd", {}, `${LEVEL_LABELS[d.level] || d.level}${d.escalated ? "（已升级至市级）" : ""}`),
      h("dt", {}, "属地"), h("dd", {}, where || (d.location.outside ? "珠海市外" : "未识别")),
      h("dt", {}, "规则版本"), h("dd", {}, d.rule_version)),
    d.needs_confirmation
      ? h("p", { class: "warning" }, h("span", { "aria-hidden": "true" }, "⚠ "),
        "事项由系统根据内容推测，请与市民确认后再提交，或在“事项”中手动选择。")
      : null,
    d.location.ambiguous.length
      ? h("p", { class: "warning" }, "地点有歧义，可能是：", d.location.ambiguous.map((r) => r.name).join("、"))
      : null,
    h("h3", { class: "small-heading" }, "派单理由"),
    h("ol", { class: "explanation" }, d.explanation.map((step) =>
      h("li", { "data-code": step.code }, step.message))));
  askForPlace(d.reason_code === NO_PLACE);
}

// Without a place the request can only go to the desk: ask the caller before it does.
function askForPlace(ask) {
  const hint = $("#address-hint");
  const address = $("#ticket-address");
  const wasAsking = !hint.hidden;
  hint.hidden = !ask;
  address.classList.toggle("needs-place", ask);
  // A hidden element named by aria-describedby is still read out: refer to it only when shown.
  if (ask) address.setAttribute("aria-describedby", "address-hint");
  else address.removeAttribute("aria-describedby");
  if (ask && !wasAsking) announce(ASK_FOR_PLACE);
}

async function submitTicket(form, myTickets) {
  const error = $("#ticket-error");
  const result = $("#ticket-result");
  const content = form.content.value.trim();
  if (!content) {
    showError(error, "请填写诉求内容。");
    form.content.focus();
    return;
  }
  const phone = form.caller_phone.value.trim();
  if (phone && !/^[0-9+-]*$/.test(phone)) {
    showError(error, "来电号码只能包含数字、+ 和 -。");
    form.caller_phone.focus();
    return;
  }
  const body = {
    channel: "phone",
    content,
    address: form.address.value.trim(),
    caller_name: form.caller_name.value.trim(),
    caller_phone: phone,
    matter_code: form.matter_code.value || null,
    major: form.major.checked,
    multi_area: form.multi_area.checked,
    call_id: form.dataset.callId || null,
  };
  // Unticked means "as the matter says" (an elevator entrapment is urgent by itself).
  if (form.urgent.checked) body.urgent = true;
  const button = $("#submit-button");
  button.disabled = true;
  try {
    const ticket = await api("/api/v1/tickets", { method: "POST", json: body });
    showError(error, "");
    const department = ticket.routing.department ? ticket.routing.department.name : ticket.lead_department;
    const duplicates = ticket.possible_duplicates.length
      ? `；可能重复：${ticket.possible_duplicates.join("、")}` : "";
    result.textContent = `已提交工单 ${ticket.number}，派往 ${department}${duplicates}。`;
    result.dataset.number = ticket.number;
    if (currentCall && body.call_id === currentCall.call_id) {
      currentCall.tickets.push(ticket.number);
      drawCallTickets();
    }
    myTickets.add(ticket);
    newTicket(form, { keepResult: true });
  } catch (err) {
    showError(error, describeError(err));
  } finally {
    button.disabled = false;
  }
}

function newTicket(form, { keepResult = false } = {}) {
  const [phone, name] = currentCall ? [form.caller_phone.value, form.caller_name.value] : ["", ""];
  form.reset();
  // Still on the call: the caller's next request is linked to it too, with their number.
  linkForm(form);
  if (currentCall) {
    form.caller_phone.value = phone || currentCall.caller || "";
    form.caller_name.value = name;
  }
  showError($("#ticket-error"), "");
  if (!keepResult) $("#ticket-result").textContent = "";
  suggestRound += 1;
  previewRound += 1;
  emptySuggestions("输入诉求内容后显示推荐。");
  askForPlace(false);
  replaceChildren($("#routing-preview"),
    h("p", { class: "empty" }, "填写诉求内容和地址后，这里显示将派往的部门和理由。"));
  form.content.focus();
}

// -- my recent tickets --------------------------------------------------------------------------------

class MyTickets {
  // The API lists every ticket for hotline roles; which ones this agent filed is kept here,
  // per user, so the list survives a reload and the next shift's log-in on the same desk.
  constructor(username, list) {
    this.key = `hotline.myTickets.${username}`;
    this.list = list;
    this.tickets = new Map();
  }

  numbers() {
    try {
      const stored = JSON.parse(localStorage.getItem(this.key) || "[]");
      return Array.isArray(stored) ? stored.filter((n) => typeof n === "string") : [];
    } catch (error) {
      return [];
    }
  }

  async load() {
    const loaded = await Promise.all(this.numbers().map((n) =>
      api(`/api/v1/tickets/${encodeURIComponent(n)}`).catch(() => null)));
    this.tickets = new Map(loaded.filter(Boolean).map((t) => [t.number, t]));
    this.draw();
  }

  add(ticket) {
    const numbers = [ticket.number, ...this.numbers().filter((n) => n !== ticket.number)]
      .slice(0, MY_TICKETS_KEPT);
    localStorage.setItem(this.key, JSON.stringify(numbers));
    this.tickets.set(ticket.number, ticket);
    this.draw();
  }

  async changed(number) {
    if (!this.tickets.has(number)) return;
    try {
      this.tickets.set(number, await api(`/api/v1/tickets/${encodeURIComponent(number)}`));
      this.draw();
    } catch (error) {
      // It will be right on the next load; a refresh failure is not worth an alarm.
    }
  }

  draw() {
    const rows = this.numbers().map((n) => this.tickets.get(n)).filter(Boolean);
    if (!rows.length) {
      replaceChildren(this.list, h("li", { class: "empty" }, "本班次还没有提交工单。"));
      return;
    }
    replaceChildren(this.list, rows.map((t) =>
      h("li", { class: "mini-ticket", "data-number": t.number },
        h("div", { class: "history-head" }, h("span", { class: "ticket-number" }, t.number),
          statusBadge(t.status), deadlineBadge(t.deadline_status)),
        h("p", { class: "mini-content" }, t.content),
        h("p", { class: "meta" },
          `${fmtDateTime(t.received_at)} · ${t.routing.department ? t.routing.department.name : t.lead_department}`))));
  }
}

// Last: the classes above must be defined before the page starts.
const me = await startPage("/console");
if (me) await main(me);
