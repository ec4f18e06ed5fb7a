// Pastra's service worker: keeps the app shell (styles, ES modules, worklets, icons) so the
// assistant opens fast and installs as an app. Pages are per-user and always come from the
// network (never cached: a shared device must not show the previous user's page); offline, a
// small page says so. WebSockets, forms and other origins are never touched.
// Served at /sw.js (scope "/"); `?static=` names STATIC_URL (default /static/).
const VERSION = "pastra-shell-v3";
const STATIC = new URL(self.location.href).searchParams.get("static") || "/static/";
const SHELL = [
  "css/base.css",
  "css/talk.css",
  "css/pages.css",
  "manifest.webmanifest",
  "img/icons.svg",
  "img/pastra.svg",
  "img/pastra-192.png",
  "img/pastra-512.png",
  "js/main.js",
  "js/app.js",
  "js/audio.js",
  "js/cards.js",
  "js/conversation.js",
  "js/copy.js",
  "js/devices.js",
  "js/errors.js",
  "js/frames.js",
  "js/heartbeat.js",
  "js/instructions.js",
  "js/jitter.js",
  "js/link.js",
  "js/live-socket.js",
  "js/media.js",
  "js/mic.js",
  "js/player.js",
  "js/protocol.js",
  "js/ptt.js",
  "js/outbox.js",
  "js/quota.js",
  "js/reconnect.js",
  "js/reply.js",
  "js/resampler.js",
  "js/settings.js",
  "js/state.js",
  "js/tools.js",
  "js/transcript.js",
  "js/ui.js",
  "js/vad.js",
  "js/view.js",
  "js/vision.js",
  "js/voice.js",
  "js/wakelock.js",
  "js/worklets/capture.worklet.js",
  "js/worklets/playback.worklet.js",
].map((path) => STATIC + path);
const NETWORK_TIMEOUT_MS = 3000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(VERSION)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("pastra-") && k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith(STATIC)) event.respondWith(networkFirst(request));
  else if (request.mode === "navigate") event.respondWith(fetch(request).catch(() => offlinePage()));
});

// Fresh files when the network answers (a deploy is picked up at once), the shell otherwise.
async function networkFirst(request) {
  const cache = await caches.open(VERSION);
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
    if (response.ok) cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw error;
  }
}

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("network timeout")), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

function offlinePage() {
  const html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline · Pastra</title>
<link rel="stylesheet" href="${STATIC}css/base.css"></head>
<body><main class="page page--narrow"><h1>You are offline</h1>
<p class="lede">Pastra needs a connection to talk. It will work again as soon as you are back online.</p>
<p><a class="btn btn--primary" href="/">Try again</a></p></main></body></html>`;
  return new Response(html, {
    status: 503,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'",
      "Cache-Control": "no-store",
    },
  });
}
