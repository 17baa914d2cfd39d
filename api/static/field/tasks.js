// 待办 — my tasks, soonest deadline first with the clock colours, and a task's case: photos,
// description, history, the map, and the step to take — verify (real / not real → void with a
// reason) or check (pass / fail: a failed check needs a note), with photos. A step goes
// through the outbox like a report, so it can be taken offline.
import { LANG, t } from '../i18n.js';
import { gridsLayer, leaflet, makeMap, removeMap } from './mapview.js';
import * as net from './net.js';
import * as outbox from './outbox.js';
import { photoField } from './photo.js';
import { categoryName, clear, colourDot, h, toast, when } from './ui.js';

async function loadTasks() {
  try {
    const page = await net.api('/me/tasks?limit=200');
    page.fetchedAt = new Date().toISOString();
    await net.set('tasks', page);
    window.dispatchEvent(new CustomEvent('tasks-changed'));
    return { page, fresh: true };
  } catch (e) {
    if (e instanceof net.AuthNeeded) throw e;
    return { page: await net.get('tasks'), fresh: false, error: e };
  }
}

async function queuedSteps() {
  const steps = (await outbox.list()).filter((i) => i.kind === 'step' && i.state !== 'done');
  return new Map(steps.map((s) => [String(s.target), s]));
}

function taskCard(item, queued) {
  const q = queued.get(String(item.id));
  return h('a', { href: `#/case/${item.id}`, class: `task ${item.colour || 'none'}`, 'data-id': item.id,
                  'data-task': item.task },
    h('div', { class: 'task-top' },
      h('span', { class: 'tag' }, t(`field.task_${item.task}`)),
      h('span', { class: 'no' }, item.public_no),
      colourDot(item.colour),
      h('span', { class: 'due' }, item.deadline ? when(item.deadline) : '')),
    h('div', { class: 'task-title' }, categoryName(item.category_name, LANG)),
    h('div', { class: 'task-sub' }, [item.grid_code, item.grid_name].filter(Boolean).join(' · ')),
    item.description ? h('div', { class: 'task-desc' }, item.description) : null,
    q ? h('div', { class: `queued-note ${q.state}` }, t(`field.step_${q.state}`, { action: t(`field.action_${q.fields.action}`) })) : null);
}

async function list(view) {
  let filter = sessionStorage.getItem('task-filter') || '';
  const chips = h('div', { class: 'chips', role: 'group' });
  const items = h('div', { class: 'tasks', id: 'task-list' });
  const note = h('p', { class: 'muted small', id: 'tasks-note' });
  const reload = h('button', { type: 'button', class: 'button', id: 'tasks-reload', onclick: () => draw(true) }, t('field.reload'));
  view.append(h('div', { class: 'row between' }, chips, reload), note, items);

  // Every drawing reads the stored list (a fetch stores it first), and only the latest drawing
  // begun is shown: a redraw for the outbox that read the list while a fetch was out can no
  // longer draw the older list over the newer one when it finishes last.
  let drawn = 0, fetchedAt = null, error = null;
  async function draw(fetch) {
    if (fetch) {
      const got = await loadTasks();
      if (got.fresh) { fetchedAt = got.page.fetchedAt; error = null; } else error = got.error;
    }
    const mine = ++drawn;
    const page = await net.get('tasks');
    const queued = await queuedSteps();
    if (mine !== drawn) return;
    const fresh = !!page && page.fetchedAt === fetchedAt;
    clear(chips);
    clear(items);
    if (!page) {
      note.textContent = error instanceof net.Offline ? t('field.offline_no_tasks') : t('field.loading');
      return;
    }
    note.textContent = fresh ? '' : t('field.tasks_cached', { at: when(page.fetchedAt) });
    const all = page.items.length;
    chips.append(h('button', { type: 'button', class: `chip ${filter ? '' : 'on'}`, onclick: () => pick('') },
      `${t('common.all')} ${all}`));
    for (const task of page.tasks) {
      chips.append(h('button', { type: 'button', class: `chip ${filter === task ? 'on' : ''}`, 'data-filter': task,
                                 onclick: () => pick(task) }, `${t(`field.task_${task}`)} ${page.counts[task] || 0}`));
    }
    const shown = page.items.filter((i) => !filter || i.task === filter);
    if (!shown.length) items.append(h('p', { class: 'empty' }, t('field.no_tasks')));
    shown.forEach((item) => items.append(taskCard(item, queued)));
  }
  function pick(task) {
    sessionStorage.setItem('task-filter', task);
    filter = task;
    draw(false);
  }
  await draw(false);
  draw(true);
  const onChange = () => draw(false);
  window.addEventListener('outbox-changed', onChange);
  return () => window.removeEventListener('outbox-changed', onChange);
}

// -- one case -----------------------------------------------------------------------------------
async function loadCase(id) {
  try {
    const found = await net.api(`/cases/${id}`);
    await net.set(`case:${id}`, found);
    return { found, fresh: true };
  } catch (e) {
    if (e instanceof net.AuthNeeded) throw e;
    return { found: await net.get(`case:${id}`), fresh: false, error: e };
  }
}

// Photos need the bearer token, so they are fetched, not linked; the service worker keeps them.
function photo(url, alt) {
  const img = h('img', { alt, class: 'loading' });
  net.api(url, { raw: true }).then((r) => r.blob()).then((blob) => {
    img.src = URL.createObjectURL(blob);
    img.classList.remove('loading');
  }).catch(() => { img.alt = `${alt} (${t('field.offline')})`; });
  return img;
}

const NEEDS_NOTE = new Set(['void', 'fail', 'send_back', 'rework', 'park', 'supervise']);
const GENERIC = new Set(['accept', 'handle', 'feed_back', 'send_back', 'register', 'dispatch', 'close', 'rework', 'verify', 'void', 'supervise', 'park']);

function stepForm(found, task, actions) {
  const user = net.user();
  const photos = [];
  const error = h('p', { class: 'error', id: 'step-error', role: 'alert' });
  const note = h('textarea', { id: 'step-note', rows: 3, maxlength: 4000,
                               oninput: () => { error.textContent = ''; } });
  let choice = null;
  const noteLabel = h('label', { for: 'step-note' }, t('field.note'));
  const choices = h('div', { class: 'choices', role: 'radiogroup' });
  const options = task === 'verify' ? [['verify', t('field.verify_real')], ['void', t('field.verify_not_real')]]
    : task === 'check' ? [['pass', t('field.check_pass')], ['fail', t('field.check_fail')]]
      : actions.filter((a) => GENERIC.has(a)).map((a) => [a, t(`field.action_${a}`)]);
  for (const [value, label] of options) {
    choices.append(h('button', { type: 'button', class: `choice ${value}`, role: 'radio', 'aria-checked': 'false',
                                 'data-choice': value, onclick: (event) => {
                                   choice = value;
                                   choices.querySelectorAll('.choice').forEach((b) => b.setAttribute('aria-checked', String(b === event.currentTarget)));
                                   noteLabel.textContent = needsNote() ? t('field.note_required') : t('field.note');
                                 } }, label));
  }
  const needsNote = () => NEEDS_NOTE.has(choice);
  const submit = h('button', { type: 'submit', class: 'primary big', id: 'step-submit' }, t('field.step_submit'));
  const form = h('form', { class: 'form step', id: 'step-form', novalidate: true },
    h('h2', {}, t(`field.task_${task}`)), choices, noteLabel, note,
    h('div', { class: 'label' }, t('field.photos')), photoField(photos, 'step-photo'), error, submit);
  let submitting = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    if (!choice) {
      error.textContent = t('field.choose_result');
      return;
    }
    const reason = note.value.trim();
    if (needsNote() && !reason) {
      error.textContent = choice === 'fail' ? t('field.fail_needs_note') : t('field.reason_required');
      note.focus();
      return;
    }
    const fields = task === 'check' ? { action: 'check', check_result: choice, reason }
      : { action: choice, reason };
    if (submitting) return; // a double tap queues the step once (a second would be refused)
    submitting = true;
    submit.disabled = true;
    try {
      await outbox.enqueue('step', fields, { photos: photos.map(({ blob, name }) => ({ blob, name })),
                                             user: user.username, target: found.id,
                                             label: `${found.public_no} ${t(`field.action_${fields.action}`)}` });
    } catch (e) {
      submitting = false;
      submit.disabled = false;
      throw e;
    }
    toast(navigator.onLine === false ? t('field.saved_offline') : t('field.saved_sending'));
    location.hash = '#/tasks';
  });
  return form;
}

async function caseScreen(view, id, from = 'tasks') {
  const tasks = await net.get('tasks');
  const item = tasks && tasks.items.find((i) => String(i.id) === String(id));
  const { found, fresh } = await loadCase(id);
  if (!found) {
    view.append(h('p', { class: 'empty' }, t('field.case_unavailable')), h('a', { href: `#/${from}`, class: 'button' }, t('field.back')));
    return undefined;
  }
  const category = (await net.categories()).find((c) => c.key === found.category);
  const queued = (await queuedSteps()).get(String(found.id));
  const clock = found.clock || {};
  const mapEl = h('div', { class: 'map small', id: 'case-map', role: 'img', 'aria-label': t('field.map') });
  view.append(...[
    h('a', { href: `#/${from}`, class: 'back' }, `‹ ${t('field.back')}`),
    h('section', { class: 'panel case', id: 'case', 'data-state': found.state },
      h('div', { class: 'task-top' }, h('span', { class: 'no' }, found.public_no), colourDot(clock.colour),
        h('span', { class: 'tag state', id: 'case-state' }, t(`field.state_${found.state}`))),
      h('h2', {}, category ? categoryName(category, LANG) : found.category),
      clock.deadline ? h('p', {}, t('field.deadline', { at: when(clock.deadline) })) : null,
      h('p', { class: 'muted' }, [found.grid_code, t('field.reported_at', { at: when(found.created_at) })].join(' · ')),
      found.description ? h('p', { class: 'desc' }, found.description) : null,
      fresh ? null : h('p', { class: 'muted small' }, t('field.case_cached'))),
    mapEl,
    found.photos && found.photos.length ? h('section', { class: 'photos', id: 'case-photos' },
      ...found.photos.map((p) => h('figure', {}, photo(p.thumb_url, t('field.photo_n', { n: p.n })),
        h('figcaption', {}, t(`field.action_${p.step}`))))) : null].filter(Boolean));
  // a task as listed, while the case still stands where it stood then
  const current = item && item.state === found.state;
  const task = current ? item.task : null;
  const actions = current ? item.actions : [];
  if (queued) {
    view.append(h('p', { class: `notice queued-note ${queued.state}`, id: 'step-queued' },
      t(`field.step_${queued.state}`, { action: t(`field.action_${queued.fields.action}`) })));
  } else if (task && actions.length) {
    view.append(stepForm(found, task, actions));
  }
  view.append(h('section', { class: 'history', id: 'case-history' }, h('h3', {}, t('field.history')),
    h('ol', {}, ...(found.history || []).map((s) => h('li', {},
      h('b', {}, t(`field.action_${s.action}`)), ' ', h('span', { class: 'muted' }, `${when(s.at)} · ${s.actor}`),
      s.reason ? h('div', {}, s.reason) : null)))));
  await leaflet();
  const map = makeMap(mapEl, { interactive: false });
  const area = await net.get('area');
  if (area && area.features.length) gridsLayer(area, found.grid_code).addTo(map);
  const { lat, lon } = found.location;
  window.L.circleMarker([lat, lon], { radius: 10, color: '#fff', weight: 3, fillColor: '#c81e1e',
                                    fillOpacity: 1, pane: 'position' }).addTo(map);
  map.setView([lat, lon], 17);
  return () => removeMap(map);
}

export async function render(view, { name, arg, from }) {
  return name === 'case' ? caseScreen(view, arg, from) : list(view);
}
