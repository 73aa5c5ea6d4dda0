#!/usr/bin/env python3
"""Render deploy/nginx.conf for a local run: local ports, paths and a private run folder.

deploy/nginx.conf is the production site as a server or the `web` image uses it. For
`make prod` and the deploy tests, the lines marked `# render: NAME` are rewritten (each
must be present exactly once, or this fails loudly) and a small main configuration is
written around the site, like the one the official nginx image and Debian's package
ship, but with its pid, logs and temporary files inside the run folder, so no root and
no system Nginx is touched.

    python3 deploy/render_nginx.py --run-dir .cache/prod --listen 127.0.0.1:8080 \\
        --root .cache/prod/html --upstream 127.0.0.1:8000 --upstream 127.0.0.1:8001

writes RUN/nginx.conf (start it with `nginx -p RUN -e RUN/logs/error.log -c RUN/nginx.conf`)
and RUN/localchat.conf (the rendered site). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

SITE_TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"

# The two upstream groups (least connections, conversation affinity) list the same replicas.
SERVER_MARKERS = ("upstream servers", "affinity servers")
MARKERS = (*SERVER_MARKERS, "listen", "access log", "html root", "rate limit switch")


class RenderError(RuntimeError):
    pass


def _marked_line(text: str, name: str) -> re.Match[str]:
    pattern = re.compile(
        r"^(?P<indent>[ \t]*)(?P<body>[^\n#]*[;{])[ \t]*#[ \t]*render:[ \t]*" + re.escape(name) + r"[ \t]*$",
        re.M,
    )
    found = list(pattern.finditer(text))
    if len(found) != 1:
        raise RenderError(
            f"deploy/nginx.conf: expected one line marked '# render: {name}', found {len(found)}"
        )
    return found[0]


def _replace(text: str, match: re.Match[str], lines: list[str]) -> str:
    indent = match.group("indent")
    new = "\n".join(indent + line for line in lines)
    return text[: match.start()] + new + text[match.end() :]


def render_site(
    template: str,
    *,
    upstreams: list[str],
    listen: str,
    root: str | Path,
    access_log: str | Path,
    rate_limit: bool = False,
) -> str:
    """Return the site configuration with local upstreams, listen address and paths."""
    if not upstreams:
        raise RenderError("at least one upstream address is needed")
    text = template

    for name in SERVER_MARKERS:
        m = _marked_line(text, name)
        server = re.fullmatch(r"server\s+(\S+)(?P<params>(\s+[^;]+)?);", m.group("body").strip())
        if server is None:
            raise RenderError(f"cannot parse the upstream line: {m.group('body')!r}")
        params = server.group("params") or ""
        text = _replace(text, m, [f"server {addr}{params};" for addr in upstreams])

    m = _marked_line(text, "listen")
    text = _replace(text, m, [f"listen {listen};"])

    m = _marked_line(text, "html root")
    text = _replace(text, m, [f"root {Path(root).resolve()};"])

    m = _marked_line(text, "access log")
    fmt = re.fullmatch(r"access_log\s+\S+(?P<rest>(\s+[^;]+)?);", m.group("body").strip())
    if fmt is None:
        raise RenderError(f"cannot parse the access_log line: {m.group('body')!r}")
    text = _replace(text, m, [f"access_log {Path(access_log).resolve()}{fmt.group('rest') or ''};"])

    m = _marked_line(text, "rate limit switch")
    body = m.group("body")
    if '"off"' not in body:
        raise RenderError(f'the rate limit switch should read "off" by default: {body!r}')
    text = _replace(text, m, [body.replace('"off"', '"on"' if rate_limit else '"off"', 1)])
    return text


def mime_types_path(nginx: str = "nginx") -> Path:
    """mime.types beside the installed Nginx's own configuration file."""
    out = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=True).stderr
    conf = re.search(r"--conf-path=(\S+)", out)
    path = Path(conf.group(1)).parent / "mime.types" if conf else Path("/etc/nginx/mime.types")
    if not path.exists():
        raise RenderError(f"{path} not found: is Nginx installed?")
    return path


def render_main(*, run_dir: Path, site_conf: Path, mime_types: Path, worker_processes: int = 1) -> str:
    run = run_dir.resolve()
    tmp = run / "tmp"
    return f"""# Written by deploy/render_nginx.py for a local run; regenerated each time.
worker_processes {worker_processes};
pid {run}/nginx.pid;
error_log {run}/logs/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    include {mime_types};
    default_type application/octet-stream;
    keepalive_timeout 65;

    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    include {site_conf.resolve()};
}}
"""


def check_reachable_by_workers(path: Path) -> None:
    """Started as root, Nginx runs its workers as `nobody`: every folder up to `path` must let
    others in (a folder under /root or pytest's tmp_path does not)."""
    if os.geteuid() != 0:
        return
    for d in [path.resolve(), *path.resolve().parents]:
        if d.is_dir() and not d.stat().st_mode & stat.S_IXOTH:
            raise RenderError(
                f"{d} is not reachable by Nginx's worker processes (mode {stat.filemode(d.stat().st_mode)}); "
                f"use a run folder and html root outside it (e.g. under /tmp)"
            )


def render(
    *,
    run_dir: Path,
    listen: str,
    root: Path,
    upstreams: list[str],
    rate_limit: bool = False,
    nginx: str = "nginx",
    worker_processes: int = 1,
    template: Path = SITE_TEMPLATE,
) -> Path:
    """Write RUN/localchat.conf and RUN/nginx.conf; return the latter."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "tmp").mkdir(exist_ok=True)
    # Nginx's workers run as an unprivileged user when it is started as root: they must be
    # able to reach the run folder (html, temp files).
    for d in (run_dir, run_dir / "logs", run_dir / "tmp"):
        d.chmod(0o755)
    check_reachable_by_workers(run_dir / "tmp")
    check_reachable_by_workers(root)
    site = render_site(
        template.read_text(),
        upstreams=upstreams,
        listen=listen,
        root=root,
        access_log=run_dir / "logs" / "access.log",
        rate_limit=rate_limit,
    )
    site_conf = run_dir / "localchat.conf"
    site_conf.write_text(site)
    main_conf = run_dir / "nginx.conf"
    main_conf.write_text(
        render_main(
            run_dir=run_dir,
            site_conf=site_conf,
            mime_types=mime_types_path(nginx),
            worker_processes=worker_processes,
        )
    )
    return main_conf


def nginx_command(run_dir: Path, nginx: str = "nginx") -> list[str]:
    run = run_dir.resolve()
    return [nginx, "-p", str(run), "-e", str(run / "logs" / "error.log"), "-c", str(run / "nginx.conf")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--listen", required=True, help="e.g. 127.0.0.1:8080")
    parser.add_argument("--root", type=Path, required=True, help="folder with the built page")
    parser.add_argument("--upstream", action="append", required=True, help="host:port, once per replica")
    parser.add_argument("--rate-limit", choices=("on", "off"), default="off")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="also run `nginx -t` on the result")
    args = parser.parse_args()
    try:
        conf = render(
            run_dir=args.run_dir,
            listen=args.listen,
            root=args.root,
            upstreams=args.upstream,
            rate_limit=args.rate_limit == "on",
            nginx=args.nginx,
            worker_processes=args.workers,
        )
    except RenderError as exc:
        raise SystemExit(f"render_nginx: {exc}") from None
    if args.check:
        subprocess.run([*nginx_command(args.run_dir, args.nginx), "-t", "-q"], check=True)
    print(conf)


if __name__ == "__main__":
    main()
