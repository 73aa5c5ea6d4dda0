"""deploy/nginx.conf itself: what a server or the compose file gets, how it is rendered for a
local run, and the answers Nginx gives on its own (no backend reachable, body too large, rate
limit) — with a real Nginx whose upstream is a port nobody listens on."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import free_port

import render_nginx
from support import DEPLOY_DIR, Nginx, make_run_dir, nginx_binary, openai_error, port_open, start_nginx

CONF = (DEPLOY_DIR / "nginx.conf").read_text()


def assert_openai_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    err = openai_error(resp, status)
    assert resp.headers.get("x-content-type-options") == "nosniff"
    return err


def test_production_file_targets_the_compose_service_and_image_paths() -> None:
    """As shipped, the file works in the nginx image: upstream = compose service `backend` on
    its port, page in the image's html folder, listening on the container's port 80."""
    upstream = re.search(r"upstream localchat_backend \{(.*?)\}", CONF, re.S)
    assert upstream is not None
    assert re.findall(r"^\s*server\s+(\S+)", upstream.group(1), re.M) == ["backend:8000"]
    assert "least_conn;" in upstream.group(1)
    assert re.search(r"^\s*keepalive\s+\d+;", upstream.group(1), re.M)
    assert re.search(r"^\s*listen 80;", CONF, re.M)
    assert re.search(r"^\s*root /usr/share/nginx/html;", CONF, re.M)
    web = (DEPLOY_DIR / "web.Dockerfile").read_text()
    assert "COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf" in web
    assert re.search(r"COPY --from=build \S+/dist /usr/share/nginx/html", web)


def test_streaming_settings_apply_to_the_api() -> None:
    server = CONF[CONF.index("server {") :]
    for directive in (
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_buffering off;",
        "proxy_read_timeout 600s;",
    ):
        assert directive in server, directive
    gzip_types = re.search(r"gzip_types([^;]*);", CONF)
    assert gzip_types is not None
    assert "text/event-stream" not in gzip_types.group(1)
    # Rate limiting exists but is off as shipped.
    assert re.search(r'^map "off" \$localchat_rate_limit_key', CONF, re.M)


def test_render_rewrites_only_the_marked_lines(tmp_path: Path) -> None:
    out = render_nginx.render_site(
        CONF,
        upstreams=["127.0.0.1:9001", "127.0.0.1:9002"],
        listen="127.0.0.1:9000",
        root=tmp_path / "html",
        access_log=tmp_path / "access.log",
        rate_limit=True,
    )
    assert "server 127.0.0.1:9001 max_fails=1 fail_timeout=10s;" in out
    assert "server 127.0.0.1:9002 max_fails=1 fail_timeout=10s;" in out
    assert "server backend:8000" not in out
    assert "listen 127.0.0.1:9000;" in out
    assert f"root {(tmp_path / 'html').resolve()};" in out
    assert f"access_log {(tmp_path / 'access.log').resolve()} localchat;" in out
    assert 'map "on" $localchat_rate_limit_key' in out
    # Nothing else changed.
    changed = set(out.splitlines()) - set(CONF.splitlines())
    assert len(changed) == 6, changed


@pytest.mark.parametrize("marker", render_nginx.MARKERS)
def test_render_fails_loudly_when_a_marker_is_missing(marker: str) -> None:
    broken = CONF.replace(f"# render: {marker}", "")
    with pytest.raises(render_nginx.RenderError, match=marker):
        render_nginx.render_site(broken, upstreams=["127.0.0.1:1"], listen="1", root="/x", access_log="/y")


# --- Nginx's own answers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def html_min() -> Iterator[Path]:
    """A two-file page: these tests are about the API paths, not the real build."""
    root = make_run_dir("html-min")
    (root / "index.html").write_text("<!doctype html><title>t</title><p>page</p>")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def no_backend(html_min: Path) -> Iterator[Nginx]:
    """The site with its upstream on a port where nothing listens."""
    run = make_run_dir("nginx-dead")
    nginx = start_nginx(run, html_min, [f"127.0.0.1:{free_port()}"])
    yield nginx
    nginx.stop()
    shutil.rmtree(run, ignore_errors=True)


def test_no_backend_gives_openai_shaped_502(no_backend: Nginx) -> None:
    with httpx.Client(base_url=no_backend.url, timeout=10) as c:
        for _ in range(3):  # first try (connection refused) and later ones (upstream marked down)
            err = assert_openai_error(c.get("/v1/models"), 502)
            assert err["type"] == "server_error"
            assert_openai_error(
                c.post(
                    "/v1/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                ),
                502,
            )
            assert_openai_error(c.post("/v1/embeddings", json={"model": "m", "input": "x"}), 502)
        assert c.get("/health").status_code == 502
        # The page itself is still served.
        page = c.get("/")
        assert page.status_code == 200 and "page" in page.text


def test_oversized_body_gives_openai_shaped_413(no_backend: Nginx) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"a" * (9 * 1024 * 1024) + b'"}]}'
    with httpx.Client(base_url=no_backend.url, timeout=30) as c:
        resp = c.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    err = assert_openai_error(resp, 413)
    assert err["type"] == "invalid_request_error"


def test_rate_limit_when_switched_on(html_min: Path) -> None:
    run = make_run_dir("nginx-rl")
    nginx = start_nginx(run, html_min, [f"127.0.0.1:{free_port()}"], rate_limit=True)
    try:
        with httpx.Client(base_url=nginx.url, timeout=10) as c:
            statuses = [c.get("/v1/models").status_code for _ in range(40)]
            limited = c.get("/v1/models")
            page = c.get("/")
    finally:
        nginx.stop()
        shutil.rmtree(run, ignore_errors=True)
    # burst=20 passes (here to a dead upstream: 502), then 429s.
    assert statuses[:15] == [502] * 15, statuses
    assert 429 in statuses, statuses
    err = assert_openai_error(limited, 429)
    assert err["code"] == "rate_limit_exceeded"
    assert limited.headers.get("retry-after") == "1"
    assert page.status_code == 200  # the page is never rate limited


def test_rate_limit_is_off_as_shipped(no_backend: Nginx) -> None:
    with httpx.Client(base_url=no_backend.url, timeout=10) as c:
        statuses = {c.get("/v1/models").status_code for _ in range(60)}
    assert statuses == {502}


def test_nginx_t_accepts_the_rendered_file(html_min: Path) -> None:
    run = make_run_dir("nginx-t")
    try:
        render_nginx.render(
            run_dir=run, listen="127.0.0.1:1", root=html_min, upstreams=["127.0.0.1:2"], nginx=nginx_binary()
        )
        res = subprocess.run(
            [*render_nginx.nginx_command(run, nginx_binary()), "-t"], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        assert "syntax is ok" in res.stderr
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_site_runs_inside_debians_own_nginx_conf(html_min: Path) -> None:
    """On a Debian/Ubuntu server the file goes to /etc/nginx/conf.d/: Debian's stock nginx.conf
    (its own gzip, sendfile, logs, user www-data) must accept it and serve the site with it."""
    stock_path = Path("/etc/nginx/nginx.conf")
    stock = stock_path.read_text()
    assert "include /etc/nginx/conf.d/*.conf;" in stock
    run = make_run_dir("nginx-debian")
    port = free_port()
    try:
        site = render_nginx.render_site(
            CONF,
            upstreams=[f"127.0.0.1:{free_port()}"],
            listen=f"127.0.0.1:{port}",
            root=html_min,
            access_log=run / "access.log",
        )
        (run / "localchat.conf").write_text(site)
        main = stock.replace("include /etc/nginx/conf.d/*.conf;", f"include {run}/localchat.conf;")
        main = main.replace("include /etc/nginx/sites-enabled/*;", "")
        # Only the machine-wide files move to the run folder; everything else stays stock.
        main = re.sub(r"^pid .*;$", f"pid {run}/nginx.pid;", main, flags=re.MULTILINE)
        main = re.sub(r"^(\s*)error_log .*;$", rf"\1error_log {run}/error.log;", main, flags=re.MULTILINE)
        main = re.sub(
            r"^(\s*)access_log .*;$", rf"\1access_log {run}/stock-access.log;", main, flags=re.MULTILINE
        )
        main = main.replace(
            "http {", f"http {{\n\tclient_body_temp_path {run}/body;\n\tproxy_temp_path {run}/proxy;", 1
        )
        (run / "nginx.conf").write_text(main)
        cmd = [nginx_binary(), "-p", str(run), "-e", str(run / "error.log"), "-c", str(run / "nginx.conf")]
        check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([*cmd, "-g", "daemon off;"], stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not port_open(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                page = c.get("/c/1")
                assert page.status_code == 200 and "page" in page.text
                assert page.headers["cache-control"] == "no-cache"
                assert page.headers["x-content-type-options"] == "nosniff"
                assert_openai_error(c.get("/v1/models"), 502)
        finally:
            proc.send_signal(signal.SIGQUIT)
            proc.wait(15)
    finally:
        shutil.rmtree(run, ignore_errors=True)
