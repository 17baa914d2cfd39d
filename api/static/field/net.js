// The phone's own storage and the server, as the phone sees them.
//
// IndexedDB keeps what must survive closing the app: the sign-in, the outbox (reports and steps
// with their photos, as Blobs), the area for offline use, the last worklist and cases seen.
//
// The server: sign in once per device (a device session with a rotating refresh token),
// short-lived access tokens refreshed when they expire or are refused, and errors sorted into
// what the app can do about them:
//   Offline     — no network: keep the work, try later;
//   AuthNeeded  — the session is gone (revoked, expired): ask to sign in, keep the work;
//   Problem     — the server refused this request (problem+json): show its reason.

import { LANG } from '../i18n.js';

// -- the phone's own storage (IndexedDB) ------------------------------------------------------
const NAME = 'gridcore-field';
const VERSION = 1;
let opening = null;

function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(NAME, VERSION);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains('kv')) d.createObjectStore('kv');
        if (!d.objectStoreNames.contains('outbox')) d.createObjectStore('outbox', { keyPath: 'id' });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

async function run(storeName, mode, work) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(storeName, mode);
    const result = work(tx.objectStore(storeName));
    tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const get = (key) => run('kv', 'readonly', (s) => s.get(key));
export const set = (key, value) => run('kv', 'readwrite', (s) => s.put(value, key));
export const del = (key) => run('kv', 'readwrite', (s) => s.delete(key));

export const outboxAll = async () => (await run('outbox', 'readonly', (s) => s.getAll()) || [])
  .sort((a, b) => a.createdAt - b.createdAt);
export const outboxGet = (id) => run('outbox', 'readonly', (s) => s.get(id));
export const outboxPut = (item) => run('outbox', 'readwrite', (s) => s.put(item));
export const outboxDelete = (id) => run('outbox', 'readwrite', (s) => s.delete(id));

export async function persist() {
  try {
    if (navigator.storage && navigator.storage.persist) await navigator.storage.persist();
  } catch (e) { /* not granted: the data still stays unless the device runs out of space */ }
}

// -- the server ---------------------------------------------------------------------------------
export const ROOT = document.documentElement.dataset.root || '';
const SKEW_MS = 30_000; // refresh a little before the access token expires

export class Offline extends Error {}
export class AuthNeeded extends Error {}
export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let auth = null; // {access, refresh, sessionId, user: {username, role, areas, department}}
let refreshing = null;

function expiresAt(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))).exp * 1000;
  } catch (e) {
    return 0;
  }
}

export async function loadAuth() {
  auth = (await get('auth')) || null;
  return auth;
}

export const user = () => (auth && auth.refresh ? auth.user : null);
export const lastUsername = async () => (await get('last-username')) || '';

function announce(name, detail) {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

async function save(tokens, me) {
  auth = { access: tokens.access_token, refresh: tokens.refresh_token,
           sessionId: tokens.session_id, user: me || (auth && auth.user) };
  await set('auth', auth);
}

async function forget(reason) {
  const name = auth && auth.user ? auth.user.username : '';
  auth = null;
  await del('auth');
  if (name) await set('last-username', name);
  announce('auth-needed', { reason });
}

function deviceName() {
  const ua = navigator.userAgent;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : 'web';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chrome'
    : /Safari\//.test(ua) ? 'Safari' : /Firefox\//.test(ua) ? 'Firefox' : 'browser';
  return `${os} · ${browser}`;
}

async function send(path, init) {
  try {
    return await fetch(`${ROOT}${path}`, init);
  } catch (e) {
    throw new Offline(String(e));
  }
}

async function problemOf(response) {
  let body = {};
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  return new Problem(response.status, body);
}

// What the phone keeps of one worker's work: on a sign-in by another worker it goes, so the new
// worker is not shown the last one's grids (as theirs), tasks, cases or patrol shift.
const PER_WORKER = ['area', 'tasks', 'my-reports', 'patrol'];

async function forgetOtherWorker() {
  const d = await db();
  await new Promise((resolve, reject) => {
    const tx = d.transaction('kv', 'readwrite');
    const kv = tx.objectStore('kv');
    const walk = kv.openKeyCursor();
    walk.onsuccess = () => {
      const at = walk.result;
      if (!at) return;
      if (PER_WORKER.includes(at.key) || String(at.key).startsWith('case:')) kv.delete(at.key);
      at.continue();
    };
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

export async function signIn(username, password) {
  const form = new URLSearchParams({ username, password, scope: 'offline_access',
                                     device: deviceName() });
  const r = await send('/auth/token', { method: 'POST', body: form });
  if (!r.ok) throw await problemOf(r);
  const tokens = await r.json();
  const meResponse = await send('/auth/me', { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  if (!meResponse.ok) throw await problemOf(meResponse);
  const me = await meResponse.json();
  const before = await get('last-username');
  if (before && before !== me.username) await forgetOtherWorker();
  await save(tokens, { username: me.username, role: me.role, areas: me.areas,
                       department: me.department });
  await set('last-username', me.username);
  announce('signed-in', auth.user);
  return auth.user;
}

export async function signOut() {
  const token = auth && auth.refresh;
  auth = null;
  await del('auth');
  if (token) {
    try {
      await send('/auth/signout', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                    body: JSON.stringify({ refresh_token: token }) });
    } catch (e) { /* offline: the session expires unused */ }
  }
}

// One refresh at a time: every request waiting for a token shares it.
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!auth || !auth.refresh) throw new AuthNeeded('not signed in');
      const r = await send('/auth/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                              body: JSON.stringify({ refresh_token: auth.refresh }) });
      if (r.status === 401 || r.status === 403) {
        const p = await problemOf(r);
        await forget(p.body.reason || 'revoked');
        throw new AuthNeeded(p.message);
      }
      if (!r.ok) throw await problemOf(r);
      await save(await r.json());
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function accessToken() {
  if (!auth || !auth.refresh) throw new AuthNeeded('not signed in');
  if (!auth.access || expiresAt(auth.access) - SKEW_MS < Date.now()) await refresh();
  return auth.access;
}

// A request as the signed-in user. ``body``: FormData, or an object sent as JSON.
export async function api(path, { method = 'GET', body, headers = {}, raw = false } = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const token = await accessToken();
    // the app's language, not the browser's: a refusal's detail comes back in it
    const init = { method, headers: { Accept: 'application/json', 'Accept-Language': LANG, ...headers,
                                      Authorization: `Bearer ${token}` } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    const r = await send(path, init);
    if (r.status === 401 && attempt === 0) {
      // expired on the way, or refused: one refresh, then the request once more
      if (auth) auth.access = null;
      continue;
    }
    if (r.status === 401) {
      await forget('refused');
      throw new AuthNeeded('refused');
    }
    if (r.status === 304) return null;
    if (!r.ok) throw await problemOf(r);
    return raw ? r : r.json();
  }
  throw new AuthNeeded('refused');
}

// A public document (no token): the categories.
export async function publicJson(path) {
  const r = await send(path, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw await problemOf(r);
  return r.json();
}

// -- data the phone keeps for offline use ---------------------------------------------------------
// My area (grids and parts, GET /me/area): downloaded again only when its version changed.
// One download at a time (sign-in, app start and the timer may ask together); while it runs a
// screen without an area says it is downloading instead of judging a position without grids,
// and 'area-synced' tells it when the download ended, well or not.
let areaSync = null;
export const areaLoading = () => areaSync !== null;

export function syncArea() {
  if (!areaSync) {
    areaSync = (async () => {
      const cached = await get('area');
      const headers = cached && cached.version ? { 'If-None-Match': `"${cached.version}"` } : {};
      const fresh = await api('/me/area', { headers });
      if (fresh) {
        fresh.fetchedAt = new Date().toISOString();
        await set('area', fresh);
        window.dispatchEvent(new CustomEvent('area-changed'));
        return fresh;
      }
      return cached;
    })().finally(() => {
      areaSync = null;
      window.dispatchEvent(new CustomEvent('area-synced'));
    });
  }
  return areaSync;
}

export async function categories() {
  try {
    const fresh = await publicJson('/categories');
    await set('categories', fresh.categories);
    return fresh.categories;
  } catch (e) {
    return (await get('categories')) || [];
  }
}
