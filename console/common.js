// What every part of the console shares: the page's state, building elements, and calling the
// server. Everything shown that came from the server or from a file name is set as text
// (textContent), never as markup.

export const $ = (selector) => document.querySelector(selector);

export const state = {
  token: null, claims: null, cursor: null, done: false, loading: false, reloadWanted: false, query: '',
  items: new Map(), cards: new Map(), groups: new Map(), selected: new Set(),
};

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** The path and query of a URL the server returned, on this page's own origin. */
export function local(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

export function encodePath(path) { return path.split('/').map(encodeURIComponent).join('/'); }

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function failure(status, message) {
  return Object.assign(new Error(message), { status });
}

export async function errorText(response) {
  let detail = '';
  try {
    const body = await response.json();
    detail = body?.error?.message ?? body?.message ?? '';
  } catch { /* not JSON */ }
  const what = {
    401: 'Not signed in (the token is missing, wrong or expired)', 403: 'Not allowed', 404: 'Not found',
    409: 'Conflict', 413: 'Too large or over quota', 415: 'Type refused', 429: 'Too many requests',
  }[response.status] ?? `HTTP ${response.status}`;
  return detail ? `${what}: ${detail}` : what;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = failure(response.status, await errorText(response));
    if (response.status === 401) tokenRefused(error.message);
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

/**
 * The server no longer takes the token (it expired, or its key was changed): the sign-in form is
 * shown again, saying so, and the page stays as it is — signing in again in this tab lets each
 * unfinished upload go on (Resume) from where the server has it.
 */
export function tokenRefused(message) {
  if (!$('#sign-in').hidden) return; // signing in: the form says it
  $('#sign-in').hidden = false;
  $('#sign-in-error').textContent = `Sign in again (${message}). Unfinished uploads wait: press Resume once signed in.`;
}

export function say(text) { $('#status').textContent = text; }

export function adminSay(text) { $('#admin-status').textContent = text; }

export function describeUsage(u) {
  const of = (used, limit, format) => (limit > 0 ? `${format(used)} of ${format(limit)}` : format(used));
  const held = u.resumableUploads ? ` (${formatSize(u.resumableBytes)} held by ${u.resumableUploads} unfinished upload(s))` : '';
  return `${u.user}: ${of(u.bytes, u.limits.bytes, formatSize)} stored, ${of(u.objects, u.limits.objects, String)} files${held}`;
}

export async function showUsage() {
  try { $('#usage').textContent = describeUsage(await api('GET', '/v1/usage')); } catch (error) { $('#usage').textContent = ''; }
}
