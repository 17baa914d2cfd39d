// Talking to the server for the pages: the bearer token (sessionStorage) or, in development,
// the X-Actor / X-Role stand-in; the page's language on every request (problem details come
// back in it); a problem+json answer becomes an Error carrying its fields.
import { LANG } from '../i18n.js';

export const ROOT = document.documentElement.dataset.root || '';
const TOKEN = 'gridcore-token';

export const who = {
  token: sessionStorage.getItem(TOKEN),
  standIn: null,  // () => ({ actor, role }) while nobody is signed in (development only)
  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN, token); else sessionStorage.removeItem(TOKEN);
  },
  headers() {
    if (this.token) return { Authorization: `Bearer ${this.token}` };
    const s = this.standIn && this.standIn();
    return s ? { 'X-Actor': s.actor, 'X-Role': s.role } : {};
  },
};

export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(path, opts = {}) {
  const headers = { Accept: 'application/json', 'Accept-Language': LANG, ...who.headers(),
    ...(opts.headers || {}) };
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts = { ...opts, body: JSON.stringify(opts.json) };
  }
  const r = await fetch(ROOT + path, { ...opts, headers });
  if (r.status === 204) return null;
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Problem(r.status, body);
  return body;
}

export async function signIn(username, password) {
  const r = await fetch(`${ROOT}/auth/token`, { method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Accept-Language': LANG },
    body: new URLSearchParams({ username, password }) });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Problem(r.status, body);
  who.setToken(body.access_token);
  return body;
}

// MapLibre fetches tiles itself, not through api(): its transformRequest sends the caller's
// identity with every request to this server (in production every layer needs it).
export function withToken(url) {
  if (url.startsWith(location.origin)) return { url, headers: who.headers() };
  return { url };
}

// A photo of a case (the n-th, from 1), as the field app's photo route serves it.
export function photoUrl(caseId, n, thumb = false) {
  return `${ROOT}/cases/${encodeURIComponent(caseId)}/photos/${n}${thumb ? '?size=thumb' : ''}`;
}

// Photos need the caller's identity too: fetched with it, shown from a blob URL.
const blobs = new Map();
export async function photoBlob(url) {
  if (blobs.has(url)) return blobs.get(url);
  const r = await fetch(url, { headers: who.headers() });
  if (!r.ok) throw new Problem(r.status, null);
  const made = URL.createObjectURL(await r.blob());
  blobs.set(url, made);
  return made;
}
