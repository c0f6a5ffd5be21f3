// The log-in page: the OAuth2 password form, then each role lands on its own page.

import { api, ApiError, homeFor, safeNext, setToken } from "./api.js";
import { $ } from "./dom.js";

const form = $("#login-form");
const error = $("#login-error");

function fail(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    fail("请输入用户名和密码。");
    (username ? form.password : form.username).focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.hidden = true;
  try {
    const token = await api("/api/v1/auth/token", {
      method: "POST", form: { username, password }, authRedirect: false,
    });
    setToken(token.access_token);
    const me = await api("/api/v1/auth/me");
    const next = safeNext(new URLSearchParams(location.search).get("next"));
    location.assign(next && next !== "/" && next !== "/login" ? next : homeFor(me.roles));
  } catch (err) {
    fail(err instanceof ApiError && err.status === 401
      ? "用户名或密码不正确。" : `登录失败：${err.message}`);
    form.password.select();
    button.disabled = false;
  }
});

form.username.focus();
document.body.dataset.ready = "true";
