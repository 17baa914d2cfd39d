// A grid in the drawer: its place in the hierarchy (社区 › 街道 › 区), workers, city parts by
// state, open cases with their deadlines, and its health score in brief.
import { LANG, t } from '../i18n.js';
import { ROOT, api } from '../common/api.js';
import { $, data, esc, listOf, stateName, when } from '../common/ui.js';

const num = (v) => {
  const n = typeof v === 'object' && v !== null ? (v.score ?? v.value) : v;
  return typeof n === 'number' ? n.toFixed(1) : (n ?? '—');
};

export async function showGrid(code) {
  const g = await api(`/map/grids/${encodeURIComponent(code)}`);
  const hier = g.hierarchy.map((a) => `${data(a.name)} <small>${data(a.code)}</small>`).join(' › ');
  const workers = listOf(g.workers.map((w) => data(`${w.name} (${w.code})${w.phone ? ' ' + w.phone : ''}`))) || '—';
  const parts = Object.entries(g.parts).map(([s, n]) => `${esc(t(`map.part_state_${s}`))} ${data(n)}`).join(' · ') || '—';
  const cases = g.open_cases.map((c) => `<li><span class="case-link" data-case="${c.id}">${data(c.public_no)}</span>
    <span class="state s-${esc(c.state)}">${esc(stateName(c.state))}</span> ${data(c.category_key)}
    <time>${esc(when(c.deadline_at))}</time></li>`).join('');
  const h = g.health || await api(`/grids/${encodeURIComponent(code)}/health`).catch(() => null);
  const indices = Array.isArray(h?.indices) ? h.indices : [];
  const health = h ? `<span id="grid-health">${esc(num(h.total))}</span>
    <br><small>${indices.map((i) => `${esc(LANG === 'zh-CN' ? i.name_zh : (i.name_en || i.key))} ${esc(num(i))}`).join(' · ')}</small>
    ${h.href ? ` <a href="${esc(ROOT + '/' + h.href)}" target="_blank" rel="noopener">${esc(t('map.why'))}</a>` : ''}`
    : `<small>${esc(t('map.not_available'))}</small>`;
  $('details').innerHTML = `<article class="grid">
    <h3 id="grid-title">${esc(t('map.grid'))} ${data(`${g.code} ${g.name || ''}`)}</h3>
    <p class="hierarchy">${hier}</p>
    <dl class="facts"><dt>${esc(t('map.workers'))}</dt><dd class="workers">${workers}</dd>
      <dt>${esc(t('map.part_classes'))}</dt><dd>${parts}</dd>
      <dt>${esc(t('map.open_cases'))}</dt><dd><b id="open-count" translate="no">${g.open_case_count}</b>
        <button type="button" class="linkish" data-area="${esc(g.code)}">${esc(t('map.filter_queue'))}</button></dd>
      <dt>${esc(t('map.health'))}</dt><dd>${health}</dd></dl>
    <ul class="grid-cases">${cases}</ul></article>`;
  delete $('details').dataset.caseId;
  return g;
}
