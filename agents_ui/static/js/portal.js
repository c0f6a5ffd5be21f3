// The citizens' portal (/m): submit a request, follow it, rate the reply.
//
// No account and nothing stored in the browser: a phone is proven with a texted code (the
// API answers a phone token, kept in memory for this page only), and a ticket is followed
// with the private token in its tracking link (/m/t/TOKEN), sent to the API in a header.
// The knowledge pages are whole HTML from the server; here they only register the worker.

import { $, debounce, fmtDateTime, h, replaceChildren } from "./dom.js";

const API = "/api/v1/portal";
const POLL_MS = 10000;
const MAX_PHOTOS = 3;
const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const SCOPE_TEXT = {
  phone: "这个手机号操作太频繁",
  address: "您所在的网络操作太频繁",
  global: "当前提交的人太多",
};
const ERROR_TEXT = {
  "portal.bad_phone": "请输入11位手机号码。",
  "portal.bad_code": "验证码不正确或已过期，请重新获取。",
  "portal.phone_unverified": "请先获取并填写短信验证码。",
  "portal.content_too_short": "请把情况说得具体一些（至少5个字）。",
  "portal.place_required": "请选择区、镇（街道），或填写详细地址。",
  "portal.bad_place": "所选的镇（街道）不在该区，请重新选择。",
  "portal.too_many_photos": `照片最多${MAX_PHOTOS}张。`,
  "portal.photo_too_large": "照片太大了，每张不超过5MB。",
  "portal.bad_photo": "照片格式不支持，请上传JPG、PNG或WebP图片。",
  "portal.not_found": "没有查到。请核对工单号，并使用登记时的手机号。",
  "portal.not_ratable": "答复之后才能评价，或您已经评价过了。",
  "request.too_large": "提交的内容太大（照片过大）。",
  "request.limiter_unavailable": "系统暂时繁忙，请稍后再试。",
  "sms.unavailable": "短信暂时发不出去，请稍后再试或拨打12345。",
};

class PortalError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error ? body.error.code : null;
    this.details = (body && body.error && body.error.details) || {};
  }
}

async function call(path, { method = "GET", json, form, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new PortalError(0, { error: { code: "network", message: "network" } });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new PortalError(response.status, body);
  return body;
}

function describe(error) {
  if (error.code === "request.rate_limited") {
    const minutes = Math.max(1, Math.ceil((error.details.retry_after || 60) / 60));
    const who = SCOPE_TEXT[error.details.scope] || "操作太频繁";
    return `${who}，请${minutes}分钟后再试。急事请拨打12345。`;
  }
  if (error.code === "network") return "网络连接失败，请检查网络后重试。";
  if (ERROR_TEXT[error.code]) return ERROR_TEXT[error.code];
  if (error.status === 422) return "填写的内容有误，请检查。";
  return "出了点问题，请稍后再试。";
}

function showError(el, error) {
  el.textContent = typeof error === "string" ? error : describe(error);
  el.hidden = false;
}

function clearError(el) {
  el.textContent = "";
  el.hidden = true;
}

// -- phone verification, shared by submit and track ------------------------------------------

function phoneVerifier(root, errorBox) {
  let token = null;
  let verifiedPhone = null;
  const phone = $("#phone", root);
  const code = $("#code", root);
  const button = $("#send-code", root);
  let countdown = null;

  button.addEventListener("click", async () => {
    clearError(errorBox);
    try {
      button.disabled = true;
      await call("/codes", { method: "POST", json: { phone: phone.value.trim() } });
      let left = 60;
      button.textContent = `${left}秒后重发`;
      countdown = setInterval(() => {
        left -= 1;
        if (left <= 0) {
          clearInterval(countdown);
          button.disabled = false;
          button.textContent = "重新获取";
        } else button.textContent = `${left}秒后重发`;
      }, 1000);
      button.dataset.sent = "true";
      code.focus();
    } catch (error) {
      button.disabled = false;
      showError(errorBox, error);
    }
  });

  return async function phoneToken() {
    const number = phone.value.trim();
    if (token && verifiedPhone === number) return token;
    if (!/^1[3-9]\d{9}$/.test(number)) throw new PortalError(400, { error: { code: "portal.bad_phone" } });
    if (!code.value.trim()) throw new PortalError(401, { error: { code: "portal.phone_unverified" } });
    const answer = await call("/codes/verify", {
      method: "POST",
      json: { phone: number, code: code.value.trim() },
    });
    token = answer.phone_token;
    verifiedPhone = number;
    return token;
  };
}

// -- submit -------------------------------------------------------------------------------------

async function initSubmit() {
  const form = $("#submit-form");
  const errorBox = $("#submit-error");
  const phoneToken = phoneVerifier(form, errorBox);
  const content = $("#content");
  const area = $("#area");
  const town = $("#town");
  let places = [];
  let location = null;
  let photos = [];

  try {
    places = await call("/places");
  } catch (error) {
    showError(errorBox, error);
  }
  for (const a of places) area.append(h("option", { value: a.code, text: a.name }));
  area.addEventListener("change", () => {
    const chosen = places.find((a) => a.code === area.value);
    replaceChildren(town, h("option", { value: "", text: chosen ? "请选择（可不选）" : "请先选区" }));
    for (const t of chosen ? chosen.towns : []) town.append(h("option", { value: t.code, text: t.name }));
    town.disabled = !chosen;
  });

  const matterField = $("#matter-field");
  const matterOptions = $("#matter-options");
  let lastAsked = "";
  const suggest = debounce(async () => {
    const text = content.value.trim();
    if (text.length < 5 || text === lastAsked) return;
    lastAsked = text;
    try {
      const answer = await call(`/suggest?q=${encodeURIComponent(text)}`);
      const previous = (form.querySelector("input[name=matter_code]:checked") || {}).value;
      const options = answer.matters.map((m, i) =>
        h("label", { class: "check" },
          h("input", { type: "radio", name: "matter_code", value: m.code,
            checked: previous ? previous === m.code : i === 0 }),
          ` ${m.name}`));
      options.push(h("label", { class: "check" },
        h("input", { type: "radio", name: "matter_code", value: "", checked: previous === "" }),
        " 都不是，由热线判断"));
      replaceChildren(matterOptions, options);
      matterField.hidden = false;
    } catch {
      // Suggestions help; without them the hotline decides the matter.
    }
  }, 400);
  content.addEventListener("input", suggest);
  content.addEventListener("blur", suggest);

  const status = $("#locate-status");
  const locate = $("#locate");
  if (!("geolocation" in navigator)) locate.hidden = true;
  locate.addEventListener("click", () => {
    status.textContent = "正在获取位置…";
    navigator.geolocation.getCurrentPosition(
      (position) => {
        location = { lat: position.coords.latitude.toFixed(6), long: position.coords.longitude.toFixed(6) };
        status.textContent = `已附上当前位置（${location.lat}, ${location.long}），仍请选择区或填写地址。`;
      },
      () => { status.textContent = "未能获取位置，请选择区并填写地址。"; },
      { timeout: 10000, maximumAge: 60000 },
    );
  });

  const input = $("#photos");
  const previews = $("#photo-previews");
  input.addEventListener("change", () => {
    clearError(errorBox);
    const chosen = Array.from(input.files || []);
    const bad = chosen.find((f) => !PHOTO_TYPES.includes(f.type) || f.size > MAX_PHOTO_BYTES);
    if (chosen.length > MAX_PHOTOS || bad) {
      showError(errorBox, chosen.length > MAX_PHOTOS ? ERROR_TEXT["portal.too_many_photos"]
        : bad.size > MAX_PHOTO_BYTES ? ERROR_TEXT["portal.photo_too_large"] : ERROR_TEXT["portal.bad_photo"]);
      input.value = "";
      photos = [];
    } else photos = chosen;
    for (const img of previews.querySelectorAll("img")) URL.revokeObjectURL(img.src);
    replaceChildren(previews, photos.map((f, i) =>
      h("img", { src: URL.createObjectURL(f), alt: `已选照片${i + 1}` })));
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorBox);
    const button = $("#submit-button");
    if (content.value.trim().length < 5) {
      showError(errorBox, ERROR_TEXT["portal.content_too_short"]);
      content.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "正在提交…";
    try {
      const token = await phoneToken();
      const data = new FormData();
      data.append("content", content.value.trim());
      data.append("name", $("#name").value.trim());
      const matter = form.querySelector("input[name=matter_code]:checked");
      if (matter) data.append("matter_code", matter.value);
      data.append("area_code", area.value);
      data.append("town_code", town.value);
      data.append("address", $("#address").value.trim());
      if (location) {
        data.append("lat", location.lat);
        data.append("long", location.long);
      }
      if ($("#keep-location").checked) data.append("keep_photo_location", "1");
      for (const photo of photos) data.append("photo", photo, photo.name);
      const answer = await call("/requests", { method: "POST", form: data, headers: { "X-Phone-Token": token } });
      $("#ticket-number").textContent = answer.number;
      $("#tracking-link").href = `/m/t/${answer.token}`;
      $("#tracking-url").textContent = `${window.location.origin}/m/t/${answer.token}`;
      $("#merged-note").hidden = !answer.merged;
      form.hidden = true;
      const done = $("#submitted");
      done.hidden = false;
      done.focus();
    } catch (error) {
      showError(errorBox, error);
    } finally {
      button.disabled = false;
      button.textContent = "提交诉求";
    }
  });
}

// -- track: number + verified phone -> a tracking link ------------------------------------------

function initTrack() {
  const form = $("#track-form");
  const errorBox = $("#track-error");
  const phoneToken = phoneVerifier(form, errorBox);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorBox);
    try {
      const token = await phoneToken();
      const answer = await call("/lookup", {
        method: "POST",
        json: { number: $("#number").value.trim().toUpperCase() },
        headers: { "X-Phone-Token": token },
      });
      window.location.assign(`/m/t/${answer.token}`);
    } catch (error) {
      showError(errorBox, error);
    }
  });
}

// -- one ticket, by its tracking link -----------------------------------------------------------

function drawTicket(t) {
  $("#t-status").textContent = t.status_text;
  $("#t-status").dataset.status = t.status;
  $("#t-number").textContent = t.number;
  $("#t-matter").textContent = t.matter;
  $("#t-department").textContent = t.department;
  $("#t-received").textContent = fmtDateTime(t.received_at);
  const deadline = t.status === "dispatched" || t.status === "pending_dispatch"
    ? t.accept_deadline && `${fmtDateTime(t.accept_deadline)} 前签收`
    : t.open && t.status === "accepted" && t.finish_deadline && `${fmtDateTime(t.finish_deadline)} 前办结`;
  $("#t-deadline-row").hidden = !deadline;
  $("#t-deadline").textContent = deadline || "";
  $("#t-content").textContent = t.content;
  $("#t-reply-box").hidden = !t.reply;
  $("#t-reply").textContent = t.reply || "";
  $("#rate-form").hidden = !t.can_rate;
  replaceChildren($("#t-timeline"), t.timeline.slice().reverse().map((s) =>
    h("li", { dataset: { step: s.step } },
      h("time", { datetime: s.at || "", text: fmtDateTime(s.at) }),
      h("p", { text: s.text }),
      s.reply ? h("blockquote", { text: s.reply }) : null)));
  $("#t-updated").textContent = `更新于 ${fmtDateTime(new Date().toISOString())}，页面会自动刷新`;
  $("#ticket").hidden = false;
}

async function initTicket() {
  const token = decodeURIComponent(window.location.pathname.split("/").pop() || "");
  const errorBox = $("#ticket-error");
  const headers = { "X-Tracking-Token": token };
  let timer = null;

  async function load() {
    try {
      drawTicket(await call("/track", { headers }));
      clearError(errorBox);
    } catch (error) {
      if (error.status === 404) {
        $("#ticket").hidden = true;
        clearInterval(timer);
        showError(errorBox, "链接无效：没有找到对应的诉求。请核对链接，或用工单号和手机号查询。");
      } else showError(errorBox, error);
    }
  }

  const rateForm = $("#rate-form");
  rateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errorBox2 = $("#rate-error");
    clearError(errorBox2);
    const satisfaction = rateForm.querySelector("input[name=satisfaction]:checked");
    if (!satisfaction) {
      showError(errorBox2, "请选择满意程度。");
      return;
    }
    const resolved = rateForm.querySelector("input[name=resolved]:checked");
    try {
      const body = { satisfaction: satisfaction.value };
      if (resolved) body.resolved = resolved.value === "yes";
      drawTicket(await call("/track/rating", { method: "POST", json: body, headers }));
    } catch (error) {
      showError(errorBox2, error);
    }
  });

  await load();
  timer = setInterval(() => { if (!document.hidden) load(); }, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
}

// -- start ----------------------------------------------------------------------------------------

function markCurrentTab() {
  const path = window.location.pathname;
  for (const link of document.querySelectorAll(".tabs a")) {
    const href = link.getAttribute("href");
    if (path === href || path.startsWith(`${href}/`) || (href === "/m/track" && path.startsWith("/m/t/"))) {
      link.setAttribute("aria-current", "page");
    }
  }
}

async function main() {
  markCurrentTab();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m" }).catch(() => {});
  }
  const page = document.body.dataset.page;
  if (page === "submit") await initSubmit();
  else if (page === "track") initTrack();
  else if (page === "ticket") await initTicket();
  document.body.dataset.ready = "true";
}

main();
