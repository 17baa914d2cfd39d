// The outbox (发送队列): everything the worker does that the server must hear — reports, steps
// on tasks, patrol shifts and positions — is stored in IndexedDB first, with its photos, and
// sent when there is a network. Each item carries its idempotency key from the moment it is
// made, so sending it again after a lost answer never makes a second case or a second step.
//
// Sent in the order made; tried again with back-off (5 s, 10 s … up to 5 min) on a network
// error or a server that is down; tried on app start, when the network comes back, when the
// app comes to the front, on a timer and (where the browser has it) on Background Sync.
// States: waiting → sending → done (filed: the case number) | refused (the reason to fix).
import { AuthNeeded, Offline, Problem, api } from './net.js';
import * as store from './net.js';
import { uuid } from './ui.js';

const MAX_BACKOFF_MS = 5 * 60_000;
const TIMER_MS = 15_000;
let running = null;
let again = false;
let blockedByAuth = false;

const changed = () => window.dispatchEvent(new CustomEvent('outbox-changed'));

// kind: report | step | shift-start | points | shift-end
export async function enqueue(kind, fields, { photos = [], user = '', label = '', target = null,
                                             dependsOn = null, id = null } = {}) {
  const item = { id: id || uuid(), kind, fields, photos, user, label, target, dependsOn,
                 createdAt: Date.now(), state: 'waiting', attempts: 0, nextAt: 0,
                 error: null, result: null };
  await store.outboxPut(item);
  changed();
  if (navigator.onLine === false) askForSync();
  flush();
  return item;
}

export const list = () => store.outboxAll();

export async function remove(id) {
  await store.outboxDelete(id);
  changed();
}

// Try a refused item again (after the worker fixed what the server said).
export async function retry(id, fields, photos) {
  const item = await store.outboxGet(id);
  if (!item) return;
  Object.assign(item, { state: 'waiting', attempts: 0, nextAt: 0, error: null,
                        fields: fields || item.fields, photos: photos || item.photos });
  await store.outboxPut(item);
  changed();
  flush();
}

export const pending = async () => (await list()).filter((i) => i.state === 'waiting' || i.state === 'sending');

function form(fields, photos) {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v !== null && v !== undefined && v !== '') data.append(k, String(v));
  }
  // a self-handled report's photos after the work go as after_photos (自处置)
  photos.forEach((p, i) => data.append(p.role === 'after' ? 'after_photos' : 'photos', p.blob,
                                       p.name || `photo-${i + 1}.jpg`));
  return data;
}

async function deliver(item) {
  const key = { 'Idempotency-Key': item.id };
  switch (item.kind) {
    case 'report':
      return api('/cases', { method: 'POST', body: form({ ...item.fields, idempotency_key: item.id }, item.photos), headers: key });
    case 'step':
      return api(`/cases/${item.target}/${item.fields.action}`, {
        method: 'POST', headers: key,
        body: form(Object.fromEntries(Object.entries(item.fields).filter(([k]) => k !== 'action')), item.photos) });
    case 'shift-start':
      return api('/patrol/shifts', { method: 'POST', body: item.fields });
    case 'points':
      return api(`/patrol/shifts/${item.target}/points`, { method: 'POST', body: item.fields });
    case 'shift-end':
      return api(`/patrol/shifts/${item.target}/end`, { method: 'POST', body: item.fields });
    default:
      throw new Problem(400, { detail: `unknown kind ${item.kind}` });
  }
}

function resultOf(item, answer) {
  if (item.kind === 'report' || item.kind === 'step') {
    return { id: answer.id, public_no: answer.public_no, state: answer.state,
             grid_code: answer.grid_code, replayed: !!answer.replayed };
  }
  if (item.kind === 'points') return { stored: answer.stored, refused: answer.refused.length };
  return { id: answer.id };
}

async function sendOne(item, items) {
  if (item.dependsOn) {
    const first = items.find((i) => i.id === item.dependsOn);
    if (first && first.state !== 'done') return 'skip';
  }
  item.state = 'sending';
  item.attempts += 1;
  await store.outboxPut(item);
  changed();
  try {
    const answer = await deliver(item);
    Object.assign(item, { state: 'done', error: null, result: resultOf(item, answer), sentAt: Date.now() });
    if (item.kind !== 'report' && item.kind !== 'step') item.photos = [];
    await store.outboxPut(item);
    if (item.kind === 'report' || item.kind === 'step') window.dispatchEvent(new CustomEvent('outbox-filed'));
    return 'done';
  } catch (e) {
    if (e instanceof Problem && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
      Object.assign(item, { state: 'refused', error: {
        status: e.status, detail: e.body.detail || '', detailLang: e.body.detail_lang || 'en',
        field: e.body.field || null, title: e.body.title || '',
        kind: String(e.body.type || '').split('/').pop(), nearest: e.body.nearest_grid || null } });
      await store.outboxPut(item);
      return 'refused';
    }
    const wait = Math.min(MAX_BACKOFF_MS, 5000 * 2 ** Math.min(item.attempts - 1, 8));
    Object.assign(item, { state: 'waiting', nextAt: Date.now() + wait * (0.8 + Math.random() * 0.4),
                          error: e instanceof AuthNeeded ? { auth: true } : { network: e instanceof Offline, detail: e.message } });
    await store.outboxPut(item);
    if (e instanceof AuthNeeded) {
      item.nextAt = 0; // not the item's fault: send as soon as the worker signed in again
      await store.outboxPut(item);
      blockedByAuth = true;
      return 'stop';
    }
    return e instanceof Offline ? 'stop' : 'later';
  } finally {
    changed();
  }
}

// Send what is due, in order; stop at the first network failure (the rest would fail too).
export function flush({ force = false } = {}) {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      const items = await list();
      const me = (await store.get('auth'))?.user?.username;
      if (!me) break;
      blockedByAuth = false;
      for (const item of items) {
        if (item.state === 'done' || item.state === 'refused') continue;
        if (item.user && item.user !== me) continue; // another worker's: waits for them
        if (!force && item.nextAt > Date.now()) continue;
        const outcome = await sendOne(item, items);
        if (outcome === 'stop') break;
      }
    } while (again);
  })().finally(() => { running = null; });
  return running;
}

export const needsSignIn = () => blockedByAuth;

// Done items are kept a week (the worker sees the case numbers), then dropped.
export async function prune(maxAgeMs = 7 * 86_400_000) {
  for (const item of await list()) {
    if (item.state === 'done' && item.sentAt && Date.now() - item.sentAt > maxAgeMs) await store.outboxDelete(item.id);
  }
}

export function start() {
  window.addEventListener('online', () => flush({ force: true }));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') flush();
  });
  window.addEventListener('signed-in', () => flush({ force: true }));
  setInterval(() => { if (navigator.onLine !== false) flush(); }, TIMER_MS);
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data === 'flush-outbox') flush({ force: true });
    });
  }
  prune();
  flush({ force: true });
}

// Background Sync where the browser has it (Chromium); elsewhere the triggers above do it.
export async function askForSync() {
  try {
    const reg = await navigator.serviceWorker?.ready;
    if (reg && reg.sync) await reg.sync.register('outbox');
  } catch (e) { /* not supported or not allowed */ }
}
