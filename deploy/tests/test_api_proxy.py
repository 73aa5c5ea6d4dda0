"""The API through Nginx, against real replicas with the real model: streaming passes through
unbuffered and uncompressed, JSON answers and the backend's own errors pass through as they
are, a client that hangs up stops the generation (unless the answer is kept to be resumed: then
the resumed stream reaches the replica that kept it), and rate limiting is off as shipped."""

from __future__ import annotations

import json
import time

import httpx
from server_process import CHAT_MODEL, EMBEDDING_MODEL

from conftest import Site
from support import chat_body, replica_metric, replica_running, timed_chat_stream

STORY = "Tell a long story about a dragon who learns to bake bread."


def test_stream_passes_through_nginx_unbuffered(site: Site, http: httpx.Client, record_property) -> None:
    body = chat_body(STORY, 64, ignore_eos=True, temperature=0)
    direct = timed_chat_stream(http, f"{site.replicas[0].url}/v1/chat/completions", body)
    via = timed_chat_stream(
        http, f"{site.url}/v1/chat/completions", body, headers={"Accept-Encoding": "gzip, deflate, br"}
    )

    assert via.status == 200, via.raw[:500]
    assert via.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in via.headers, "an event stream must not be compressed"
    assert via.raw.rstrip().endswith(b"data: [DONE]")
    # Nothing lost or changed on the way: greedy decoding gives the same text both ways.
    assert via.text == direct.text
    assert len(via.deltas) >= 40, len(via.deltas)

    # The deltas arrived one after another, in many separate reads, not in one burst at the end.
    arrivals = sorted({round(t, 4) for t, _ in via.deltas})
    # (Buffering shows as a handful of reads; a busy machine may merge a few neighbours.)
    assert len(arrivals) >= max(10, 0.25 * len(via.deltas)), (len(arrivals), len(via.deltas))
    assert via.ttft < 0.5 * via.t_done, (via.ttft, via.t_done)
    # And the first one as early as without Nginx (with room for a busy machine).
    assert via.ttft < 2 * direct.ttft + 1.0, (via.ttft, direct.ttft)

    record_property("ttft_direct_s", round(direct.ttft, 3))
    record_property("ttft_nginx_s", round(via.ttft, 3))
    print(
        f"\nfirst token: direct {direct.ttft * 1000:.0f} ms, through Nginx {via.ttft * 1000:.0f} ms; "
        f"{len(via.deltas)} deltas in {len(arrivals)} reads over {via.t_done:.2f} s "
        f"(direct {direct.t_done:.2f} s)"
    )


def test_json_endpoints_through_nginx(site: Site, http: httpx.Client) -> None:
    models = http.get(f"{site.url}/v1/models")
    assert models.status_code == 200
    assert CHAT_MODEL in {m["id"] for m in models.json()["data"]}

    health = http.get(f"{site.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"

    chat = http.post(f"{site.url}/v1/chat/completions", json=chat_body("Say hello.", 8))
    assert chat.status_code == 200
    assert chat.json()["choices"][0]["message"]["role"] == "assistant"
    assert chat.headers.get("x-content-type-options") == "nosniff"

    # A large JSON answer is compressed on the way out.
    emb = http.post(
        f"{site.url}/v1/embeddings",
        json={
            "model": EMBEDDING_MODEL,
            "input": ["first sentence", "second sentence"],
            "encoding_format": "float",
        },
        headers={"Accept-Encoding": "gzip"},
    )
    assert emb.status_code == 200
    assert emb.headers.get("content-encoding") == "gzip"
    assert [len(d["embedding"]) for d in emb.json()["data"]] == [384, 384]


def test_backend_errors_pass_through_unchanged(site: Site, http: httpx.Client) -> None:
    """Nginx replaces only its own errors; the backend's 4xx bodies reach the client as sent."""
    direct_url = f"{site.replicas[0].url}/v1/chat/completions"
    cases = [
        chat_body("hi", 8, temperature=5),
        chat_body("hi", 8) | {"model": "no-such-model"},
        {"model": CHAT_MODEL, "messages": []},
    ]
    for body in cases:
        via = http.post(f"{site.url}/v1/chat/completions", json=body)
        direct = http.post(direct_url, json=body)
        assert via.status_code == direct.status_code and 400 <= via.status_code < 500, body
        assert via.json() == direct.json(), body
        assert set(via.json()["error"]) >= {"message", "type", "param", "code"}
    # Between the backend's limit (4 MiB) and Nginx's (8 MiB): the backend's own 413.
    big = json.dumps(chat_body("a" * (5 * 1024 * 1024), 8)).encode()
    via = http.post(
        f"{site.url}/v1/chat/completions", content=big, headers={"Content-Type": "application/json"}
    )
    direct = http.post(direct_url, content=big, headers={"Content-Type": "application/json"})
    assert via.status_code == direct.status_code == 413
    assert via.json() == direct.json()


def test_client_hang_up_through_nginx_stops_generation(site: Site) -> None:
    """Closing the stream (the page's Stop button) reaches the replica, which stops generating."""

    def running() -> int:
        return sum(replica_running(rep) for rep in site.replicas)

    def generated() -> float:
        return sum(replica_metric(rep, "llm_generation_tokens_total") for rep in site.replicas)

    before = generated()
    body = chat_body(STORY, 2000, ignore_eos=True, stream=True)
    url = f"{site.url}/v1/chat/completions"
    with httpx.Client(timeout=120) as client, client.stream("POST", url, json=body) as r:
        assert r.status_code == 200
        # Keep the iterator: a dropped one closes the connection at once (httpx), too early here.
        lines = r.iter_lines()
        seen = 0
        for line in lines:
            if line.startswith("data: {"):
                seen += 1
                if seen >= 5:
                    break
        deadline = time.monotonic() + 10
        while running() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running() == 1, "the answer is not being generated while its stream is open"
        del lines
    # The connection is closed: the replicas are idle again within a few seconds, long before
    # 2000 tokens could have been generated.
    deadline = time.monotonic() + 15
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running() == 0
    assert generated() - before < 1000


def test_kept_answer_resumes_through_nginx(site: Site, http: httpx.Client) -> None:
    """A page reloaded mid-answer: its GET carries the conversation's id, so Nginx sends it to the
    replica that kept the answer, which replays it whole."""
    headers = {"X-Conversation-Id": f"resume-{time.monotonic_ns()}", "X-Message-Id": "m1"}
    body = chat_body(STORY, 30, ignore_eos=True, stream=True, temperature=0)
    with http.stream("POST", f"{site.url}/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        next(line for line in r.iter_lines() if line.startswith("data: {"))
    url = f"{site.url}/v1/stream/{headers['X-Conversation-Id']}/m1"
    resumed = http.get(url, headers={"X-Conversation-Id": headers["X-Conversation-Id"]})
    assert resumed.status_code == 200, resumed.text
    events = [line[6:] for line in resumed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    finished = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0].get("finish_reason")]
    assert finished == ["length"], "the resumed answer did not run to its end"


def test_rate_limit_is_off_by_default(site: Site, http: httpx.Client) -> None:
    statuses = [http.get(f"{site.url}/v1/models").status_code for _ in range(40)]
    assert set(statuses) == {200}, statuses
