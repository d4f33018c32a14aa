// The API client and the session. The access token lives only in this module's memory and is
// refreshed a minute before it expires; the refresh token is kept in sessionStorage (see the
// README's "Web client" section for why) so that a reload keeps the session but closing the
// tab ends it.

const REFRESH_KEY = "vodhub.refresh";
const listeners = new Set();
let access = null; // { token, claims }
let refreshTimer = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, problem, response) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = response?.headers.get("Retry-After");
  }

  // A route that is not (yet) on this server: the widget that needs it stays hidden.
  get missingRoute() {
    return this.status === 404 || this.status === 405;
  }
}

export async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

export function describeError(error) {
  if (!(error instanceof ApiError)) return `Network error: ${error.message}`;
  if (error.status === 429) return `Too many requests: try again in ${error.retryAfter || "a few"} seconds.`;
  const fields = (error.problem.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
  return [error.message, fields].filter(Boolean).join(" — ");
}

export function onSessionChange(listener) {
  listeners.add(listener);
}

export function session() {
  return access?.claims || null;
}

export function accessToken() {
  return access?.token || null;
}

export function isStaff() {
  const roles = access?.claims.roles || [];
  return roles.includes("admin") || roles.includes("moderator");
}

export async function api(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const response = await send(path, method, body, headers, auth);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

async function send(path, method, body, headers, auth) {
  const request = () => {
    const all = { ...headers };
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      all["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    if (auth && access) all.Authorization = `Bearer ${access.token}`;
    return fetch(path, { method, headers: all, body: payload });
  };
  let response = await request();
  if (response.status === 401 && auth && access && (await refresh())) response = await request();
  return response;
}

function decodeClaims(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function adopt(pair) {
  access = { token: pair.access_token, claims: decodeClaims(pair.access_token) };
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
  clearTimeout(refreshTimer);
  const lead = Math.min(60, pair.expires_in / 5);
  refreshTimer = setTimeout(refresh, Math.max(5, pair.expires_in - lead) * 1000);
  listeners.forEach((listener) => listener(session()));
}

function forget() {
  access = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
  listeners.forEach((listener) => listener(null));
}

// One refresh at a time: rotation spends the old refresh token, and replaying a spent one
// would revoke the whole session.
export function refresh() {
  refreshing ||= (async () => {
    const token = sessionStorage.getItem(REFRESH_KEY);
    if (!token) return false;
    try {
      const response = await fetch("/api/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: token }),
      });
      if (response.status === 401) {
        forget();
        return false;
      }
      if (!response.ok) return false; // 429/503: keep the session and try again later
      adopt(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function restore() {
  if (sessionStorage.getItem(REFRESH_KEY)) await refresh();
  return session();
}

export async function signIn(usernameOrEmail, password) {
  const response = await fetch("/api/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username_or_email: usernameOrEmail, password }),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), response);
  adopt(await response.json());
}

export async function signUp(fields) {
  await api("/api/auth/register", { method: "POST", body: fields, auth: false });
  await signIn(fields.username, fields.password);
}

export async function signOut() {
  try {
    if (access) await api("/api/auth/logout", { method: "POST" });
  } finally {
    forget();
  }
}
