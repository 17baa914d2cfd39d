// The small maps of the phone app, on Leaflet (vendored, ~150 KB: MapLibre would not fit the
// page budget, and a handful of grids, parts and one position need no vector tiles). No
// basemap: the worker's grids are the map, and it works offline. Leaflet is loaded when the
// first map is drawn (the sign-in screen does without it); the service worker keeps it.
/* global L */
import { t } from '../i18n.js';

const ROOT = document.documentElement.dataset.root || '';
let loading = null;

export function leaflet() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = `${ROOT}/static/vendor/leaflet/leaflet.css`;
      // before the app's own styles, which adjust Leaflet's
      document.head.insertBefore(css, document.querySelector('link[rel="stylesheet"]'));
      const script = document.createElement('script');
      script.src = `${ROOT}/static/vendor/leaflet/leaflet.js`;
      script.onload = () => resolve(window.L);
      script.onerror = () => { loading = null; reject(new Error('map library not available')); };
      document.head.append(script);
    });
  }
  return loading;
}

export function makeMap(el, { interactive = true } = {}) {
  const map = L.map(el, { zoomControl: false, attributionControl: false, zoomSnap: 0.5,
                          dragging: interactive, touchZoom: interactive, tap: true,
                          scrollWheelZoom: interactive, doubleClickZoom: interactive });
  if (interactive) {
    L.control.zoom({ position: 'bottomright', zoomInTitle: t('field.zoom_in'),
                     zoomOutTitle: t('field.zoom_out') }).addTo(map);
  }
  // grid labels above the grids, below the pin and the position
  map.createPane('labels').style.zIndex = 450;
  map.createPane('position').style.zIndex = 640; // the worker's own position: above all
  map.setView([0, 0], 2); // a map without a view cannot take layers yet
  return map;
}

// What a grid's label keeps clear of, in pixels around a mark's point: the position dot with
// its white ring (positionLayer), and the pin (its 36 × 48 icon stands on the point).
export const DOT_BOX = { left: -11, right: 11, top: -11, bottom: 11 };
export const PIN_BOX = { left: -18, right: 18, top: -47, bottom: 3 };
const LABEL_GAP = 4;
const CURRENT = { color: '#003c41', weight: 3, fillColor: '#ffd23f', fillOpacity: 0.4 };
const OTHER = { color: '#005c63', weight: 1.5, fillColor: '#8fd3d8', fillOpacity: 0.18 };

// The worker's grids, labelled with the last digits of their codes; ``highlight(code)`` marks
// the grid the worker stands in; ``keepClear(marks)`` moves labels off the marks drawn over
// them (``[{ latlng, box: DOT_BOX | PIN_BOX }]``).
export function gridsLayer(area, currentCode) {
  const styleFor = (code) => (f) => (f.properties.code === code ? CURRENT : OTHER);
  const layer = L.geoJSON(area, {
    style: styleFor(currentCode),
    onEachFeature: (f, part) => {
      part.bindTooltip(f.properties.code.slice(-3), { permanent: true, direction: 'center',
                                                      className: 'grid-label', pane: 'labels' });
    },
  });
  layer.highlight = (code) => layer.setStyle(styleFor(code));
  // A label sits at its grid's centre, where the worker often stands: the position dot (and
  // the report's pin) covered it ("0●1"). A label a mark would touch moves up or down by the
  // least that clears every mark, at every zoom.
  let marks = [];
  const place = () => {
    const map = layer._map;
    if (!map) return;
    const boxes = marks.map(({ latlng, box }) => {
      const p = map.latLngToContainerPoint(latlng);
      return { left: p.x + box.left, right: p.x + box.right, top: p.y + box.top, bottom: p.y + box.bottom };
    });
    layer.eachLayer((part) => {
      const tip = part.getTooltip();
      const el = tip && tip.getElement();
      if (!el || !tip.getLatLng()) return;
      const at = map.latLngToContainerPoint(tip.getLatLng());
      const w = el.offsetWidth / 2 + LABEL_GAP, hh = el.offsetHeight / 2 + LABEL_GAP;
      const clear = (dy) => boxes.every((b) => at.x + w <= b.left || at.x - w >= b.right
        || at.y + dy + hh <= b.top || at.y + dy - hh >= b.bottom);
      const tries = [0, ...boxes.flatMap((b) => [b.top - hh - at.y, b.bottom + hh - at.y])]
        .sort((a, b) => Math.abs(a) - Math.abs(b));
      const dy = Math.round(tries.find(clear) ?? 0);
      if ((tip.options.offset?.y || 0) !== dy) {
        tip.options.offset = L.point(0, dy);
        tip.update();
      }
      el.classList.toggle('moved', dy !== 0);
    });
  };
  layer.keepClear = (next) => { marks = (next || []).filter((m) => m && m.latlng); place(); };
  layer.on('add', () => { layer._map.on('zoomend', place); place(); });
  layer.on('remove', (e) => e.target._map?.off('zoomend', place));
  return layer;
}

const PART_COLOURS = { intact: '#1b7f3b', damaged: '#d98c00', missing: '#c81e1e', occupied: '#6b3fa0' };

export function partsLayer(parts, onPick) {
  return L.geoJSON(parts, {
    pointToLayer: (f, latlng) => L.circleMarker(latlng, {
      radius: 9, weight: 2, color: '#fff', fillOpacity: 1,
      fillColor: PART_COLOURS[f.properties.state] || '#444' }),
    onEachFeature: (f, layer) => { if (onPick) layer.on('click', () => onPick(f)); },
  });
}

// The phone's position with its accuracy circle.
export function positionLayer() {
  const group = L.layerGroup();
  const circle = L.circle([0, 0], { radius: 1, color: '#1565c0', weight: 1, fillOpacity: 0.12,
                                    pane: 'position', interactive: false });
  const dot = L.circleMarker([0, 0], { radius: 8, color: '#fff', weight: 3, fillColor: '#1565c0',
                                       fillOpacity: 1, pane: 'position', interactive: false });
  group.addLayer(circle).addLayer(dot);
  group.update = (fix) => {
    circle.setLatLng([fix.lat, fix.lon]).setRadius(Math.max(fix.accuracy || 1, 1));
    dot.setLatLng([fix.lat, fix.lon]);
  };
  return group;
}

// A pin the worker drags to where the problem is.
export function pin(lat, lon, onMove) {
  const icon = L.divIcon({ className: 'pin', iconSize: [36, 48], iconAnchor: [18, 46] });
  const marker = L.marker([lat, lon], { draggable: true, icon, autoPan: true, keyboard: false });
  marker.on('dragend', () => { const p = marker.getLatLng(); onMove(p.lat, p.lng); });
  return marker;
}

export function fitArea(map, area, fallback) {
  if (area && area.bbox) {
    const [x0, y0, x1, y1] = area.bbox;
    map.fitBounds([[y0, x0], [y1, x1]], { padding: [16, 16] });
  } else if (fallback) {
    map.setView([fallback.lat, fallback.lon], 17);
  } else {
    map.setView([0, 0], 2);
  }
}

// Takes a screen's map off the page. Leaflet 1.9.4 ends a zoom animation from a 250 ms timer
// that still runs after ``remove()`` and then reads the removed map pane ("Cannot read
// properties of undefined (reading '_leaflet_pos')", Leaflet/Leaflet#9575): a worker who
// leaves a screen right after the map zoomed to their position met it. Finishing the
// animation first (the timer then finds nothing to do) needs Leaflet's own handler.
export function removeMap(map) {
  map.stop();
  if (map._animatingZoom) map._onZoomTransitionEnd();
  map.remove();
}
