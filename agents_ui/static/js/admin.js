// 系统管理 The administrators' page: user accounts, departments, the holiday calendar, IVR
// prompts, Open311 keys, the matter catalogue with a draft of routing rules (replayed on past
// tickets before it is published) and the audit log. One view at a time, chosen by the URL's
// hash (#users …), each drawn when first opened; every change goes through the JSON API,
// which checks and audits it, and its refusals are shown as they come.

import { api, describeError, getToken } from "./api.js";
import { runModal } from "./dialog.js";
import { $, fmtDateTime, h, replaceChildren } from "./dom.js";
import { announce, markReady, showError, startPage } from "./shell.js";

const ROLE_LABELS = {
  agent: "话务员",
  supervisor: "值班长",
  dispatcher: "派单员",
  department: "承办部门",
  editor: "知识库编辑",
  admin: "管理员",
};
const LEVEL_LABELS = { city: "市级", area: "区级/功能区", town: "镇街", desk: "派单台" };
const SOURCE_LABELS = {
  override: "管理员调整",
  library: "国务院安排",
  statutory: "按规则推算",
  weekday: "平日",
};
const WEEKDAYS = ["一", "二", "三", "四", "五", "六", "日"];
const DRAFT_KEY = "hotline.admin.draft";

const me = await startPage("/admin");
if (me) await main(me);

async function main(me) {
  const views = {
    overview: { load: async () => {} },
    users: { load: usersView },
    departments: { load: departmentsView },
    calendar: { load: calendarView },
    prompts: { load: promptsView },
    open311: { load: open311View },
    rules: { load: rulesView },
    audit: { load: auditView },
  };
  const loaded = new Set();

  async function show(name, { focus = true } = {}) {
    if (!views[name]) name = "overview";
    for (const link of document.querySelectorAll(".admin-nav a")) {
      link.setAttribute("aria-current", link.dataset.view === name ? "page" : "false");
    }
    for (const key of Object.keys(views)) $(`#view-${key}`).hidden = key !== name;
    const section = $(`#view-${name}`);
    if (!loaded.has(name)) {
      loaded.add(name);
      try {
        await views[name].load(section, me);
      } catch (error) {
        section.append(h("p", { class: "error", role: "alert" }, describeError(error)));
      }
      section.dataset.ready = "true";
    }
    document.title = `${$(`#h-${name}`).textContent} · 系统管理 · 珠海12345热线`;
    if (focus) $(`#h-${name}`).focus();
  }

  window.addEventListener("hashchange", () => show(location.hash.slice(1).split("/")[0]));
  await show(location.hash.slice(1).split("/")[0] || "overview", { focus: false });
  markReady();
}

// -- shared pieces ---------------------------------------------------------------------------------

function heading(name, text, hint) {
  return [h("h2", { id: `h-${name}`, tabindex: "-1" }, text), hint ? h("p", { class: "hint" }, hint) : null];
}

function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function field(id, label, input, hint) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function option(value, label, selected = false) {
  return h("option", { value, selected: selected || null }, label);
}

/** Ask yes or no in the page's dialog; resolves to true when confirmed. */
function confirmInDialog({ title, text, confirmLabel, danger = false }) {
  const yes = h("button", { type: "submit", class: danger ? "button-danger" : "button-primary" }, confirmLabel);
  const no = h("button", { type: "button", class: "button-quiet" }, "取消");
  const form = h("form", { method: "dialog" },
    h("h2", { id: "action-dialog-title" }, title), h("p", {}, text),
    h("div", { class: "button-row" }, yes, no));
  return runModal($("#admin-dialog"), form, {
    cancel: no, cancelled: false, focus: no, onSubmit: (finish) => finish(true),
  });
}

/** A form in the page's dialog built from nodes; resolves to the FormData or null. */
function formInDialog({ title, body, submitLabel, check }) {
  const error = errorBox();
  const cancel = h("button", { type: "button", class: "button-quiet" }, "取消");
  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", { id: "action-dialog-title" }, title), body, error,
    h("div", { class: "button-row" },
      h("button", { type: "submit", class: "button-primary" }, submitLabel), cancel));
  return runModal($("#admin-dialog"), form, {
    cancel,
    focus: form.querySelector("input, select, textarea"),
    onSubmit(finish) {
      const problem = check ? check(form) : "";
      if (problem) {
        showError(error, problem);
        return;
      }
      finish(form);
    },
  });
}

async function loadDepartments() {
  return api("/api/v1/routing/departments");
}

function departmentOptions(departments, selected = []) {
  const chosen = new Set(selected);
  const groups = [];
  for (const level of ["city", "area", "town", "desk"]) {
    const group = h("optgroup", { label: LEVEL_LABELS[level] });
    for (const d of departments.filter((x) => x.level === level)) {
      group.append(option(d.code, `${d.name}（${d.code}）${d.active ? "" : "（已停用）"}`, chosen.has(d.code)));
    }
    if (group.childElementCount) groups.push(group);
  }
  return groups;
}

function localDay(date = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(date);
}

// -- users -----------------------------------------------------------------------------------------

async function usersView(section, me) {
  const departments = await loadDepartments();
  const names = Object.fromEntries(departments.map((d) => [d.code, d.name]));
  const error = errorBox();
  const search = h("input", { type: "search", name: "q", maxlength: 64, placeholder: "用户名或姓名" });
  const roleFilter = h("select", { name: "role" }, option("", "全部角色"),
    Object.entries(ROLE_LABELS).map(([v, l]) => option(v, l)));
  const activeFilter = h("select", { name: "active" }, option("", "全部状态"),
    option("true", "启用"), option("false", "已停用"));
  const tbody = h("tbody", {});
  const count = h("p", { class: "meta", role: "status" });

  // The create form, with the API's own rules checked first so mistakes show at once.
  const createError = errorBox();
  const username = h("input", { type: "text", name: "username", required: true, maxlength: 64,
    autocomplete: "off", pattern: "[A-Za-z0-9_.@-]+", "aria-describedby": "new-username-hint" });
  const fullName = h("input", { type: "text", name: "full_name", maxlength: 128, autocomplete: "off" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8,
    maxlength: 1024, autocomplete: "new-password", "aria-describedby": "new-password-hint" });
  const roleBoxes = Object.entries(ROLE_LABELS).map(([value, label]) => {
    const id = `new-role-${value}`;
    return h("label", { for: id }, h("input", { type: "checkbox", id, name: "roles", value }), label);
  });
  const deptSelect = h("select", { name: "departments", multiple: true, size: 6,
    "aria-describedby": "new-departments-hint" }, departmentOptions(departments.filter((d) => d.active)));
  const createForm = h("form", { class: "panel admin-form", novalidate: true, "aria-labelledby": "h-new-user",
    "data-testid": "user-create-form" },
  h("h3", { id: "h-new-user" }, "新建用户"),
  field("new-username", "用户名", username, "字母、数字和 _ . @ -，最多 64 个字符"),
  field("new-full-name", "姓名", fullName),
  field("new-password", "初始密码", password, "至少 8 个字符；请告知本人并提醒其修改"),
  h("fieldset", {}, h("legend", {}, "角色（可多选）"), roleBoxes),
  field("new-departments", "所属部门", deptSelect, "“承办部门”角色必须选择至少一个部门；按住 Ctrl 可多选"),
  createError,
  h("div", { class: "button-row" }, h("button", { type: "submit", class: "button-primary" }, "创建用户")));

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const roles = roleBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const depts = [...deptSelect.selectedOptions].map((o) => o.value);
    const problem = !/^[A-Za-z0-9_.@-]{1,64}$/.test(username.value)
      ? [username, "用户名只能包含字母、数字和 _ . @ -，1 至 64 个字符。"]
      : password.value.length < 8 ? [password, "初始密码至少 8 个字符。"]
        : !roles.length ? [roleBoxes[0].querySelector("input"), "请至少选择一个角色。"]
          : roles.includes("department") && !depts.length ? [deptSelect, "“承办部门”角色必须选择所属部门。"]
            : null;
    if (problem) {
      showError(createError, problem[1]);
      problem[0].focus();
      return;
    }
    try {
      const user = await api("/api/v1/admin/users", { method: "POST", json: {
        username: username.value, full_name: fullName.value.trim(), password: password.value,
        roles, departments: depts,
      } });
      showError(createError, "");
      createForm.reset();
      announce(`已创建用户 ${user.username}`);
      await load();
    } catch (err) {
      showError(createError, describeError(err));
    }
  });

  async function load() {
    try {
      const users = await api("/api/v1/admin/users", { query: {
        q: search.value.trim(), role: roleFilter.value, active: activeFilter.value,
      } });
      count.textContent = `共 ${users.length} 个账号`;
      replaceChildren(tbody, users.length ? users.map(row) : h("tr", {}, h("td", { colspan: 6 }, "没有符合条件的账号。")));
      showError(error, "");
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  function row(user) {
    const self = user.username === me.username;
    const actions = h("div", { class: "button-row tight" },
      h("button", { type: "button", class: "button-small", on: { click: () => edit(user) } }, `编辑 ${user.username}`),
      self ? null : h("button", {
        type: "button", class: `button-small ${user.active ? "button-danger" : ""}`,
        on: { click: () => setActive(user, !user.active) },
      }, user.active ? `停用 ${user.username}` : `启用 ${user.username}`),
      h("button", { type: "button", class: "button-small", on: { click: () => resetPassword(user) } },
        "重置密码", h("span", { class: "visually-hidden" }, ` ${user.username}`)),
      user.active && !self
        ? h("button", { type: "button", class: "button-small", on: { click: () => endSessions(user) } },
          "强制下线", h("span", { class: "visually-hidden" }, ` ${user.username}`))
        : null);
    return h("tr", { "data-username": user.username, class: user.active ? null : "is-disabled" },
      h("th", { scope: "row" }, user.username),
      h("td", {}, user.full_name || "—"),
      h("td", {}, user.roles.map((r) => ROLE_LABELS[r] || r).join("、")),
      h("td", {}, user.departments.map((c) => names[c] || c).join("、") || "—"),
      h("td", {}, user.active
        ? h("span", { class: "badge badge-ok" }, "启用")
        : h("span", { class: "badge badge-overdue" }, "已停用")),
      h("td", {}, actions));
  }

  async function setActive(user, active) {
    if (!active) {
      const sure = await confirmInDialog({
        title: `停用账号 ${user.username}？`,
        text: "停用后该账号无法登录，已登录的页面和连接会立即失效。可随时重新启用。",
        confirmLabel: "停用", danger: true,
      });
      if (!sure) return;
    }
    try {
      await api(`/api/v1/admin/users/${encodeURIComponent(user.username)}`, { method: "PATCH", json: { active } });
      announce(active ? `已启用 ${user.username}` : `已停用 ${user.username}，其登录已失效`);
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  async function resetPassword(user) {
    const input = h("input", { type: "password", name: "password", minlength: 8, maxlength: 1024,
      autocomplete: "new-password", required: true });
    const form = await formInDialog({
      title: `重置 ${user.username} 的密码`,
      body: [h("p", { class: "meta" }, "新密码生效后，该用户所有已登录的会话立即失效。"),
        field("reset-password", "新密码（至少 8 个字符）", input)],
      submitLabel: "重置密码",
      check: () => (input.value.length < 8 ? "新密码至少 8 个字符。" : ""),
    });
    if (!form) return;
    try {
      await api(`/api/v1/admin/users/${encodeURIComponent(user.username)}/password`, {
        method: "POST", json: { password: input.value } });
      announce(`已重置 ${user.username} 的密码`);
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  async function endSessions(user) {
    const sure = await confirmInDialog({ title: `让 ${user.username} 立即下线？`,
      text: "该用户所有已登录的页面需要重新登录。", confirmLabel: "强制下线", danger: true });
    if (!sure) return;
    try {
      await api(`/api/v1/admin/users/${encodeURIComponent(user.username)}/sessions/end`, {
        method: "POST", json: { reason: "管理页面" } });
      announce(`${user.username} 已下线`);
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  async function edit(user) {
    const self = user.username === me.username;
    const nameInput = h("input", { type: "text", name: "full_name", maxlength: 128, value: user.full_name });
    const boxes = Object.entries(ROLE_LABELS).map(([value, label]) => {
      const id = `edit-role-${value}`;
      return h("label", { for: id }, h("input", { type: "checkbox", id, name: "roles", value,
        checked: user.roles.includes(value), disabled: self && value === "admin" }), label);
    });
    const depts = h("select", { name: "departments", multiple: true, size: 8 },
      departmentOptions(departments, user.departments));
    const chosenRoles = () => boxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const form = await formInDialog({
      title: `编辑 ${user.username}`,
      body: [field("edit-full-name", "姓名", nameInput),
        h("fieldset", {}, h("legend", {}, "角色"), boxes),
        field("edit-departments", "所属部门", depts, "改动角色或部门后，该用户需重新登录。"),
      ],
      submitLabel: "保存",
      check: () => {
        const roles = chosenRoles();
        if (!roles.length) return "请至少选择一个角色。";
        if (roles.includes("department") && !depts.selectedOptions.length) return "“承办部门”角色必须选择所属部门。";
        return "";
      },
    });
    if (!form) return;
    try {
      await api(`/api/v1/admin/users/${encodeURIComponent(user.username)}`, { method: "PATCH", json: {
        full_name: nameInput.value.trim(), roles: chosenRoles(),
        departments: [...depts.selectedOptions].map((o) => o.value),
      } });
      announce(`已保存 ${user.username}`);
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  const filters = h("form", { class: "toolbar", role: "search", "aria-label": "筛选用户" },
    field("user-q", "查找", search), field("user-role", "角色", roleFilter),
    field("user-active", "状态", activeFilter),
    h("button", { type: "submit" }, "筛选"));
  filters.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  roleFilter.addEventListener("change", load);
  activeFilter.addEventListener("change", load);

  replaceChildren(section,
    heading("users", "用户与角色", "停用账号、重置密码、改动角色或部门都会让该用户已登录的会话立即失效；每项改动都记入审计日志。"),
    h("div", { class: "users-layout" },
      h("div", { class: "panel" }, h("h3", { id: "h-user-list" }, "账号"), filters, count, error,
        h("div", { class: "table-wrap" }, h("table", { class: "data-table", "aria-labelledby": "h-user-list",
          "data-testid": "user-table" },
        h("thead", {}, h("tr", {}, ["用户名", "姓名", "角色", "部门", "状态", "操作"].map((t) => h("th", { scope: "col" }, t)))),
        tbody))),
      createForm));
  await load();
}

// -- departments -------------------------------------------------------------------------------------

async function departmentsView(section) {
  const error = errorBox();
  const tbody = h("tbody", {});
  const levelFilter = h("select", {}, option("", "全部层级"),
    Object.entries(LEVEL_LABELS).map(([v, l]) => option(v, l)));
  const search = h("input", { type: "search", maxlength: 64, placeholder: "名称或编码" });
  let departments = [];

  async function load() {
    try {
      departments = await loadDepartments();
      draw();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  function draw() {
    const q = search.value.trim();
    const shown = departments.filter((d) => (!levelFilter.value || d.level === levelFilter.value)
      && (!q || d.name.includes(q) || d.code.includes(q.toUpperCase())));
    replaceChildren(tbody, shown.map((d) => h("tr", { "data-code": d.code, class: d.active ? null : "is-disabled" },
      h("th", { scope: "row" }, h("span", { class: "code" }, d.code)),
      h("td", {}, d.name),
      h("td", {}, LEVEL_LABELS[d.level] || d.level),
      h("td", {}, [d.area, d.town].filter(Boolean).join(" / ") || "—"),
      h("td", {}, (d.type_names?.length ? d.type_names : d.types).join("、") || "—"),
      h("td", {}, d.active ? h("span", { class: "badge badge-ok" }, "在用") : h("span", { class: "badge badge-overdue" }, "已停用")),
      h("td", {}, h("button", { type: "button", class: "button-small", on: { click: () => edit(d) } }, `编辑 ${d.code}`)))));
  }

  async function edit(d) {
    const name = h("input", { type: "text", name: "name", maxlength: 128, required: true, value: d.name });
    const active = h("input", { type: "checkbox", id: "dept-active", name: "active", checked: d.active });
    const form = await formInDialog({
      title: `编辑部门 ${d.code}`,
      body: [field("dept-name", "名称", name),
        h("label", { for: "dept-active", class: "check" }, active, "在用（停用后不再向其派单；若仍有事项只能派给它，将被拒绝）")],
      submitLabel: "保存",
      check: () => (name.value.trim() ? "" : "请填写名称。"),
    });
    if (!form) return;
    try {
      await api(`/api/v1/routing/departments/${encodeURIComponent(d.code)}`, { method: "PUT", json: {
        name: name.value.trim(), level: d.level, types: d.types, area: d.area, town: d.town, active: active.checked,
      } });
      announce(`已保存部门 ${d.code}`);
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  levelFilter.addEventListener("change", draw);
  search.addEventListener("input", draw);
  replaceChildren(section,
    heading("departments", "承办部门", "名称和在用状态在这里修改，立即生效并记入审计日志；派单规则的变动请在“事项目录与派单规则”中先试算后发布。"),
    h("div", { class: "panel" },
      h("div", { class: "toolbar" }, field("dept-q", "查找", search), field("dept-level", "层级", levelFilter)),
      error,
      h("div", { class: "table-wrap" }, h("table", { class: "data-table", "aria-label": "承办部门" },
        h("thead", {}, h("tr", {}, ["编码", "名称", "层级", "区/镇街", "职能类型", "状态", "操作"].map((t) => h("th", { scope: "col" }, t)))),
        tbody))));
  await load();
}

// -- calendar ----------------------------------------------------------------------------------------

async function calendarView(section) {
  const error = errorBox();
  const today = localDay();
  const hashMonth = (location.hash.match(/^#calendar\/(\d{4}-\d{2})/) || [])[1];
  let month = hashMonth || today.slice(0, 7);
  let selected = null;
  let days = [];
  const monthInput = h("input", { type: "month", value: month, min: "2000-01", max: "2100-12" });
  const title = h("h3", { id: "h-month", "aria-live": "polite" });
  const yearNote = h("p", { class: "warning", hidden: true });
  const grid = h("tbody", {});
  const detail = h("div", { class: "panel day-detail", "aria-labelledby": "h-day", "data-testid": "day-detail" });

  function shift(delta) {
    const [y, m] = month.split("-").map(Number);
    const d = new Date(Date.UTC(y, m - 1 + delta, 1));
    month = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
    monthInput.value = month;
    load();
  }

  async function load() {
    const [y, m] = month.split("-").map(Number);
    try {
      days = await api(`/api/v1/calendar/months/${y}/${m}`);
      const year = await api(`/api/v1/calendar/years/${y}`);
      yearNote.textContent = year.warning;
      yearNote.hidden = !year.warning;
      showError(error, "");
    } catch (err) {
      showError(error, describeError(err));
      return;
    }
    title.textContent = `${y}年${m}月`;
    draw();
  }

  function describe(d) {
    const kind = d.working ? "工作日" : "休息日";
    const why = [d.name, SOURCE_LABELS[d.source]].filter(Boolean).join("，");
    return `${d.day}，星期${WEEKDAYS[(new Date(`${d.day}T00:00:00Z`).getUTCDay() + 6) % 7]}，${kind}（${why}）${d.note ? `，备注：${d.note}` : ""}`;
  }

  function draw() {
    const first = new Date(`${days[0].day}T00:00:00Z`);
    const lead = (first.getUTCDay() + 6) % 7; // Monday first, as Chinese calendars are
    const cells = [...Array(lead).fill(null), ...days];
    while (cells.length % 7) cells.push(null);
    const rows = [];
    for (let i = 0; i < cells.length; i += 7) {
      rows.push(h("tr", {}, cells.slice(i, i + 7).map((d) => {
        if (!d) return h("td", { class: "day-empty" });
        const weekend = [5, 6].includes((new Date(`${d.day}T00:00:00Z`).getUTCDay() + 6) % 7);
        const special = d.working === weekend; // a make-up workday, or a holiday on a weekday
        const classes = ["day", d.working ? "day-work" : "day-off", d.source === "override" ? "day-override" : "",
          d.day === today ? "day-today" : "", d.day === selected ? "day-selected" : ""].join(" ");
        // The visible marks are short; screen readers get the day told in full instead.
        return h("td", {}, h("button", {
          type: "button", class: classes, "data-day": d.day,
          "aria-pressed": d.day === selected ? "true" : "false",
          on: { click: () => select(d.day) },
        }, h("span", { class: "day-number" }, String(Number(d.day.slice(8)))),
        h("span", { class: "visually-hidden" }, `日，${describe(d)}`),
        h("span", { class: "day-kind", "aria-hidden": "true" }, d.working ? (special ? "班" : "") : "休"),
        h("span", { class: "day-name", "aria-hidden": "true" },
          d.source === "override" ? (d.note || "调整") : d.name)));
      })));
    }
    replaceChildren(grid, rows);
    drawDetail();
  }

  function select(day) {
    selected = day;
    draw();
    const button = detail.querySelector("button");
    if (button) button.focus();
  }

  function drawDetail() {
    const d = days.find((x) => x.day === selected);
    if (!d) {
      replaceChildren(detail, h("h3", { id: "h-day" }, "选择日期"), h("p", { class: "meta" }, "点选日历中的一天，可设为休息日（如台风停工）或工作日（如调休上班）。"));
      return;
    }
    const note = h("input", { type: "text", name: "note", maxlength: 200, value: d.note || "",
      placeholder: "如：台风停工、国庆调休上班" });
    const dayError = errorBox();
    const save = async (working) => {
      try {
        await api(`/api/v1/calendar/${d.day}`, { method: "PUT", json: { working, note: note.value.trim() } });
        announce(`${d.day} 已设为${working ? "工作日" : "休息日"}；此后计算的办理时限按新日历`);
        await load();
      } catch (err) {
        showError(dayError, describeError(err));
      }
    };
    const remove = async () => {
      try {
        await api(`/api/v1/calendar/${d.day}`, { method: "DELETE" });
        announce(`${d.day} 已恢复为法定日历`);
        await load();
      } catch (err) {
        showError(dayError, describeError(err));
      }
    };
    replaceChildren(detail,
      h("h3", { id: "h-day" }, d.day),
      h("p", { "data-testid": "day-status" }, describe(d)),
      field("day-note", "备注", note),
      h("div", { class: "button-row" },
        h("button", { type: "button", class: "button-danger", on: { click: () => save(false) } }, "设为休息日"),
        h("button", { type: "button", on: { click: () => save(true) } }, "设为工作日"),
        d.source === "override" ? h("button", { type: "button", class: "button-quiet", on: { click: remove } }, "取消调整") : null),
      h("p", { class: "hint" }, "调整只影响此后计算的时限（新受理或新签收的工单）；已给出的时限不变。"),
      dayError);
  }

  monthInput.addEventListener("change", () => {
    if (/^\d{4}-\d{2}$/.test(monthInput.value)) {
      month = monthInput.value;
      load();
    }
  });
  replaceChildren(section,
    heading("calendar", "节假日与调休", "工单办理时限按中国工作日计算。国务院公布放假安排后，在这里录入调休上班日；台风等临时停工可设为休息日。"),
    h("div", { class: "calendar-layout" },
      h("div", { class: "panel" },
        h("div", { class: "toolbar" },
          h("button", { type: "button", on: { click: () => shift(-1) } }, "上个月"),
          title,
          h("button", { type: "button", on: { click: () => shift(1) } }, "下个月"),
          field("calendar-month", "跳到月份", monthInput)),
        yearNote, error,
        h("table", { class: "month-grid", "aria-labelledby": "h-month", "data-testid": "month-grid" },
          h("thead", {}, h("tr", {}, WEEKDAYS.map((w) => h("th", { scope: "col" }, `周${w}`)))), grid),
        h("p", { class: "hint" }, "“休”为休息日，“班”为周末调休上班；带边框的日期是管理员调整过的。")),
      detail));
  await load();
}

// -- IVR prompts ----------------------------------------------------------------------------------------

async function promptsView(section) {
  const error = errorBox();
  const list = h("div", { class: "prompt-list" });
  const urls = [];

  async function load() {
    try {
      const prompts = await api("/api/v1/ivr/prompts");
      replaceChildren(list, prompts.map(card));
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  function card(p) {
    const id = `prompt-${p.key}`;
    const text = h("textarea", { id, name: "text", rows: 3, maxlength: 1000, "aria-describedby": `${id}-hint` });
    text.value = p.text;
    const status = h("p", { class: "meta", role: "status" });
    const cardError = errorBox();
    const player = h("div", { class: "player" });
    const save = async (value) => {
      try {
        await api(`/api/v1/ivr/prompts/${encodeURIComponent(p.key)}`, { method: "PUT", json: { text: value } });
        text.value = value;
        status.textContent = "已保存；来电将听到新的提示。";
        showError(cardError, "");
      } catch (err) {
        showError(cardError, describeError(err));
      }
    };
    const listen = async () => {
      status.textContent = "正在合成语音…";
      const url = new URL(`/api/v1/ivr/prompts/${encodeURIComponent(p.key)}.wav`, location.origin);
      for (const [k, v] of Object.entries(p.sample_params || {})) url.searchParams.set(k, v);
      try {
        const response = await fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          const message = (body.error && body.error.message) || `HTTP ${response.status}`;
          status.textContent = response.status === 503 ? `语音尚未合成好，请稍后再试（${message}）` : `无法试听：${message}`;
          return;
        }
        const src = URL.createObjectURL(await response.blob());
        urls.push(src);
        const audio = h("audio", { controls: true, src, "aria-label": `试听 ${p.key}` });
        replaceChildren(player, audio);
        status.textContent = "已合成，试听的是已保存的文字（示例参数）。";
        audio.play().catch(() => {});
      } catch (err) {
        status.textContent = `无法试听：${err.message}`;
      }
    };
    return h("article", { class: "panel prompt", "data-key": p.key, "aria-labelledby": `${id}-title` },
      h("h3", { id: `${id}-title` }, h("span", { class: "code" }, p.key),
        p.is_default ? h("span", { class: "badge badge-ok" }, "默认") : h("span", { class: "badge badge-new" }, "已修改")),
      h("label", { for: id }, "提示文字"), text,
      h("p", { class: "hint", id: `${id}-hint` },
        p.placeholders.length ? `必须保留占位符：${p.placeholders.map((x) => `{${x}}`).join(" ")}` : "没有占位符",
        p.updated_by ? `；最后修改：${p.updated_by} ${fmtDateTime(p.updated_at)}` : ""),
      h("div", { class: "button-row" },
        h("button", { type: "button", class: "button-primary", on: { click: () => save(text.value.trim()) } }, "保存"),
        h("button", { type: "button", on: { click: listen } }, "试听"),
        p.is_default ? null : h("button", { type: "button", class: "button-quiet", on: { click: () => save(p.default_text) } }, "恢复默认")),
      status, cardError, player);
  }

  replaceChildren(section,
    heading("prompts", "语音提示（IVR）", "来电时播放的提示语。修改后保存，语音由后台任务合成；“试听”播放已保存的文字。"),
    error, list);
  await load();
}

// -- Open311 keys ------------------------------------------------------------------------------------------

async function open311View(section) {
  const error = errorBox();
  const tbody = h("tbody", {});
  const shown = h("div", { class: "key-once", role: "status", "data-testid": "new-key" });
  const name = h("input", { type: "text", name: "name", maxlength: 100, required: true, placeholder: "如：市民APP、微信公众号" });
  const form = h("form", { class: "toolbar", novalidate: true, "aria-label": "签发密钥" },
    field("key-name", "客户端名称", name), h("button", { type: "submit", class: "button-primary" }, "签发密钥"));

  async function load() {
    try {
      const keys = await api("/api/v1/open311/keys");
      replaceChildren(tbody, keys.length ? keys.map((k) => h("tr", { "data-prefix": k.prefix },
        h("th", { scope: "row" }, h("span", { class: "code" }, k.prefix)),
        h("td", {}, k.name), h("td", {}, `${k.created_by} ${fmtDateTime(k.created_at)}`),
        h("td", {}, k.last_used_at ? fmtDateTime(k.last_used_at) : "从未使用"),
        h("td", {}, k.active ? h("span", { class: "badge badge-ok" }, "有效")
          : h("span", { class: "badge badge-overdue" }, `已吊销（${k.revoked_by}）`)),
        h("td", {}, k.active ? h("button", { type: "button", class: "button-small button-danger",
          on: { click: () => revoke(k) } }, `吊销 ${k.prefix}`) : null)))
        : h("tr", {}, h("td", { colspan: 6 }, "尚未签发密钥。")));
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  async function revoke(k) {
    const sure = await confirmInDialog({ title: `吊销密钥 ${k.prefix}（${k.name}）？`,
      text: "吊销后该客户端的请求立即被拒绝，无法恢复，只能签发新密钥。", confirmLabel: "吊销", danger: true });
    if (!sure) return;
    try {
      await api(`/api/v1/open311/keys/${encodeURIComponent(k.prefix)}`, { method: "DELETE" });
      announce(`已吊销密钥 ${k.prefix}`);
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim()) {
      showError(error, "请填写客户端名称。");
      name.focus();
      return;
    }
    try {
      const made = await api("/api/v1/open311/keys", { method: "POST", json: { name: name.value.trim() } });
      showError(error, "");
      form.reset();
      const value = h("code", { class: "secret" }, made.key);
      replaceChildren(shown, h("p", {}, h("strong", {}, `“${made.name}”的密钥（只显示这一次，请立即复制交给对方）：`)),
        value,
        h("div", { class: "button-row" },
          h("button", { type: "button", on: { click: async () => {
            try {
              await navigator.clipboard.writeText(made.key);
              announce("已复制密钥");
            } catch {
              window.getSelection().selectAllChildren(value);
              announce("已选中密钥，请按 Ctrl+C 复制");
            }
          } } }, "复制"),
          h("button", { type: "button", class: "button-quiet", on: { click: () => replaceChildren(shown) } }, "我已保存，隐藏")));
      await load();
    } catch (err) {
      showError(error, describeError(err));
    }
  });

  replaceChildren(section,
    heading("open311", "Open311 密钥", "第三方应用（市民APP、公众号）通过 Open311 接口提交诉求时使用的密钥。系统只保存密钥的摘要，签发时显示一次。"),
    h("div", { class: "panel" }, form, shown, error),
    h("div", { class: "panel" }, h("div", { class: "table-wrap" }, h("table", { class: "data-table", "aria-label": "已签发的密钥" },
      h("thead", {}, h("tr", {}, ["前缀", "客户端", "签发", "最近使用", "状态", "操作"].map((t) => h("th", { scope: "col" }, t)))),
      tbody))));
  await load();
}

// -- matter catalogue and routing rules ---------------------------------------------------------------------

async function rulesView(section) {
  const [tree, departments, catalogue] = await Promise.all([
    api("/api/v1/routing/matters/tree"), loadDepartments(), api("/api/v1/routing/matters")]);
  const keywords = new Map(catalogue.map((m) => [m.code, m.keywords]));
  const types = [...new Set(departments.flatMap((d) => d.types))].sort();
  const typeNames = new Map(departments.flatMap((d) => d.types.map((t, i) => [t, d.type_names?.[i] ?? t])));
  const matters = new Map();
  for (const c of tree.categories) {
    for (const s of c.subcategories) for (const m of s.matters) matters.set(m.code, { ...m, category: c.name });
  }
  let draft = [];
  try {
    draft = JSON.parse(localStorage.getItem(DRAFT_KEY) || "[]").filter((row) => matters.has(row.code));
  } catch {
    draft = [];
  }
  const error = errorBox();
  const filter = h("input", { type: "search", maxlength: 32, placeholder: "名称、关键词或编码，如 噪音、SC-01" });
  const treeBox = h("div", { class: "matter-tree", "data-testid": "matter-tree" });
  const draftBody = h("tbody", {});
  const draftError = errorBox();
  const result = h("div", { class: "replay-result", "data-testid": "replay-result", "aria-live": "polite" });
  const since = h("input", { type: "date", value: localDay(new Date(Date.now() - 90 * 86400e3)) });
  const effective = h("input", { type: "date", value: localDay(new Date(Date.now() + 86400e3)) });
  const note = h("input", { type: "text", maxlength: 1000, placeholder: "调整原因，如：机构改革" });

  function saveDraft() {
    localStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  }

  function drawTree() {
    const q = filter.value.trim().toUpperCase();
    const text = filter.value.trim();
    const match = (m) => !q || m.code.includes(q) || m.name.includes(text)
      || (keywords.get(m.code) || []).some((k) => k.includes(text) || text.includes(k));
    const nodes = [];
    for (const c of tree.categories) {
      const subs = c.subcategories.map((s) => ({ ...s, shown: s.matters.filter(match) })).filter((s) => s.shown.length);
      if (!subs.length) continue;
      nodes.push(h("details", { open: Boolean(q) || null },
        h("summary", {}, `${c.name}（${c.count}）`),
        subs.map((s) => h("div", { class: "subcategory" }, h("h4", {}, `${s.name}（${s.count}）`),
          h("ul", {}, s.shown.map((m) => h("li", { "data-code": m.code },
            h("span", { class: "code" }, m.code), ` ${m.name} `,
            h("span", { class: "meta" }, `${m.kind}${m.urgent ? " · 紧急" : ""} · ${LEVEL_LABELS[m.level]} · ${typeNames.get(m.type) ?? m.type}`),
            h("button", { type: "button", class: "button-small",
              disabled: draft.some((r) => r.code === m.code) || null,
              on: { click: () => addToDraft(m) } }, `加入草稿 ${m.code}`))))))));
    }
    replaceChildren(treeBox, nodes.length ? nodes : h("p", { class: "meta" }, "没有符合的事项。"));
  }

  function addToDraft(m) {
    draft.push({ code: m.code, level: m.level, type: m.type });
    saveDraft();
    drawDraft();
    drawTree();
    const select = draftBody.querySelector(`tr[data-code="${CSS.escape(m.code)}"] select`);
    if (select) select.focus();
  }

  function drawDraft() {
    replaceChildren(draftBody, draft.length ? draft.map((row, index) => {
      const m = matters.get(row.code);
      const level = h("select", { id: `draft-level-${row.code}`, "aria-label": `${row.code} 层级` },
        ["city", "area", "town"].map((l) => option(l, LEVEL_LABELS[l], l === row.level)));
      const type = h("select", { id: `draft-type-${row.code}`, "aria-label": `${row.code} 职能类型` },
        types.map((t) => option(t, typeNames.get(t), t === row.type)));
      level.addEventListener("change", () => { row.level = level.value; saveDraft(); });
      type.addEventListener("change", () => { row.type = type.value; saveDraft(); });
      return h("tr", { "data-code": row.code },
        h("th", { scope: "row" }, h("span", { class: "code" }, row.code), ` ${m.name}`),
        h("td", {}, `${LEVEL_LABELS[m.level]} · ${typeNames.get(m.type) ?? m.type}`),
        h("td", {}, level), h("td", {}, type),
        h("td", {}, h("button", { type: "button", class: "button-small button-quiet", on: { click: () => {
          draft.splice(index, 1);
          saveDraft();
          drawDraft();
          drawTree();
        } } }, `移出 ${row.code}`)));
    }) : h("tr", {}, h("td", { colspan: 5 }, "草稿为空：从左侧事项目录加入要调整的事项。")));
  }

  function changedRows() {
    return draft.filter((r) => {
      const m = matters.get(r.code);
      return m.level !== r.level || m.type !== r.type;
    });
  }

  async function replay() {
    replaceChildren(result, h("p", { class: "meta" }, "正在回放历史工单…"));
    try {
      const report = await api("/api/v1/routing/draft/replay", { method: "POST", json: {
        matters: draft, since: since.value || undefined } });
      showError(draftError, "");
      const name = (code) => report.names[code] || code;
      replaceChildren(result,
        h("p", { class: "replay-summary" }, h("strong", {}, `自 ${report.since} 起的 ${report.tickets} 件工单中，${report.moved} 件将改派其他部门。`)),
        report.moves.length ? h("table", { class: "data-table", "aria-label": "改派去向" },
          h("thead", {}, h("tr", {}, ["原部门", "新部门", "件数"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, report.moves.map((mv) => h("tr", {}, h("td", {}, name(mv.from)), h("td", {}, name(mv.to)), h("td", {}, String(mv.tickets)))))) : null,
        report.moved_tickets.length ? h("table", { class: "data-table", "aria-label": "将改派的工单", "data-testid": "moved-tickets" },
          h("thead", {}, h("tr", {}, ["工单号", "事项", "受理时间", "原部门", "新部门"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, report.moved_tickets.map((t) => h("tr", { "data-number": t.number },
            h("th", { scope: "row" }, h("span", { class: "ticket-number" }, t.number)),
            h("td", {}, t.matter_code), h("td", {}, fmtDateTime(t.received_at)),
            h("td", {}, name(t.from)), h("td", {}, name(t.to))))))
          : h("p", { class: "meta" }, "没有工单会改派。"),
        report.moved > report.moved_tickets.length ? h("p", { class: "meta" }, `仅列出前 ${report.moved_tickets.length} 件。`) : null);
    } catch (err) {
      replaceChildren(result);
      showError(draftError, describeError(err));
    }
  }

  async function publish() {
    const rows = changedRows();
    if (!rows.length) {
      showError(draftError, "草稿与现行规则相同，没有要发布的改动。");
      return;
    }
    if (!effective.value) {
      showError(draftError, "请选择生效日期。");
      effective.focus();
      return;
    }
    const sure = await confirmInDialog({ title: `发布 ${rows.length} 项规则改动？`,
      text: `自 ${effective.value} 起受理的诉求按新规则派单；此前受理的工单不受影响。每项改动记入审计日志。`,
      confirmLabel: "发布" });
    if (!sure) return;
    try {
      const published = await api("/api/v1/routing/draft/publish", { method: "POST", json: {
        matters: rows, effective_from: effective.value, note: note.value.trim() || null } });
      draft = [];
      saveDraft();
      announce(`已发布 ${published.length} 项规则，自 ${effective.value} 起生效`);
      replaceChildren(result, h("p", { class: "success" },
        `已发布：${published.map((p) => `${p.matter_code} 第${p.version}版（${LEVEL_LABELS[p.level]} · ${typeNames.get(p.type) ?? p.type}）`).join("；")}，自 ${effective.value} 起生效。`));
      drawDraft();
      drawTree();
    } catch (err) {
      showError(draftError, describeError(err));
    }
  }

  filter.addEventListener("input", drawTree);
  replaceChildren(section,
    heading("rules", "事项目录与派单规则", "派单按“属地管理、分级负责”：事项决定由市级、区级还是镇街的哪类部门承办。先在草稿中调整，用历史工单试算哪些工单会改派，再发布。"),
    error,
    h("div", { class: "rules-layout" },
      h("div", { class: "panel" }, h("h3", {}, `事项目录（${tree.count} 项）`),
        field("matter-filter", "查找事项", filter), treeBox),
      h("div", { class: "panel", "data-testid": "draft-panel" },
        h("h3", { id: "h-draft" }, "规则草稿"),
        h("div", { class: "table-wrap" }, h("table", { class: "data-table", "aria-labelledby": "h-draft" },
          h("thead", {}, h("tr", {}, ["事项", "现行规则", "新层级", "新职能类型", ""].map((t) => h("th", { scope: "col" }, t)))),
          draftBody)),
        h("div", { class: "field-row" },
          field("replay-since", "回放自（受理日期）", since),
          h("div", { class: "field field-action" }, h("button", { type: "button", on: { click: replay } }, "试算（回放历史工单）"))),
        h("div", { class: "field-row" },
          field("publish-from", "生效日期", effective),
          field("publish-note", "说明", note),
          h("div", { class: "field field-action" }, h("button", { type: "button", class: "button-primary", on: { click: publish } }, "发布"))),
        draftError, result)));
  drawTree();
  drawDraft();
}

// -- audit log --------------------------------------------------------------------------------------------------

async function auditView(section) {
  const error = errorBox();
  const tbody = h("tbody", {});
  const actor = h("input", { type: "text", maxlength: 64, placeholder: "用户名" });
  const action = h("select", {},
    option("", "全部操作"), option("user.", "用户账号（user.*）"), option("routing.", "派单规则与部门（routing.*）"),
    option("calendar.", "节假日（calendar.*）"), option("open311.", "Open311 密钥（open311.*）"),
    option("ivr.", "语音提示（ivr.*）"), option("calls.", "坐席技能（calls.*）"),
    option("police.", "110 联动（police.*）"), option("kb.", "知识库（kb.*）"));
  const since = h("input", { type: "date" });
  const until = h("input", { type: "date" });
  const more = h("button", { type: "button", hidden: true }, "更早的记录");
  let nextBefore = null;

  const boundary = (day, end) => {
    if (!day) return undefined;
    const start = new Date(`${day}T00:00:00+08:00`);
    return new Date(start.getTime() + (end ? 86400e3 : 0)).toISOString();
  };

  async function load(append = false) {
    try {
      const page = await api("/api/v1/admin/audit", { query: {
        actor: actor.value.trim(), action: action.value, since: boundary(since.value, false),
        until: boundary(until.value, true), before_id: append ? nextBefore : undefined, limit: 100,
      } });
      const rows = page.entries.map((e) => h("tr", {},
        h("td", {}, fmtDateTime(e.at)), h("td", {}, e.actor), h("td", {}, h("span", { class: "code" }, e.action)),
        h("td", {}, `${e.entity} ${e.entity_id}`),
        h("td", { class: "detail" }, JSON.stringify(e.detail))));
      if (append) tbody.append(...rows);
      else replaceChildren(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 5 }, "没有符合条件的记录。")));
      nextBefore = page.next_before;
      more.hidden = !nextBefore;
      showError(error, "");
    } catch (err) {
      showError(error, describeError(err));
    }
  }

  const form = h("form", { class: "toolbar", role: "search", "aria-label": "筛选审计日志" },
    field("audit-actor", "操作人", actor), field("audit-action", "操作", action),
    field("audit-since", "起始日期", since), field("audit-until", "截止日期", until),
    h("button", { type: "submit" }, "筛选"));
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  more.addEventListener("click", () => load(true));
  replaceChildren(section,
    heading("audit", "审计日志", "谁在何时改了什么：账号、派单规则、部门、节假日、密钥、语音提示和知识库。"),
    h("div", { class: "panel" }, form, error,
      h("div", { class: "table-wrap" }, h("table", { class: "data-table", "aria-label": "审计记录", "data-testid": "audit-table" },
        h("thead", {}, h("tr", {}, ["时间", "操作人", "操作", "对象", "详情"].map((t) => h("th", { scope: "col" }, t)))),
        tbody)),
      more));
  await load();
}
