// The dispatchers' map (一张图 · 指挥调度): the queue, the map, the case and grid drawer, search,
// live notifications. Every word comes from the message catalogue (t), every time goes through
// cityTime, every value from the data is marked translate="no".
import { loadMessages, t } from '../i18n.js';
import { api, signIn, who } from '../common/api.js';
import { connectEvents } from '../common/live.js';
import { notices, setLive } from '../common/notices.js';
import { $, DEV, data, esc, roleLabel, toast, wireLightbox } from '../common/ui.js';
import { panel, showCase as renderCase, wirePanel } from './case_panel.js';
import { showGrid as renderGrid } from './grid_panel.js';
import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { LAYER_OF, createMap, fitBox, flyTo, gcj, partFilter, refresh, select, style, updateLabels, view } from './mapview.js';
import { initQueue, loadQueue, markSelected, queue, refreshQueue, setArea, setClass } from './queue.js';
import { search, wireSearch } from './search.js';
import { drawerShown, showView, wireViews } from './views.js';

const POLL_MS = 5000;
const st = { me: null, events: null, notify: () => {} };

function openDrawer() { $('drawer').hidden = false; drawerShown(); }
function closeDrawer() {
  $('drawer').hidden = true;
  select('case', null); markSelected(null);
  panel.caseId = null;
}

async function showCase(id) {
  openDrawer();
  select('case', id); markSelected(id);
  return renderCase(id);
}

async function showGrid(code) {
  openDrawer();
  select('grid', code);
  return renderGrid(code);
}

function role() { return st.me ? st.me.role : $('role').value; }

async function poll() {
  try {
    const v = await api('/map/versions');
    const changed = Object.keys(LAYER_OF).filter((id) => (v[LAYER_OF[id]] ?? 0) !== (view.versions[LAYER_OF[id]] ?? 0));
    view.versions = v;
    if (changed.length) refresh(changed);
  } catch (e) { /* the live indicator says so */ }
}

// The queue's filters are the map's too: the same cases on both.
function syncTileFilters() {
  const f = queue.filters, area = f.area;
  const areaKey = { 6: 'district_code', 9: 'street_code', 12: 'community_code', 15: 'grid_code' }[area.length];
  view.filters = { open: 'true', category_key: f.category, department_code: f.department, clock: f.colour,
    ...(areaKey ? { [areaKey]: area } : {}) };
  refresh(['cases']);
}

// -- who acts ------------------------------------------------------------------------------
async function whoAmI() {
  if (!who.token) { st.me = null; return; }
  try {
    st.me = await api('/auth/me');
    $('me').textContent = `${st.me.username} · ${roleLabel(st.me.role)}`;
    $('me').title = $('me').textContent;  // cut short on a phone's top bar
    $('signin').hidden = true; $('signed-in').hidden = false; $('stand-in').hidden = true;
  } catch (e) { signOut(); }
}

function signOut() {
  who.setToken(null); st.me = null;
  $('signin').hidden = false; $('signed-in').hidden = true; $('stand-in').hidden = !DEV;
  if (st.events) st.events.restart();
}

// -- live notifications ---------------------------------------------------------------------
function onEvent(e) {
  refreshQueue();
  poll();
  // The open case changed: shown again, unless a step's form is open (its user is typing).
  if (panel.caseId === e.case_id) renderCase(panel.caseId, { soft: true }).catch(() => {});
  if (e.notify) st.notify(e);
}

function caseLonLat(id) {
  const row = queue.rows.find((r) => r.id === id);
  return row ? [row.lon, row.lat] : view.map.getCenter().toArray();
}

function fillControls(config) {
  const opt = (v, text) => `<option value="${esc(v)}">${esc(text)}</option>`;
  $('role').innerHTML = config.roles.map((r) => opt(r, roleLabel(r))).join('');
  $('role').value = 'dispatcher';
  $('basemap').innerHTML = config.basemaps.providers.map((p) => opt(p.id, p.title_zh && document.documentElement.lang === 'zh-CN' ? p.title_zh : p.title)).join('');
  $('basemap').value = view.basemap;
  $('part-classes').innerHTML = config.part_classes.map((c) => `<label><input type="checkbox" data-class="${esc(c.code)}" checked>
    <span class="dot major-${esc(c.code.slice(0, 2))}"></span>${data(c.code)} ${data(document.documentElement.lang === 'zh-CN' ? (c.name_zh || c.name) : c.name)} (${data(c.n)})</label>`).join('');
  view.partClasses = new Set(config.part_classes.map((c) => c.code));
  view.partClassTotal = view.partClasses.size;
}

// Signing in works before the map exists: in production every layer needs a signed-in user,
// so the map starts once someone has signed in.
function wireSignIn() {
  $('signin').onsubmit = (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    signIn($('username').value, $('password').value).then(async () => {
      if (!view.map) return start();
      await whoAmI();
      if (st.events) st.events.restart();
      return loadQueue();
    }).catch((e) => { $('signin-error').textContent = e.message; });
  };
  $('signout').onclick = signOut;
}

function wire() {
  $('role').onchange = () => { if (st.events) st.events.restart(); if (panel.caseId) renderCase(panel.caseId); };
  $('basemap').onchange = () => { view.basemap = $('basemap').value; view.map.setStyle(style()); };
  $('part-classes').onchange = (ev) => {
    const c = ev.target.dataset.class;
    if (ev.target.checked) view.partClasses.add(c); else view.partClasses.delete(c);
    if (view.map.getLayer('parts')) view.map.setFilter('parts', partFilter());
    refresh(['parts']);  // the hexagons count the ticked classes on the server
  };
  $('drawer-close').onclick = closeDrawer;
  st.notify = notices((id) => { flyTo(...caseLonLat(id)); showCase(id); });
  $('details').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-area]');
    if (b) setArea(b.dataset.area, b.dataset.area);
  });
  const m = view.map;
  m.on('click', (e) => {
    if (view.picking) return;  // the 待定位 queue picks a place (unlocated.js)
    const layers = ['cases-point', 'cases-hex', 'parts-hex', 'grids-fill'].filter((l) => m.getLayer(l));
    const hit = m.queryRenderedFeatures(e.point, { layers })[0];
    if (!hit) return;
    if (hit.layer.id === 'cases-point') showCase(hit.properties.id);
    else if (hit.layer.id === 'parts-hex') partHexPopup(e.lngLat, hit.properties);
    else if (hit.layer.id === 'cases-hex') m.easeTo({ center: e.lngLat, zoom: m.getZoom() + 2 });
    else showGrid(hit.properties.code);
  });
  for (const l of ['cases-point', 'cases-hex', 'parts-hex', 'grids-fill']) {
    m.on('mouseenter', l, () => { m.getCanvas().style.cursor = 'pointer'; });
    m.on('mouseleave', l, () => { m.getCanvas().style.cursor = ''; });
  }
  m.on('idle', updateLabels);
  setInterval(poll, POLL_MS);
}

// A part hexagon: how many parts, in which state (the counts are the server's, per hexagon).
function partHexPopup(at, p) {
  const states = ['intact', 'damaged', 'missing', 'occupied'].filter((s) => p[s])
    .map((s) => `<li><span class="dot part-${s}"></span>${esc(t(`map.part_state_${s}`))} ${esc(String(p[s]))}</li>`).join('');
  const html = `<div class="hex-popup"><b>${esc(t('map.hex_parts_n', { n: p.count }))}</b>
    <div class="muted">${esc(t('map.hex_per_km2', { n: p.per_km2 }))}</div><ul>${states}</ul>
    <div class="muted">${esc(t('map.hex_zoom_for_points'))}</div></div>`;
  new maplibregl.Popup({ closeButton: true, maxWidth: '260px' }).setLngLat(at).setHTML(html).addTo(view.map);
}

async function start() {
  await loadMessages(['common', 'map', 'case', 'notify', 'time']);
  who.standIn = () => (DEV ? { actor: $('actor').value, role: $('role').value } : null);
  const signInFirst = () => {  // nobody signed in: the form is the way in (wireSignIn)
    $('status').hidden = false;
    $('status').textContent = t('map.sign_in_first');
    $('username').focus();
  };
  if (!DEV) await whoAmI();  // a stored token may have expired
  if (!DEV && !st.me) return signInFirst();
  let config;
  try {
    config = await api('/map/config');
  } catch (e) {
    if (e.status !== 401) throw e;
    return signInFirst();
  }
  $('status').hidden = true;
  view.config = panel.config = config;
  view.versions = config.versions;
  view.basemap = config.basemaps.default;
  fillControls(config);
  await whoAmI();
  const ext = await api('/collections/grids').then((c) => c.extent.spatial.bbox[0]).catch(() => null);
  const q = new URLSearchParams(location.hash.slice(1));
  const m = createMap('map', q.has('c') ? q.get('c').split(',').map(Number) : [0, 0], Number(q.get('z') || 2), {
    'NavigationControl.ZoomIn': t('map.zoom_in'), 'NavigationControl.ZoomOut': t('map.zoom_out'),
    'NavigationControl.ResetBearing': t('map.reset_north'),
    'AttributionControl.ToggleAttribution': t('map.attribution'),
    'AttributionControl.MapFeedback': t('map.attribution') });
  if (!q.has('c') && ext && ext[0] > -180) m.fitBounds([gcj(ext[0], ext[1]), gcj(ext[2], ext[3])], { padding: 20, duration: 0 });
  // Listened for now, not once the queue is in: a map that drew all its tiles while the queue
  // was still loading fires no second 'idle' (nothing changes), and the page was never ready.
  const drawn = new Promise((resolve) => { m.once('idle', resolve); });
  panel.role = role;
  panel.showGrid = (code) => showGrid(code);
  panel.onOpenCase = (id) => showCase(id);
  // A step this page took: the queue (its counts) at once; the map's layers meanwhile, not
  // first (the counts waited on the layer-version poll, and on the live stream for the steps of
  // the coordination section, which did not reload the queue at all).
  panel.onChanged = () => { poll(); return loadQueue(); };
  // a case without a place (待定位) opens where it gets one: it cannot be registered before
  queue.onSelect = (c) => {
    const locate = c.lon == null && window.gridcoreUnlocated?.open;
    if (locate) locate(c.id); else { flyTo(c.lon, c.lat); showCase(c.id); }
  };
  queue.onFilters = syncTileFilters;
  search.onCase = (h) => { flyTo(h.lon, h.lat); showCase(h.id); };
  search.onGrid = (h) => { flyTo(h.lon, h.lat); showGrid(h.id); };
  search.onPart = (h) => { showView('map'); flyTo(h.lon, h.lat, 18); };
  search.onCategory = (h) => { setClass(h.id); toast(esc(t('map.filtered_by_class', { name: h.label }))); };
  search.onArea = (h) => { fitBox(h.bbox); setArea(h.id, h.label); };
  wire();
  wireViews();
  wirePanel();
  wireSearch();
  wireLightbox();
  await initQueue(config);
  st.events = connectEvents({ onEvent, onState: setLive });
  window.gridcore = { map: m, state: view, queue, panel, showGrid, showCase, refresh, poll, gcj,
    labels: view.labels, live: st, loadQueue };
  await drawn;
  // a link from another page (the evaluation board's cases): /map#case=ID opens that case
  if (/^\d+$/.test(q.get('case') || '')) await showCase(Number(q.get('case')));
  document.body.dataset.ready = '1';
}

wireSignIn();
start().catch((e) => { $('status').hidden = false; $('status').textContent = `${t('map.failed')}: ${e.message}`; });
