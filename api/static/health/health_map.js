// The health choropleth (城市体检地图): scores of every grid or area of a window, classed and
// coloured, drawn with the vendored Leaflet (window.L, loaded before this module). The server
// rendered the selectors and the title in the caller's language; this script fetches the
// GeoJSON of /health/choropleth, draws it, the legend and the tooltips. No tile layer: the
// grids are the map (government networks are often offline).
import { loadMessages, t } from '../i18n.js';
import { asLabel } from '../common/ui.js';
import { openExplain, wireExplain } from './explain.js';

const ROOT = document.documentElement.dataset.root || '';
const TOKEN = 'gridcore-token';  // the same session as the one map (/map)
const config = JSON.parse(document.getElementById('health-config').textContent);
const $ = (id) => document.getElementById(id);
const state = { map: null, layer: null, data: null };

function status(text, isError = false) {
  const box = $('status');
  box.hidden = !text;
  box.textContent = text || '';
  box.classList.toggle('error', isError);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function authHeaders(accept) {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

async function fetchChoropleth() {
  const headers = authHeaders('application/geo+json');
  const url = `${ROOT}/health/choropleth?${new URLSearchParams(config.params)}`;
  const response = await fetch(url, { headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && (body.detail || body.title)) || String(response.status));
  return body;
}

// -- drawing -----------------------------------------------------------------------------------
function scoreText(value) {
  return value === null || value === undefined ? t('health.no_data') : Number(value).toFixed(1);
}

function tooltip(properties) {
  const box = el('div', undefined, 'health-tooltip');
  const name = properties.name && properties.name !== properties.code ? properties.name : '';
  box.append(el('b', `${name} ${properties.code}`.trim()));
  const rows = el('table');
  for (const field of config.tooltip) {
    const row = el('tr');
    row.append(el('th', field.label), el('td', scoreText(properties[field.key])));
    rows.append(row);
  }
  box.append(rows);
  return box;
}

function drawLegend(legend, p90) {
  const rows = $('legend-rows');
  rows.replaceChildren();
  for (const item of legend) {
    const row = el('div', undefined, 'legend-row');
    const swatch = el('span', undefined, 'swatch');
    swatch.style.background = item.colour;
    // an entry of the legend stands alone: a capital in English, as its other entries
    const label = item.class === null ? asLabel(t('health.no_data')) : item.label;
    row.append(swatch, el('span', `${label} (${item.count})`));
    rows.append(row);
  }
  if (p90 && p90.method !== 'exact') {  // a long window: the p90 of handling time is ≈
    const line = el('div', p90.note, 'legend-estimated');
    line.title = p90.note;
    rows.append(line);
  }
}

function draw(data) {
  state.data = data;
  if (state.layer) state.layer.remove();
  state.layer = L.geoJSON(data, {
    style: (feature) => ({ fillColor: feature.properties.colour, color: '#555', weight: 0.5,
      fillOpacity: 0.75 }),
    onEachFeature: (feature, shape) => {
      shape.bindTooltip(() => tooltip(feature.properties), { sticky: true });
      shape.on('click', () => explain(feature, shape.getElement()));
    },
  }).addTo(state.map);
  focusable();
  if (data.bbox) {
    const [x0, y0, x1, y1] = data.bbox;
    state.map.fitBounds([[y0, x0], [y1, x1]], { padding: [12, 12] });
  }
  drawLegend(data.legend, data.handling_p90);
  status(data.features.length ? '' : t('health.areas_shown', { n: 0 }));
}

// A click, or Enter / Space on a focused shape, opens the explanation panel.
function explain(feature, from) {
  openExplain(config, feature, authHeaders('application/json'), from);
}

function focusable() {
  state.layer.eachLayer((shape) => {
    const node = shape.getElement && shape.getElement();
    if (!node) return;
    const { name, code } = shape.feature.properties;
    node.setAttribute('tabindex', '0');
    node.setAttribute('role', 'button');
    node.setAttribute('aria-label', `${name && name !== code ? `${name} ` : ''}${code || shape.feature.id} · ${t('health.explain')}`);
    node.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      event.preventDefault();
      explain(shape.feature, node);
    });
  });
}

// -- signing in (only when the server asks for it: production mode) ---------------------------
function askSignIn() {
  status('');
  const form = $('signin');
  form.hidden = false;
  form.onsubmit = async (event) => {
    event.preventDefault();
    $('signin-error').textContent = '';
    const response = await fetch(`${ROOT}/auth/token`, { method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: $('username').value, password: $('password').value }) });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      $('signin-error').textContent = (body && (body.detail || body.title)) || String(response.status);
      return;
    }
    sessionStorage.setItem(TOKEN, body.access_token);
    form.hidden = true;
    await load();
  };
}

async function load() {
  status(t('health.loading'));
  try {
    const data = await fetchChoropleth();
    if (data === null) askSignIn(); else draw(data);
  } catch (error) {
    status(t('health.failed', { reason: error.message }), true);
  }
  document.body.dataset.ready = '1';
}

function wireSelectors() {
  const form = $('selector');
  // A choice reloads the page: the server renders the new title and selectors.
  form.addEventListener('change', () => form.requestSubmit());
  for (const button of form.querySelectorAll('.without-script')) button.hidden = true;
}

async function start() {
  await loadMessages(['common', 'health']);
  // Leaflet's own controls speak English: ours take the catalogue's words; metres only; no
  // "Leaflet" credit line (no tile layer, no data source to name).
  state.map = L.map('map', { preferCanvas: false, zoomSnap: 0.25, zoomControl: false });
  state.map.attributionControl.setPrefix(false);
  L.control.zoom({ zoomInTitle: t('health.zoom_in'), zoomOutTitle: t('health.zoom_out') })
    .addTo(state.map);
  state.map.setView([0, 0], 2);
  L.control.scale({ imperial: false }).addTo(state.map);
  wireSelectors();
  wireExplain();
  // for the browser tests and for what the page grows next (click-to-explain…)
  window.gridcoreHealth = { get map() { return state.map; }, get layer() { return state.layer; },
    get data() { return state.data; }, reload: load };
  await load();
}

start().catch((error) => status(t('health.failed', { reason: error.message }), true));
