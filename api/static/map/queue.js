// The dispatcher's queue beside the map: buckets with counts (待核实 … 督办), filters by class,
// department, area and clock colour, rows soonest deadline first; a row flies to its case.
import { t } from '../i18n.js';
import { api } from '../common/api.js';
import { $, asLabel, bucketName, className, clockDot, data, dueText, esc, stateName, when } from '../common/ui.js';
import { showQueueCount } from './views.js';

export const queue = { bucket: 'verify', filters: { category: '', department: '', area: '', colour: '' },
  areaLabel: '', rows: [], next: null, counts: {}, onSelect: () => {}, onFilters: () => {},
  selected: null, loading: null };

function params(extra = {}) {
  const p = new URLSearchParams({ bucket: queue.bucket, limit: '50', ...extra });
  for (const [k, v] of Object.entries(queue.filters)) if (v) p.set(k, v);
  return p;
}

function renderBuckets(buckets) {
  $('buckets').innerHTML = buckets.map((b) => `<button type="button" data-bucket="${esc(b)}"
    class="bucket ${b === queue.bucket ? 'active' : ''} ${b === 'overdue' ? 'overdue' : ''}"
    aria-pressed="${b === queue.bucket}"><span class="name">${esc(bucketName(b))}</span>
    <b class="count" data-count="${esc(b)}" translate="no">${esc(queue.counts[b] ?? '…')}</b></button>`).join('');
}

function row(c) {
  const cls = className(c.category, c.category_names);
  const flags = [c.supervised ? `<span class="flag supervised">${esc(t('map.supervised'))}</span>` : '',
    c.duplicate_count ? `<span class="flag dup">${esc(t('map.duplicates_n', { n: c.duplicate_count }))}</span>` : '',
    c.parked ? `<span class="flag parked">${esc(t('map.parked'))}</span>` : '',
    c.lon == null ? `<span class="flag unlocated">${esc(t('map.unlocated'))}</span>` : ''].join('');
  return `<li class="row ${queue.selected === c.id ? 'selected' : ''}" data-case="${c.id}" tabindex="0">
    <div class="line1">${clockDot(c.clock)}${data(c.public_no, 'no')} <span class="cls">${esc(asLabel(cls))}</span>
      <span class="state s-${esc(c.state)}">${esc(asLabel(stateName(c.state)))}</span>${flags}</div>
    <div class="line2">${data(c.description || '—', 'desc')}</div>
    <div class="line3"><span title="${esc(when(c.clock?.deadline))}">${esc(dueText(c.clock))}</span>
      ${c.grid_code ? ' · ' + data(c.grid_code) : ''}${c.department ? ' · ' + data(c.department) : ''}</div></li>`;
}

function renderRows() {
  $('queue-list').innerHTML = queue.rows.map(row).join('') ||
    `<li class="empty">${esc(t('map.queue_empty'))}</li>`;
  $('queue-more').hidden = !queue.next;
}

export async function loadQueue({ more = false } = {}) {
  const p = params(more && queue.next ? { after: queue.next } : {});
  const ticket = Symbol('load');
  queue.loading = ticket;
  const q = await api(`/map/queue?${p}`);
  if (queue.loading !== ticket) return;  // a newer request won
  queue.counts = q.counts;
  queue.rows = more ? [...queue.rows, ...q.cases] : q.cases;
  queue.next = q.next;
  for (const [b, n] of Object.entries(q.counts)) {
    const el = document.querySelector(`[data-count="${b}"]`);
    if (el) el.textContent = n;
  }
  showQueueCount(q.counts[queue.bucket]);
  renderRows();
  document.body.dataset.queue = String(Date.now());
}

let pending = null;
export function refreshQueue() {  // many events in a burst: one reload
  clearTimeout(pending);
  pending = setTimeout(() => loadQueue().catch(() => {}), 250);
}

export function setArea(code, label) {
  queue.filters.area = code || '';
  queue.areaLabel = label || code || '';
  $('f-area-chip').hidden = !code;
  $('f-area-label').textContent = queue.areaLabel;
  queue.onFilters();
  return loadQueue();
}

export function setClass(key) {
  queue.filters.category = key;
  $('f-class').value = key;
  queue.onFilters();
  return loadQueue();
}

export function markSelected(id) {
  queue.selected = id === null ? null : Number(id);
  for (const li of document.querySelectorAll('#queue-list .row')) {
    li.classList.toggle('selected', Number(li.dataset.case) === queue.selected);
  }
}

export function initQueue(config) {
  const opt = (v, text) => `<option value="${esc(v)}">${esc(text)}</option>`;
  $('f-class').innerHTML += config.categories.map((c) => opt(c.key, `${c.key} ${asLabel(className(c.key, { zh: c.name_zh, en: c.name }))}`)).join('');
  $('f-dept').innerHTML += config.departments.map((d) => opt(d.code, `${d.name} (${d.code})`)).join('');
  $('f-class').setAttribute('translate', 'no');
  $('f-dept').setAttribute('translate', 'no');
  renderBuckets(config.buckets);
  $('buckets').onclick = (ev) => {
    const b = ev.target.closest('[data-bucket]');
    if (!b) return;
    queue.bucket = b.dataset.bucket;
    for (const el of document.querySelectorAll('#buckets .bucket')) {
      const on = el.dataset.bucket === queue.bucket;
      el.classList.toggle('active', on);
      el.setAttribute('aria-pressed', String(on));
    }
    loadQueue();
  };
  for (const [id, key] of [['f-class', 'category'], ['f-dept', 'department'], ['f-colour', 'colour']]) {
    $(id).onchange = () => { queue.filters[key] = $(id).value; queue.onFilters(); loadQueue(); };
  }
  $('f-area-clear').onclick = () => setArea('', '');
  $('queue-more').onclick = () => loadQueue({ more: true });
  const pick = (ev) => {
    const li = ev.target.closest('[data-case]');
    if (!li) return;
    const c = queue.rows.find((r) => r.id === Number(li.dataset.case));
    if (c) queue.onSelect(c);
  };
  $('queue-list').onclick = pick;
  $('queue-list').onkeydown = (ev) => { if (ev.key === 'Enter') pick(ev); };
  return loadQueue();
}
