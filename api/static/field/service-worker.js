// The phone app's service worker, served at /m/sw.js (scope /m/) with three constants put in
// front of this file by the server: VERSION (a hash of every file below), SHELL (the app
// shell: the page, its scripts, styles, icons, Leaflet, the messages, the categories) and ROOT.
//
// Installing caches the whole shell, so the app opens with no network at all. The shell is
// served from the cache (a new version is installed in the background and used from the next
// start). Photos of cases are kept once seen (they never change). The API is never cached
// here: the app keeps its own data in IndexedDB and decides what to show offline.
/* global VERSION, SHELL, ROOT */
const CACHE = `gridcore-field-${VERSION}`;
const PHOTOS = 'gridcore-field-photos';
const SHELL_URLS = new Set(SHELL);
const PHOTO = new RegExp(`^${ROOT}/cases/\\d+/photos/\\d+$`);

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('gridcore-field-') && k !== CACHE && k !== PHOTOS)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function fromCache(request, key) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key || request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && SHELL_URLS.has(new URL(request.url).pathname + new URL(request.url).search)) {
    cache.put(request, response.clone());
  }
  return response;
}

async function photo(request) {
  const cache = await caches.open(PHOTOS);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return; // reports, steps, sign-in: always the network
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && url.pathname.startsWith(`${ROOT}/m/`)) {
    event.respondWith(fromCache(request, `${ROOT}/m/`).catch(() => Response.error()));
    return;
  }
  if (SHELL_URLS.has(url.pathname + url.search)) {
    event.respondWith(fromCache(request));
    return;
  }
  if (PHOTO.test(url.pathname)) event.respondWith(photo(request));
});

// Background Sync (Chromium): ask an open app to send its outbox; elsewhere the app retries
// by itself (on start, when the network returns, on a timer).
self.addEventListener('sync', (event) => {
  if (event.tag !== 'outbox') return;
  event.waitUntil(self.clients.matchAll({ includeUncontrolled: true }).then((clients) => {
    clients.forEach((client) => client.postMessage('flush-outbox'));
  }));
});
