// The JSON API: the access token, requests, errors, and where each role lands.

const TOKEN_KEY = "hotline.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// The token lives in sessionStorage: one log-in per tab, gone when the tab closes.
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function goToLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

/** A same-site path to go back to after logging in, or null (never another origin). */
export function safeNext(value) {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) {
    return null;
  }
  return value;
}

/**
 * Call the API. options: method, query (object), json (body), form (object, sent as
 * application/x-www-form-urlencoded), upload (FormData, sent as multipart). Resolves to the parsed body; rejects with ApiError
 * carrying the server's stable error code. A 401 (token expired or revoked) goes back to
 * the log-in page.
 */
export async function api(path, {
  method = "GET", query, json, form, upload, authRedirect = true,
} = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  } else if (upload !== undefined) {
    body = upload; // the browser sets the multipart Content-Type with its boundary
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body });
  } catch (error) {
    throw new ApiError(0, "network", "无法连接服务器，请检查网络");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("application/json") ? await response.json() : null;
  if (response.status === 401 && authRedirect) {
    clearToken();
    goToLogin();
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const message = error.message || (data && typeof data.detail === "string" ? data.detail : "");
    throw new ApiError(response.status, error.code || `http_${response.status}`, message);
  }
  return data;
}

/** A person-readable line for a failed call. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return `出错了：${error && error.message ? error.message : error}`;
  if (error.status === 0) return error.message;
  if (error.status === 403) return `没有权限：${error.message}`;
  if (error.status === 409) return `操作未完成（工单状态已变化）：${error.message}`;
  return `出错了（${error.code}）：${error.message}`;
}

// Where each role lands after logging in; the first role a user holds in this order wins.
export const ROLE_HOMES = [
  ["admin", "/admin"],
  ["agent", "/console"],
  ["supervisor", "/wall"],
  ["dispatcher", "/desk"],
  ["department", "/inbox"],
  ["editor", "/kb"],
];

export function homeFor(roles) {
  for (const [role, path] of ROLE_HOMES) if (roles.includes(role)) return path;
  return "/admin";
}

// The pages and who may open them (admin may open every page).
export const PAGES = [
  { path: "/console", label: "话务台", roles: ["agent"] },
  { path: "/wall", label: "KPI大屏", roles: ["supervisor"] },
  { path: "/reports", label: "效能监察", roles: ["supervisor"] },
  { path: "/desk", label: "派单台", roles: ["dispatcher", "supervisor"] },
  { path: "/inbox", label: "部门工单", roles: ["department"] },
  { path: "/kb", label: "知识库", roles: ["editor", "agent"] },
  { path: "/admin", label: "系统管理", roles: ["admin"] },
];

export function mayOpen(page, roles) {
  return roles.includes("admin") || page.roles.some((role) => roles.includes(role));
}
