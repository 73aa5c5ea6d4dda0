"""A local HTTP server in the Hugging Face Hub's layout, for huggingface_hub to download from.

The Hub itself is unreachable here, so `make pull` is tested against this: the repository-info
and tree listings, `resolve` with the headers huggingface_hub checks (X-Repo-Commit, ETag,
sizes), HTTP ranges (resuming), and the Hub's X-Error-Code on failures. It can cut a file's
first download half way, as a dropped connection would, and records every request.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_FROM = 1024  # files at least this large are LFS files, as weights are on the Hub


@dataclass
class Hub:
    repos: dict[str, dict[str, bytes]]
    gated: set[str] = field(default_factory=set)
    cut_once: set[str] = field(default_factory=set)  # "repo/path": the first GET stops half way
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range
    url: str = ""


def _entry(path: str, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "file",
        "path": path,
        "size": len(data),
        "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
    }
    if len(data) >= LFS_FROM:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _fail(self, status: int, code: str) -> None:
            payload = json.dumps({"error": code}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, value: Any) -> None:
            payload = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _repo(self, repo_id: str) -> dict[str, bytes] | None:
            if repo_id in hub.gated and "authorization" not in {k.lower() for k in self.headers}:
                self._fail(401, "GatedRepo")
                return None
            if repo_id not in hub.repos:
                self._fail(404, "RepoNotFound")
                return None
            return hub.repos[repo_id]

        def _serve(self, body: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
                if (files := self._repo(m[1])) is not None:
                    self._json({"id": m[1], "sha": COMMIT, "siblings": [{"rfilename": p} for p in files]})
            elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
                if (files := self._repo(m[1])) is not None:
                    self._json([_entry(p, data) for p, data in sorted(files.items())])
            elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                if (files := self._repo(m[1])) is None:
                    return
                if m[3] not in files:
                    self._fail(404, "EntryNotFound")
                    return
                self._file(f"{m[1]}/{m[3]}", files[m[3]], body)
            else:
                self._fail(404, "RepoNotFound")

        def _file(self, key: str, data: bytes, body: bool) -> None:
            entry = _entry(key, data)
            start = 0
            if body and (r := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
                start = int(r[1])
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{entry.get("lfs", {}).get("oid") or entry["oid"]}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if key in hub.cut_once and body:
                hub.cut_once.discard(key)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            if body:
                self.wfile.write(data[start:])

    return Handler


@contextmanager
def serve_hub(hub: Hub) -> Iterator[Hub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
