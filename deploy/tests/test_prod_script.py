"""`make prod` (deploy/prod.sh) for real: two replicas on consecutive ports and Nginx on WEB_PORT
serve the site, and Ctrl-C (SIGINT to the process group, as a terminal sends it) stops every
process the script started."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_process import CHAT_MODEL, CHAT_MODEL_DIR, EMBEDDING_MODEL_DIR, free_port

from support import DIST, REPO, chat_body, port_open


def consecutive_free_ports() -> int:
    for _ in range(50):
        port = free_port()
        if port < 65000 and not port_open(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports")


def group_members(pgid: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pgid=,pid=,stat=,args="], capture_output=True, text=True, check=True)
    rows = [line.split(None, 3) for line in ps.stdout.splitlines()]
    return [" ".join(r[1:]) for r in rows if len(r) >= 3 and r[0] == str(pgid)]


@pytest.mark.first
def test_prod_script_serves_the_site_and_ctrl_c_stops_everything() -> None:
    port, web = consecutive_free_ports(), free_port()
    env = {
        **os.environ,
        "REPLICAS": "2",
        "PORT": str(port),
        "WEB_PORT": str(web),
        "CHAT_MODEL_PATH": str(CHAT_MODEL_DIR),
        "CHAT_MODEL_NAME": CHAT_MODEL,
        "EMBEDDING_MODEL_PATH": str(EMBEDDING_MODEL_DIR),
        "API_KEY": "",
        "DEVICE": "cpu",
        "NUM_THREADS": "1",
        "FRONTEND_DIST_DIR": str(DIST),
    }
    proc = subprocess.Popen(
        ["bash", str(REPO / "deploy" / "prod.sh")],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "press Ctrl-C" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(300) and proc.poll() is None, "".join(output[-40:])
        text = "".join(output)
        run_dir = re.search(r"Nginx access log: (\S+)/logs/access\.log", text).group(1)

        with httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=60) as c:
            page = c.get("/")
            assert page.status_code == 200
            assert page.content == (DIST / "index.html").read_bytes()
            assert page.headers["cache-control"] == "no-cache"
            assert c.get("/v1/models").json()["data"][0]["id"] == CHAT_MODEL
            answer = c.post("/v1/chat/completions", json=chat_body("Hello!", 4))
            assert answer.status_code == 200, answer.text
        for p in (port, port + 1):
            assert httpx.get(f"http://127.0.0.1:{p}/health", timeout=10).status_code == 200
        site_conf = Path(run_dir, "localchat.conf").read_text()
        assert f"server 127.0.0.1:{port} " in site_conf and f"server 127.0.0.1:{port + 1} " in site_conf
        # A release copy of the page, not the build folder itself.
        assert f"root {run_dir}/html;" in site_conf

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        status = proc.wait(60)
        assert status in (0, 130), status  # 130: interrupted (or 0 if a replica's exit came first)
        deadline = time.monotonic() + 30
        while any(port_open(p) for p in (port, port + 1, web)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(port_open(p) for p in (port, port + 1, web)), "something is still listening"
        reader.join(10)
        assert "[prod] stopped" in "".join(output)
        # No process of its group is left (log pipes may take a moment to drain).
        deadline = time.monotonic() + 10
        while (left := group_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, left
        shutil.rmtree(run_dir)  # prod.sh keeps it for a person to read the logs; a passing test does not
    finally:
        # Whatever happened above, nothing of this script's process group outlives the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
