// The panel's API client: JSON in and out, the CSRF token on every state-changing request, and
// one error type whose message is fit to show the operator.
let csrfToken = '';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `Request failed (${status})`);
    this.status = status;
    this.code = body && body.code;
    this.body = body || {};
  }
}

export function setCsrfToken(token) {
  csrfToken = token || '';
}

const listeners = new Set();
/** Called with no arguments whenever a request finds the session gone (401). */
export function onUnauthenticated(fn) {
  listeners.add(fn);
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, { error: 'The server cannot be reached; check your connection', code: 'network' });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (!res.ok) {
    if (res.status === 401 && !path.endsWith('/login')) listeners.forEach((fn) => fn());
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body = {}) => api('PUT', path, body);
