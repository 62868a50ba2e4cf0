// The one place the playground talks to the API: the key, the request, the error as the API
// words it, and the account state (credits, rate limit) read from each response's headers.

const KEY_STORE = "speechmesh.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

const keyInput = () => document.getElementById("api-key");

export function restoreKey() {
  const saved = localStorage.getItem(KEY_STORE);
  if (saved) {
    keyInput().value = saved;
    document.getElementById("remember-key").checked = true;
  }
}

export function rememberKey() {
  const remember = document.getElementById("remember-key").checked;
  if (remember && keyInput().value) localStorage.setItem(KEY_STORE, keyInput().value.trim());
  else localStorage.removeItem(KEY_STORE);
}

export function apiKey() {
  return keyInput().value.trim();
}

const listeners = new Set();
/** Calls `listener(headers)` after every response: the account bar reads its state from them. */
export function onResponse(listener) {
  listeners.add(listener);
}

/**
 * One API call. `json` or `form` is the body; the answer is the Response, already checked:
 * a non-2xx raises ApiError with the documented code and message.
 */
export async function call(path, { method = "GET", json, form, signal } = {}) {
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const response = await fetch(path, { method, headers, body, signal });
  for (const listener of listeners) listener(response.headers);
  if (!response.ok) throw await asError(response);
  return response;
}

async function asError(response) {
  let detail = null;
  try {
    detail = (await response.json()).error;
  } catch {
    // Not the documented JSON (a proxy's page): say what came back.
  }
  if (detail && detail.code) {
    const { code, message, ...fields } = detail;
    return new ApiError(response.status, code, message || "", fields);
  }
  return new ApiError(response.status, "http_" + response.status, response.statusText || "Request failed");
}

/** The form of `fields`, leaving out empty values (the API's defaults apply). */
export function formOf(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) form.append(name, value[0], value[1]);
    else form.append(name, String(value));
  }
  return form;
}
