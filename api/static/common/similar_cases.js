// 相似案例推荐 as a list (issue 22): the earlier cases most like the open one that the viewer may
// read (GET /cases/{id}/similar, scoped by the server), each with its class, similarity, how long
// before, and how it ended — department, days to close, rework, the reply or handling note.
// Shared by the dispatcher's case panel on /map (map/intel_panel.js) and the department
// workbench (desk/intel_similar.js); a case number is a [data-case] link the page opens.
import { LANG, t } from '../i18n.js';
import { api } from './api.js';
import { data, esc } from './ui.js';

export const SIMILAR_K = 10;
export const pct = (p) => Math.round((p || 0) * 100);

// A message whose placeholders are filled with HTML made here (data marked as data).
export function tHtml(key, html) {
  const marks = Object.fromEntries(Object.keys(html).map((k) => [k, `\u0000${k}\u0000`]));
  return esc(t(key, marks)).replace(/\u0000(\w+)\u0000/g, (m, k) => html[k]);
}

// "路灯 (P0120)": the names the server gave ({zh, en} or {name_zh, name_en}), else `fallback`.
export function className(key, names, fallback = null) {
  const zh = names?.zh || names?.name_zh, en = names?.en || names?.name_en;
  if (!zh && !en) return fallback ? fallback(key) : key || '';
  return `${LANG === 'zh-CN' ? zh || en : en || zh} (${key})`;
}

export function similarOf(caseId) {
  return api(`/cases/${caseId}/similar?k=${SIMILAR_K}`);
}

function similarItem(s, fallback) {
  const o = s.outcome || {};
  const facts = [
    t('intel.similar_score', { pct: pct(s.score) }),
    s.same_category ? t('intel.similar_same_class') : null,
    s.same_place ? t('intel.similar_same_place') : null,
    s.days_before !== null && s.days_before !== undefined ? t('intel.similar_days_before', { n: Math.round(s.days_before) }) : null,
  ].filter(Boolean).join(' · ');
  const end = [
    o.department ? tHtml('intel.similar_department', { name: data(o.department_name || o.department) }) : null,
    esc(o.days_to_close !== null && o.days_to_close !== undefined ? t('intel.similar_closed_in', { n: o.days_to_close }) : t('intel.similar_open')),
    esc(o.rework ? t('intel.similar_rework', { n: o.rework }) : t('intel.similar_no_rework')),
    o.imported_from ? tHtml('intel.similar_imported', { system: data(o.imported_from) }) : null,
  ].filter(Boolean);
  return `<li class="similar" data-similar="${s.id}">
    <div><span class="case-link" data-case="${s.id}" role="link" tabindex="0">${data(s.public_no)}</span> ${data(className(s.category, s.category_names, fallback))}
      <span class="muted">${esc(facts)}</span></div>
    <div class="similar-desc">${data(s.description || '—')}</div>
    <div class="similar-end">${end.join(' · ')}</div>
    ${o.reply ? `<div class="similar-reply">${esc(t('intel.similar_reply'))}${data(o.reply)}</div>` : ''}</li>`;
}

// The list (or why there is none) for an answer of /cases/{id}/similar ({ error } if it failed).
export function similarHtml(a, fallback = null) {
  if (a.error) return `<p class="error">${esc(t('intel.failed', { error: a.error.message }))}</p>`;
  const items = a.items || [];
  if (!items.length) return `<p class="muted">${esc(t('intel.similar_none'))}</p>`;
  return `<p class="muted">${esc(t('intel.similar_count', { n: items.length }))}</p>
    <ol class="similar-list" id="similar-list">${items.map((s) => similarItem(s, fallback)).join('')}</ol>`;
}
