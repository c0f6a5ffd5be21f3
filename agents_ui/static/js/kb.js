// The knowledge-base pane (知识库): search as you type, highlighted snippets, and
// "report an error" on an article. Used by the agent console and the editors' page.
//
// Contract: GET /api/v1/kb/search?q=&limit= → [{key, title, snippet, score, category}],
// the snippet holding escaped text and <mark> only; POST /api/v1/kb/articles/{key}/flags
// {kind: wrong|outdated|missing, note, question}, the question being the search that found
// the article (what the caller asked). Until the knowledge base is deployed the search
// answers 404: the pane then says so instead of failing.

import { api, ApiError, describeError } from "./api.js";
import { debounce, h, KIND_LABELS, replaceChildren, snippetNodes } from "./dom.js";

const RESULT_LIMIT = 8;

/**
 * Mount the pane. reportErrors: offer "报告错误" on each result (agents; editors fix articles
 * themselves); articleHref(key): make each title a link there (the editors' article view).
 */
export function mountKbPane(container, {
  headingLevel = 2, reportErrors = true, articleHref = null,
} = {}) {
  const input = h("input", {
    id: "kb-search", type: "search", name: "q", "data-testid": "kb-search",
    autocomplete: "off", placeholder: "例如：社保卡挂失", "aria-describedby": "kb-status",
  });
  const status = h("p", { id: "kb-status", class: "hint", role: "status" }, "输入关键词搜索知识库。");
  const results = h("ol", { id: "kb-results", class: "kb-results", "data-testid": "kb-results",
    "aria-label": "知识库搜索结果" });
  const form = h("form", { role: "search", class: "kb-form", "aria-label": "知识库搜索" },
    h("label", { for: "kb-search" }, "搜索知识库"),
    h("div", { class: "inline-field" }, input, h("button", { type: "submit" }, "搜索")));
  const section = h("section", { class: "panel kb-pane", "aria-labelledby": "kb-heading" },
    h(`h${headingLevel}`, { id: "kb-heading" }, "知识库"), form, status, results);
  replaceChildren(container, section);

  let latest = 0;
  async function search() {
    const q = input.value.trim();
    const ticket = ++latest;
    if (!q) {
      results.replaceChildren();
      status.textContent = "输入关键词搜索知识库。";
      return;
    }
    status.textContent = "搜索中…";
    try {
      const found = await api("/api/v1/kb/search", { query: { q, limit: RESULT_LIMIT } });
      if (ticket !== latest) return; // an older answer arriving after a newer one
      drawResults(results, found, q, { reportErrors, articleHref });
      status.textContent = found.length ? `找到 ${found.length} 条相关知识。` : "没有找到相关知识。";
    } catch (error) {
      if (ticket !== latest) return;
      results.replaceChildren();
      status.textContent = error instanceof ApiError && error.status === 404
        ? "知识库服务暂未开通（搜索接口返回404），请先查阅纸质知识手册或咨询值班长。"
        : describeError(error);
    }
  }
  const searchSoon = debounce(search, 300);
  input.addEventListener("input", searchSoon);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    searchSoon.cancel();
    search();
  });
  return { input, search };
}

function drawResults(list, found, question, { reportErrors, articleHref }) {
  list.replaceChildren(...found.map((article) => {
    const flagArea = h("div", { class: "flag-area" });
    const reportButton = h("button", {
      type: "button", class: "button-quiet button-small", "aria-expanded": "false",
      on: { click: () => toggleFlagForm(article, flagArea, reportButton, question) },
    }, "报告错误");
    return h("li", { class: "kb-result", "data-key": article.key },
      h("article", {},
        h("h3", { class: "kb-title" },
          articleHref ? h("a", { href: articleHref(article.key) }, article.title) : article.title),
        h("p", { class: "kb-snippet" }, snippetNodes(article.snippet)),
        h("p", { class: "meta" }, article.category ? `分类：${article.category}` : "",
          article.key ? ` · 编号 ${article.key}` : ""),
        reportErrors ? reportButton : null, reportErrors ? flagArea : null));
  }));
}

let flagFormCount = 0;

function toggleFlagForm(article, area, button, question) {
  if (area.firstChild) {
    area.replaceChildren();
    button.setAttribute("aria-expanded", "false");
    button.focus();
    return;
  }
  button.setAttribute("aria-expanded", "true");
  const n = ++flagFormCount;
  const kinds = Object.entries(KIND_LABELS).map(([kind, label], index) =>
    h("label", { class: "radio" },
      h("input", { type: "radio", name: `kind-${n}`, value: kind, checked: index === 0 }), label));
  const note = h("textarea", { id: `flag-note-${n}`, rows: 2, maxlength: 1000, name: "note" });
  const message = h("p", { class: "hint", role: "status" });
  const form = h("form", { class: "flag-form", "aria-label": `报告“${article.title}”的问题` },
    h("fieldset", {}, h("legend", {}, "问题类型"), kinds),
    h("label", { for: `flag-note-${n}` }, "说明"), note,
    h("div", { class: "button-row" },
      h("button", { type: "submit", class: "button-small" }, "提交报告"),
      h("button", {
        type: "button", class: "button-quiet button-small",
        on: { click: () => toggleFlagForm(article, area, button, question) },
      }, "取消")),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = form.querySelector("input[type=radio]:checked").value;
    try {
      await api(`/api/v1/kb/articles/${encodeURIComponent(article.key)}/flags`, {
        // The search that led here is the caller's question: the editor sees what was asked.
        method: "POST", json: { kind, note: note.value.trim(), question },
      });
      area.replaceChildren(h("p", { class: "success", role: "status" }, "已提交，感谢反馈，编辑会尽快核实。"));
      button.setAttribute("aria-expanded", "false");
    } catch (error) {
      message.textContent = error instanceof ApiError && error.status === 404
        ? "报错接口暂未开通（返回404）。" : describeError(error);
    }
  });
  area.replaceChildren(form);
  form.querySelector("input[type=radio]").focus();
}
