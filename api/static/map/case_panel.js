// A case in the drawer: what it is, its clock, photos, the dispatch proposal and why, the steps
// the signed-in role may take now (dispatch preselects the proposal; another department asks
// for the reason), duplicate candidates side by side with one-click merging, the reports
// merged into it, and its history — every time in the one city format.
import { t } from '../i18n.js';
import { api } from '../common/api.js';
import { clockLine, facts, historyList, photoStrip, reportPhotos } from '../common/case_view.js';
import { filled } from '../common/notices.js';
import {
  $, actionName, asLabel, data, esc, fieldName, fillPhotos, levelName, roleName, span, stateName,
  listOf, stepFormHtml, when,
} from '../common/ui.js';

export const panel = { config: null, role: () => 'dispatcher', onChanged: async () => {},
  showGrid: () => {}, caseId: null, current: null, forms: 0 };

const NEEDS_FORM = new Set(['department', 'reason', 'check_result', 'new_limit', 'primary_case_id', 'assignee']);

function deptName(code) {
  const d = panel.config.departments.find((x) => x.code === code);
  return d ? d.name : code;
}

function basisText(c) {
  const b = c.context?.proposal?.basis || {};
  const parts = [];
  if (b.source === 'rule' && b.rule) {
    const r = b.rule;
    parts.push(t('case.basis_rule', { id: r.id, category: r.category_key,
      level: levelName(r.area_level), area: r.area_code || '' }));
  } else if (b.source === 'part-maintenance' || b.source === 'part-owner') {
    parts.push(t(b.source === 'part-owner' ? 'case.basis_part_owner' : 'case.basis_part_maintenance',
      { part: b.part?.code || c.part_code || '', distance: b.part?.distance_m ?? '—' }));
  } else {
    parts.push(t('case.basis_none'));
  }
  if (b.reproposed) parts.push(t('case.basis_reproposed'));
  return parts.join(' · ');
}

function proposalBox(c) {
  const p = c.proposal || {};
  const name = c.context?.proposal?.department_name;
  const refused = listOf((p.refused_departments || []).map((d) => data(d)));
  return `<section class="proposal" id="proposal">
    <h4>${esc(t('map.proposal'))}</h4>
    <p><b id="proposal-dept" data-code="${esc(p.department || '')}">${p.department ? data(`${name || ''} (${p.department})`) : esc(t('map.no_proposal'))}</b></p>
    <p class="basis" id="proposal-basis">${esc(basisText(c))}</p>
    ${refused ? `<p class="refused">${esc(t('map.refused_by'))} ${refused}</p>` : ''}</section>`;
}

function duplicateCard(c, d, later) {
  const o = d.case || {};
  const score = d.score !== null && d.score !== undefined ? Math.round(d.score * 100) : null;
  const apart = span(d.seconds_apart || 0);
  const mine = (c.photos || []).length;
  const open = o.open !== false;
  const buttons = !open || c.primary_case_id ? `<span class="muted">${esc(stateName(o.state))}</span>` : later
    ? `<button type="button" data-merge-into="${c.id}" data-merge-case="${o.id}">${esc(t('map.merge_into_this'))}</button>`
    : `<button type="button" data-merge-into="${o.id}" data-merge-case="${c.id}">${esc(t('map.merge_this_into', { no: o.public_no }))}</button>
       <button type="button" class="secondary" data-merge-into="${c.id}" data-merge-case="${o.id}">${esc(t('map.merge_into_this'))}</button>`;
  return `<li class="dup" data-dup="${o.id}">
    <div class="dup-head"><span class="case-link" data-case="${o.id}">${data(o.public_no)}</span>
      <span class="state s-${esc(o.state)}">${esc(stateName(o.state))}</span>
      ${score !== null ? `<b class="score" title="${esc(t('map.score'))}">${esc(t('map.score_pct', { n: score }))}</b>` : ''}</div>
    <div class="dup-facts">${esc(t('map.distance_m', { n: d.distance_m ?? '—' }))} · ${esc(t('map.apart', { span: apart }))}
      · ${esc(when(o.created_at))}</div>
    <div class="dup-desc">${data(o.description || '—')}</div>
    <div class="side-by-side"><figure><figcaption>${esc(t('map.this_case'))}</figcaption>${mine ? photoStrip(c.id, 1) : `<span class="photo-none">${esc(t('map.no_photo'))}</span>`}</figure>
      <figure><figcaption>${data(o.public_no)}</figcaption>${o.photo_count ? photoStrip(o.id, 1) : `<span class="photo-none">${esc(t('map.no_photo'))}</span>`}</figure></div>
    <div class="dup-actions">${buttons}</div></li>`;
}

function duplicatesBox(c) {
  const earlier = c.context?.duplicates || [];
  const later = c.context?.later_duplicates || [];
  if (!earlier.length && !later.length) return '';
  return `<section class="duplicates" id="duplicates"><h4>${esc(t('map.duplicates'))}</h4>
    <ol class="dups">${earlier.map((d) => duplicateCard(c, d, false)).join('')}${later.map((d) => duplicateCard(c, d, true)).join('')}</ol></section>`;
}

function mergedBox(c) {
  const merged = c.context?.merged || [];
  if (!merged.length) return '';
  return `<section class="merged" id="merged"><h4>${esc(t('map.merged_reports', { n: merged.length }))}</h4><ul>
    ${merged.map((m) => `<li><span class="case-link" data-case="${m.id}">${data(m.public_no)}</span> ${data(m.reporter || '—')} · ${esc(when(m.created_at))}
      ${m.photo_count ? photoStrip(m.id, 1) : ''}<br>${data(m.description || '')}</li>`).join('')}</ul></section>`;
}

function outcomeBox(c) {
  if (!c.outcome) return '';
  const o = c.outcome;
  return `<section class="outcome" id="outcome"><h4>${esc(t('map.outcome'))}</h4>
    <p>${esc(t('map.merged_into'))} <span class="case-link" data-case="${o.primary_case_id}">${data(o.primary_public_no)}</span>
    · <b id="outcome-state" data-state="${esc(o.state)}">${esc(stateName(o.state))}</b>${o.closed_at ? ` · ${esc(when(o.closed_at))}` : ''}</p></section>`;
}

export async function showCase(id, { soft = false } = {}) {
  if (soft && $('step')) return panel.current;
  panel.caseId = Number(id);
  const role = panel.role();
  const forms = panel.forms;
  // A case the caller may read but not work on (one they filed outside their areas): no steps.
  const [c, act] = await Promise.all([api(`/cases/${id}`),
    api(`/map/cases/${id}/actions?role=${encodeURIComponent(role)}`)
      .catch((e) => (e.status === 404 ? { actions: [], version: null } : Promise.reject(e)))]);
  // A form opened while this was loading wins; so does a newer case.
  if (panel.forms !== forms || panel.caseId !== Number(id)) return panel.current;
  if (!c.clock && c.state && !['closed', 'voided', 'merged'].includes(c.state)) {
    // No live clock (a case loaded without its stage limit): the stored marks' colour, as
    // the map's tiles draw it.
    const feature = await api(`/collections/cases/items/${id}`).catch(() => null);
    const colour = feature?.properties?.clock;
    if (colour && colour !== 'none') c.clock = { colour, deadline: feature.properties.deadline_at };
  }
  panel.current = c;
  const buttons = act.actions.map((a) => `<button type="button" data-action="${esc(a)}">${esc(actionName(a))}</button>`).join('') ||
    `<span class="muted">${esc(t('map.no_step', { role: roleName(role) }))}</span>`;
  $('details').innerHTML = `<article class="case" data-case-id="${c.id}">
    <h3 id="case-title">${esc(t('map.case'))} ${data(c.public_no)}
      <b id="case-state" data-state="${esc(c.state)}" class="state s-${esc(c.state)}">${esc(asLabel(stateName(c.state)))}</b>
      ${c.supervised ? `<span class="flag supervised" id="case-supervised">${esc(t('map.supervised'))}</span>` : ''}</h3>
    ${clockLine(c)}
    <p class="desc">${data(c.description || '—')}</p>
    ${reportPhotos(c)}
    ${facts(c, deptName)}
    ${outcomeBox(c)}
    ${proposalBox(c)}
    <section class="steps"><h4>${esc(t('map.steps'))}</h4>
      <div class="actions" data-version="${act.version}">${buttons}</div><div id="step-form"></div></section>
    ${duplicatesBox(c)}
    ${mergedBox(c)}
    <section><h4>${esc(t('map.history'))}</h4>${historyList(c)}</section></article>`;
  $('details').dataset.caseId = c.id;
  fillPhotos($('details'));
  // a step of the coordination section is one of this page's: the queue follows it too
  document.dispatchEvent(new CustomEvent('gridcore:case', { detail: { case: c, root: $('details'),
    reload: async () => { await panel.onChanged(c.id); await showCase(c.id); } } }));
  return c;
}

function field(name, c) {
  const label = esc(fieldName(name));
  if (name === 'department') {
    const proposed = c.proposal?.department || '';
    const options = panel.config.departments.map((d) => `<option value="${esc(d.code)}" ${d.code === proposed ? 'selected' : ''}>${esc(d.name)} (${esc(d.code)})${d.code === proposed ? ' — ' + esc(t('map.proposed')) : ''}</option>`).join('');
    return `<label>${label} <select name="department" translate="no" data-proposed="${esc(proposed)}">${proposed ? '' : `<option value="" selected disabled>${esc(t('map.choose'))}</option>`}${options}</select></label>
      <label class="override" hidden>${esc(t('map.override_reason'))} <textarea name="reason" rows="2" data-override="1"></textarea></label>`;
  }
  if (name === 'check_result') {
    return `<label>${label} <select name="check_result"><option value="pass">${esc(t('case.check_pass'))}</option><option value="fail">${esc(t('case.check_fail'))}</option></select></label>`;
  }
  if (name === 'reason') return `<label>${label} <textarea name="reason" rows="2" required></textarea></label>`;
  if (name === 'new_limit') return `<label>${label} <input name="new_limit" required placeholder="3wd" translate="no"></label>`;
  if (name === 'primary_case_id') return `<label>${label} <input name="primary_case_id" required inputmode="numeric"></label>`;
  return `<label>${label} <input name="${esc(name)}" required></label>`;
}

export function stepForm(action, version) {
  const c = panel.current;
  const needs = panel.config.actions[action]?.requires || [];
  if (!needs.some((n) => NEEDS_FORM.has(n))) return submitStep(action, { expected_version: Number(version) });
  const fields = needs.map((n) => field(n, c)).join('');
  panel.forms += 1;
  $('step-form').innerHTML = stepFormHtml(action, fields, t('map.cancel'));
  const form = $('step');
  const dept = form.querySelector('select[name=department]');
  if (dept) {
    const sync = () => {
      const differs = dept.dataset.proposed && dept.value !== dept.dataset.proposed;
      const box = form.querySelector('.override');
      box.hidden = !differs;
      box.querySelector('textarea').required = !!differs;
    };
    dept.onchange = sync;
    sync();
  }
  $('step-cancel').onclick = () => { $('step-form').innerHTML = ''; };
  form.onsubmit = (ev) => {
    ev.preventDefault();
    if (!filled(form, 'map.required')) return;
    const body = { expected_version: Number(version) };
    for (const [k, v] of new FormData(form)) {
      if (v === '') continue;
      body[k] = k === 'primary_case_id' ? Number(v) : v;
    }
    if (body.department && body.department === dept?.dataset.proposed) delete body.reason;
    submitStep(action, body, form.querySelector('.error'));
  };
  (form.querySelector('select, textarea, input') || form).focus();
  return null;
}

export async function submitStep(action, body, errorBox = null, caseId = panel.caseId) {
  try {
    await api(`/cases/${caseId}/${action}`, { method: 'POST', json: body });
    const forms = panel.forms;
    await panel.onChanged(caseId);
    // The case's live event may have drawn its new state while the map caught up, and the user
    // may already have opened the next step's form: that form stays (a soft redraw keeps it).
    await showCase(panel.caseId, { soft: panel.forms !== forms });
  } catch (e) {
    const box = errorBox || $('step-form');
    box.textContent = e.message;
    box.classList.add('error');
  }
}

export function wirePanel() {
  // A form opened elsewhere in the drawer (the coordination section's steps) counts as one of
  // ours: a redraw begun before it opened leaves it alone.
  document.addEventListener('gridcore:form', () => { panel.forms += 1; });
  $('details').addEventListener('click', (ev) => {
    const el = ev.target.closest('[data-action], [data-case], [data-grid], [data-merge-into]');
    if (!el) return;
    if (el.dataset.mergeInto) {
      const into = Number(el.dataset.mergeInto), merged = Number(el.dataset.mergeCase);
      submitStep('merge', { primary_case_id: into }, null, merged).then(() => {
        if (merged === panel.caseId) showCase(into);
      });
    } else if (el.dataset.action && el.parentElement.classList.contains('actions')) {
      stepForm(el.dataset.action, el.parentElement.dataset.version);
    } else if (el.dataset.case) {
      panel.onOpenCase(Number(el.dataset.case));
    } else if (el.dataset.grid) {
      panel.showGrid(el.dataset.grid);
    }
  });
}


