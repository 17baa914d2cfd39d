// The explanation panel of the health map (体检解释): a click (or Enter) on a grid or area
// fetches its explained health (/grids/{code}/health or /health/areas/{level}/{code}) for the
// page's window and shows the total and its change, each index with the term that costs it
// most points, each term's value against the previous window, and links to the records
// behind them. Every word comes from the catalogue (health namespace).
import { LANG, t } from '../i18n.js';
import { asLabel } from '../common/ui.js';

const ROOT = document.documentElement.dataset.root || '';
const $ = (id) => document.getElementById(id);
let opener = null;  // the shape that opened the panel: focus returns to it on closing
let asked = 0;  // the latest request: an older answer arriving late is dropped

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function number(value, digits = 1) {
  return value === null || value === undefined ? '—' : Number(value).toFixed(digits);
}

// a term's value as the evaluation board writes it: a rate as a percentage, a count whole,
// anything else (cases per km², working hours) with one decimal
function termValue(value, unit) {
  if (value === null || value === undefined) return '—';
  if (unit === 'ratio') return `${(value * 100).toFixed(1)} %`;
  if (unit === '件') return String(Math.round(value));
  return Number(value).toFixed(1);
}

function signed(value) {
  if (value === null || value === undefined) return null;
  const text = Number(value).toFixed(1);
  return value > 0 ? `+${text}` : text;
}

function driverText(driver) {
  // a line or a cell of its own: English begins it with a capital, as every label of the page
  if (!driver) return asLabel(t('health.no_driver'));
  return asLabel(t('health.driver_line', { name: driver.name, points: number(driver.points_lost) }));
}

// The records behind an aggregate, named from the catalogue (cases_E04 → "E04 类案件").
function aggregateName(name) {
  const key = `health.aggregate.${name}`;
  const known = t(key);
  if (known !== key) return known;
  let m = name.match(/^cases_([EP]\d{2})$/);
  if (m) return t('health.aggregate.cases_class', { class: m[1] });
  m = name.match(/^parts_bad_(\d{4})$/);
  if (m) return t('health.aggregate.parts_bad_class', { class: m[1] });
  m = name.match(/^parts_(\d{4})$/);
  if (m) return t('health.aggregate.parts_class', { class: m[1] });
  m = name.match(/^entities_(.+)$/);
  if (m) return t('health.aggregate.entities_area', { area: m[1] });
  return name;
}

function links(map, inputs = {}) {
  const box = el('span', undefined, 'explain-links');
  for (const [name, url] of Object.entries(map || {})) {
    const value = name.endsWith('_h') ? null : inputs[name];  // hours are not a count of records
    const count = value === null || value === undefined ? '' : ` ${Number(value).toLocaleString()}`;
    const a = el('a', `${asLabel(aggregateName(name))}${count}`);
    a.href = url;
    a.title = name;
    box.append(a, ' ');
  }
  return box;
}

function row(cells, header = false) {
  const tr = el('tr');
  cells.forEach((cell, i) => {
    const td = el(header || i === 0 ? 'th' : 'td');
    if (cell instanceof Node) td.append(cell); else td.textContent = cell;
    tr.append(td);
  });
  return tr;
}

function render(body, name) {
  const box = $('explain-body');
  box.replaceChildren();
  const heading = $('explain-heading');
  heading.textContent = name && name !== body.code ? `${name} ${body.code}` : body.code;
  const total = el('p', undefined, 'explain-total');
  total.append(el('b', `${asLabel(t('health.index.total'))} ${number(body.total)}`));
  const change = signed(body.change);
  total.append(' ', el('span', change === null ? t('health.no_previous')
    : t('health.change_vs_previous', { change }), 'explain-change'));
  box.append(total, el('p', driverText(body.driver), 'explain-driver'));

  box.append(el('h3', asLabel(t('health.indices_heading'))));
  const indices = el('table', undefined, 'explain-indices');
  indices.append(row([t('health.index'), t('health.score'), t('health.driver')].map(asLabel), true));
  for (const index of body.indices) {
    const change = signed(index.change);
    indices.append(row([asLabel(index.name), `${number(index.score)}${change === null ? '' : ` (${change})`}`,
      driverText(index.driver)]));
  }
  box.append(indices);

  box.append(el('h3', asLabel(t('health.terms'))));
  const terms = el('table', undefined, 'explain-terms');
  terms.append(row([t('health.term'), t('health.value'), t('health.previous_value'),
    t('health.points_lost'), t('health.records')].map(asLabel), true));
  // a long window's p90 of handling time is estimated (within a stated bound): marked ≈
  const p90 = body.handling_p90 || { method: 'exact' };
  const estimated = p90.method !== 'exact';
  let marked = false;
  for (const term of body.terms) {
    let value = termValue(term.value, term.unit);
    if (estimated && term.inputs && 'handling_p90_h' in term.inputs && term.value !== null) {
      const cell = el('span', `≈${value}`, 'explain-estimated');
      cell.title = p90.note;
      value = cell;
      marked = true;
    }
    terms.append(row([asLabel(term.name), value, termValue(term.previous_value, term.unit),
      number(term.lost_total), links(term.links, term.inputs)]));
  }
  box.append(terms);
  if (marked) box.append(el('p', p90.note, 'explain-legend'));
  const all = el('p', undefined, 'explain-all');
  all.append(el('span', `${asLabel(t('health.records'))}: `), links(body.links));
  box.append(all);
}

function url(config, code) {
  const level = config.params.level || 'grid';
  const query = new URLSearchParams({ window: config.params.window, lang: LANG });
  if (config.params.weights) query.set('weights', config.params.weights);
  const path = level === 'grid' ? `/grids/${encodeURIComponent(code)}/health`
    : `/health/areas/${encodeURIComponent(level)}/${encodeURIComponent(code)}`;
  return `${ROOT}${path}?${query}`;
}

export function closeExplain() {
  const panel = $('explain');
  if (panel.hidden) return;
  panel.hidden = true;
  if (opener && opener.focus) opener.focus();
  opener = null;
}

// Opens the panel for `feature`; `headers` carry the caller's token (production mode).
export async function openExplain(config, feature, headers, from) {
  const panel = $('explain');
  const mine = ++asked;
  opener = from || document.activeElement;
  const bar = $('bar');
  if (bar) panel.style.top = `${bar.offsetHeight}px`;  // below the header, however it wraps
  panel.hidden = false;
  panel.dataset.code = feature.id;
  panel.dataset.ready = '0';
  $('explain-heading').textContent = feature.properties.name || feature.id;
  $('explain-body').replaceChildren(el('p', t('health.loading')));
  $('explain-close').focus();
  try {
    const response = await fetch(url(config, feature.id), { headers });
    const body = await response.json().catch(() => null);
    if (mine !== asked) return;
    if (!response.ok) throw new Error((body && (body.detail || body.title)) || String(response.status));
    render(body, feature.properties.name);
  } catch (error) {
    if (mine !== asked) return;
    $('explain-body').replaceChildren(el('p', t('health.failed', { reason: error.message }), 'error'));
  }
  panel.dataset.ready = '1';
}

export function wireExplain() {
  $('explain-close').addEventListener('click', closeExplain);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeExplain();
  });
}
