// The Chorus API as the page calls it: same origin, through `chorus web`'s entry point.

const SESSION_KEY = "chorus.session";

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function forgetSession() {
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem("chorus.team");
}

// A random id that also works outside secure contexts (crypto.randomUUID needs one).
export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...extraHeaders };
  const session = loadSession();
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The connection to Chorus is lost. Check your network; the page retries by itself.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  if (response.status === 401 && session && !path.endsWith("/v1/sessions")) onUnauthorized();
  const error = data && data.error;
  const code = (error && error.code) || (data && data.reason) || `http_${response.status}`;
  const message = (error && error.message) || (data && data.reason) || response.statusText;
  throw new ApiError(response.status, code, message, data);
}

export const commands = (path) => `/api/commands${path}`;
export const queries = (path) => `/api/queries${path}`;
export const offerPath = (offerUrl) => `/api/offer?url=${encodeURIComponent(offerUrl)}`;
