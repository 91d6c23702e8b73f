// The responder app's service worker (scope /r/): the app shell opens without a network; tasks, duty and
// photos always go to the hub (never cached), so nothing stale is ever shown as a live task.
'use strict';
const SHELL = 'pingan-responder-v2';
const FILES = ['/r/', '/static/responder.js', '/static/server-errors.js', '/static/responder.css', '/static/favicon.svg', '/r/manifest.webmanifest'];
self.addEventListener('install', (e) => { e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES))); self.skipWaiting(); });
self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin || !FILES.includes(url.pathname)) return;
  // network first (a new hub version shows at once), the cached shell when the network is down
  e.respondWith(fetch(e.request).then((r) => {
    const copy = r.clone(); caches.open(SHELL).then((c) => c.put(e.request, copy)); return r;
  }).catch(() => caches.match(e.request)));
});
