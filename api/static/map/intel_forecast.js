// 未诉先办 / 全域预警 as a layer of the dispatchers' map (issue 22): next week's expected cases
// per community or grid from the active forecast model (GET /forecast?format=geojson), shaded
// by a legend whose classes follow the numbers shown, and this week's warnings (GET
// /forecast/warnings: areas running far above their expectation) outlined in red. Off until
// the dispatcher turns it on in the layers box; the queue's class filter narrows it to one
// class ("where will lamps fail next week"). It survives a change of basemap (a new style).
import { LANG, cityTime, loadMessages, t } from '../i18n.js';
import { api } from '../common/api.js';
import { $, TZ, listOf } from '../common/ui.js';
import { gcj, view } from './mapview.js';

const SOURCE = 'forecast';
const RAMP = ['#fff5eb', '#fdd0a2', '#fd8d3c', '#d94801', '#7f2704'];
// loads: how many loads were begun; only the latest one's answer is drawn (an older one, for
// another level or class or from before the layer was turned off, arriving late is dropped).
const layer = { on: false, level: 'community', category: '', data: null, breaks: [], warned: new Set(), loads: 0 };

// Coordinates as the basemap needs them (GCJ-02 under AMap tiles, as the vector tiles are).
function shifted(geometry) {
  const ring = (r) => r.map(([x, y]) => gcj(x, y));
  if (geometry.type === 'Polygon') return { type: 'Polygon', coordinates: geometry.coordinates.map(ring) };
  if (geometry.type === 'MultiPolygon') {
    return { type: 'MultiPolygon', coordinates: geometry.coordinates.map((p) => p.map(ring)) };
  }
  return geometry;
}

// One feature per area: the chosen class, or every class summed (the whole week's workload).
function byArea(fc, warnings) {
  const areas = new Map();
  for (const f of fc.features) {
    if (!f.geometry) continue;
    const p = f.properties;
    const a = areas.get(p.area_code) || { geometry: f.geometry, expected: 0, classes: [],
      area: p.area_name || p.area_code, code: p.area_code };
    a.expected += p.expected;
    a.classes.push(LANG === 'zh-CN' ? p.name_zh || p.category_key : p.name_en || p.category_key);
    areas.set(p.area_code, a);
  }
  layer.warned = new Set(warnings.filter((w) => !layer.category || w.category_key === layer.category)
    .map((w) => w.area_code));
  return { type: 'FeatureCollection', features: [...areas.values()].map((a) => ({
    type: 'Feature', geometry: shifted(a.geometry),
    properties: { code: a.code, area: a.area, expected: Math.round(a.expected * 100) / 100,
      classes: listOf(a.classes.slice(0, 3)), warning: layer.warned.has(a.code) } })) };
}

// Five classes from zero to the largest expectation shown, rounded to readable steps.
function breaksFor(values) {
  const max = Math.max(0.01, ...values);
  const step = max <= 1 ? Math.ceil((max / 5) * 100) / 100 : Math.ceil((max / 5) * 10) / 10;
  return [1, 2, 3, 4].map((i) => Math.round(i * step * 100) / 100);
}

function legend() {
  const box = $('forecast-legend');
  const b = layer.breaks;
  const label = (i) => (i === 0 ? `< ${b[0]}` : i === 4 ? `≥ ${b[3]}` : `${b[i - 1]}–${b[i]}`);
  box.replaceChildren(...RAMP.map((c, i) => {
    const span = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.className = `f${i}`;
    span.append(swatch, label(i));
    return span;
  }));
  box.hidden = !layer.on;
  $('forecast-warning-key').hidden = !layer.on;
}

function paint() {
  const m = view.map;
  if (!m) return;
  // Not isStyleLoaded(): it is false while any tile is loading, which would skip the layer.
  // A style still being set (a new basemap) throws here, and its 'style.load' paints again.
  try { draw(m); } catch (e) { /* the style is being replaced: style.load calls us */ }
}

function draw(m) {
  const has = !!m.getSource(SOURCE);
  if (!layer.on || !layer.data) {
    for (const id of ['forecast-fill', 'forecast-line', 'forecast-warning']) if (m.getLayer(id)) m.removeLayer(id);
    if (has) m.removeSource(SOURCE);
    return;
  }
  if (has) { m.getSource(SOURCE).setData(layer.data); } else { m.addSource(SOURCE, { type: 'geojson', data: layer.data }); }
  const b = layer.breaks;
  const colour = ['step', ['get', 'expected'], RAMP[0], b[0], RAMP[1], b[1], RAMP[2], b[2], RAMP[3], b[3], RAMP[4]];
  // under the grids' outlines and the cases: the cases stay clickable on top
  const below = ['grids-line', 'parts', 'cases-hex', 'cases-point'].find((id) => m.getLayer(id));
  if (!m.getLayer('forecast-fill')) {
    m.addLayer({ id: 'forecast-fill', type: 'fill', source: SOURCE, paint: { 'fill-color': colour, 'fill-opacity': 0.55 } }, below);
    m.addLayer({ id: 'forecast-line', type: 'line', source: SOURCE, paint: { 'line-color': '#8c4a12', 'line-width': 0.8 } }, below);
    m.addLayer({ id: 'forecast-warning', type: 'line', source: SOURCE, filter: ['==', ['get', 'warning'], true],
      paint: { 'line-color': '#c00', 'line-width': 3 } }, below);
  } else {
    m.setPaintProperty('forecast-fill', 'fill-color', colour);
  }
}

async function load() {
  const status = $('forecast-status');
  const mine = ++layer.loads;
  if (!layer.on) { paint(); legend(); status.textContent = ''; document.body.dataset.forecast = 'off'; return; }
  document.body.dataset.forecast = 'loading';
  const q = new URLSearchParams({ format: 'geojson', level: layer.level, limit: '5000' });
  if (layer.category) q.set('category', layer.category);
  try {
    const [fc, warned] = await Promise.all([api(`/forecast?${q}`),
      api(`/forecast/warnings?level=${layer.level}`).catch(() => ({ items: [] }))]);
    if (mine !== layer.loads) return;
    if (!fc.model) {
      layer.data = null;
      status.textContent = t('intel.forecast_none');
    } else {
      layer.data = byArea(fc, warned.items || []);
      layer.breaks = breaksFor(layer.data.features.map((f) => f.properties.expected));
      // the week: the date of the city's Monday that begins it (the server counts weeks from
      // Monday 00:00 city time); the history's last day on the city's calendar as well
      status.textContent = t('intel.forecast_model', { week: fc.week?.monday || fc.features?.[0]?.properties?.week || '—', version: fc.model.version, to: cityTime(fc.model.data_to, TZ).slice(0, 10) || '—', n: layer.data.features.length });
    }
  } catch (e) {
    if (mine !== layer.loads) return;
    layer.data = null;
    status.textContent = t('intel.failed', { error: e.message });
  }
  legend();
  paint();
  document.body.dataset.forecast = layer.data ? String(layer.data.features.length) : '0';
}

function popup(e) {
  const f = e.features?.[0];
  if (!f) return;
  const p = f.properties;
  $('forecast-hover').textContent = t('intel.forecast_popup', { area: p.area, category: p.classes, expected: p.expected })
    + (p.warning === true || p.warning === 'true' ? ` · ${t('intel.forecast_warning')}` : '');
}

function start() {
  const m = view.map;
  $('forecast-on').onchange = () => { layer.on = $('forecast-on').checked; load(); };
  $('forecast-level').onchange = () => { layer.level = $('forecast-level').value; if (layer.on) load(); };
  $('f-class')?.addEventListener('change', () => { layer.category = $('f-class').value; if (layer.on) load(); });
  m.on('style.load', paint);  // a new basemap is a new style: put the layer back
  m.on('mousemove', 'forecast-fill', popup);
  m.on('mouseleave', 'forecast-fill', () => { $('forecast-hover').textContent = ''; });
  window.gridcore.forecast = { layer, load };
}

// After the page's start (the map exists, the page's messages are in): ours, then the layer.
function whenReady() {
  if (document.body.dataset.ready === '1') return Promise.resolve();
  return new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      if (document.body.dataset.ready === '1') { obs.disconnect(); resolve(); }
    });
    obs.observe(document.body, { attributes: true, attributeFilter: ['data-ready'] });
  });
}

if ($('forecast-on')) whenReady().then(() => loadMessages(['intel'])).then(start).catch(() => {});
