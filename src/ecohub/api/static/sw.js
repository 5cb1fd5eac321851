// ecohub console service worker: keeps the shell (styles, scripts, icons) so the installed app starts offline.
// Pages and data always come from the network (they are personal and live); only the static shell is cached.
const SHELL = "ecohub-shell-v1";
const FILES = [
  "/console/static/console.css", "/console/static/console.js", "/console/static/vendor/htmx.min.js",
  "/console/static/vendor/uPlot.iife.min.js", "/console/static/vendor/uPlot.min.css",
  "/console/static/icons/favicon.svg", "/console/static/icons/icon-192.png", "/console/static/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith("/console/static/")) {
    return;
  }
  // the shell: network first (a new release shows at once), the cached copy when offline
  event.respondWith(fetch(event.request).then((response) => {
    const copy = response.clone();
    caches.open(SHELL).then((cache) => cache.put(event.request, copy));
    return response;
  }).catch(() => caches.match(event.request)));
});
