// 定位 — where am I: my grids, my position with its accuracy circle, and the grid I stand in,
// worked out on the phone from my area (it works offline).
import { t } from '../i18n.js';
import { distanceM, gridAt, nearestGrid, watchPosition } from './geo.js';
import { DOT_BOX, fitArea, gridsLayer, leaflet, makeMap, positionLayer, removeMap } from './mapview.js';
import * as net from './net.js';
import { h, metres, toast, when } from './ui.js';

export async function render(view) {
  const mapEl = h('div', { id: 'where-map', class: 'map tall', role: 'img', 'aria-label': t('field.map') });
  const code = h('div', { id: 'here-code', class: 'here-code' }, '—');
  const name = h('div', { id: 'here-name', class: 'here-name' }, t('field.locating'));
  const detail = h('div', { id: 'here-detail', class: 'muted' });
  const areaNote = h('div', { id: 'area-note', class: 'muted small' });
  const reportHere = h('a', { href: '#/report', class: 'button primary big', id: 'report-here' }, t('field.report_here'));
  const refresh = h('button', { type: 'button', class: 'button', id: 'area-refresh', onclick: async () => {
    try {
      await net.syncArea();
      toast(t('field.area_updated'));
    } catch (e) {
      toast(e instanceof net.Offline ? t('field.offline_kept') : e.message, 'warn');
    }
    await draw();
  } }, t('field.area_refresh'));
  view.append(mapEl, h('section', { class: 'panel here', 'aria-live': 'polite' }, code, name, detail,
    h('div', { class: 'row' }, reportHere, refresh), areaNote));

  await leaflet();
  const map = makeMap(mapEl);
  const me = positionLayer().addTo(map);
  let grids = null;
  let area = null;
  let fix = null;
  let centred = false;
  // no area yet: downloading (right after sign-in) or not downloaded (offline since)
  const noArea = () => (net.areaLoading() ? t('field.area_loading') : t('field.no_area'));

  function locate() {
    if (!fix) return;
    me.update(fix);
    if (!area || !area.features.length) {
      code.textContent = '—';
      name.textContent = noArea();
      return;
    }
    const hit = gridAt(area, fix.lon, fix.lat);
    view.dataset.grid = hit ? hit.properties.code : '';
    if (hit) {
      const p = hit.properties;
      code.textContent = p.code;
      name.textContent = [p.name, p.community_name].filter(Boolean).join(' · ');
      view.classList.remove('outside');
    } else {
      const near = nearestGrid(area, fix.lon, fix.lat);
      code.textContent = t('field.outside');
      name.textContent = near ? t('field.nearest_grid', { code: near.feature.properties.code, distance: metres(near.distance) }) : '';
      view.classList.add('outside');
    }
    detail.textContent = t('field.accuracy', { m: Math.round(fix.accuracy || 0) }) + ' · ' + when(fix.at);
    if (grids) {
      grids.highlight(hit && hit.properties.code);
      grids.keepClear([{ latlng: [fix.lat, fix.lon], box: DOT_BOX }]);  // the dot covered its grid's label
    }
  }

  async function draw() {
    area = await net.get('area');
    if (left) return;
    if (grids) grids.remove();
    grids = null;
    if (area && area.features.length) {
      const current = fix && gridAt(area, fix.lon, fix.lat);
      grids = gridsLayer(area, current && current.properties.code).addTo(map);
      areaNote.textContent = t('field.area_note', { n: area.features.length, at: when(area.fetchedAt) });
    } else {
      areaNote.textContent = noArea();
    }
    if (!centred) fitArea(map, area, fix);
    locate();
  }

  let left = false; // the screen was left: nothing may touch the removed map any more
  const stop = watchPosition((next, error) => {
    if (left) return;
    if (!next) {
      if (error) {
        name.textContent = error.code === 1 ? t('field.gps_denied') : t('field.gps_unavailable');
      }
      return;
    }
    const moved = !fix || distanceM(fix.lon, fix.lat, next.lon, next.lat) > 3;
    fix = next;
    if (!centred) {
      map.setView([fix.lat, fix.lon], Math.max(map.getZoom() || 0, 17));
      centred = true;
    } else if (!map.getBounds().pad(-0.15).contains([fix.lat, fix.lon])) {
      map.panTo([fix.lat, fix.lon], { animate: false }); // the worker walked off the map
    }
    if (moved) locate();
  });
  const onArea = () => draw();
  window.addEventListener('area-changed', onArea);
  window.addEventListener('area-synced', onArea);
  await draw();
  const sized = setTimeout(() => { if (!left) map.invalidateSize(); }, 0);
  return () => {
    left = true;
    clearTimeout(sized);
    stop();
    window.removeEventListener('area-changed', onArea);
    window.removeEventListener('area-synced', onArea);
    removeMap(map);
  };
}
