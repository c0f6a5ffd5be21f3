// The portal's service worker (served as /m/sw.js, scope /m): the portal opens, installed
// on a home screen, even on a bad connection. Only the shell is cached — the layout's
// script, style and icons, and the static pages — never an API answer or a tracking page,
// which carry a citizen's request. Pages are fetched from the network first; the cached
// copy is for when there is none.

const CACHE = "portal-shell-v1";
const SHELL = [
  "/m",
  "/m/submit",
  "/m/track",
  "/static/css/portal.css",
  "/static/js/portal.js",
  "/static/js/dom.js",
  "/static/portal/icon-192.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return; // the API, tracking links, knowledge: network only
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request)),
  );
});
