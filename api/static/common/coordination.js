// Coordination on a case (协同处置 · 吹哨报到 · 上报 · 会商), in the case panel of the desk's
// pages (the map's drawer, the department workbench): the whistles and who reported in, the
// assisting departments' tasks with their feedback and photos, whether the lead's feedback
// waits for them, where an escalation goes, and the consultation thread. The steps offered
// are the server's (GET /cases/{id}/coordination): 报到 only while a whistle waits for the
// caller's department, 协同反馈 only on its open task. A panel announces a shown case with the
// `gridcore:case` event ({ case, root, reload }); this module adds its section to it.
import { loadMessages, t } from '../i18n.js';
import { ROOT, api, who } from './api.js';
import { photoStrip } from './case_view.js';
import {
  actionName, data, esc, fillPhotos, levelName, limitText, listOf, stepFormHtml, toast, when,
} from './ui.js';

const STEPS = ['escalate', 'whistle', 'report_in', 'assist', 'assist_done', 'release'];
const LIMITS = { whistle: ['30m', '1h', '2h', '1wd'], assist: ['', '2h', '1wd', '3wd', '5wd'] };
const ready = loadMessages(['coord']).catch(() => {});
// open: the step form the user has open ({ caseId, step, form }); draft: the 会商 message form
// once the user typed or chose photos in it ({ caseId, form }). A redraw of the section (a live
// event, a step's own reload, a sent message) puts them back as they were instead of wiping them.
const st = { caseId: null, c: null, state: null, root: null, reload: null, thread: [], open: null, draft: null };

const deptLabel = (p) => data(p.name ? `${p.name} (${p.department || p.code})` : (p.department || p.code));

function whistleRow(w) {
  const status = w.reported_at
    ? `<span class="flag ${w.on_time ? 'ok' : 'late'}">${esc(t(w.on_time ? 'coord.reported_on_time' : 'coord.reported_late'))}</span><br><time>${esc(when(w.reported_at))}</time>`
    : `<span class="flag ${w.overdue ? 'late' : 'waiting'}">${esc(t(w.overdue ? 'coord.report_overdue' : 'coord.report_waiting'))}</span>`;
  return `<tr data-whistle="${esc(w.department)}"><td>${deptLabel(w)}</td><td>${esc(limitText(w.limit))}</td>
    <td><time>${esc(when(w.deadline_at))}</time></td><td class="coord-status">${status}</td></tr>`;
}

// The photos of a department's 协同反馈: those of its assist_done step in the history.
function taskPhotos(c, department) {
  const step = (c?.history || []).find((h) => h.action === 'assist_done' && h.details?.department === department);
  if (!step) return '';
  const ns = (c.photos || []).map((p, i) => ({ ...p, n: p.n ?? i + 1 })).filter((p) => p.history_id === step.id).map((p) => p.n);
  return ns.map((n) => photoStrip(c.id, 1, n)).join('');
}

function taskRow(k, c) {
  const state = k.state === 'open' && k.overdue ? 'overdue' : k.state;
  const answer = k.state === 'done' ? `${data(k.feedback || '')} <span class="muted">${data(k.done_by || '')} · <time>${esc(when(k.done_at))}</time></span>`
    : k.state === 'released' ? `${data(k.release_reason || '')} <span class="muted"><time>${esc(when(k.released_at))}</time></span>` : '';
  return `<tr data-task="${esc(k.department)}" data-task-state="${esc(k.state)}"><td>${deptLabel(k)}</td>
    <td>${esc(limitText(k.limit))}</td><td><time>${esc(when(k.deadline_at))}</time></td>
    <td class="coord-status"><span class="flag task-${esc(state)}">${esc(t(`coord.task_${state}`))}</span></td>
    <td>${answer}<div class="photos">${taskPhotos(c, k.department)}</div></td></tr>`;
}

function messageHtml(m) {
  const shots = (m.attachments || []).filter((a) => a.url).map((a) =>
    `<img class="thumb" alt="${esc(t('coord.photo_n', { n: a.n }))}" data-src="${esc(ROOT + a.url)}" data-large="${esc(ROOT + a.url)}">`).join('');
  return `<li data-message="${m.id}"><div class="h1"><b>${data(m.author)}</b>
    <span class="muted">${m.department ? data(m.department) + ' · ' : ''}${esc(t(`case.role_${m.role}`))}</span>
    <time>${esc(when(m.at))}</time></div><div class="body">${data(m.body)}</div>
    ${shots ? `<div class="photos">${shots}</div>` : ''}</li>`;
}

function render() {
  const s = st.state, c = st.c;
  const waits = s.lead_feedback_waits_for || [];
  const name = (code) => (s.assisting.find((k) => k.department === code) || {}).name;
  const steps = s.steps.map((a) => `<button type="button" data-coord-step="${esc(a)}" class="${a === 'release' || a === 'escalate' ? 'secondary' : ''}">${esc(t(`coord.step_${a}`))}</button>`).join('');
  const html = `<h4>${esc(t('coord.title'))}</h4>
    <p class="lead">${esc(t('coord.lead'))}${esc(t('common.sep_label'))}${s.lead ? deptLabel(s.lead) : `<span class="muted">${esc(t('coord.no_lead'))}</span>`}
      ${waits.length ? `<span class="flag waiting" id="coord-waits">${esc(t('coord.lead_waits', { n: waits.length }))} ${listOf(waits.map((d) => data(name(d) || d)))}</span>` : ''}</p>
    ${s.whistles.length ? `<h5>${esc(t('coord.whistles'))}</h5><table class="coord-table" id="coord-whistles"><thead><tr>
      <th>${esc(t('coord.department'))}</th><th>${esc(t('coord.limit'))}</th><th>${esc(t('coord.deadline'))}</th><th>${esc(t('coord.status'))}</th></tr></thead>
      <tbody>${s.whistles.map(whistleRow).join('')}</tbody></table>` : ''}
    ${s.assisting.length ? `<h5>${esc(t('coord.tasks'))}</h5><table class="coord-table" id="coord-tasks"><thead><tr>
      <th>${esc(t('coord.department'))}</th><th>${esc(t('coord.limit'))}</th><th>${esc(t('coord.deadline'))}</th><th>${esc(t('coord.status'))}</th><th>${esc(t('coord.answer'))}</th></tr></thead>
      <tbody>${s.assisting.map((k) => taskRow(k, c)).join('')}</tbody></table>` : ''}
    ${!s.whistles.length && !s.assisting.length ? `<p class="muted" id="coord-none">${esc(t('coord.none'))}</p>` : ''}
    ${s.escalate_to && s.steps.includes('escalate') ? `<p class="muted" id="coord-escalate-to">${esc(t('coord.escalate_to'))} ${deptLabel(s.escalate_to)} · ${esc(levelName(s.escalate_to.level))}</p>` : ''}
    <div class="coord-actions" id="coord-actions" data-version="${s.version}">${steps}</div><div id="coord-form"></div>
    <h5>${esc(t('coord.thread'))} <span class="muted" id="coord-count">(${esc(s.messages)})</span></h5>
    <ol class="thread" id="coord-thread">${st.thread.map(messageHtml).join('') || `<li class="empty muted">${esc(t('coord.thread_empty'))}</li>`}</ol>
    <form id="coord-message" class="coord-message" novalidate>
      <label>${esc(t('coord.message'))} <textarea name="body" rows="2" required maxlength="4000"></textarea></label>
      <div class="filepick"><label class="button secondary">${esc(t('coord.attach_photos'))}<input type="file" name="photos"
        accept="image/jpeg,image/png,image/webp" multiple class="visually-hidden"></label>
        <span class="chosen muted">${esc(t('coord.no_photo'))}</span></div>
      <div class="buttons"><button type="submit">${esc(t('coord.send'))}</button></div><p class="error" role="alert"></p></form>`;
  let box = st.root.querySelector('#coordination');
  if (!box) {
    box = document.createElement('section');
    box.id = 'coordination';
    box.className = 'coordination';
    // after the steps (a party has none: after the case's facts), before the history
    const anchor = st.root.querySelector('section.steps') || st.root.querySelector('article > .two');
    if (anchor) anchor.after(box); else st.root.querySelector('article')?.append(box);
  }
  box.innerHTML = html;
  fillPhotos(box);
  const message = box.querySelector('#coord-message');
  if (st.draft?.caseId === st.caseId && st.draft.form !== message) message.replaceWith(st.draft.form);
  else { wireFiles(message); watchDraft(message); }
  const open = st.open;
  if (open?.caseId === st.caseId && s.steps.includes(open.step)) box.querySelector('#coord-form').append(open.form);
  else st.open = null;
  box.dataset.ready = String(Date.now());
}

// A message being written is the user's: kept across redraws until it is sent.
function watchDraft(form) {
  const keep = () => {
    const typed = form.querySelector('textarea').value.trim() || form.querySelector('input[type=file]').files.length;
    st.draft = typed ? { caseId: st.caseId, form } : null;
  };
  form.addEventListener('input', keep);
  form.addEventListener('change', keep);
}

function checkboxes(candidates) {
  return `<fieldset class="depts" id="coord-depts"><legend>${esc(t('coord.departments'))}</legend>${candidates.map((d) =>
    `<label class="check"><input type="checkbox" name="departments" value="${esc(d.code)}"> ${data(d.name)} <span class="muted">${data(d.code)}${d.level ? ' · ' + esc(levelName(d.level)) : ''}</span></label>`).join('')
    || `<span class="muted">${esc(t('coord.no_candidates'))}</span>`}</fieldset>`;
}

function limitSelect(step) {
  return `<label>${esc(t('coord.limit'))} <select name="new_limit">${LIMITS[step].map((l) =>
    `<option value="${esc(l)}">${esc(l ? limitText(l) : t('coord.class_limit'))}</option>`).join('')}</select></label>`;
}

function photoPick() {
  return `<div class="filepick"><label class="button secondary">${esc(t('coord.attach_photos'))}<input type="file" name="photos"
    accept="image/jpeg,image/png,image/webp" multiple class="visually-hidden"></label>
    <span class="chosen muted">${esc(t('coord.no_photo'))}</span></div>`;
}

function fields(step) {
  const s = st.state;
  const note = (key, required) => `<label>${esc(t(key))} <textarea name="reason" rows="2" ${required ? 'required' : ''}></textarea></label>`;
  if (step === 'whistle' || step === 'assist') {
    return checkboxes(s.candidates) + limitSelect(step) + note(step === 'assist' ? 'coord.task_text' : 'coord.note', false);
  }
  if (step === 'release') {
    return `<label>${esc(t('coord.department'))} <select name="department" required>${s.open_tasks.map((d) =>
      `<option value="${esc(d)}">${data((s.assisting.find((k) => k.department === d) || {}).name || d)} (${esc(d)})</option>`).join('')}</select></label>${note('coord.reason', true)}`;
  }
  if (step === 'assist_done') return note('coord.feedback', true) + photoPick();
  if (step === 'escalate') return note('coord.reason', true);
  return note('coord.note', false);  // report_in
}

function wireFiles(form) {
  const file = form?.querySelector('input[type=file]');
  if (!file) return;
  file.onchange = () => {
    const names = [...file.files].map((f) => f.name);
    form.querySelector('.chosen').innerHTML = names.length
      ? `${esc(t('coord.photos_chosen', { n: names.length }))} ${listOf(names.map((n) => data(n)))}` : esc(t('coord.no_photo'));
  };
}

// The step form reuses the panels' form (id "step"): a panel refreshing on a live event leaves
// an open form alone, whoever's it is.
function openForm(step) {
  const box = st.root.querySelector('#coord-form');
  box.innerHTML = stepFormHtml(step, fields(step), t('coord.cancel'));
  const form = box.querySelector('form');
  form.querySelector('button[type=submit]').textContent = t(`coord.step_${step}`);
  wireFiles(form);
  const open = { caseId: st.caseId, step, form };
  st.open = open;
  // the panel showing the case: a redraw it began before this form opened must not wipe it
  document.dispatchEvent(new CustomEvent('gridcore:form'));
  form.querySelector('#step-cancel').onclick = () => { form.remove(); if (st.open === open) st.open = null; };
  form.onsubmit = (ev) => { ev.preventDefault(); submit(step, form); };
  // a hint about what is missing goes as soon as the user supplies it, not at the next submit
  const clearHint = () => {
    const error = form.querySelector('.error');
    if (error?.dataset.hint) { error.textContent = ''; delete error.dataset.hint; }
  };
  form.addEventListener('change', clearHint);
  form.addEventListener('input', clearHint);
  (form.querySelector('textarea, select, input') || form).focus();
}

async function submit(step, form) {
  const error = form.querySelector('.error');
  const fd = new FormData(form);
  const departments = fd.getAll('departments');
  if ((step === 'whistle' || step === 'assist') && !departments.length) {
    error.textContent = t('coord.pick_departments');
    error.dataset.hint = '1';
    return;
  }
  const reason = String(fd.get('reason') || '').trim();
  if (form.querySelector('textarea[required]') && !reason) {
    error.textContent = t('coord.required');
    error.dataset.hint = '1';
    return;
  }
  const version = Number(st.state.version);
  try {
    if (step === 'assist_done') {  // with photos: multipart
      const body = new FormData();
      body.append('reason', reason);
      body.append('expected_version', String(version));
      for (const f of fd.getAll('photos')) if (f instanceof File && f.size) body.append('photos', f, f.name);
      const r = await fetch(`${ROOT}/cases/${st.caseId}/${step}`, { method: 'POST', body,
        headers: { Accept: 'application/json', 'Accept-Language': document.documentElement.lang, ...who.headers() } });
      const answer = await r.json().catch(() => null);
      if (!r.ok) throw new Error((answer && (answer.detail || answer.title)) || `${r.status}`);
    } else {
      const json = { expected_version: version };
      if (reason) json.reason = reason;
      if (departments.length) json.departments = departments;
      if (fd.get('new_limit')) json.new_limit = fd.get('new_limit');
      if (fd.get('department')) json.department = fd.get('department');
      await api(`/cases/${st.caseId}/${step}`, { method: 'POST', json });
    }
    toast(esc(t('coord.done', { step: t(`coord.step_${step}`), no: st.state.public_no })), { kind: 'ok', timeout: 4000 });
    if (st.open?.form === form) st.open = null;
    form.remove();
    if (st.reload) await st.reload(); else await show({ case: st.c, root: st.root });
  } catch (e) {
    delete error.dataset.hint;  // the server's answer stays until the next try
    error.textContent = e.message;
  }
}

async function sendMessage(form) {
  const error = form.querySelector('.error');
  const fd = new FormData(form);
  const body = String(fd.get('body') || '').trim();
  if (!body) { error.textContent = t('coord.required'); return; }
  const out = new FormData();
  out.append('body', body);
  for (const f of fd.getAll('photos')) if (f instanceof File && f.size) out.append('photos', f, f.name);
  const r = await fetch(`${ROOT}/cases/${st.caseId}/messages`, { method: 'POST', body: out,
    headers: { Accept: 'application/json', 'Accept-Language': document.documentElement.lang, ...who.headers() } });
  const answer = await r.json().catch(() => null);
  if (!r.ok) { error.textContent = (answer && (answer.detail || answer.title)) || `${r.status}`; return; }
  if (st.draft?.form === form) st.draft = null;  // sent: the next redraw brings an empty form
  await show({ case: st.c, root: st.root, reload: st.reload });
}

export async function show({ case: c, root, reload = null }) {
  await ready;
  const id = Number(c.id);
  st.caseId = id; st.c = c; st.root = root; st.reload = reload;
  const [state, thread] = await Promise.all([
    api(`/cases/${id}/coordination`).catch(() => null),
    api(`/cases/${id}/messages`).catch(() => ({ messages: [] }))]);
  if (st.caseId !== id || !state) return;
  st.state = state;
  st.thread = thread.messages || [];
  // A department beside the lead reads the case as a party, not as one it sent back.
  const mine = state.my_department;
  if (mine && mine !== state.lead?.code && [...state.whistles, ...state.assisting].some((p) => p.department === mine)) {
    root.querySelector('#not-ours')?.remove();
  }
  // The panel's own step buttons leave these to this section, whose offer the server made.
  const actions = root.querySelector('.steps .actions');
  if (actions) {
    for (const b of actions.querySelectorAll('[data-action]')) if (STEPS.includes(b.dataset.action)) b.remove();
    if (!actions.querySelector('[data-action]') && !actions.querySelector('.muted')) {
      actions.insertAdjacentHTML('beforeend', `<span class="muted">${esc(t('coord.no_other_step'))}</span>`);
    }
  }
  render();
}

// A department's own whistles and assisting tasks, beside the workbench's worklist.
export async function loadPartyTasks() {
  const box = document.getElementById('party-tasks');
  if (!box) return;
  await ready;
  const page = await api('/cases/party-tasks').catch(() => null);
  if (!page || !page.department) { box.hidden = true; return; }
  box.hidden = false;
  document.getElementById('party-list').innerHTML = page.items.map((i) => `<li class="row" data-party-case="${i.id}" data-kind="${esc(i.kind)}" tabindex="0">
    <div class="line1">${data(i.public_no, 'no')} <span class="flag waiting">${esc(t(`coord.party_${i.kind}`))}</span></div>
    <div class="line2">${data(i.description || '—', 'desc')}</div>
    <div class="line3"><time>${esc(when(i.deadline_at))}</time> · ${data(i.lead || '')}</div></li>`).join('')
    || `<li class="empty">${esc(t('coord.party_empty'))}</li>`;
  box.dataset.ready = String(Date.now());
}

document.addEventListener('gridcore:case', (ev) => { show(ev.detail).then(loadPartyTasks).catch(() => {}); });
document.addEventListener('click', (ev) => {
  const row = ev.target.closest('[data-party-case]');
  if (row && window.gridcore?.showCase) window.gridcore.showCase(Number(row.dataset.partyCase));
});
// The workbench signs in after this module loads: look again once it is ready.
const waitReady = setInterval(() => {
  if (document.body.dataset.ready) { clearInterval(waitReady); loadPartyTasks(); }
}, 200);
document.addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-coord-step]');
  if (b && st.state) openForm(b.dataset.coordStep);
});
document.addEventListener('submit', (ev) => {
  if (ev.target.id !== 'coord-message') return;
  ev.preventDefault();
  sendMessage(ev.target).catch((e) => { ev.target.querySelector('.error').textContent = e.message; });
});
window.gridcoreCoordination = { show, st, actionName };
