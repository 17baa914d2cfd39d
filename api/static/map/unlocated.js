// The 待定位 queue on the dispatchers' map (接诉即办): hotline cases filed without a place (their
// address matched no place surely enough). The dispatcher opens one, sees the address and the
// geocoder's candidates, picks the place on the map (a click, a dragged pin or a candidate) and
// locates it (POST /cases/{id}/locate); the case then goes on to verification and registration
// in the drawer like any other. Clicks on the map pick the place while a case is open here.
import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { loadMessages, t } from '../i18n.js';
import { api } from '../common/api.js';
import { $, className, data, esc, toast, when } from '../common/ui.js';
import { gcj, view } from './mapview.js';
import { drawerShown } from './views.js';

const st = { cases: [], current: null, pick: null, marker: null };
const ready = loadMessages(['coord']).catch(() => {});

// The map shows GCJ-02 under an AMap-style basemap: a click there is a GCJ-02 point.
function displayCrs() {
  const p = view.config?.basemaps?.providers?.find((x) => x.id === view.basemap);
  return p?.overlay_datum === 'gcj02' ? 'GCJ-02' : 'EPSG:4326';
}

export async function loadUnlocated() {
  await ready;
  const page = await api('/cases/unlocated?limit=100').catch(() => null);
  const box = $('unlocated');
  if (!page) {  // not a dispatcher's: the queue is theirs
    box.hidden = true;
    box.dataset.ready = String(Date.now());
    return;
  }
  box.hidden = false;
  st.cases = page.cases;
  $('unlocated-count').textContent = page.count;
  $('unlocated-list').innerHTML = page.cases.map((c) => `<li class="row" data-unlocated="${c.id}" tabindex="0">
    <div class="line1">${data(c.public_no, 'no')} <span class="cls">${esc(className(c.category, c.context?.category_names))}</span></div>
    <div class="line2">${data(c.address || '—', 'desc')}</div>
    <div class="line3"><time>${esc(when(c.created_at))}</time> · ${data(c.reporter || '')}</div></li>`).join('')
    || `<li class="empty">${esc(t('coord.unlocated_empty'))}</li>`;
  box.dataset.ready = String(Date.now());
}

function setPick(lon, lat, crs) {
  st.pick = { lon, lat, crs };
  const at = crs === 'EPSG:4326' ? gcj(lon, lat) : [lon, lat];
  if (!st.marker) {
    const el = document.createElement('div');
    el.className = 'pick-marker';
    el.id = 'pick-marker';
    st.marker = new maplibregl.Marker({ element: el, draggable: true }).setLngLat(at).addTo(view.map);
    st.marker.on('dragend', () => { const p = st.marker.getLngLat(); setPick(p.lng, p.lat, displayCrs()); });
  } else {
    st.marker.setLngLat(at);
  }
  $('chosen-place').textContent = `${lon.toFixed(6)}, ${lat.toFixed(6)} (${crs})`;
  $('locate-go').disabled = false;
}

function candidatesHtml(c) {
  const found = c.geocoding?.candidates || [];
  if (!found.length) return `<p class="muted">${esc(t('coord.unlocated_no_candidates'))}</p>`;
  return `<ul class="candidates" id="candidates">${found.map((k, i) => `<li><span>${data(k.label)}
    <span class="muted">${esc(t('coord.confidence', { n: Math.round((k.confidence || 0) * 100) }))}${k.grid_code ? ' · ' + data(k.grid_code) : ''}</span></span>
    <button type="button" class="secondary" data-candidate="${i}">${esc(t('coord.unlocated_use'))}</button></li>`).join('')}</ul>`;
}

// From the 待定位 list, or from a row of the dispatcher's queue that has no place yet (one past
// the list's first hundred is fetched).
async function open(id) {
  const c = st.cases.find((x) => x.id === id) || await api(`/cases/${id}`).catch(() => null);
  if (!c) return;
  if (c.location?.lon != null) { window.gridcore?.showCase?.(id); return; }  // placed meanwhile
  st.current = c; st.pick = null;
  if (window.gridcore?.panel) window.gridcore.panel.caseId = null;  // the drawer is ours now
  view.picking = true;
  document.body.classList.add('map-picking');
  $('drawer').hidden = false;
  drawerShown();  // on a phone, the map view (the drawer may have been open already)
  $('details').innerHTML = `<article class="case locate-panel" id="locate-panel" data-case-id="${c.id}">
    <h3>${esc(t('coord.unlocated_title'))} ${data(c.public_no)}</h3>
    <dl class="facts"><dt>${esc(t('coord.unlocated_address'))}</dt><dd id="locate-address">${data(c.address || '—')}</dd>
      <dt>${esc(t('case.label_class'))}</dt><dd>${esc(className(c.category, c.context?.category_names))}</dd>
      <dt>${esc(t('case.label_reported'))}</dt><dd>${esc(when(c.created_at))} · ${data(c.reporter || '')}</dd></dl>
    <p class="desc">${data(c.description || '—')}</p>
    <h4>${esc(t('coord.unlocated_candidates'))}</h4>${candidatesHtml(c)}
    <p class="hint">${esc(t('coord.unlocated_hint'))}</p>
    <p>${esc(t('coord.unlocated_chosen'))}${esc(t('common.sep_label'))}<span id="chosen-place" class="chosen-place" translate="no">${esc(t('coord.unlocated_none_chosen'))}</span></p>
    <div class="buttons"><button type="button" id="locate-go" disabled>${esc(t('coord.unlocated_locate'))}</button>
      <button type="button" class="secondary" id="locate-back">${esc(t('coord.unlocated_back'))}</button></div>
    <p class="error" id="locate-error" role="alert"></p></article>`;
  const first = c.geocoding?.candidates?.[0];
  if (first && view.map) view.map.jumpTo({ center: gcj(first.lon, first.lat), zoom: Math.max(view.map.getZoom(), 16) });
}

function close() {
  view.picking = false;
  document.body.classList.remove('map-picking');
  st.current = null; st.pick = null;
  if (st.marker) { st.marker.remove(); st.marker = null; }
}

async function locate() {
  const c = st.current;
  if (!c || !st.pick) return;
  try {
    const done = await api(`/cases/${c.id}/locate`, { method: 'POST',
      json: { lon: st.pick.lon, lat: st.pick.lat, crs: st.pick.crs, expected_version: c.version } });
    close();
    toast(esc(t('coord.unlocated_done', { no: done.public_no })), { kind: 'ok', timeout: 5000 });
    // the located case in the drawer and both lists, at once (one after the other, a slow
    // server left the pick panel up for seconds after the case was placed)
    const g = window.gridcore || {};
    await Promise.all([loadUnlocated(), g.loadQueue?.(), g.showCase?.(done.id)]);
  } catch (e) {
    $('locate-error').textContent = e.message;
  }
}

function wire() {
  $('unlocated-list').addEventListener('click', (ev) => {
    const row = ev.target.closest('[data-unlocated]');
    if (row) open(Number(row.dataset.unlocated));
  });
  $('details').addEventListener('click', (ev) => {
    if (!st.current) return;
    const cand = ev.target.closest('[data-candidate]');
    if (cand) {
      const k = st.current.geocoding.candidates[Number(cand.dataset.candidate)];
      setPick(k.lon, k.lat, 'EPSG:4326');
      view.map.jumpTo({ center: gcj(k.lon, k.lat), zoom: Math.max(view.map.getZoom(), 17) });
    } else if (ev.target.id === 'locate-go') {
      locate();
    } else if (ev.target.id === 'locate-back') {
      close();
      $('drawer').hidden = true;
    }
  });
  $('drawer-close').addEventListener('click', close);
  view.map.on('click', (e) => { if (st.current) setPick(e.lngLat.lng, e.lngLat.lat, displayCrs()); });
}

// The map starts after signing in (production): wait for it.
const started = setInterval(() => {
  if (!view.map || !document.body.dataset.ready) return;
  clearInterval(started);
  wire();
  loadUnlocated();
  setInterval(() => { if (!st.current) loadUnlocated(); }, 15000);
}, 200);
window.gridcoreUnlocated = { st, loadUnlocated, open, setPick };
// Another case opened in the drawer ends picking.
document.addEventListener('gridcore:case', () => { if (st.current) close(); });
