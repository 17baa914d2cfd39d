// Where am I, on the phone and offline: the grid under a point from the worker's own area
// (GET /me/area, kept in IndexedDB), the distance to a grid, and the phone's position.
// The server resolves every report again on intake: this answer only guides the worker.

// Ray casting; a ring is [[lon, lat], …] (closed or not).
export function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// Is the point on the segment (within a hair: the edge between two grids belongs to both)?
function onSegment(x, y, [x1, y1], [x2, y2], eps = 1e-9) {
  const cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1);
  if (Math.abs(cross) > eps * Math.hypot(x2 - x1, y2 - y1)) return false;
  return x >= Math.min(x1, x2) - eps && x <= Math.max(x1, x2) + eps
    && y >= Math.min(y1, y2) - eps && y <= Math.max(y1, y2) + eps;
}

function onRing(x, y, ring) {
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    if (onSegment(x, y, ring[j], ring[i])) return true;
  }
  return false;
}

function polygons(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

// Inside a polygon with holes, its boundary included (as the server's ST_Covers).
export function covers(geometry, x, y) {
  return polygons(geometry).some(([outer, ...holes]) => (inRing(x, y, outer) || onRing(x, y, outer))
    && !holes.some((hole) => inRing(x, y, hole) && !onRing(x, y, hole)));
}

// The grid the point lies in; on an edge shared by several, the lowest code (the server's rule).
export function gridAt(area, lon, lat) {
  if (!area || !area.features) return null;
  const hits = area.features.filter((f) => covers(f.geometry, lon, lat));
  hits.sort((a, b) => (a.properties.code < b.properties.code ? -1 : 1));
  return hits[0] || null;
}

const R = 6371008.8;
const rad = (d) => (d * Math.PI) / 180;

export function distanceM(lon1, lat1, lon2, lat2) {
  const a = Math.sin(rad(lat2 - lat1) / 2) ** 2
    + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

// Metres from a point to a segment, in a local flat frame (fine at grid scale).
function toSegmentM(lon, lat, [x1, y1], [x2, y2]) {
  const k = Math.cos(rad(lat)) * (Math.PI / 180) * R;
  const m = (Math.PI / 180) * R;
  const ax = (x1 - lon) * k; const ay = (y1 - lat) * m;
  const bx = (x2 - lon) * k; const by = (y2 - lat) * m;
  const dx = bx - ax; const dy = by - ay;
  const len = dx * dx + dy * dy;
  const s = len ? Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len)) : 0;
  return Math.hypot(ax + s * dx, ay + s * dy);
}

// The nearest of the worker's grids to a point outside them all, and how far.
export function nearestGrid(area, lon, lat) {
  let best = null;
  for (const f of (area && area.features) || []) {
    for (const poly of polygons(f.geometry)) {
      for (const ring of poly) {
        for (let i = 1; i < ring.length; i += 1) {
          const d = toSegmentM(lon, lat, ring[i - 1], ring[i]);
          if (!best || d < best.distance) best = { feature: f, distance: d };
        }
      }
    }
  }
  return best;
}

// City parts within ``radius`` metres, nearest first.
export function partsNear(area, lon, lat, radius = 60) {
  const parts = (area && area.parts && area.parts.features) || [];
  return parts.map((p) => ({ part: p, distance: distanceM(lon, lat, ...p.geometry.coordinates) }))
    .filter((x) => x.distance <= radius).sort((a, b) => a.distance - b.distance);
}

// The phone's position: one watcher for the app, shared by the screens that want it.
let watcher = null;
let last = null;
const listeners = new Set();

export const lastFix = () => last;

export function watchPosition(listener) {
  listeners.add(listener);
  if (last) listener(last);
  if (watcher === null && navigator.geolocation) {
    watcher = navigator.geolocation.watchPosition((pos) => {
      last = { lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy,
               at: new Date(pos.timestamp || Date.now()).toISOString() };
      listeners.forEach((fn) => fn(last));
    }, (err) => {
      listeners.forEach((fn) => fn(null, err));
    }, { enableHighAccuracy: true, maximumAge: 10_000, timeout: 30_000 });
  }
  return () => {
    listeners.delete(listener);
    if (!listeners.size && watcher !== null) {
      navigator.geolocation.clearWatch(watcher);
      watcher = null;
    }
  };
}
