"""The page as Nginx serves it (a release copy of frontend/dist), and as the backend serves it
alone (`make run`): cache policy, SPA fallback, 404 for a missing asset, gzip and security
headers, and where the page ends (API paths and API clients get a JSON 404, never the page),
checked with real requests against both."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import openai
import pytest
from server_process import CHAT_MODEL

from conftest import Site
from support import openai_error

HASHED = re.compile(r"^.+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")
YEAR_IMMUTABLE = "public, max-age=31536000, immutable"
# What Chromium sends when it navigates to a page.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def hashed_assets(html: Path, suffix: str) -> list[Path]:
    found = sorted(p for p in (html / "assets").glob(f"*{suffix}") if HASHED.match(p.name))
    assert found, f"no hashed {suffix} file in {html / 'assets'}: is this a Vite build?"
    return found


def assert_security_headers(resp: httpx.Response) -> None:
    h = resp.headers
    assert h.get("x-content-type-options") == "nosniff", h
    assert h.get("referrer-policy") == "strict-origin-when-cross-origin", h
    csp = h.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'self'" in directives.get("default-src", []), csp
    assert directives.get("script-src") == ["'self'"], csp  # no inline or remote script
    # The page reaches its API: same origin by default (and another server if configured).
    assert "'self'" in directives.get("connect-src", []), csp
    assert directives.get("object-src") == ["'none'"], csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert "server" not in h or "/" not in h["server"], "Nginx version leaked"


@pytest.fixture(params=["nginx", "backend"])
def origin(request: pytest.FixtureRequest, site: Site) -> str:
    """Where the page is fetched from: the production site, or one backend on its own."""
    return site.url if request.param == "nginx" else site.replicas[0].url


def test_index_is_revalidated_every_time(site: Site, origin: str, http: httpx.Client) -> None:
    index = (site.html / "index.html").read_bytes()
    for path in ("/", "/index.html"):
        resp = http.get(origin + path)
        assert resp.status_code == 200
        assert resp.content == index
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.headers["cache-control"] == "no-cache"
        assert "etag" in resp.headers or "last-modified" in resp.headers
        assert_security_headers(resp)
    # no-cache means "ask again": a conditional request is answered 304 while unchanged.
    etag = http.get(origin + "/").headers["etag"]
    again = http.get(origin + "/", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_hashed_assets_are_cached_for_a_year(site: Site, origin: str, http: httpx.Client) -> None:
    for asset in [*hashed_assets(site.html, ".js"), *hashed_assets(site.html, ".css")]:
        resp = http.get(f"{origin}/assets/{asset.name}")
        assert resp.status_code == 200, asset.name
        assert resp.content == asset.read_bytes()
        assert resp.headers["cache-control"] == YEAR_IMMUTABLE, asset.name
        assert_security_headers(resp)
    js = http.get(f"{origin}/assets/{hashed_assets(site.html, '.js')[0].name}")
    assert js.headers["content-type"].split(";")[0] in ("application/javascript", "text/javascript")


def test_every_asset_the_page_references_is_served(site: Site, origin: str, http: httpx.Client) -> None:
    """index.html's own script and style references resolve (relative or absolute)."""
    page = http.get(origin + "/").text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    local = [r for r in refs if not re.match(r"^[a-z]+:|^//", r)]
    assert any(r.endswith(".js") for r in local), page
    for ref in local:
        url = httpx.URL(origin + "/").join(ref)
        resp = http.get(url)
        assert resp.status_code == 200, (ref, resp.status_code)
        assert not resp.headers["content-type"].startswith("text/html"), ref


def test_unhashed_public_files_are_not_immutable(site: Site, origin: str, http: httpx.Client) -> None:
    public = [p for p in site.html.iterdir() if p.is_file() and p.name != "index.html"]
    if not public:
        pytest.skip("the build has no files from public/")
    for p in public:
        resp = http.get(f"{origin}/{p.name}")
        assert resp.status_code == 200
        assert "immutable" not in resp.headers.get("cache-control", ""), p.name


def test_pwa_manifest_icons_and_service_worker(site: Site, origin: str, http: httpx.Client) -> None:
    """The PWA files with the types browsers insist on (a manifest or a service worker of the
    wrong type is ignored or refused), revalidated like index.html rather than kept a year."""
    page = http.get(origin + "/").text
    assert 'rel="manifest" href="./manifest.webmanifest"' in page
    manifest = http.get(origin + "/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].split(";")[0] == "application/manifest+json"
    assert manifest.headers["cache-control"] == "no-cache"
    assert_security_headers(manifest)
    body = manifest.json()
    assert body["display"] == "standalone" and body["start_url"] == "./"
    sizes = {icon["sizes"] for icon in body["icons"] if icon["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes, body["icons"]
    for icon in body["icons"]:
        resp = http.get(f"{origin}/{icon['src']}")
        assert resp.status_code == 200, icon
        assert resp.headers["content-type"].split(";")[0] == icon["type"], icon
    worker = http.get(origin + "/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].split(";")[0] in ("application/javascript", "text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    assert worker.content == (site.html / "sw.js").read_bytes()


def test_spa_fallback_serves_index_for_client_routes(site: Site, origin: str, http: httpx.Client) -> None:
    index = (site.html / "index.html").read_bytes()
    for path in ("/c/8f2e61", "/settings", "/some/deep/route?x=1"):
        resp = http.get(origin + path)
        assert resp.status_code == 200, path
        assert resp.content == index, path
        assert resp.headers["cache-control"] == "no-cache", path
        assert_security_headers(resp)


def test_missing_asset_is_404_not_the_page(site: Site, origin: str, http: httpx.Client) -> None:
    """A stale hashed name must not get index.html (cached a year under a .js name)."""
    resp = http.get(f"{origin}/assets/index-deadbeef00.js")
    assert resp.status_code == 404
    assert "immutable" not in resp.headers.get("cache-control", "")
    assert_security_headers(resp)


def test_text_assets_are_gzipped(site: Site, origin: str, http: httpx.Client) -> None:
    js = max(hashed_assets(site.html, ".js"), key=lambda p: p.stat().st_size)
    css = hashed_assets(site.html, ".css")[0]
    for path, original in (
        (f"/assets/{js.name}", js.read_bytes()),
        (f"/assets/{css.name}", css.read_bytes()),
        ("/", (site.html / "index.html").read_bytes()),
    ):
        with http.stream("GET", origin + path, headers={"Accept-Encoding": "gzip"}) as resp:
            body = resp.read()  # decoded by httpx
            assert resp.headers.get("content-encoding") == "gzip", path
            assert "accept-encoding" in resp.headers.get("vary", "").lower(), path
            assert body == original, path
    # Without Accept-Encoding: identity.
    plain = http.get(f"{origin}/assets/{js.name}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == js.read_bytes()


def test_gzip_really_shrinks_the_bundle(site: Site, origin: str) -> None:
    """Read the raw bytes off the wire: the main bundle arrives compressed and decompresses to
    the file on disk."""
    js = max(hashed_assets(site.html, ".js"), key=lambda p: p.stat().st_size)
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{origin}/assets/{js.name}", headers={"Accept-Encoding": "gzip"}) as resp,
    ):
        wire = b"".join(resp.iter_raw())
    assert resp.headers["content-encoding"] == "gzip"
    assert len(wire) < 0.6 * js.stat().st_size
    assert gzip.decompress(wire) == js.read_bytes()


# Paths an API client or a scraper may try, none of them a route of either origin.
API_PATHS = (
    "/v1",
    "/models",
    f"/models/{CHAT_MODEL}",
    "/chat/completions",
    "/completions",
    "/completion",
    "/embeddings",
    "/slots",
    "/props",
    "/api/tags",
    "/healthz",
    "/version",
)


def test_api_paths_are_a_json_404_not_the_page(site: Site, origin: str, http: httpx.Client) -> None:
    """A scraper or an SDK whose base URL lacks /v1 gets OpenAI's error shape, with the way to
    the API (even as a browser would ask), and never index.html with a 200."""
    for path in API_PATHS:
        for headers in ({}, {"Accept": BROWSER_ACCEPT}):
            resp = http.get(origin + path, headers=headers)
            err = openai_error(resp, 404)
            assert err["code"] == "unknown_url", (path, err)
            assert "under /v1/" in err["message"] and "base URL" in err["message"], (path, err)
            if origin == site.url:
                assert_security_headers(resp)
    for path in ("/models", "/chat/completions"):
        assert f"did you mean /v1{path}?" in openai_error(http.get(origin + path), 404)["message"]


def test_sdk_without_v1_in_its_base_url_is_told_where_the_api_is(origin: str) -> None:
    """The OpenAI SDK pointed at the site's root: a NotFoundError that names the route it meant,
    not a confusing error from parsing HTML."""
    sdk = openai.OpenAI(base_url=origin, api_key="unused", max_retries=0, timeout=30)
    with pytest.raises(openai.NotFoundError, match="did you mean /v1/models"):
        sdk.models.list()
    with pytest.raises(openai.NotFoundError, match="did you mean /v1/chat/completions"):
        sdk.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_replica_endpoints_are_a_json_404_through_the_site(site: Site, http: httpx.Client, path: str) -> None:
    """Metrics and the API's documentation are not proxied: the site says so, in OpenAI's shape,
    while each replica still serves them on its own port."""
    resp = http.get(site.url + path)
    err = openai_error(resp, 404)
    assert "not exposed through the public site" in err["message"], err
    assert f"own port (e.g. http://127.0.0.1:8000{path}" in err["message"], err
    assert_security_headers(resp)
    assert http.get(site.replicas[0].url + path).status_code == 200


def test_api_clients_get_a_json_404_where_browsers_get_the_page(
    site: Site, origin: str, http: httpx.Client
) -> None:
    """An Accept header that names JSON and nothing covering HTML is an API client: a client-side
    route is a JSON 404 for it, while a browser navigating there gets the page, and the page's
    files are served whatever the Accept header."""
    page = http.get(origin + "/c/8f2e61", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200
    assert page.content == (site.html / "index.html").read_bytes()
    for accept in ("application/json", "application/problem+json, application/json;q=0.5"):
        err = openai_error(http.get(origin + "/c/8f2e61", headers={"Accept": accept}), 404)
        assert err["code"] == "unknown_url", err
    manifest = http.get(origin + "/manifest.webmanifest", headers={"Accept": "application/manifest+json"})
    assert manifest.status_code == 200
