// One search box: case numbers, grid / area / part codes, class names (中文 or English),
// street and community names, words of descriptions — ranked by the server, best first.
import { t } from '../i18n.js';
import { api } from '../common/api.js';
import { $, data, esc, stateName } from '../common/ui.js';

export const search = { hits: [], onCase: () => {}, onGrid: () => {}, onPart: () => {},
  onCategory: () => {}, onArea: () => {} };

function hitHtml(h, i) {
  const kind = `<span class="kind k-${esc(h.kind)}">${esc(t(`map.hit_${h.kind}`))}</span>`;
  let main = data(h.label), sub = '';
  if (h.kind === 'case') sub = `${esc(stateName(h.state))} · ${data(h.sub)}`;
  else if (h.kind === 'category') {
    main = `${data(h.label)} <small>${data(h.label_en)} · ${data(h.id)}</small>`;
    sub = esc(t('map.open_n', { n: h.open_cases }));
  } else if (h.kind === 'area') sub = `${esc(t(`case.level_${h.level}`))} ${data(h.id)}`;
  else sub = data(h.sub || '');
  return `<li data-i="${i}" tabindex="0">${kind} ${main}<br><small>${sub}</small></li>`;
}

export async function runSearch(q, { auto = false } = {}) {
  const box = $('search-results');
  if (!q.trim()) { box.hidden = true; return []; }
  const { hits } = await api(`/map/search?q=${encodeURIComponent(q)}`);
  search.hits = hits;
  box.innerHTML = hits.map(hitHtml).join('') || `<li class="empty">${esc(t('map.nothing_found'))}</li>`;
  box.hidden = false;
  if (auto && hits.length === 1) choose(hits[0]);
  return hits;
}

export function choose(h) {
  $('search-results').hidden = true;
  if (h.kind === 'case') search.onCase(h);
  else if (h.kind === 'grid') search.onGrid(h);
  else if (h.kind === 'part') search.onPart(h);
  else if (h.kind === 'category') search.onCategory(h);
  else if (h.kind === 'area') search.onArea(h);
}

export function wireSearch() {
  let timer = null;
  $('search-form').onsubmit = (ev) => { ev.preventDefault(); clearTimeout(timer); runSearch($('search').value, { auto: true }); };
  $('search').oninput = () => {
    clearTimeout(timer);
    const q = $('search').value;
    if (q.trim().length >= 2) timer = setTimeout(() => runSearch(q).catch(() => {}), 300);
  };
  const pick = (ev) => {
    const li = ev.target.closest('[data-i]');
    if (li) choose(search.hits[Number(li.dataset.i)]);
  };
  $('search-results').onclick = pick;
  $('search-results').onkeydown = (ev) => { if (ev.key === 'Enter') pick(ev); };
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('#search-form')) $('search-results').hidden = true;
  });
}
