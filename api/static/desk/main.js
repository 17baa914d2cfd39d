// The department workbench (部门工作台): my department's cases by what they wait for (to accept,
// in handling, to feed back, sent back) from GET /me/tasks, soonest deadline first; a case with
// its clock, photos, place on a small map and history; accept, send back with a reason, handle
// and feed back with notes and photos; a team leader assigns a case to a handler of the team.
// Live: the list refreshes and a toast tells of what is new, without polling.
import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { loadMessages, t } from '../i18n.js';
import { ROOT, api, signIn, who, withToken } from '../common/api.js';
import { clockLine, facts, historyList, reportPhotos } from '../common/case_view.js';
import { connectEvents } from '../common/live.js';
import { filled, notices, setLive } from '../common/notices.js';
import {
  $, actionName, asLabel, clockDot, data, dueText, esc, fillPhotos, roleLabel, stateName, stepFormHtml, toast,
  listOf, when, wireLightbox,
} from '../common/ui.js';

const TABS = ['accept', 'handle', 'feed_back', 'sent_back'];
const st = { me: null, team: null, tab: 'accept', items: [], counts: {}, next: null, caseId: null,
  current: null, forms: 0, events: null, map: null, onlyMine: false, submitting: false, notify: () => {} };

// -- the list ---------------------------------------------------------------------------------
function renderTabs() {
  $('tabs').innerHTML = TABS.map((k) => `<button type="button" class="bucket ${k === st.tab ? 'active' : ''}"
    data-tab="${k}" aria-pressed="${k === st.tab}"><span class="name">${esc(t(`desk.tab_${k}`))}</span>
    <b class="count" data-count="${k}" translate="no">${esc(st.counts[k] ?? 0)}</b></button>`).join('');
}

function itemHtml(c) {
  const cls = c.category_name ? (document.documentElement.lang === 'zh-CN' ? c.category_name['zh-CN'] : c.category_name.en) : c.category;
  return `<li class="row ${st.caseId === c.id ? 'selected' : ''}" data-case="${c.id}" tabindex="0">
    <div class="line1">${clockDot(c.clock)}${data(c.public_no, 'no')} <span class="cls">${esc(asLabel(cls))}</span>
      <span class="state s-${esc(c.state)}">${esc(asLabel(stateName(c.state)))}</span>
      ${c.supervised ? `<span class="flag supervised">${esc(t('case.supervised'))}</span>` : ''}
      ${c.assignee ? `<span class="flag">${data(c.assignee)}</span>` : ''}</div>
    <div class="line2">${data(c.description || '—', 'desc')}</div>
    <div class="line3"><span title="${esc(when(c.clock?.deadline))}">${esc(dueText(c.clock))}</span> · ${data(c.grid_code || '')}
      ${c.photo_count ? ` · ${esc(t('desk.photos_n', { n: c.photo_count }))}` : ''}</div></li>`;
}

async function loadTasks({ more = false } = {}) {
  if (!st.me) return;
  const p = new URLSearchParams({ task: st.tab, limit: '50' });
  if (more && st.next) p.set('after', new URL(st.next, location.href).searchParams.get('after'));
  // only mine: a department's cases nobody else holds, filtered by the server (counts too)
  if (st.onlyMine && st.me.role === 'department_handler') p.set('mine', 'true');
  const ticket = Symbol('load');
  st.loading = ticket;
  const page = await api(`/me/tasks?${p}`);
  if (st.loading !== ticket) return;  // a newer request won (another tab, a later event)
  st.counts = page.counts || {};
  const items = page.items || [];
  st.items = more ? [...st.items, ...items] : items;
  st.next = page.next;
  for (const k of TABS) {
    const el = document.querySelector(`[data-count="${k}"]`);
    if (el) el.textContent = st.counts[k] ?? 0;
  }
  $('task-list').innerHTML = st.items.map(itemHtml).join('') || `<li class="empty">${esc(t('desk.empty'))}</li>`;
  $('task-more').hidden = !st.next;
  document.body.dataset.tasks = String(Date.now());
}

let pending = null;
function refreshTasks() {
  clearTimeout(pending);
  pending = setTimeout(() => { loadTasks().catch(() => {}); loadTeam().catch(() => {}); }, 100);
}

// -- the team ---------------------------------------------------------------------------------
async function loadTeam() {
  if (!st.me) return;
  st.team = await api('/desk/team').catch(() => null);
  const dept = st.team?.department;
  if (dept?.code) {
    $('dept').textContent = dept.name || dept.code;
    // the whole name and the code: a phone's top bar cuts the name short
    $('dept').title = dept.name && dept.name !== dept.code ? `${dept.name} (${dept.code})` : dept.code;
  }
  const box = $('team');
  if (!st.team || !st.team.team) { box.hidden = true; return; }
  const tm = st.team.team;
  box.hidden = false;
  box.innerHTML = `<h4>${esc(t('desk.team'))} ${data(tm.name || tm.code)}</h4><ul>${tm.members.map((m) =>
    `<li>${data(m.display_name || m.username)} ${m.leader ? `<span class="flag">${esc(t('desk.leader'))}</span>` : ''}
     <span class="muted">${esc(t('desk.load', { n: m.open_cases }))}</span></li>`).join('')}</ul>`;
}

// -- the case ---------------------------------------------------------------------------------
function actionForm(c, action) {
  const note = `<label>${esc(t(action === 'send_back' ? 'desk.reason' : 'desk.note'))}
    <textarea name="reason" rows="3" maxlength="4000" ${action === 'send_back' ? 'required' : ''}></textarea></label>`;
  // The browser's own file button speaks the browser's language: ours speaks the page's.
  const photos = `<div class="filepick"><span class="label">${esc(t('desk.photos'))}</span>
    <label class="button secondary">${esc(t('desk.choose_photos'))}<input type="file" name="photos"
      accept="image/jpeg,image/png,image/webp" multiple class="visually-hidden"></label>
    <span class="chosen muted">${esc(t('desk.no_photo'))}</span></div>`;
  if (action === 'send_back') return note;
  if (action === 'handle' || action === 'feed_back') return note + photos;
  if (action === 'assign') {
    const members = (st.team?.team?.members || []).filter((m) => !m.disabled);
    return `<label>${esc(t('case.field_assignee'))} <select name="assignee" required translate="no">
      <option value="" disabled selected>${esc(t('desk.choose'))}</option>
      ${members.map((m) => `<option value="${esc(m.username)}" ${m.username === c.assignee ? 'selected' : ''}>${esc(m.display_name || m.username)} (${esc(t('desk.load', { n: m.open_cases }))})</option>`).join('')}</select></label>`;
  }
  return '';
}

const ONE_CLICK = new Set(['accept']);

function stepButtons(c, actions) {
  return actions.map((a) => `<button type="button" data-action="${esc(a)}" class="${a === 'send_back' ? 'secondary' : ''}">${esc(actionName(a))}</button>`).join('') ||
    `<span class="muted">${esc(t('desk.no_step'))}</span>`;
}

function smallMap(c) {
  const el = $('case-map');
  if (!el || !c.location) return;
  if (st.map) st.map.remove();
  const [lon, lat] = [c.location.lon, c.location.lat];
  st.map = new maplibregl.Map({ container: el, attributionControl: false, interactive: true,
    center: [lon, lat], zoom: 16.5, fadeDuration: 0, transformRequest: withToken,
    locale: { 'NavigationControl.ZoomIn': t('desk.zoom_in'), 'NavigationControl.ZoomOut': t('desk.zoom_out') },
    style: { version: 8, sources: {
      grids: { type: 'vector', tiles: [`${location.origin}${ROOT}/collections/grids/tiles/WebMercatorQuad/{z}/{x}/{y}`], maxzoom: 16 },
      here: { type: 'geojson', data: { type: 'Point', coordinates: [lon, lat] } } },
    layers: [{ id: 'bg', type: 'background', paint: { 'background-color': '#f3f1ec' } },
      { id: 'grids', type: 'line', source: 'grids', 'source-layer': 'grids', paint: { 'line-color': '#4a7ab5', 'line-width': 1 } },
      { id: 'grid-now', type: 'line', source: 'grids', 'source-layer': 'grids', filter: ['==', ['get', 'code'], c.grid_code || ''],
        paint: { 'line-color': '#e66100', 'line-width': 3 } },
      { id: 'here', type: 'circle', source: 'here', paint: { 'circle-radius': 8, 'circle-color': '#d7301f', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } }] } });
  st.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
}

// A case my department sent back is no longer its case: GET /cases/{id} refuses it. The
// workbench then shows what it knows — the worklist's line, or the answer of the send-back.
function fromItem(item) {
  return { ...item, created_at: item.reported_at, department: null, history: [], photos: [] };
}

function ours(c) {
  return !st.me || st.me.role !== 'department_handler' || c.department === st.me.department;
}

async function loadCase(id) {
  const listed = st.items.find((x) => x.id === id);
  if (listed && listed.task === 'sent_back') return fromItem(listed);
  try {
    return await api(`/cases/${id}`);
  } catch (e) {
    if (e.status === 404 && listed) return fromItem(listed);
    throw e;
  }
}

async function showCase(id, { soft = false, known = null } = {}) {
  if (soft && $('step')) return st.current;
  st.caseId = Number(id);
  const forms = st.forms;
  const role = st.me ? st.me.role : 'department_handler';
  const c = known || await loadCase(st.caseId);
  // a step's answer about a case no longer ours has no context (class names, areas): the one
  // already shown for it stays (after a send-back the class read 'E0504 E0504')
  if (known && !known.context && st.current?.id === known.id) c.context = st.current.context;
  const act = ours(c)
    ? await api(`/map/cases/${id}/actions?role=${encodeURIComponent(role)}`)
    : { actions: [], version: c.version };
  if (st.forms !== forms || st.caseId !== Number(id)) return st.current;
  st.current = c;
  const leader = st.team?.team && st.team.me?.leader;
  const actions = act.actions.filter((a) => a !== 'assign' || leader);
  const gone = ours(c) ? '' : `<p class="note" id="not-ours">${esc(t('desk.not_ours'))}</p>`;
  $('case').innerHTML = `<article class="case" data-case-id="${c.id}">
    <h3 id="case-title">${esc(t('desk.case'))} ${data(c.public_no)}
      <b id="case-state" data-state="${esc(c.state)}" class="state s-${esc(c.state)}">${esc(asLabel(stateName(c.state)))}</b>
      ${c.supervised ? `<span class="flag supervised">${esc(t('case.supervised'))}</span>` : ''}</h3>
    ${clockLine(c)}${gone}
    <div class="two">
      <div class="left"><p class="desc">${data(c.description || '—')}</p>${reportPhotos(c)}${facts(c)}</div>
      <div id="case-map" class="case-map" aria-label="${esc(t('desk.map'))}"></div>
    </div>
    ${ours(c) ? `<section class="steps"><h4>${esc(t('desk.steps'))}</h4>
      <div class="actions" data-version="${act.version}">${stepButtons(c, actions)}</div><div id="step-form"></div></section>` : ''}
    ${c.history?.length ? `<section><h4>${esc(t('case.label_history'))}</h4>${historyList(c)}</section>` : ''}</article>`;
  fillPhotos($('case'));
  smallMap(c);
  document.dispatchEvent(new CustomEvent('gridcore:case', { detail: { case: c, root: $('case'), reload: async () => { await loadTasks(); await showCase(c.id); } } }));
  for (const li of document.querySelectorAll('#task-list .row')) li.classList.toggle('selected', Number(li.dataset.case) === st.caseId);
  return c;
}

function openForm(action, version) {
  if (ONE_CLICK.has(action)) return submit(action, new FormData(), version);
  st.forms += 1;
  $('step-form').innerHTML = stepFormHtml(action, actionForm(st.current, action), t('desk.cancel'));
  const form = $('step');
  const file = form.querySelector('input[type=file]');
  if (file) {
    file.onchange = () => {
      const names = [...file.files].map((f) => f.name);
      form.querySelector('.chosen').innerHTML = names.length  // file names are data
        ? `${esc(t('desk.photos_chosen', { n: names.length }))} ${listOf(names.map((n) => data(n)))}`
        : esc(t('desk.no_photo'));
    };
  }
  $('step-cancel').onclick = () => { $('step-form').innerHTML = ''; };
  form.onsubmit = (ev) => {
    ev.preventDefault();
    if (!filled(form, 'desk.required')) return;
    submit(action, new FormData(form), version, form.querySelector('.error'));
  };
  (form.querySelector('textarea, select, input') || form).focus();
  return null;
}

// Steps with photos go as multipart (the same route takes JSON or a form).
async function submit(action, form, version, errorBox = null) {
  // one step at a time: a double click (or a second click before the answer) sent the step
  // twice; the second was refused or replayed, and the page drew twice
  if (st.submitting) return;
  st.submitting = true;
  try {
    await send(action, form, version, errorBox);
  } finally {
    st.submitting = false;
  }
}

async function send(action, form, version, errorBox) {
  const id = st.caseId;
  const body = new FormData();
  for (const [k, v] of form) {
    if (v instanceof File) { if (v.size) body.append('photos', v, v.name); } else if (String(v).trim()) body.append(k, v);
  }
  body.append('expected_version', String(version));
  try {
    const r = await fetch(`${ROOT}/cases/${id}/${action}`, { method: 'POST', body,
      headers: { Accept: 'application/json', 'Accept-Language': document.documentElement.lang, ...who.headers() } });
    const answer = await r.json().catch(() => null);
    if (!r.ok) throw new Error((answer && (answer.detail || answer.title)) || `${r.status}`);
    const forms = st.forms;
    await loadTasks();
    // After a send-back the case is no longer ours: its step's answer is the last we see. A form
    // opened meanwhile (the live event drew the new state first) is the user's next step: kept.
    await showCase(id, { known: ours(answer) ? null : answer, soft: st.forms !== forms });
    toast(esc(t('desk.done', { action: actionName(action), no: answer.public_no })), { kind: 'ok', timeout: 4000 });
  } catch (e) {
    const box = errorBox || $('step-form');
    box.textContent = e.message;
    box.classList.add('error');
  }
}

// -- who ----------------------------------------------------------------------------------
async function whoAmI() {
  if (!who.token) { st.me = null; showSignedOut(); return; }
  try {
    st.me = await api('/auth/me');
    $('me').textContent = `${st.me.username} · ${roleLabel(st.me.role)}`;
    $('me').title = $('me').textContent;  // cut short on a phone's top bar
    $('dept').textContent = st.me.department || '';
    $('dept').title = st.me.department || '';
    $('signin').hidden = true; $('signed-in').hidden = false;
  } catch (e) { who.setToken(null); st.me = null; showSignedOut(); }
}

function showSignedOut() {
  $('signin').hidden = false; $('signed-in').hidden = true;
  $('task-list').innerHTML = `<li class="empty">${esc(t('desk.sign_in_first'))}</li>`;
}

function onEvent(e) {
  refreshTasks();
  if (st.caseId === e.case_id) showCase(st.caseId, { soft: true }).catch(() => {});
  if (e.notify) st.notify(e);
}

function wire() {
  // A form opened elsewhere in the case (the coordination section's steps) counts as one of
  // ours: a redraw begun before it opened leaves it alone.
  document.addEventListener('gridcore:form', () => { st.forms += 1; });
  $('tabs').onclick = (ev) => {
    const b = ev.target.closest('[data-tab]');
    if (!b) return;
    st.tab = b.dataset.tab;
    st.picked = true;
    renderTabs();
    loadTasks();
  };
  $('only-mine').onchange = () => { st.onlyMine = $('only-mine').checked; loadTasks(); };
  $('task-more').onclick = () => loadTasks({ more: true });
  // On a phone the case is drawn below the worklist, off screen: it is scrolled to once shown.
  const narrow = window.matchMedia('(max-width: 700px)');
  const pick = (ev) => {
    const li = ev.target.closest('[data-case]');
    if (!li) return;
    showCase(Number(li.dataset.case)).then(() => {
      if (narrow.matches) $('case').scrollIntoView({ block: 'start' });
    });
  };
  $('task-list').onclick = pick;
  $('task-list').onkeydown = (ev) => { if (ev.key === 'Enter') pick(ev); };
  $('case').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-action]');
    // (取消 empties the step form before this hears its click: the form is then detached)
    if (b && b.parentElement?.classList.contains('actions')) openForm(b.dataset.action, b.parentElement.dataset.version);
    const link = ev.target.closest('[data-case]');
    if (link && !b) showCase(Number(link.dataset.case));
  });
  $('signin').onsubmit = (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    signIn($('username').value, $('password').value).then(start2).catch((e) => { $('signin-error').textContent = e.message; });
  };
  $('signout').onclick = () => { who.setToken(null); st.me = null; st.picked = false; showSignedOut(); if (st.events) st.events.restart(); };
  st.notify = notices((id) => showCase(id));
}

// At sign-in the desk opens on the first bucket that holds cases: a handler whose cases are
// all in handling saw an empty 待签收 and had to look for them. Later the handler's choice stays.
async function openOnWork() {
  if (st.picked || (st.counts[st.tab] ?? 0) > 0) return;
  const full = TABS.find((k) => (st.counts[k] ?? 0) > 0);
  if (!full) return;
  st.tab = full;
  renderTabs();
  await loadTasks();
}

async function start2() {
  await whoAmI();
  if (st.events) st.events.restart();
  // (no turn of the event loop between the first list and the choice: a click waits for it)
  await Promise.all([loadTasks().then(openOnWork), loadTeam()]);
}

async function start() {
  await loadMessages(['common', 'desk', 'case', 'notify', 'time']);
  renderTabs();
  wire();
  wireLightbox();
  await start2();
  st.events = connectEvents({ onEvent, onState: setLive });
  window.gridcore = { desk: st, showCase, loadTasks, live: st };
  document.body.dataset.ready = '1';
}

start().catch((e) => { $('status').hidden = false; $('status').textContent = `${t('desk.failed')}: ${e.message}`; });
