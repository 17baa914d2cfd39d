// The map itself: MapLibre drawing the server's vector tiles (areas, grids, city parts, cases
// by clock colour; H3 hexagons with counts when zoomed out), HTML labels (no glyphs: offline),
// the GCJ-02 shift for AMap tiles, and the case tiles' filters.
import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { ROOT, withToken } from '../common/api.js';

const ORIGIN = location.origin + ROOT;
export const CLOCK = { green: '#2e9d4f', yellow: '#f2b705', red: '#d7301f', none: '#9e9e9e' };
export const MAJOR = { '01': '#1f78b4', '02': '#6a3d9a', '03': '#b15928', '04': '#33a02c', '05': '#e31a1c', '06': '#ff7f00' };
export const LAYER_OF = { areas: 'areas', grids: 'grids', parts: 'parts', cases: 'cases' };

export const view = { map: null, config: null, versions: {}, basemap: 'blank', filters: { open: 'true' },
  partClasses: new Set(), partClassTotal: 0, selectedGrid: '', selectedCase: null, labels: new Map() };

function provider() { return view.config.basemaps.providers.find((p) => p.id === view.basemap); }
function datum() { return provider().overlay_datum; }
function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }

// WGS 84 → GCJ-02 (the published formula; spatial/crs.py does the same server-side).
export function gcj(lon, lat) {
  if (datum() !== 'gcj02' || outOfChina(lon, lat)) return [lon, lat];
  const a = 6378245.0, ee = 0.00669342162296594323, x = lon - 105, y = lat - 35, PI = Math.PI;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dLat += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
  dLat += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dLon += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
  dLon += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  const rad = lat / 180 * PI, m = 1 - ee * Math.sin(rad) ** 2, sm = Math.sqrt(m);
  dLat = (dLat * 180) / ((a * (1 - ee)) / (m * sm) * PI);
  dLon = (dLon * 180) / (a / sm * Math.cos(rad) * PI);
  return [lon + dLon, lat + dLat];
}

function tileUrl(id) {
  const p = new URLSearchParams();
  if (datum() === 'gcj02') p.set('datum', 'gcj02');
  if (id === 'cases') for (const [k, v] of Object.entries(view.filters)) if (v) p.set(k, v);
  // zoomed out, parts are hexagons counted by the server: it counts the ticked classes only
  if (id === 'parts' && view.partClasses.size < view.partClassTotal) p.set('class_code', [...view.partClasses].sort().join(',') || '0000');
  p.set('v', view.versions[LAYER_OF[id]] ?? 0);  // a new version is a new URL: no stale tile
  return `${ORIGIN}/collections/${id}/tiles/WebMercatorQuad/{z}/{x}/{y}?${p}`;
}

export function partFilter() {
  return ['all', ['!', ['has', 'aggregated']], ['in', ['get', 'class_code'], ['literal', [...view.partClasses]]]];
}
// Parts per km² of a hexagon (the same scale at every zoom): light to dark blue-violet.
export const PART_DENSITY = [[0, '#edf8fb'], [20, '#b3cde3'], [200, '#8c96c6'], [1000, '#8856a7'], [5000, '#810f7c']];

// The layers are gridcore's; a blank basemap's own attribution says so already.
function areasAttribution(bm) {
  const own = bm.kind === 'blank' ? (bm.attribution || '') : '';
  return own.includes('gridcore') ? own : [own, 'gridcore'].filter(Boolean).join(' · ');
}

export function style() {
  const bm = provider();
  const sources = {};
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': bm.background || '#f3f1ec' } }];
  (bm.kind === 'xyz' ? bm.tiles : []).forEach((tile, i) => {
    sources[`basemap${i}`] = { type: 'raster', tiles: [tile], tileSize: bm.tile_size, maxzoom: bm.max_zoom,
      attribution: i === 0 ? bm.attribution : undefined };
    layers.push({ id: `basemap${i}`, type: 'raster', source: `basemap${i}` });
  });
  const have = view.config.collections;
  for (const id of Object.keys(LAYER_OF)) {
    if (!have[id]) continue;
    sources[id] = { type: 'vector', tiles: [tileUrl(id)], minzoom: have[id].min_zoom, maxzoom: 16,
      attribution: id === 'areas' ? areasAttribution(bm) : undefined };
  }
  const add = (l) => { if (sources[l.source]) layers.push({ 'source-layer': l.source, ...l }); };
  add({ id: 'areas-line', type: 'line', source: 'areas', filter: ['!=', ['get', 'level'], 'district'],
    paint: { 'line-color': '#555', 'line-width': ['match', ['get', 'level'], 'street', 2.5, 1.2], 'line-dasharray': [3, 2] } });
  add({ id: 'grids-fill', type: 'fill', source: 'grids', paint: { 'fill-color': '#4a7ab5', 'fill-opacity': 0.06 } });
  add({ id: 'grids-line', type: 'line', source: 'grids', paint: { 'line-color': '#4a7ab5', 'line-width': 1 } });
  add({ id: 'grids-selected', type: 'line', source: 'grids', filter: ['==', ['get', 'code'], view.selectedGrid],
    paint: { 'line-color': '#e66100', 'line-width': 3 } });
  add({ id: 'parts-hex', type: 'fill', source: 'parts', filter: ['==', ['get', 'aggregated'], true],
    paint: { 'fill-color': ['interpolate', ['linear'], ['get', 'per_km2'], ...PART_DENSITY.flat()],
      'fill-opacity': 0.45, 'fill-outline-color': '#ffffff' } });
  add({ id: 'parts', type: 'circle', source: 'parts', filter: partFilter(),
    paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 1.5, 17, 4],
      'circle-color': ['match', ['get', 'major'], ...Object.entries(MAJOR).flat(), '#777'],
      'circle-stroke-color': '#fff', 'circle-stroke-width': 0.5 } });
  const clock = ['match', ['get', 'clock'], 'red', CLOCK.red, 'yellow', CLOCK.yellow, 'green', CLOCK.green, CLOCK.none];
  add({ id: 'cases-hex', type: 'fill', source: 'cases', filter: ['==', ['get', 'aggregated'], true],
    paint: { 'fill-color': clock, 'fill-opacity': 0.55, 'fill-outline-color': '#fff' } });
  add({ id: 'cases-point', type: 'circle', source: 'cases', filter: ['!', ['has', 'aggregated']],
    paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 14, 5, 18, 9], 'circle-color': clock,
      'circle-stroke-color': '#222', 'circle-stroke-width': 1 } });
  add({ id: 'cases-selected', type: 'circle', source: 'cases', filter: ['==', ['get', 'id'], view.selectedCase ?? -1],
    paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 14, 9, 18, 14], 'circle-color': 'rgba(0,0,0,0)',
      'circle-stroke-color': '#e66100', 'circle-stroke-width': 3 } });
  return { version: 8, sources, layers };
}

export function refresh(ids) {
  for (const id of ids) {
    const src = view.map.getSource(id);
    if (src) src.setTiles([tileUrl(id)]);
  }
}

export function select(kind, value) {
  const m = view.map;
  if (kind === 'grid') {
    view.selectedGrid = value;
    if (m.getLayer('grids-selected')) m.setFilter('grids-selected', ['==', ['get', 'code'], value]);
  } else {
    view.selectedCase = value === null ? null : Number(value);
    if (m.getLayer('cases-selected')) m.setFilter('cases-selected', ['==', ['get', 'id'], view.selectedCase ?? -1]);
  }
}

function centre(geom) {
  const ring = geom.type === 'Polygon' ? geom.coordinates[0] : geom.coordinates[0][0];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of ring) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  return { c: [(x0 + x1) / 2, (y0 + y1) / 2], size: (x1 - x0) * (y1 - y0) };
}

// Grid codes at street zoom and counts on case hexagons, as HTML (no glyph server offline).
export function updateLabels() {
  const m = view.map, labels = view.labels, want = new Map();
  const pick = (source, filter, key, cls, text) => {
    if (!m.getSource(source)) return;
    const best = new Map();
    for (const f of m.querySourceFeatures(source, { sourceLayer: source, filter })) {
      if (!['Polygon', 'MultiPolygon'].includes(f.geometry.type)) continue;
      const k = f.properties[key], c = centre(f.geometry);
      if (!best.has(k) || best.get(k).size < c.size) best.set(k, { ...c, text: text(f.properties) });
    }
    for (const [k, v] of [...best].slice(0, 400)) want.set(`${cls}:${k}`, { ...v, cls });
  };
  if (m.getZoom() >= 15.5) pick('grids', null, 'code', 'grid-label', (p) => p.code);
  pick('cases', ['==', ['get', 'aggregated'], true], 'h3', 'hex-label', (p) => p.count);
  for (const [k, mk] of labels) if (!want.has(k)) { mk.remove(); labels.delete(k); }
  for (const [k, v] of want) {
    const old = labels.get(k);
    if (old && old.getElement().textContent === String(v.text)) { old.setLngLat(v.c); continue; }
    if (old) old.remove();
    const el = document.createElement('div');
    el.className = v.cls; el.textContent = v.text; el.dataset.key = k;
    el.setAttribute('translate', 'no');
    labels.set(k, new maplibregl.Marker({ element: el }).setLngLat(v.c).addTo(m));
  }
}

export function createMap(container, centreAt, zoom, locale = {}) {
  const m = new maplibregl.Map({ container, style: style(), attributionControl: { compact: false },
    center: centreAt, zoom, hash: false, maxZoom: 20, fadeDuration: 0, locale,
    transformRequest: withToken });
  m.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  m.addControl(new maplibregl.ScaleControl(), 'bottom-left');
  view.map = m;
  return m;
}

export function flyTo(lon, lat, zoom = 17) {
  if (lon == null || lat == null) return;  // a case without a place yet (待定位) stays put
  view.map.flyTo({ center: gcj(lon, lat), zoom: Math.max(view.map.getZoom(), zoom), duration: 0 });
}

export function fitBox([x0, y0, x1, y1]) {
  view.map.fitBounds([gcj(x0, y0), gcj(x1, y1)], { padding: 30, duration: 0 });
}
