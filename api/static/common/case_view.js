// How a case reads on the desk's pages (the map's drawer, the department workbench): its clock,
// facts, photos and history — every word from the catalogue's ``case`` namespace, every time in
// the city's format, every value from the data marked as data.
import { t } from '../i18n.js';
import { photoUrl } from './api.js';
import {
  actionName, asLabel, className, clockDot, clockName, data, dueText, esc, limitText, roleName,
  sourceName, stateName, when,
} from './ui.js';

export function photoStrip(caseId, count, first = 1) {
  let html = '';
  for (let n = first; n < first + count; n++) {
    html += `<img class="thumb" alt="${esc(t('case.photo_n', { n }))}" data-src="${esc(photoUrl(caseId, n, true))}" data-large="${esc(photoUrl(caseId, n))}">`;
  }
  return html;
}

// The photos of a case by the step that brought them (the report's first): n is 1-based in
// the order they came, as GET /cases/{id}/photos/{n} serves them.
export function photosByStep(c) {
  const out = new Map();
  (c.photos || []).forEach((p, i) => {
    const step = p.step || 'report';
    const key = p.history_id ?? step;
    if (!out.has(key)) out.set(key, []);
    out.get(key).push(p.n ?? i + 1);
  });
  return out;
}

function strip(caseId, numbers) {
  return numbers.map((n) => photoStrip(caseId, 1, n)).join('');
}

export function clockLine(c) {
  const colour = c.clock ? c.clock.colour : 'none';
  return `<p class="clock">${clockDot(c.clock)}<b id="case-clock" data-colour="${esc(colour)}" class="clock-${esc(colour)}">${esc(clockName(colour))}</b>
    ${c.clock?.deadline ? ` · ${esc(t('case.label_deadline'))} <time id="case-deadline">${esc(when(c.clock.deadline))}</time> · ${esc(dueText(c.clock))}` : ''}
    ${c.stage_limit ? ` · ${esc(t('case.label_limit'))} ${esc(limitText(c.stage_limit))}` : ''}
    ${c.parked ? ` <span class="flag parked">${esc(t('case.parked'))}</span>` : ''}</p>`;
}

// The city part a case is linked to: its class's name (and its own, when the inventory names
// it) in the page's language, with the 16-digit code beside it — a bare code told nobody what
// the part was. Without the case's context (a case sent back away): the code alone.
function partText(c) {
  const p = c.context?.part;
  const cls = p?.class_names ? className('', p.class_names) : '';
  const name = [cls ? esc(asLabel(cls)) : '', p?.name ? data(p.name, 'part-name') : ''].filter(Boolean).join(' · ');
  return `${name ? `${name} ` : ''}${data(c.part_code, 'code')}`;
}

export function facts(c, deptName = (code) => code) {
  const areas = (c.context?.areas || []).map((a) => data(a.name)).join(' › ');
  const cls = c.context?.category_names ? className(c.category, c.context.category_names) : '';
  const rows = [
    [t('case.label_class'), `${cls ? `${esc(asLabel(cls))} ` : ''}${data(c.category)}`],
    [t('case.label_source'), `${esc(asLabel(sourceName(c.source)))}${c.reporter ? ' · ' + data(c.reporter) : ''}`],
    [t('case.label_reported'), esc(when(c.created_at))],
    [t('case.label_grid'), `<span class="case-link" data-grid="${esc(c.grid_code || '')}">${data(c.grid_code || '—')}</span>${areas ? '<br>' + areas : ''}`],
  ];
  if (c.part_code) rows.push([t('case.label_part'), `<span id="case-part">${partText(c)}</span>`]);
  if (c.department) rows.push([t('case.label_department'), data(`${c.context?.department_name || deptName(c.department)} (${c.department})`)]);
  if (c.assignee) rows.push([t('case.label_assignee'), data(c.assignee)]);
  return `<dl class="facts">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function historyDetail(h) {
  const d = h.details || {};
  const bits = [];
  if (h.action === 'dispatch' && d.chosen) {
    bits.push(`${esc(t('case.field_department'))} ${data(d.chosen)}`);
    if (d.override) bits.push(`<span class="flag">${esc(t('case.override'))}</span>`);
  }
  if (h.action === 'send_back' && d.reproposed) bits.push(`${esc(t('case.reproposed'))} ${data(d.reproposed)}`);
  if (h.action === 'merge' && d.merged_case_id) bits.push(`${esc(t('case.merged_in'))} <span class="case-link" data-case="${d.merged_case_id}">${data(d.merged_case_id)}</span>`);
  if (h.action === 'merge' && d.primary_case_id) bits.push(`${esc(t('case.merged_into'))} <span class="case-link" data-case="${d.primary_case_id}">${data(d.primary_case_id)}</span>`);
  if (d.check_result) bits.push(esc(t(`case.check_${d.check_result}`)));
  if (d.assignee) bits.push(`${esc(t('case.field_assignee'))} ${data(d.assignee)}`);
  if (d.new_limit) bits.push(`${esc(t('case.field_new_limit'))} ${esc(limitText(d.new_limit))}`);
  const auto = h.actor === 'system' && h.action === 'supervise';
  const reason = auto ? esc(t('case.auto_supervise_reason')) : (h.reason ? data(h.reason) : '');
  return [reason, ...bits].filter(Boolean).join(' · ');
}

export function historyList(c) {
  const photos = photosByStep(c);
  return `<ol class="history" id="history">${(c.history || []).map((h) => {
    const actor = h.actor === 'system' ? esc(t('case.system')) : data(h.actor);
    const states = h.from && h.from !== h.to ? `${esc(stateName(h.from))} → ${esc(stateName(h.to))}` : esc(stateName(h.to));
    const shots = photos.get(h.id) || (h.action !== 'report' ? null : photos.get('report'));
    return `<li data-step="${esc(h.action)}"><div class="h1"><time>${esc(when(h.at))}</time>
      <b>${esc(actionName(h.action))}</b> <span class="muted">${states}</span></div>
      <div class="h2">${actor} <span class="muted">${esc(roleName(h.role))}</span> ${historyDetail(h)}</div>
      ${shots ? `<div class="photos">${strip(c.id, shots)}</div>` : ''}</li>`;
  }).join('')}</ol>`;
}

// The report's own photos (those of later steps are shown with their step).
export function reportPhotos(c) {
  const photos = photosByStep(c);
  const own = photos.get('report') || (!c.photos?.some((p) => p.step) ? (c.photos || []).map((p, i) => p.n ?? i + 1) : []);
  return own.length ? `<div class="photos">${strip(c.id, own)}</div>` : '';
}
