// The offline shell: the page (index.html and the files it references) is cached when this worker
// installs and kept fresh on every visit, so the page opens without a network (its saved
// conversations with it). The API is never cached, nor even seen: its requests go straight out.
const CACHE = 'localchat-shell-v1'
const SHELL = ['manifest.webmanifest', 'favicon.svg', 'icon-192.png']
// Paths under the scope that belong to the server, not the page: the API paths of
// backend/app/core/static.py (API_PATH) and deploy/nginx.conf.
const SERVER =
  /^(v1|api|health\w*|metrics|docs|redoc|openapi\.json|models|chat\/completions|completions?|embeddings?|tokenize|detokenize|apply-template|infill|rerank|reranking|slots|props|lora-adapters|version|ping|pooling|score|classify|invocations|responses|auth)(\/|$)/

const scopePath = () => new URL(self.registration.scope).pathname

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE)
      const index = await fetch('./', { cache: 'no-cache' })
      if (!index.ok) throw new Error(`index.html: HTTP ${index.status}`)
      const html = await index.clone().text()
      // The hashed script and style the page loads (Vite writes them as ./assets/…).
      const assets = [...html.matchAll(/(?:src|href)="(\.?\/?assets\/[^"]+)"/g)].map((m) => m[1])
      await cache.addAll([...SHELL, ...assets])
      await cache.put('./', index)
      await self.skipWaiting()
    })(),
  )
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key)
    })(),
  )
})

/** The network's answer, stored for next time; the stored one when the network fails. */
async function networkFirst(request, key) {
  const cache = await caches.open(CACHE)
  try {
    const response = await fetch(request)
    if (response.ok) await cache.put(key, response.clone())
    return response
  } catch (e) {
    const cached = await cache.match(key, { ignoreVary: true })
    if (cached) return cached
    throw e
  }
}

/**
 * Hashed assets never change: the stored copy, else the network's (stored). Matching ignores
 * Vary: the server varies on Origin (CORS), which a page's own script request may carry and
 * the worker's stored request does not.
 */
async function cacheFirst(request) {
  const cache = await caches.open(CACHE)
  const cached = await cache.match(request, { ignoreVary: true })
  if (cached) return cached
  const response = await fetch(request)
  if (response.ok) await cache.put(request, response.clone())
  return response
}

self.addEventListener('fetch', (event) => {
  const request = event.request
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== self.location.origin) return
  const path = url.pathname.startsWith(scopePath()) ? url.pathname.slice(scopePath().length) : url.pathname
  if (SERVER.test(path)) return
  // Every page route is index.html (a single-page app): one cached copy answers for all.
  if (request.mode === 'navigate') event.respondWith(networkFirst(request, './'))
  else if (path.startsWith('assets/')) event.respondWith(cacheFirst(request))
  else if (SHELL.includes(path)) event.respondWith(networkFirst(request, request))
})
