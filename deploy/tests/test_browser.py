"""End to end through Nginx in real Chromium: the page loads from Nginx, a message streams in
from a real replica, and the answer is visible and growing in the page while the HTTP
response is still streaming — so nothing between the model and the browser buffers it."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Site
from support import REPO

SCRIPT = Path(__file__).with_name("browser_stream.mjs")
# Screenshots and the raw result, for a person to look at (.cache/ is ignored by git).
OUT_DIR = REPO / ".cache" / "deploy-test-results"
CHROMIUM = Path("/usr/bin/chromium")


def run_browser(url: str) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node not found")
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: `make sysdeps`")
    if not (REPO / "frontend" / "node_modules" / "playwright-core").is_dir():
        pytest.fail("frontend/node_modules/playwright-core missing: `make frontend` (npm ci)")
    res = subprocess.run(
        ["node", str(SCRIPT), url, str(OUT_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser script:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    result = json.loads(lines[-1])
    (OUT_DIR / "browser-stream.json").write_text(json.dumps(result, indent=1))
    return result


def test_answer_streams_into_the_page_through_nginx(site: Site, record_property) -> None:
    r = run_browser(site.url)
    assert "error" not in r, r["error"]
    assert r["pageStatus"] == 200
    assert r["messageBoxLabel"], "the message box has no label"
    assert r["pageErrors"] == [], r["pageErrors"]
    assert r["csp"] == [], f"Content-Security-Policy blocked something: {r['csp']}"
    assert not [c for c in r["console"] if "Content Security Policy" in c], r["console"]

    # The page's own request, streamed through Nginx, uncompressed.
    assert r["sentBody"]["stream"] is True
    assert r["status"] == 200
    assert r["contentType"].startswith("text/event-stream")
    assert r["contentEncoding"] is None
    assert "lighthouse" in r["userMessage"]

    t = r["timing"]
    start, end = t["startTime"], t["responseEnd"]
    assert end > start
    # (time, length of the assistant message's text, aria-busy) at each change of the DOM.
    samples = [(ts, n, busy) for ts, n, busy in r["samples"]]
    while_streaming = [(ts, n) for ts, n, busy in samples if ts < end and n > 0 and busy]
    assert while_streaming, f"no answer text appeared before the response ended: {samples[:20]}"
    first_visible = while_streaming[0][0]
    # Text can only appear once the response has begun (else something else is being measured).
    assert first_visible >= t["responseStart"], (first_visible, t)
    lengths = [n for _, n in while_streaming]
    growth = sum(1 for a, b in itertools.pairwise(lengths) if b > a)
    # The text grew many times while the stream was still open, not once at the end.
    assert growth >= 10, f"text grew only {growth} times before the stream ended"
    assert lengths[-1] > lengths[0]
    stream_s = (end - start) / 1000
    ttft_s = (first_visible - start) / 1000
    # The first words were on screen long before the answer completed.
    assert ttft_s < 0.5 * stream_s, (ttft_s, stream_s)
    assert len(r["answer"]) > 200, r["answer"]

    record_property("browser_ttft_s", round(ttft_s, 3))
    record_property("browser_stream_s", round(stream_s, 3))
    print(
        f"\nbrowser via Nginx: page ready {r['loadMs']} ms; first token visible {ttft_s:.2f} s after the "
        f"request; stream {stream_s:.2f} s; {growth} visible updates before it ended"
    )
