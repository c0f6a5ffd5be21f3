// Building the DOM safely, and the formatting every page shares.
//
// Every piece of data reaches the page as a text node (h() and textContent), never as
// markup: a ticket whose content is "<script>…" shows those characters. The one exception is
// the knowledge base's search snippet, whose <mark> highlighting is rebuilt by snippetNodes()
// from a whitelist of exactly that one tag.

export const TIME_ZONE = "Asia/Shanghai";

/**
 * Create an element. props: class, text, id, for (htmlFor), type, value, checked, disabled,
 * hidden, on: {event: handler}, dataset: {...}; any other key becomes an attribute
 * (aria-*, data-*, role, …). Children: nodes or strings (as text), null/false skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "for") el.htmlFor = value;
    else if (["id", "type", "value", "name", "checked", "disabled", "hidden", "required",
      "placeholder", "title", "min", "max", "rows", "autocomplete", "tabIndex"].includes(key)) {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children with these (text or nodes). */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

const ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'", nbsp: "\u00a0" };

/** Decode the character references an escaped text may hold; anything else stays literal. */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (match, name) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X"
        ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff
        ? String.fromCodePoint(code) : match;
    }
    return Object.hasOwn(ENTITIES, name.toLowerCase()) ? ENTITIES[name.toLowerCase()] : match;
  });
}

/**
 * The knowledge base's snippet as DOM nodes: <mark> and </mark> become highlight elements,
 * everything else is text (character references decoded). Any other tag, attribute or
 * event handler stays visible text and is never parsed as HTML.
 */
export function snippetNodes(snippet) {
  const fragment = document.createDocumentFragment();
  let marked = false;
  for (const part of String(snippet ?? "").split(/(<mark>|<\/mark>)/i)) {
    if (/^<mark>$/i.test(part)) marked = true;
    else if (/^<\/mark>$/i.test(part)) marked = false;
    else if (part) {
      const text = decodeEntities(part);
      fragment.append(marked ? h("mark", {}, text) : document.createTextNode(text));
    }
  }
  return fragment;
}

export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * Run fn at most once per `ms`, after a quiet spell of `ms`, but never later than `maxMs`
 * after the first call: a wall refetches once per burst of events, yet keeps moving when
 * events never stop coming.
 */
export function coalesce(fn, ms, maxMs) {
  let timer = null;
  let first = 0;
  return () => {
    const now = Date.now();
    if (!timer) first = now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(ms, first + maxMs - now));
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, wait);
  };
}

const percentFormat = new Intl.NumberFormat("zh-CN", {
  style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
});

export function fmtPercent(rate) {
  return rate === null || rate === undefined ? "—" : percentFormat.format(rate);
}

const timeFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", hour12: false,
});
const dateTimeFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TIME_ZONE, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  hour12: false,
});
const secondsFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

export function fmtTime(value) {
  return value ? timeFormat.format(new Date(value)) : "—";
}

export function fmtDateTime(value) {
  return value ? dateTimeFormat.format(new Date(value)) : "—";
}

export function fmtClock(value = Date.now()) {
  return secondsFormat.format(new Date(value));
}

export function fmtDuration(seconds) {
  const total = Math.max(0, Math.round(Number(seconds) || 0));
  const minutes = Math.floor(total / 60);
  const rest = total % 60;
  return minutes ? `${minutes}分${String(rest).padStart(2, "0")}秒` : `${rest}秒`;
}

// 工单状态 ticket statuses, as the department and the hotline call them.
export const STATUS_LABELS = {
  pending_dispatch: "待派单",
  dispatched: "待签收",
  accepted: "办理中",
  replied: "已回复",
  visited: "已回访",
  closed: "已办结",
};

export const AGENT_STATE_LABELS = {
  ready: "就绪",
  on_call: "通话中",
  after_call_work: "话后整理",
  break: "小休",
  logged_out: "未登录",
};

export const KIND_LABELS = { wrong: "内容错误", outdated: "内容过时", missing: "内容缺失" };

/** The deadline badge: colour AND words (and a symbol), never colour alone. */
export function deadlineBadge(status) {
  if (status === "overdue") {
    return h("span", { class: "badge badge-overdue" }, h("span", { "aria-hidden": "true" }, "✖ "),
      "已超期");
  }
  if (status === "due_soon") {
    return h("span", { class: "badge badge-due-soon" },
      h("span", { "aria-hidden": "true" }, "⚠ "), "即将超期");
  }
  if (status === "ok") return h("span", { class: "badge badge-ok" }, "时限内");
  return null;
}

export function statusBadge(status) {
  return h("span", { class: `badge badge-status status-${status}` },
    STATUS_LABELS[status] || status);
}

const listCaches = new WeakMap();

/**
 * Show `items` in `list` in this order, rebuilding only the rows whose signature changed and
 * leaving the others in place, so a live update never steals the focus or resets a half-filled
 * form in a row that did not change. `empty` (a node) is shown when there are no items.
 */
export function reconcileList(list, items, { key, signature, build, empty }) {
  const cache = listCaches.get(list) || new Map();
  const next = new Map();
  const rows = items.map((item) => {
    const id = key(item);
    const sig = signature(item);
    const cached = cache.get(id);
    const row = cached && cached.sig === sig ? cached.row : build(item);
    if (cached && cached.row !== row) cached.row.replaceWith(row);
    next.set(id, { sig, row });
    return row;
  });
  listCaches.set(list, next);
  if (!rows.length) {
    list.replaceChildren(empty);
    return;
  }
  const keep = new Set(rows);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  rows.forEach((row, index) => {
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
}

// The tags a rendered article body may hold (markdown-it "commonmark" with tables and
// strikethrough, raw HTML escaped by the server), and the attributes kept on them.
const ARTICLE_TAGS = new Set([
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre",
  "blockquote", "hr", "br", "a", "s", "del", "table", "thead", "tbody", "tr", "th", "td", "img",
]);
const SAFE_URL = /^(https?:|mailto:|tel:|\/(?!\/)|#)/i;

/**
 * An article body the server rendered to HTML, as DOM nodes rebuilt from a whitelist: the
 * HTML is parsed into an inert document (no script runs, nothing loads) and only the tags
 * above are recreated, each with its text as text nodes; links keep an http(s), mailto, tel or
 * same-site href, everything else (attributes, styles, unknown tags) is dropped. The server
 * already escapes raw HTML in Markdown: this is the second wall, as for snippetNodes().
 */
export function articleNodes(html) {
  const doc = new DOMParser().parseFromString(String(html ?? ""), "text/html");
  const fragment = document.createDocumentFragment();
  const copy = (source, target) => {
    for (const node of source.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.append(document.createTextNode(node.textContent));
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const tag = node.tagName.toLowerCase();
        if (!ARTICLE_TAGS.has(tag)) {
          copy(node, target); // keep the words of anything unexpected, not its markup
          continue;
        }
        if (tag === "img") {
          target.append(document.createTextNode(node.getAttribute("alt") || ""));
          continue;
        }
        const el = document.createElement(tag);
        if (tag === "a") {
          const href = node.getAttribute("href") || "";
          if (SAFE_URL.test(href)) el.setAttribute("href", href);
          el.setAttribute("rel", "noopener noreferrer");
        }
        copy(node, el);
        target.append(el);
      }
    }
  };
  copy(doc.body, fragment);
  return fragment;
}
