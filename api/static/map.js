// The dispatchers' map (一张图). MapLibre GL draws the server's vector tiles directly; every
// asset comes from this server (no CDN, no web fonts: labels are HTML markers).
import * as maplibregl from './vendor/maplibre-gl/maplibre-gl.mjs';

const ROOT = document.documentElement.dataset.root || '';
const ORIGIN = location.origin + ROOT;
const $ = (id) => document.getElementById(id);
const CLOCK = { green: '#2e9d4f', yellow: '#f2b705', red: '#d7301f', none: '#9e9e9e' };
const MAJOR = { '01': '#1f78b4', '02': '#6a3d9a', '03': '#b15928', '04': '#33a02c', '05': '#e31a1c', '06': '#ff7f00' };
const LAYER_OF = { areas: 'areas', grids: 'grids', parts: 'parts', cases: 'cases' };
const POLL_MS = 3000;
const st = { config: null, versions: {}, basemap: 'blank', filters: { open: 'true' },
  partClasses: new Set(), selectedGrid: '', token: sessionStorage.getItem('gridcore-token') };
const labels = new Map();
let map;

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function api(path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (st.token) headers.Authorization = `Bearer ${st.token}`;
  const r = await fetch(ROOT + path, { ...opts, headers });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const error = new Error((body && (body.detail || body.title)) || `${r.status} ${r.statusText}`);
    error.status = r.status;
    throw error;
  }
  return body;
}

// -- datum: AMap tiles are GCJ-02; the server shifts our tiles, HTML markers shift here ------
function provider() { return st.config.basemaps.providers.find((p) => p.id === st.basemap); }
function datum() { return provider().overlay_datum; }
function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
function gcj(lon, lat) {  // WGS 84 → GCJ-02 (the published formula; spatial/crs.py server-side)
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

// -- sources and style ---------------------------------------------------------------------
function tileUrl(id) {
  const p = new URLSearchParams();
  if (datum() === 'gcj02') p.set('datum', 'gcj02');
  if (id === 'cases') for (const [k, v] of Object.entries(st.filters)) if (v) p.set(k, v);
  p.set('v', st.versions[LAYER_OF[id]] ?? 0);  // a new version is a new URL: no stale tile
  return `${ORIGIN}/collections/${id}/tiles/WebMercatorQuad/{z}/{x}/{y}?${p}`;
}

function style() {
  const bm = provider();
  const sources = {};
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': bm.background || '#f3f1ec' } }];
  (bm.kind === 'xyz' ? bm.tiles : []).forEach((t, i) => {
    sources[`basemap${i}`] = { type: 'raster', tiles: [t], tileSize: bm.tile_size, maxzoom: bm.max_zoom,
      attribution: i === 0 ? bm.attribution : undefined };
    layers.push({ id: `basemap${i}`, type: 'raster', source: `basemap${i}` });
  });
  const have = st.config.collections;
  for (const id of Object.keys(LAYER_OF)) {
    if (!have[id]) continue;
    sources[id] = { type: 'vector', tiles: [tileUrl(id)], minzoom: have[id].min_zoom, maxzoom: 16,
      attribution: id === 'areas' ? `${bm.kind === 'blank' ? bm.attribution + ' · ' : ''}gridcore layers` : undefined };
  }
  const add = (l) => { if (sources[l.source]) layers.push({ 'source-layer': l.source, ...l }); };
  add({ id: 'areas-line', type: 'line', source: 'areas', filter: ['!=', ['get', 'level'], 'district'],
    paint: { 'line-color': '#555', 'line-width': ['match', ['get', 'level'], 'street', 2.5, 1.2], 'line-dasharray': [3, 2] } });
  add({ id: 'grids-fill', type: 'fill', source: 'grids', paint: { 'fill-color': '#4a7ab5', 'fill-opacity': 0.06 } });
  add({ id: 'grids-line', type: 'line', source: 'grids', paint: { 'line-color': '#4a7ab5', 'line-width': 1 } });
  add({ id: 'grids-selected', type: 'line', source: 'grids', filter: ['==', ['get', 'code'], st.selectedGrid],
    paint: { 'line-color': '#e66100', 'line-width': 3 } });
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
  return { version: 8, sources, layers };
}

function partFilter() { return ['in', ['get', 'class_code'], ['literal', [...st.partClasses]]]; }

function refresh(ids) {
  for (const id of ids) {
    const src = map.getSource(id);
    if (src) src.setTiles([tileUrl(id)]);
  }
}

// -- HTML labels: grid codes at street zoom, counts on case hexagons ------------------------
function centre(geom) {
  const ring = geom.type === 'Polygon' ? geom.coordinates[0] : geom.coordinates[0][0];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of ring) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  return { c: [(x0 + x1) / 2, (y0 + y1) / 2], size: (x1 - x0) * (y1 - y0) };
}

function updateLabels() {
  const want = new Map();
  const pick = (source, filter, key, cls, text) => {
    if (!map.getSource(source)) return;
    const best = new Map();
    for (const f of map.querySourceFeatures(source, { sourceLayer: source, filter })) {
      if (!['Polygon', 'MultiPolygon'].includes(f.geometry.type)) continue;
      const k = f.properties[key], m = centre(f.geometry);
      if (!best.has(k) || best.get(k).size < m.size) best.set(k, { ...m, text: text(f.properties) });
    }
    for (const [k, v] of [...best].slice(0, 400)) want.set(`${cls}:${k}`, { ...v, cls });
  };
  if (map.getZoom() >= 15.5) pick('grids', null, 'code', 'grid-label', (p) => p.code);
  pick('cases', ['==', ['get', 'aggregated'], true], 'h3', 'hex-label', (p) => p.count);
  for (const [k, m] of labels) if (!want.has(k)) { m.remove(); labels.delete(k); }
  for (const [k, v] of want) {
    const old = labels.get(k);
    if (old && old.getElement().textContent === String(v.text)) { old.setLngLat(v.c); continue; }
    if (old) old.remove();
    const el = document.createElement('div');
    el.className = v.cls; el.textContent = v.text; el.dataset.key = k;
    labels.set(k, new maplibregl.Marker({ element: el }).setLngLat(v.c).addTo(map));
  }
}

// -- details panel ------------------------------------------------------------------------
function show(html) { $('details').innerHTML = html; }

async function showGrid(code) {
  st.selectedGrid = code;
  if (map.getLayer('grids-selected')) map.setFilter('grids-selected', ['==', ['get', 'code'], code]);
  const g = await api(`/map/grids/${encodeURIComponent(code)}`);
  const hier = g.hierarchy.map((a) => `${esc(a.name)} <small>${esc(a.code)}</small>`).join(' › ');
  const workers = g.workers.map((w) => `${esc(w.name)} (${esc(w.code)})${w.phone ? ' ' + esc(w.phone) : ''}`).join(', ') || '—';
  const cases = g.open_cases.map((c) => `<tr><td class="case-link" data-case="${c.id}">${esc(c.public_no)}</td><td>${esc(c.state)}</td><td>${esc(c.category_key)}</td><td>${esc((c.deadline_at || '').slice(0, 16))}</td></tr>`).join('');
  const parts = Object.entries(g.parts).map(([s, n]) => `${esc(s)} ${n}`).join(' · ') || '—';
  // The health work's brief summary rides along with the grid; else ask its API.
  const h = g.health || await api(`/grids/${encodeURIComponent(code)}/health`).catch(() => null);
  const num = (v) => { const n = typeof v === 'object' && v !== null ? (v.score ?? v.value) : v;
    return typeof n === 'number' ? n.toFixed(1) : (n ?? '—'); };
  const indices = Array.isArray(h?.indices) ? h.indices.map((i) => [i.name_en || i.key, i]) : Object.entries(h?.indices || {});
  const health = h ? `<span id="grid-health">${esc(num(h.total))}</span>${typeof h.change === 'number' ? ` (${h.change > 0 ? '+' : ''}${esc(num(h.change))} vs previous)` : ''}
    <br><small>${indices.map(([k, v]) => `${esc(k)} ${esc(num(v))}`).join(' · ')}</small>
    ${h.href ? ` <a href="${esc(ROOT + '/' + h.href)}" target="_blank" rel="noopener">why</a>` : ''}` : '<small>not available</small>';
  show(`<h3 id="grid-title">Grid ${esc(g.code)} ${esc(g.name)}</h3>
    <p class="hierarchy">${hier}</p><p><b>Workers</b> <span class="workers">${workers}</span></p>
    <p><b>City parts</b> ${parts}</p>
    <p><b>Open cases</b> <span id="open-count">${g.open_case_count}</span></p>
    <table>${cases}</table><p><b>Health</b> ${health}</p>`);
}

async function showCase(id) {
  const [c, act, feature] = await Promise.all([api(`/cases/${id}`),
    api(`/map/cases/${id}/actions?role=${encodeURIComponent($('role').value)}`),
    api(`/collections/cases/items/${id}`).catch(() => null)]);
  // The case API's live clock; else the stored warning/deadline times the tiles colour by.
  const colour = c.clock ? c.clock.colour : (feature?.properties.clock || 'none');
  const hist = (c.history || []).map((h) => `<tr><td>${esc((h.at || '').slice(0, 16))}</td><td>${esc(h.action)}</td><td>${esc(h.from || '')}→${esc(h.to)}</td><td>${esc(h.actor)}</td><td>${esc(h.reason)}</td></tr>`).join('');
  const buttons = act.actions.map((a) => `<button data-action="${esc(a)}">${esc(a)} ${esc(st.config.actions[a]?.zh || '')}</button>`).join('') || '<small>no step for this role now</small>';
  show(`<h3 id="case-title">Case ${esc(c.public_no)}</h3>
    <p>State <b id="case-state">${esc(c.state)}</b> · ${esc(c.category)} · dept ${esc(c.department || '—')}</p>
    <p>Clock <span class="dot ${colour}"></span><span class="clock-${colour}" id="case-clock">${esc(colour)}</span>
      ${c.clock && c.clock.deadline ? 'due ' + esc(c.clock.deadline.slice(0, 16)) : ''}</p>
    <p>${esc(c.description)}</p>
    <p>Grid <span class="case-link" data-grid="${esc(c.grid_code)}">${esc(c.grid_code || '—')}</span></p>
    <div class="actions" data-version="${act.version}">${buttons}</div><div id="step-form"></div>
    <h3>History</h3><table>${hist}</table>`);
  $('details').dataset.caseId = id;
}

function stepForm(id, action, version) {
  const needs = st.config.actions[action]?.requires || [];
  const fields = needs.map((n) => {
    if (n === 'department') return `<label>department <select name="department">${st.config.departments.map((d) => `<option value="${esc(d.code)}">${esc(d.code)} ${esc(d.name)}</option>`).join('')}</select></label>`;
    if (n === 'check_result') return '<label>result <select name="check_result"><option>pass</option><option>fail</option></select></label>';
    return `<label>${esc(n)} <input name="${esc(n)}" required></label>`;
  }).join('');
  $('step-form').innerHTML = `<form id="step">${fields}<button type="submit">${esc(action)}</button> <span class="error"></span></form>`;
  $('step').onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { expected_version: Number(version) };
    for (const [k, v] of new FormData(ev.target)) body[k] = k === 'primary_case_id' ? Number(v) : v;
    try {
      const who = st.token ? {} : { 'X-Actor': $('actor').value, 'X-Role': $('role').value };
      await api(`/cases/${id}/${action}`, { method: 'POST', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', ...who } });
      await poll();
      await showCase(id);
    } catch (e) { ev.target.querySelector('.error').textContent = e.message; }
  };
  if (!needs.length) $('step').requestSubmit();
}

// -- who acts: a bearer token from /auth/token (its role decides the steps), else the
// development stand-in (role chosen here, sent as X-Role where the server trusts it) --------
async function signIn(username, password) {
  const r = await fetch(`${ROOT}/auth/token`, { method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }) });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.detail) || `${r.status}`);
  st.token = body.access_token;
  sessionStorage.setItem('gridcore-token', st.token);
  await whoAmI();
}

async function whoAmI() {
  if (!st.token) return;
  try {
    const me = await api('/auth/me');
    $('me').textContent = `${me.username} (${me.role})`;
    $('actor').value = me.username;
    if (me.role) $('role').value = me.role;
    $('role').disabled = $('actor').disabled = true;
    $('signin').hidden = true; $('signed-in').hidden = false;
  } catch (e) { signOut(); }
}

function signOut() {
  st.token = null; sessionStorage.removeItem('gridcore-token');
  $('role').disabled = $('actor').disabled = false;
  $('signin').hidden = false; $('signed-in').hidden = true;
}

// -- search, filters, polling ------------------------------------------------------------------
async function search(q) {
  const { hits } = await api(`/map/search?q=${encodeURIComponent(q)}`);
  $('search-results').innerHTML = hits.map((h, i) => `<li data-i="${i}">${esc(h.kind)}: ${esc(h.label)}</li>`).join('') || '<li>nothing found</li>';
  const go = (h) => {
    map.flyTo({ center: gcj(h.lon, h.lat), zoom: Math.max(map.getZoom(), 17), duration: 0 });
    if (h.kind === 'grid') showGrid(h.id); else if (h.kind === 'case') showCase(h.id);
  };
  $('search-results').onclick = (ev) => { const i = ev.target.dataset.i; if (i !== undefined) go(hits[i]); };
  if (hits.length === 1) go(hits[0]);
}

function readFilters() {
  const s = $('f-state').value, since = $('f-since').value;
  st.filters = { open: s === 'open' ? 'true' : '', state: s && s !== 'open' ? s : '',
    category_key: $('f-class').value, department_code: $('f-dept').value,
    datetime: since ? `${since}T00:00:00Z/..` : '' };
  refresh(['cases']);
}

async function poll() {
  try {
    const v = await api('/map/versions');
    const changed = Object.keys(LAYER_OF).filter((id) => (v[LAYER_OF[id]] ?? 0) !== (st.versions[LAYER_OF[id]] ?? 0));
    st.versions = v;
    if (changed.length) refresh(changed);
    $('live').classList.remove('stale');
  } catch (e) { $('live').classList.add('stale'); }
}

function fillControls() {
  const opt = (v, t) => `<option value="${esc(v)}">${esc(t)}</option>`;
  $('role').innerHTML = st.config.roles.map((r) => opt(r, r)).join('');
  $('role').value = 'dispatcher';
  $('f-state').innerHTML += st.config.states.map((s) => opt(s, s)).join('');
  $('f-class').innerHTML += st.config.categories.map((c) => opt(c.key, `${c.key} ${c.name_zh}`)).join('');
  $('f-dept').innerHTML += st.config.departments.map((d) => opt(d.code, `${d.code} ${d.name}`)).join('');
  $('basemap').innerHTML = st.config.basemaps.providers.map((p) => opt(p.id, `${p.title_zh} ${p.title}`)).join('');
  $('basemap').value = st.basemap;
  $('part-classes').innerHTML = st.config.part_classes.map((c) => `<label><input type="checkbox" data-class="${esc(c.code)}" checked> <span class="dot" style="background:${MAJOR[c.code.slice(0, 2)] || '#777'}"></span>${esc(c.code)} ${esc(c.name_zh || c.name)} (${c.n})</label>`).join('<br>');
  st.partClasses = new Set(st.config.part_classes.map((c) => c.code));
}

// Signing in works before the map exists: in production every layer needs a signed-in user.
function wireSignIn() {
  $('signin').onsubmit = (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    signIn($('username').value, $('password').value)
      .then(() => { if (!map) return start(); })
      .catch((e) => { $('signin-error').textContent = e.message; });
  };
  $('signout').onclick = signOut;
}

// Tiles are fetched by MapLibre, not by api(): the token goes with every request to this server.
function withToken(url) {
  if (st.token && url.startsWith(ORIGIN)) return { url, headers: { Authorization: `Bearer ${st.token}` } };
  return { url };
}

function wire() {
  $('search-form').onsubmit = (ev) => { ev.preventDefault(); search($('search').value); };
  for (const id of ['f-state', 'f-class', 'f-dept', 'f-since']) $(id).onchange = readFilters;
  $('basemap').onchange = () => { st.basemap = $('basemap').value; map.setStyle(style()); };
  $('part-classes').onchange = (ev) => {
    const c = ev.target.dataset.class;
    if (ev.target.checked) st.partClasses.add(c); else st.partClasses.delete(c);
    if (map.getLayer('parts')) map.setFilter('parts', partFilter());
  };
  $('details').onclick = (ev) => {
    const t = ev.target;
    if (t.dataset.case) showCase(t.dataset.case);
    else if (t.dataset.grid) showGrid(t.dataset.grid);
    else if (t.dataset.action) stepForm($('details').dataset.caseId, t.dataset.action, t.parentElement.dataset.version);
  };
  map.on('click', (e) => {
    const layers = ['cases-point', 'cases-hex', 'grids-fill'].filter((l) => map.getLayer(l));
    const hit = map.queryRenderedFeatures(e.point, { layers })[0];
    if (!hit) return;
    if (hit.layer.id === 'cases-point') showCase(hit.properties.id);
    else if (hit.layer.id === 'cases-hex') map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 });
    else showGrid(hit.properties.code);
  });
  for (const l of ['cases-point', 'cases-hex', 'grids-fill']) {
    map.on('mouseenter', l, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', l, () => { map.getCanvas().style.cursor = ''; });
  }
  map.on('idle', updateLabels);
  setInterval(poll, POLL_MS);
}

async function start() {
  $('status').hidden = true;
  try {
    st.config = await api('/map/config');
  } catch (e) {
    if (e.status !== 401) throw e;
    $('status').hidden = false;
    $('status').textContent = e.message;
    $('username').focus();
    return;  // signing in starts the map (wireSignIn)
  }
  st.versions = st.config.versions;
  st.basemap = st.config.basemaps.default;
  fillControls();
  await whoAmI();
  const ext = await api('/collections/grids').then((c) => c.extent.spatial.bbox[0]).catch(() => null);
  const q = new URLSearchParams(location.hash.slice(1));
  map = new maplibregl.Map({ container: 'map', style: style(), attributionControl: { compact: false },
    center: q.has('c') ? q.get('c').split(',').map(Number) : [0, 0], zoom: Number(q.get('z') || 2),
    hash: false, maxZoom: 20, fadeDuration: 0, transformRequest: withToken });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibregl.ScaleControl(), 'bottom-left');
  if (!q.has('c') && ext && ext[0] > -180) map.fitBounds([gcj(ext[0], ext[1]), gcj(ext[2], ext[3])], { padding: 20, duration: 0 });
  wire();
  window.gridcore = { map, state: st, showGrid, showCase, refresh, poll, gcj, labels };
  map.once('idle', () => { document.body.dataset.ready = '1'; });
}

wireSignIn();
start().catch((e) => { $('status').hidden = false; $('status').textContent = `map failed: ${e.message}`; });
