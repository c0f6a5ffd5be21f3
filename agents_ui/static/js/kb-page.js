// The knowledge base (知识库) at /kb. Agents get the search; editors (知识库采编) also get the
// work list, the editor with a live preview, review by a second editor, version history with
// a side-by-side diff and restore, the error-report queue (纠错), usage with the searches that
// found nothing, and import. Each view has its own address (#list, #new, #article/KEY,
// #edit/KEY, #history/KEY, #flags, #usage, #import, #search), so links and Back work.

import { api, ApiError, describeError } from "./api.js";
import { askInDialog } from "./dialog.js";
import {
  $, articleNodes, coalesce, debounce, fmtDateTime, h, KIND_LABELS, replaceChildren,
} from "./dom.js";
import { mountKbPane } from "./kb.js";
import { announce, markReady, prepareLive, startPage } from "./shell.js";

const STATUS = {
  draft: "草稿",
  in_review: "待审核",
  approved: "已通过待发布",
  published: "已发布",
  retired: "已下线",
};
const FLAG_STATUS = { open: "待处理", resolved: "已修正", declined: "已驳回" };
const TABS = [
  ["list", "文章"],
  ["new", "新建文章"],
  ["review", "待审核"],
  ["flags", "纠错"],
  ["usage", "使用情况"],
  ["import", "导入"],
  ["search", "搜索"],
];
// What the API's stable error codes mean to an editor.
const ERRORS = {
  "kb.self_review": "不能审核自己写的版本，请另一位编辑审核。",
  "kb.conflict": "文章已被他人修改，请重新打开后再改。",
  "kb.key_exists": "这个编号已有文章，请换一个编号。",
  "kb.invalid_key": "编号只能用字母、数字、“.”、“_”、“-”，最长64个字符。",
  "kb.no_change": "内容没有变化，无需保存。",
  "kb.comment_required": "退回修改时请写明原因。",
  "kb.reason_required": "驳回报告时请写明原因。",
  "kb.flag_closed": "这条报告已被处理。",
  "kb.invalid_transition": "文章状态已变化，请刷新后再操作。",
  "kb.import_too_large": "文件太大。",
  "request.too_large": "文件太大。",
  "kb.import_not_utf8": "文件不是UTF-8编码的文本。",
  "kb.import_empty": "文件是空的。",
};

function kbError(error) {
  if (error instanceof ApiError && ERRORS[error.code]) {
    return `${ERRORS[error.code]}（${error.code}）`;
  }
  if (error instanceof ApiError && error.status === 422) {
    return `内容不符合要求（${error.code}）：${error.message || "请检查必填项和长度"}`;
  }
  return describeError(error);
}

const view = $("#kb-view");
const flash = $("#kb-flash");
const enc = encodeURIComponent;
let me = null;
let drawing = 0; // the newest view asked for; an older one finishing late is dropped
let pendingMessage = "";
let focusAfterDraw = false; // after an action the button is gone: continue from the view


// -- routing ---------------------------------------------------------------------------------

function parseHash() {
  const [path, qs] = location.hash.replace(/^#/, "").split("?");
  const [name, key] = path.split("/");
  return { name: name || "list", key: key ? decodeURIComponent(key) : null,
    params: new URLSearchParams(qs || "") };
}

function drawTabs() {
  const nav = $("#kb-tabs");
  nav.hidden = false;
  replaceChildren(nav, h("ul", {}, TABS.map(([name, label]) =>
    h("li", {}, h("a", { href: `#${name}`, dataset: { tab: name } }, label)))));
}

function markTab(name) {
  const current = { edit: "list", article: "list", history: "list" }[name] || name;
  for (const link of document.querySelectorAll("#kb-tabs a")) {
    if (link.dataset.tab === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Open a view, with a message saying what just happened (shown until the next view). */
function go(hash, message) {
  pendingMessage = message || "";
  focusAfterDraw = true;
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const ticket = ++drawing;
  const { name, key, params } = parseHash();
  markTab(name);
  flash.textContent = pendingMessage;
  if (pendingMessage) announce(pendingMessage);
  pendingMessage = "";
  view.setAttribute("aria-busy", "true");
  const views = {
    list: () => listView(params),
    review: () => listView(new URLSearchParams({ status: "in_review" }), "待审核的文章"),
    new: () => editorView(null, params),
    edit: () => editorView(key, params),
    article: () => articleView(key),
    history: () => historyView(key, params),
    flags: () => flagsView(params),
    usage: () => usageView(),
    import: () => importView(),
    search: () => searchView(),
  };
  try {
    const node = await (views[name] || views.list)();
    if (ticket !== drawing) return; // a newer address was opened meanwhile
    replaceChildren(view, node);
    view.dataset.view = name;
    if (focusAfterDraw) view.focus();
    focusAfterDraw = false;
  } catch (error) {
    if (ticket !== drawing) return;
    replaceChildren(view, h("p", { class: "error", role: "alert" }, kbError(error)));
  } finally {
    if (ticket === drawing) view.setAttribute("aria-busy", "false");
  }
}

// -- small pieces ----------------------------------------------------------------------------

function statusBadge(status) {
  return h("span", { class: `badge kb-status kb-status-${status}` }, STATUS[status] || status);
}

function errorLine() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function showError(el, error) {
  el.textContent = error ? kbError(error) : "";
  el.hidden = !error;
}

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function articleLink(key, title) {
  return h("a", { href: `#article/${enc(key)}` }, title || key);
}

function fmtDate(value) {
  return value ? fmtDateTime(value) : "—";
}

// -- the work list ---------------------------------------------------------------------------

async function listView(params, heading = "文章列表") {
  const [rows, categories] = await Promise.all([
    api("/api/v1/kb/articles", {
      query: {
        status: params.get("status"), category: params.get("category"),
        stale_months: params.get("stale"), q: params.get("q"), limit: 200,
      },
    }),
    api("/api/v1/kb/categories"),
  ]);
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "全部状态"),
    Object.entries(STATUS).map(([value, label]) => h("option", { value }, label)));
  status.value = params.get("status") || "";
  const category = h("select", { id: "filter-category", name: "category" },
    h("option", { value: "" }, "全部分类"),
    categories.map((c) => h("option", { value: c.category }, `${c.category}（${c.articles}）`)));
  category.value = params.get("category") || "";
  const stale = h("select", { id: "filter-stale", name: "stale" },
    h("option", { value: "" }, "不限"),
    [3, 6, 12, 24].map((n) => h("option", { value: String(n) }, `超过${n}个月未审核`)));
  stale.value = params.get("stale") || "";
  const words = h("input", { id: "filter-q", name: "q", type: "search", value: params.get("q") || "",
    autocomplete: "off", placeholder: "标题或编号" });
  const form = h("form", { class: "kb-filters", "aria-label": "筛选文章" },
    field("filter-status", "状态", status), field("filter-category", "分类", category),
    field("filter-stale", "审核时间", stale), field("filter-q", "关键词", words),
    h("div", { class: "button-row" }, h("button", { type: "submit" }, "筛选")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, input] of [["status", status], ["category", category], ["stale", stale],
      ["q", words]]) if (input.value.trim()) query.set(name, input.value.trim());
    go(`#list${query.toString() ? `?${query}` : ""}`);
  });
  for (const input of [status, category, stale]) {
    input.addEventListener("change", () => form.requestSubmit());
  }
  const table = rows.length ? h("table", { class: "kb-table", "data-testid": "kb-article-list" },
    h("caption", { class: "visually-hidden" }, heading),
    h("thead", {}, h("tr", {}, ["标题", "编号", "分类", "状态", "版本", "作者", "最近审核",
      "更新时间", "通话引用", "纠错"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((row) => h("tr", { dataset: { key: row.key } },
      h("td", {}, articleLink(row.key, row.title)),
      h("td", { class: "mono" }, row.key),
      h("td", {}, row.category),
      h("td", {}, statusBadge(row.status)),
      h("td", { class: "num" }, `v${row.current_version}`,
        row.published_version && row.published_version !== row.current_version
          ? ` (线上 v${row.published_version})` : ""),
      h("td", {}, row.created_by),
      h("td", {}, fmtDate(row.last_reviewed_at)),
      h("td", {}, fmtDate(row.updated_at)),
      h("td", { class: "num" }, String(row.views_in_calls)),
      h("td", { class: "num" }, String(row.flag_count))))))
    : h("p", { class: "empty", "data-testid": "kb-article-list" }, "没有符合条件的文章。");
  return h("section", { class: "panel", "aria-labelledby": "list-heading" },
    h("div", { class: "section-head" }, h("h2", { id: "list-heading" }, heading),
      h("a", { class: "button button-primary", href: "#new" }, "新建文章")),
    form, h("p", { class: "meta", role: "status" }, `共 ${rows.length} 篇`), table);
}

// -- the editor with its live preview --------------------------------------------------------

async function editorView(key, params) {
  const editing = key
    ? await api(`/api/v1/kb/articles/${enc(key)}`)
    : { key: "", title: params.get("title") || "", body: "", category: "", keywords: [],
      department: null, editor: null };
  const categories = await api("/api/v1/kb/categories");
  const inputs = {
    key: h("input", { id: "ed-key", name: "key", required: true, maxlength: 64,
      value: editing.key, autocomplete: "off", disabled: Boolean(key),
      pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]*", "aria-describedby": "ed-key-hint" }),
    title: h("input", { id: "ed-title", name: "title", required: true, maxlength: 200,
      value: editing.title, autocomplete: "off" }),
    category: h("input", { id: "ed-category", name: "category", required: true, maxlength: 64,
      value: editing.category, list: "ed-categories", autocomplete: "off" }),
    keywords: h("input", { id: "ed-keywords", name: "keywords", maxlength: 700,
      value: (editing.keywords || []).join("，"), autocomplete: "off",
      "aria-describedby": "ed-keywords-hint" }),
    body: h("textarea", { id: "ed-body", name: "body", rows: 12, required: true,
      maxlength: 100000, "aria-describedby": "ed-body-hint" }),
    note: h("input", { id: "ed-note", name: "note", maxlength: 1000, autocomplete: "off" }),
  };
  inputs.body.value = editing.body;
  const datalist = h("datalist", { id: "ed-categories" },
    categories.map((c) => h("option", { value: c.category })));
  const error = errorLine();
  const previewTitle = h("h3", { class: "kb-article-title" });
  const previewBody = h("div", { class: "kb-body", "data-testid": "kb-preview" });
  const previewState = h("p", { class: "hint", role: "status" });
  let previewTicket = 0;
  async function refreshPreview() {
    previewTitle.textContent = inputs.title.value.trim() || "（无标题）";
    const ticket = ++previewTicket;
    if (!inputs.body.value.trim()) {
      replaceChildren(previewBody, h("p", { class: "empty" }, "正文为空。"));
      previewState.textContent = "";
      return;
    }
    try {
      const { body_html: html } = await api("/api/v1/kb/preview", {
        method: "POST", json: { body: inputs.body.value },
      });
      if (ticket !== previewTicket) return;
      replaceChildren(previewBody, articleNodes(html));
      previewState.textContent = "预览已更新";
    } catch (failure) {
      if (ticket === previewTicket) previewState.textContent = kbError(failure);
    }
  }
  const previewSoon = debounce(refreshPreview, 250);
  inputs.body.addEventListener("input", previewSoon);
  inputs.title.addEventListener("input", previewSoon);

  const keywordList = () => inputs.keywords.value.split(/[,，、;；\s]+/).map((k) => k.trim())
    .filter(Boolean);
  async function save(submit) {
    showError(error, null);
    for (const name of ["key", "title", "category", "body"]) {
      if (!inputs[name].value.trim()) {
        error.textContent = `请填写“${$(`label[for=${inputs[name].id}]`).textContent}”。`;
        error.hidden = false;
        inputs[name].focus();
        return;
      }
    }
    const content = {
      title: inputs.title.value.trim(), body: inputs.body.value,
      category: inputs.category.value.trim(), keywords: keywordList(),
      note: inputs.note.value.trim() || null,
    };
    try {
      let saved;
      if (key) {
        saved = await api(`/api/v1/kb/articles/${enc(key)}`, {
          method: "PUT", json: { ...content, base_version: editing.editor.current_version },
        });
      } else {
        saved = await api("/api/v1/kb/articles", {
          method: "POST", json: { key: inputs.key.value.trim(), ...content },
        });
      }
      if (submit) {
        await api(`/api/v1/kb/articles/${enc(saved.key)}/submit`, { method: "POST" });
      }
      go(`#article/${enc(saved.key)}`, submit
        ? `已保存为 v${saved.version} 并提交审核，请另一位编辑审核。`
        : `已保存为 v${saved.version}（草稿）。`);
    } catch (failure) {
      showError(error, failure);
    }
  }
  const form = h("form", { class: "kb-editor-form", novalidate: true,
    "aria-label": key ? `修改“${editing.title}”` : "新建文章" },
    h("div", { class: "field-row" },
      field("ed-key", "编号", inputs.key, key ? "编号创建后不能修改。" : "如 KB-SB-020：字母、数字、.、_、-"),
      field("ed-category", "分类", inputs.category)),
    datalist,
    h("div", { class: "field-row" },
      field("ed-title", "标题", inputs.title),
      field("ed-keywords", "关键词", inputs.keywords, "用逗号或空格分隔，帮助来电问题找到本文。")),
    field("ed-body", "正文", inputs.body, "支持Markdown：**加粗**、- 列表、| 表格 |；右侧实时预览话务员看到的样子。"),
    field("ed-note", "修改说明（可选）", inputs.note),
    error,
    h("div", { class: "button-row" },
      h("button", { type: "submit", class: "button-primary" }, "保存并提交审核"),
      h("button", { type: "button", on: { click: () => save(false) } }, "保存草稿"),
      h("a", { class: "button button-quiet", href: key ? `#article/${enc(key)}` : "#list" }, "取消")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save(true);
  });
  refreshPreview();
  return h("section", { class: "panel", "aria-labelledby": "editor-heading" },
    h("h2", { id: "editor-heading" }, key ? `修改文章 ${key}` : "新建文章"),
    key && editing.editor && editing.editor.status === "published"
      ? h("p", { class: "hint" }, "保存后成为新的草稿版本；审核发布前，话务员仍看到当前线上版本。") : null,
    h("div", { class: "kb-editor-grid" },
      form,
      h("section", { class: "kb-preview", "aria-labelledby": "preview-heading" },
        h("h3", { id: "preview-heading", class: "small-heading" }, "预览"),
        previewState, h("article", { class: "kb-preview-card" }, previewTitle, previewBody))));
}

// -- one article: its content, the workflow and the review -----------------------------------

async function articleView(key) {
  const [article, history] = await Promise.all([
    api(`/api/v1/kb/articles/${enc(key)}`),
    api(`/api/v1/kb/articles/${enc(key)}/history`),
  ]);
  const info = article.editor;
  const error = errorLine();
  const act = async (path, json, message) => {
    showError(error, null);
    try {
      await api(`/api/v1/kb/articles/${enc(key)}/${path}`, { method: "POST", json });
      go(`#article/${enc(key)}`, message);
    } catch (failure) {
      showError(error, failure);
    }
  };
  const actions = [];
  if (info.status !== "retired") {
    actions.push(h("a", { class: "button", href: `#edit/${enc(key)}` }, "编辑"));
  }
  if (info.status === "draft") {
    actions.push(h("button", { type: "button", class: "button-primary",
      on: { click: () => act("submit", undefined, "已提交审核，请另一位编辑审核。") } }, "提交审核"));
  }
  if (info.status === "approved") {
    actions.push(h("button", { type: "button", class: "button-primary",
      on: { click: () => act("publish", undefined, "已发布，话务员现在可以查到本文。") } }, "发布"));
  }
  actions.push(h("a", { class: "button button-quiet", href: `#history/${enc(key)}` }, "历史版本"));
  if (["draft", "published", "approved"].includes(info.status)) {
    actions.push(h("button", { type: "button", class: "button-quiet button-danger",
      on: { click: async () => {
        const answer = await askInDialog($("#action-dialog"), {
          title: `下线“${article.title}”`, intro: "下线后话务员和市民查不到本文，历史版本保留。",
          fields: [{ name: "reason", label: "下线原因", kind: "textarea" }], submitLabel: "确认下线",
        });
        if (answer) act("retire", { reason: answer.reason }, "已下线。");
      } } }, "下线"));
  }

  const review = info.status === "in_review" ? reviewPanel(key, article, info) : null;
  const lastSendBack = history.reviews.find((r) => r.decision === "rejected"
    && r.version === info.current_version);
  return h("div", { class: "kb-article-layout" },
    h("section", { class: "panel", "aria-labelledby": "article-heading" },
      h("div", { class: "section-head" },
        h("h2", { id: "article-heading" }, article.title),
        statusBadge(info.status)),
      h("p", { class: "meta" },
        `编号 ${article.key} · 分类 ${article.category} · 版本 v${article.version}（作者 ${info.author}）`,
        info.published_version ? ` · 线上版本 v${info.published_version}` : " · 尚未发布",
        ` · 通话引用 ${info.views_in_calls} 次 · 纠错 ${info.flag_count} 次`),
      article.keywords.length
        ? h("p", { class: "meta" }, `关键词：${article.keywords.join("、")}`) : null,
      lastSendBack && info.status === "draft"
        ? h("p", { class: "warning", "data-testid": "kb-sent-back" },
          `${lastSendBack.reviewer} 退回修改：${lastSendBack.comment}`) : null,
      h("div", { class: "button-row" }, actions),
      error,
      h("article", { class: "kb-body", "data-testid": "kb-article-body" },
        articleNodes(article.body_html))),
    h("aside", {},
      review,
      h("section", { class: "panel", "aria-labelledby": "reviews-heading" },
        h("h2", { id: "reviews-heading" }, "审核记录"),
        history.reviews.length
          ? h("ol", { class: "kb-reviews", "data-testid": "kb-reviews" }, history.reviews.map((r) =>
            h("li", {}, h("strong", {}, r.decision === "approved" ? "通过" : "退回"),
              ` v${r.version} · ${r.reviewer} · ${fmtDate(r.created_at)}`,
              r.comment ? h("p", { class: "kb-comment" }, r.comment) : null)))
          : h("p", { class: "empty" }, "还没有审核记录。"))));
}

function reviewPanel(key, article, info) {
  const heading = h("h2", { id: "review-heading" }, "审核");
  if (info.author === me.username) {
    return h("section", { class: "panel", "aria-labelledby": "review-heading",
      "data-testid": "kb-review" }, heading,
      h("p", { class: "warning" }, `v${info.current_version} 是你写的版本，需由另一位编辑审核（双人审核）。`));
  }
  const comment = h("textarea", { id: "review-comment", name: "comment", rows: 4, maxlength: 2000 });
  const error = errorLine();
  const decide = async (path, json, message) => {
    showError(error, null);
    try {
      await api(`/api/v1/kb/articles/${enc(key)}/${path}`, { method: "POST", json });
      go(`#article/${enc(key)}`, message);
    } catch (failure) {
      showError(error, failure);
    }
  };
  // What changed is what a reviewer reads first: against what agents see now, or else
  // against the version before (a new article sent back and submitted again).
  const base = info.published_version || (info.current_version > 1 ? info.current_version - 1 : null);
  const compare = base
    ? h("a", { href: `#history/${enc(key)}?from=${base}&to=${info.current_version}` },
      info.published_version ? `对比线上版本 v${base}` : `对比上一版本 v${base}`)
    : h("span", { class: "hint" }, "新文章，尚无线上版本。");
  return h("section", { class: "panel", "aria-labelledby": "review-heading", "data-testid": "kb-review" },
    heading,
    h("p", { class: "meta" }, `${info.author} 提交的 v${info.current_version} 等待审核。`), h("p", {}, compare),
    field("review-comment", "审核意见", comment, "退回修改时必填，作者会看到。"),
    error,
    h("div", { class: "button-row" },
      h("button", { type: "button", class: "button-primary", on: { click: () =>
        decide("approve", { comment: comment.value.trim(), publish: true },
          "已通过并发布，话务员现在可以查到本文。") } }, "通过并发布"),
      h("button", { type: "button", on: { click: () =>
        decide("approve", { comment: comment.value.trim() }, "已通过，待发布。") } }, "仅通过"),
      h("button", { type: "button", class: "button-danger", on: { click: () => {
        if (!comment.value.trim()) {
          showError(error, new ApiError(400, "kb.comment_required", ""));
          comment.focus();
          return;
        }
        decide("reject", { comment: comment.value.trim() }, "已退回作者修改。");
      } } }, "退回修改")));
}

// -- versions: side-by-side diff and restore ------------------------------------------------

async function historyView(key, params) {
  const history = await api(`/api/v1/kb/articles/${enc(key)}/history`);
  const numbers = history.versions.map((v) => v.number);
  const newest = history.current_version;
  const to = Number(params.get("to")) || newest;
  const from = Number(params.get("from")) || Math.max(1, to - 1);
  const pick = (id, label, value) => {
    const select = h("select", { id, name: id },
      numbers.map((n) => h("option", { value: String(n) }, `v${n}`)));
    select.value = String(value);
    return { select, block: field(id, label, select) };
  };
  const left = pick("diff-from", "旧版本（左）", from);
  const right = pick("diff-to", "新版本（右）", to);
  const form = h("form", { class: "kb-filters", "aria-label": "选择要对比的版本" },
    left.block, right.block,
    h("div", { class: "button-row" }, h("button", { type: "submit" }, "对比")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(`#history/${enc(key)}?from=${left.select.value}&to=${right.select.value}`);
  });
  let diffBlock = h("p", { class: "empty" }, "只有一个版本，没有可对比的内容。");
  if (numbers.length > 1 && from !== to) {
    const diff = await api(`/api/v1/kb/articles/${enc(key)}/diff`, { query: { from, to } });
    diffBlock = sideBySide(diff);
  }
  const error = errorLine();
  const restore = async (number) => {
    const answer = await askInDialog($("#action-dialog"), {
      title: `恢复 v${number}`,
      intro: `把 v${number} 的内容复制为新版本 v${newest + 1}（草稿），审核发布后生效。`,
      fields: [{ name: "note", label: "恢复说明（可选）", kind: "textarea" }],
      submitLabel: "恢复",
    });
    if (!answer) return;
    try {
      const saved = await api(`/api/v1/kb/articles/${enc(key)}/rollback`, {
        method: "POST", json: { version: number, note: answer.note || null },
      });
      go(`#article/${enc(key)}`, `已把 v${number} 恢复为新版本 v${saved.version}（草稿），请提交审核。`);
    } catch (failure) {
      showError(error, failure);
    }
  };
  const versions = h("table", { class: "kb-table", "data-testid": "kb-versions" },
    h("caption", { class: "visually-hidden" }, "全部版本"),
    h("thead", {}, h("tr", {}, ["版本", "标题", "作者", "时间", "说明", "操作"].map((t) =>
      h("th", { scope: "col" }, t)))),
    h("tbody", {}, history.versions.map((v) => h("tr", { dataset: { version: String(v.number) } },
      h("td", {}, `v${v.number}`,
        v.number === history.published_version ? h("span", { class: "badge kb-status-published" }, "线上") : null,
        v.number === newest ? h("span", { class: "badge badge-ok" }, "最新") : null),
      h("td", {}, v.title), h("td", {}, v.author), h("td", {}, fmtDate(v.created_at)),
      h("td", {}, v.note || ""),
      h("td", {}, v.number === newest ? "" : h("button", {
        type: "button", class: "button-small", on: { click: () => restore(v.number) },
      }, "恢复此版本", h("span", { class: "visually-hidden" }, ` v${v.number}`)))))));
  return h("div", {},
    h("section", { class: "panel", "aria-labelledby": "history-heading" },
      h("div", { class: "section-head" },
        h("h2", { id: "history-heading" }, `历史版本：${key}`),
        articleLink(key, "返回文章")),
      versions, error),
    h("section", { class: "panel", "aria-labelledby": "diff-heading" },
      h("h2", { id: "diff-heading" }, `版本对比 v${from} → v${to}`), form, diffBlock));
}

// The server's diff names its header lines in English (it is also a plain-text diff).
const DIFF_LABELS = [["title: ", "标题："], ["keywords: ", "关键词："], ["category: ", "分类："],
  ["body:", "正文："]];

function diffLine(line, index) {
  if (index < 4) { // the four header lines come first on both sides, never past them
    for (const [english, chinese] of DIFF_LABELS) {
      if (line.startsWith(english)) return chinese + line.slice(english.length);
    }
  }
  return line;
}

function sideBySide(diff) {
  const rows = [];
  const seen = { left: 0, right: 0 };
  for (const block of diff.rows) {
    const length = Math.max(block.left.length, block.right.length);
    for (let i = 0; i < length; i += 1) {
      const old = block.left[i];
      const now = block.right[i];
      const cell = (raw, side) => {
        if (raw === undefined) return h("td", { class: "diff-empty" }, "");
        const text = diffLine(raw, seen[side]);
        seen[side] += 1;
        const changed = block.op !== "equal";
        const mark = side === "left" ? "− " : "+ ";
        return h("td", { class: changed ? `diff-${side === "left" ? "del" : "ins"}` : "" },
          changed ? h("span", { class: "diff-mark", "aria-hidden": "true" }, mark) : null,
          changed ? h("span", { class: "visually-hidden" }, side === "left" ? "删除：" : "新增：") : null,
          text);
      };
      rows.push(h("tr", { class: `diff-row diff-${block.op}` }, cell(old, "left"), cell(now, "right")));
    }
  }
  return h("table", { class: "kb-diff", "data-testid": "kb-diff" },
    h("caption", { class: "visually-hidden" }, `v${diff.from_version} 与 v${diff.to_version} 逐行对比`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, `v${diff.from_version}`),
      h("th", { scope: "col" }, `v${diff.to_version}`))),
    h("tbody", {}, rows));
}

// -- the error-report queue (纠错) -------------------------------------------------------------

async function flagsView(params) {
  const status = params.get("status") || "open";
  const flags = await api("/api/v1/kb/flags", { query: { status, limit: 200 } });
  const filter = h("div", { class: "toolbar", role: "group", "aria-label": "按处理状态筛选" },
    Object.entries(FLAG_STATUS).map(([value, label]) => h("a", {
      class: "button button-small", href: `#flags?status=${value}`,
      "aria-current": value === status ? "true" : null,
    }, label)));
  const list = flags.length
    ? h("ol", { class: "ticket-list", "data-testid": "kb-flags" }, flags.map(flagCard))
    : h("p", { class: "empty", "data-testid": "kb-flags" }, status === "open" ? "没有待处理的纠错报告。" : "没有记录。");
  return h("section", { class: "panel", "aria-labelledby": "flags-heading" },
    h("h2", { id: "flags-heading" }, "纠错报告"),
    h("p", { class: "hint" }, "话务员在通话中发现的错误：修改文章（生成新版本，审核后发布）或说明理由驳回。"),
    filter, list);
}

function flagCard(flag) {
  const area = h("div", { class: "flag-work" });
  const error = errorLine();
  const facts = h("dl", { class: "ticket-facts" },
    h("div", {}, h("dt", {}, "文章"), h("dd", {}, articleLink(flag.key, flag.title), ` v${flag.version}`)),
    h("div", {}, h("dt", {}, "报告人"), h("dd", {}, flag.created_by)),
    h("div", {}, h("dt", {}, "时间"), h("dd", {}, fmtDate(flag.created_at))),
    flag.call_id ? h("div", {}, h("dt", {}, "通话"), h("dd", {}, flag.call_id)) : null);
  const actions = flag.status === "open" ? h("div", { class: "button-row" },
    h("button", { type: "button", class: "button-primary",
      on: { click: () => openFix(flag, area, error) } }, "修改文章"),
    h("button", { type: "button", class: "button-danger", on: { click: async () => {
      const answer = await askInDialog($("#action-dialog"), {
        title: "驳回纠错报告", intro: `“${flag.title}”：${flag.note || KIND_LABELS[flag.kind]}`,
        fields: [{ name: "reason", label: "驳回理由（报告人会看到）", kind: "textarea", required: true }],
        submitLabel: "驳回",
      });
      if (!answer) return;
      try {
        await api(`/api/v1/kb/flags/${flag.id}/decline`, { method: "POST", json: answer });
        go("#flags", "已驳回该报告。");
      } catch (failure) {
        showError(error, failure);
      }
    } } }, "驳回")) : h("p", { class: "meta" },
    `${FLAG_STATUS[flag.status]}（${flag.resolved_by} · ${fmtDate(flag.resolved_at)}）`,
    flag.resolution ? `：${flag.resolution}` : "",
    flag.resolved_version ? ` · 新版本 v${flag.resolved_version}` : "");
  return h("li", { class: "ticket-card kb-flag", dataset: { flag: String(flag.id), key: flag.key } },
    h("h3", {}, h("span", { class: "badge badge-due-soon" }, KIND_LABELS[flag.kind] || flag.kind),
      flag.title),
    flag.question ? h("p", { class: "kb-question" }, h("strong", {}, "来电人问题："), flag.question) : null,
    h("p", { class: "ticket-content" }, h("strong", {}, "报告说明："), flag.note || "（未填写）"),
    facts, actions, error, area);
}

async function openFix(flag, area, error) {
  showError(error, null);
  let article;
  try {
    article = await api(`/api/v1/kb/articles/${enc(flag.key)}`);
  } catch (failure) {
    showError(error, failure);
    return;
  }
  const id = `fix-${flag.id}`;
  const title = h("input", { id: `${id}-title`, value: article.title, maxlength: 200 });
  const body = h("textarea", { id: `${id}-body`, rows: 8, maxlength: 100000 });
  body.value = article.body;
  const note = h("input", { id: `${id}-note`, maxlength: 2000, value: "" });
  const form = h("form", { class: "flag-form", novalidate: true, "aria-label": `修改“${flag.title}”` },
    field(`${id}-title`, "标题", title), field(`${id}-body`, "正文", body),
    field(`${id}-note`, "处理说明", note),
    h("div", { class: "button-row" },
      h("button", { type: "submit", class: "button-primary" }, "保存修改并关闭报告"),
      h("button", { type: "button", class: "button-quiet",
        on: { click: () => area.replaceChildren() } }, "取消")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    try {
      const resolved = await api(`/api/v1/kb/flags/${flag.id}/resolve`, {
        method: "POST",
        json: { title: title.value.trim(), body: body.value, note: note.value.trim() },
      });
      await api(`/api/v1/kb/articles/${enc(flag.key)}/submit`, { method: "POST" });
      go("#flags", `已修正：新版本 v${resolved.resolved_version} 已提交审核，报告已关闭。`);
    } catch (failure) {
      showError(error, failure);
    }
  });
  area.replaceChildren(form);
  body.focus();
}

// -- usage: most used articles and content gaps ----------------------------------------------

async function usageView() {
  const usage = await api("/api/v1/kb/usage", { query: { limit: 20 } });
  const viewed = usage.most_viewed.length
    ? h("table", { class: "kb-table", "data-testid": "kb-most-viewed" },
      h("caption", { class: "visually-hidden" }, "通话中引用最多的文章"),
      h("thead", {}, h("tr", {}, ["文章", "分类", "通话引用", "有用", "没用", "纠错"].map((t) =>
        h("th", { scope: "col" }, t)))),
      h("tbody", {}, usage.most_viewed.map((a) => h("tr", {},
        h("td", {}, articleLink(a.key, a.title)), h("td", {}, a.category),
        h("td", { class: "num" }, String(a.views_in_calls)),
        h("td", { class: "num" }, String(a.helpful_votes)),
        h("td", { class: "num" }, String(a.unhelpful_votes)),
        h("td", { class: "num" }, String(a.flag_count))))))
    : h("p", { class: "empty" }, "还没有话务员在通话中引用过文章。");
  const gaps = usage.gaps.length
    ? h("table", { class: "kb-table", "data-testid": "kb-gaps" },
      h("caption", { class: "visually-hidden" }, "没有找到文章的搜索"),
      h("thead", {}, h("tr", {}, ["搜索内容", "次数", "最近一次", "现在", "操作"].map((t) =>
        h("th", { scope: "col" }, t)))),
      h("tbody", {}, usage.gaps.map((g) => h("tr", { dataset: { query: g.query } },
        h("td", {}, g.query), h("td", { class: "num" }, String(g.searches)),
        h("td", {}, fmtDate(g.last_at)),
        h("td", {}, g.found_now ? `已能找到 ${g.found_now} 篇` : "仍无结果"),
        h("td", {}, h("a", { class: "button button-small", href: `#new?title=${enc(g.query)}` },
          "为此写文章", h("span", { class: "visually-hidden" }, `：${g.query}`)))))))
    : h("p", { class: "empty", "data-testid": "kb-gaps" }, "近90天没有无结果的搜索。");
  return h("div", { class: "kb-usage-grid" },
    h("section", { class: "panel", "aria-labelledby": "viewed-heading" },
      h("h2", { id: "viewed-heading" }, "引用最多的文章"),
      h("p", { class: "hint" }, "话务员在通话中打开的次数。"), viewed),
    h("section", { class: "panel", "aria-labelledby": "gaps-heading" },
      h("h2", { id: "gaps-heading" }, "无结果的搜索（内容缺口）"),
      h("p", { class: "hint" }, "近90天搜索了却没找到任何文章的问题，次数多的优先补写。"), gaps));
}

// -- import ----------------------------------------------------------------------------------

async function importView() {
  const limits = await api("/api/v1/kb/import");
  const megabytes = (limits.max_bytes / 1024 / 1024).toFixed(1);
  const input = h("input", { id: "import-file", name: "file", type: "file",
    accept: ".jsonl,.json,.txt,.ndjson,application/json,text/plain",
    "aria-describedby": "import-file-hint" });
  const error = errorLine();
  const result = h("div", { "data-testid": "kb-import-result", role: "status" });
  const form = h("form", { class: "kb-import-form", novalidate: true, "aria-label": "导入文章" },
    field("import-file", "选择文件", input,
      `JSON Lines 文件（UTF-8），每行一篇：key、title、body、category、keywords，可选 department、review_by；不超过 ${megabytes} MB。`),
    error,
    h("div", { class: "button-row" }, h("button", { type: "submit", class: "button-primary" }, "导入")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    result.replaceChildren();
    const file = input.files[0];
    if (!file) {
      error.textContent = "请先选择文件。";
      error.hidden = false;
      input.focus();
      return;
    }
    if (file.size > limits.max_bytes) {
      error.textContent = `文件太大：${(file.size / 1024 / 1024).toFixed(1)} MB，上限 ${megabytes} MB。请拆分后分批导入。`;
      error.hidden = false;
      return;
    }
    const upload = new FormData();
    upload.append("file", file);
    try {
      const report = await api("/api/v1/kb/import", { method: "POST", upload });
      replaceChildren(result,
        h("p", { class: report.errors.length ? "warning" : "success" },
          `共 ${report.lines} 行：新增 ${report.created} 篇，更新 ${report.updated} 篇，`
          + `未变 ${report.unchanged} 篇，出错 ${report.errors.length} 行。`
          + (report.created + report.updated ? "新增和更新的文章已提交审核。" : "")),
        report.created + report.updated
          ? h("p", {}, h("a", { href: "#review" }, "查看待审核的文章")) : null,
        report.errors.length ? h("table", { class: "kb-table", "data-testid": "kb-import-errors" },
          h("caption", {}, "以下行未导入，请修改后重新导入（已导入的不会重复）："),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "行号"), h("th", { scope: "col" }, "问题"))),
          h("tbody", {}, report.errors.map((e) =>
            h("tr", {}, h("td", { class: "num" }, String(e.line)), h("td", {}, e.message))))) : null);
    } catch (failure) {
      showError(error, failure);
    }
  });
  return h("section", { class: "panel", "aria-labelledby": "import-heading" },
    h("h2", { id: "import-heading" }, "导入文章"),
    h("p", { class: "hint" }, "格式与命令 hotline kb import 相同。上传的文章按编号新建或更新，"
      + "并提交审核：由另一位编辑审核发布后话务员才能查到；内容未变的行不产生新版本。"),
    form, result);
}

// -- search ----------------------------------------------------------------------------------

async function searchView() {
  const holder = h("div", {});
  const editor = me.roles.includes("editor") || me.roles.includes("admin");
  // Editors correct an article themselves: a title opens it instead of a report form.
  const pane = mountKbPane(holder, editor
    ? { headingLevel: 2, reportErrors: false, articleHref: (key) => `#article/${enc(key)}` }
    : { headingLevel: 2 });
  if (!editor) replaceChildren(view, holder);
  queueMicrotask(() => pane.input.focus());
  return holder;
}

// -- live: other editors' work shows up without a reload ----------------------------------------

const LIST_VIEWS = new Set(["list", "review", "flags", "usage"]);
const NEWS = {
  "kb.article_submitted": (d) => `${d.actor} 提交了 ${d.key} 待审核`,
  "kb.flag_created": (d) => `${d.actor} 报告了 ${d.key} 的问题`,
};

// Redraw a list only when it would not take anything from the editor: not while a field in
// it has the focus or a form (a correction being written) is open.
function busyHere() {
  const active = document.activeElement;
  return Boolean(view.querySelector("form.flag-form"))
    || (active && view.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
}

const refreshSoon = coalesce(() => {
  if (LIST_VIEWS.has(view.dataset.view) && !busyHere()) route();
}, 300, 1500);

function onKbEvent(frame) {
  if (!frame.topic.startsWith("kb.")) return;
  const data = frame.data || {};
  if (data.actor === me.username) return; // this screen already shows what I did
  if (NEWS[frame.event]) announce(NEWS[frame.event](data));
  const { name, key } = parseHash();
  if (LIST_VIEWS.has(name)) {
    refreshSoon();
  } else if (key && data.key === key) {
    flash.textContent = `${data.actor || "其他人"} 刚更改了这篇文章，重新打开可看到最新内容。`;
  }
}

// -- start (last: every constant above is initialised before the first view draws) ------------

me = await startPage("/kb");
if (me) {
  if (me.roles.includes("editor") || me.roles.includes("admin")) {
    $("#kb-page-hint").textContent = "知识库采编：撰写、审核、纠错和维护答复口径。";
    drawTabs();
    const live = await prepareLive(me, "kb", {
      topics: ["kb.articles"], onEvent: onKbEvent, onResync: () => refreshSoon(),
    });
    window.addEventListener("hashchange", () => route());
    await route();
    live.start();
  } else {
    await searchView();
  }
  markReady();
}
