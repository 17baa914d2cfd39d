// 巡查 — patrol: the worker goes on duty and off duty explicitly; on duty the phone records its
// position every few seconds (nothing off duty) and sends them in batches through the outbox.
// The recorder keeps its state in IndexedDB, so a reopened app goes on recording the shift.
// A web page records only while it is open: the screen is kept on (Wake Lock) where the
// browser can.
import { t } from '../i18n.js';
import { distanceM, watchPosition } from './geo.js';
import * as net from './net.js';
import * as outbox from './outbox.js';
import { h, metres, toast, uuid, when } from './ui.js';

const KEY = 'patrol';
const BATCH_POINTS = 20;
const BATCH_MS = 60_000;
let state = null; // {shiftId, startItem, startedAt, buffer: [], count, distance, last}
let stopWatch = null;
let sampler = 0;
let flusher = 0;
let lock = null;
let fix = null;

const changed = () => window.dispatchEvent(new CustomEvent('duty-changed'));
const save = () => net.set(KEY, state);

async function keepAwake() {
  try {
    if (navigator.wakeLock) lock = await navigator.wakeLock.request('screen');
  } catch (e) { lock = null; }
}

async function flushBuffer() {
  if (!state || !state.buffer.length) return;
  const points = state.buffer.splice(0);
  await save();
  await outbox.enqueue('points', { points }, { user: net.user().username, target: state.shiftId,
                                              dependsOn: state.startItem, label: t('field.patrol_points', { n: points.length }) });
}

function sample(config) {
  if (!state || !fix) return;
  const age = Date.now() - Date.parse(fix.at);
  if (age > 2 * config.patrol_interval_s * 1000 + 5000) return; // no fresh fix: record nothing
  // a fix from before going on duty is off duty: the server refuses it, so it is not counted
  if (Date.parse(fix.at) < state.startedAt) return;
  const last = state.last;
  if (last && last.t === Date.parse(fix.at)) return;
  const point = { t: Date.parse(fix.at), lon: fix.lon, lat: fix.lat, accuracy_m: Math.round(fix.accuracy) };
  if (last) state.distance += distanceM(last.lon, last.lat, point.lon, point.lat);
  state.last = point;
  state.buffer.push(point);
  state.count += 1;
  save();
  changed();
  if (state.buffer.length >= BATCH_POINTS) flushBuffer();
}

function run(config) {
  stopWatch = watchPosition((next) => { if (next) fix = next; });
  sampler = setInterval(() => sample(config), config.patrol_interval_s * 1000);
  flusher = setInterval(flushBuffer, BATCH_MS);
  keepAwake();
}

export const onDuty = () => !!(state && state.shiftId);

// After the app was reopened on duty.
export async function resume(config) {
  if (stopWatch) return;
  state = await net.get(KEY);
  if (state && state.shiftId) run(config);
}

export async function start(config) {
  const shiftId = uuid();
  const started = Date.now();
  const item = await outbox.enqueue('shift-start', { id: shiftId, started_at: started },
                                    { user: net.user().username, label: t('field.patrol_start') });
  state = { shiftId, startItem: item.id, startedAt: started, buffer: [], count: 0, distance: 0, last: null };
  await save();
  run(config);
  changed();
}

export async function stop() {
  if (!state) return;
  clearInterval(sampler);
  clearInterval(flusher);
  if (stopWatch) stopWatch();
  stopWatch = null;
  if (lock) lock.release().catch(() => {});
  await flushBuffer();
  const ended = Math.max(Date.now(), state.last ? state.last.t : 0);
  await outbox.enqueue('shift-end', { ended_at: ended }, { user: net.user().username, target: state.shiftId,
                                                           dependsOn: state.startItem, label: t('field.patrol_stop') });
  state = null;
  await net.del(KEY);
  changed();
}

function duration(ms) {
  const m = Math.floor(ms / 60000);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}

export async function render(view, { config }) {
  const user = net.user();
  if (!['grid_worker', 'admin'].includes(user.role)) {
    view.append(h('p', { class: 'empty' }, t('field.patrol_not_for_role')));
    return undefined;
  }
  await resume(config);
  const button = h('button', { type: 'button', class: 'primary huge', id: 'duty-toggle' });
  const info = h('div', { class: 'duty-info', id: 'duty-info', 'aria-live': 'polite' });
  const shifts = h('ul', { class: 'shifts', id: 'shift-list' });
  view.append(h('section', { class: 'panel patrol' }, button, info,
    h('p', { class: 'muted small' }, t('field.patrol_hint', { s: config.patrol_interval_s }))),
  h('section', { class: 'panel' }, h('h2', {}, t('field.recent_shifts')), shifts));

  function draw() {
    const on = onDuty();
    button.textContent = on ? t('field.patrol_stop') : t('field.patrol_start');
    button.classList.toggle('danger', on);
    view.classList.toggle('on-duty', on);
    info.textContent = on ? t('field.patrol_status', { since: when(new Date(state.startedAt).toISOString()),
                                                      time: duration(Date.now() - state.startedAt),
                                                      n: state.count, distance: metres(state.distance) })
      : t('field.off_duty');
  }
  async function loadShifts() {
    try {
      const page = await net.api('/patrol/shifts?limit=10');
      shifts.replaceChildren(...page.shifts.map((s) => h('li', {},
        h('b', {}, when(s.started_at)), ' — ', s.ended_at ? when(s.ended_at) : t('field.on_duty'),
        h('div', { class: 'muted small' }, t('field.shift_summary', { n: s.points, distance: metres(s.length_m) })))));
      if (!page.shifts.length) shifts.replaceChildren(h('li', { class: 'muted' }, t('field.no_shifts')));
    } catch (e) {
      shifts.replaceChildren(h('li', { class: 'muted' }, t('field.offline_no_shifts')));
    }
  }
  button.addEventListener('click', async () => {
    button.disabled = true;
    if (onDuty()) {
      await stop();
      toast(t('field.patrol_stopped'));
    } else {
      await start(config);
      toast(t('field.patrol_started'));
    }
    button.disabled = false;
    draw();
    loadShifts();
  });
  draw();
  loadShifts();
  const tick = setInterval(draw, 5000);
  window.addEventListener('duty-changed', draw);
  window.addEventListener('outbox-changed', loadShifts);
  return () => {
    clearInterval(tick);
    window.removeEventListener('duty-changed', draw);
    window.removeEventListener('outbox-changed', loadShifts);
  };
}
