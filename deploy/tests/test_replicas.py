"""Two replicas behind Nginx's upstream: requests are spread across both (each replica's own
/metrics counts what it answered), a long answer on one sends new requests to the other (least
connections), a killed replica costs no request, and with none left the API answers an
OpenAI-shaped 502."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from conftest import Site
from support import chat_body, replica_requests, replica_running, restart_replica, timed_chat_stream

CHAT = "/v1/chat/completions"


def answered(site: Site) -> list[float]:
    return [replica_requests(r, CHAT) for r in site.replicas]


def test_requests_are_spread_across_both_replicas(site: Site, http: httpx.Client) -> None:
    before = answered(site)
    for i in range(8):
        resp = http.post(f"{site.url}{CHAT}", json=chat_body(f"Say the number {i}.", 4))
        assert resp.status_code == 200
    after = answered(site)
    got = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(got) == 8, got
    assert min(got) >= 2, f"one replica got almost everything: {got}"


def test_new_requests_go_to_the_idle_replica(site: Site, http: httpx.Client) -> None:
    """least_conn: while one replica streams a long answer, the next requests go to the other."""
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def long_answer() -> None:
        try:
            body = chat_body("Tell a long story.", 2000, ignore_eos=True, stream=True)
            with (
                httpx.Client(timeout=120) as c,
                c.stream("POST", f"{site.url}{CHAT}", json=body) as r,
            ):
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        started.set()
                    if release.is_set():
                        break
        except BaseException as exc:
            errors.append(exc)
            started.set()

    t = threading.Thread(target=long_answer, daemon=True)
    t.start()
    try:
        assert started.wait(60), "the long answer did not start"
        assert not errors, errors
        busy = [replica_running(r) for r in site.replicas]
        assert sorted(busy) == [0, 1], busy
        idle = busy.index(0)
        before = answered(site)
        for i in range(4):
            resp = http.post(f"{site.url}{CHAT}", json=chat_body(f"Name a colour ({i}).", 4))
            assert resp.status_code == 200
        got = [a - b for a, b in zip(answered(site), before, strict=True)]
        assert got[idle] == 4 and got[1 - idle] == 0, got
    finally:
        release.set()
        t.join(30)


@pytest.mark.destructive
def test_draining_replica_finishes_its_answer_and_hands_new_requests_over(
    site: Site, http: httpx.Client, run_root
) -> None:
    """A rolling restart: SIGTERM one replica while it streams. Its answer completes, every new
    request meanwhile is answered by the other one, and the restarted replica rejoins."""
    result: dict[str, object] = {}
    started = threading.Event()

    def long_answer() -> None:
        try:
            body = chat_body("Tell a story about a fox.", 40, ignore_eos=True)
            result["stream"] = timed_chat_stream(http_long, f"{site.url}{CHAT}", body)
        except BaseException as exc:
            result["error"] = exc
        finally:
            started.set()

    with httpx.Client(timeout=120) as http_long:
        t = threading.Thread(target=long_answer, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        while sum(replica_running(r) for r in site.replicas) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = [replica_running(r) for r in site.replicas]
        assert sorted(busy) == [0, 1], busy
        draining, other = site.replicas[busy.index(1)], site.replicas[busy.index(0)]
        draining.proc.send_signal(signal.SIGTERM)

        before = replica_requests(other, CHAT)
        for i in range(4):
            resp = http.post(f"{site.url}{CHAT}", json=chat_body(f"Say {i}.", 4))
            assert resp.status_code == 200, resp.text
        assert replica_requests(other, CHAT) - before == 4
        t.join(120)

    assert "error" not in result, result["error"]
    stream = result["stream"]
    assert stream.status == 200
    assert len(stream.deltas) >= 30, len(stream.deltas)
    assert stream.raw.rstrip().endswith(b"data: [DONE]")
    # Back in service on the same port.
    index = site.replicas.index(draining)
    restart_replica(site.url, site.replicas, index, run_root / f"backend-{index}-restarted.log", http)


@pytest.mark.destructive
def test_killed_replicas(site: Site, http: httpx.Client) -> None:
    survivor, victim = site.replicas
    victim.kill()  # SIGKILL, as a crash

    before = replica_requests(survivor, CHAT)
    for i in range(6):
        if i % 2:
            resp = http.post(f"{site.url}{CHAT}", json=chat_body(f"Count to {i}.", 6))
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"]
        else:
            s = timed_chat_stream(http, f"{site.url}{CHAT}", chat_body(f"Count to {i}.", 6, ignore_eos=True))
            assert s.status == 200 and s.deltas, s.raw[:300]
    assert replica_requests(survivor, CHAT) - before == 6

    survivor.kill()
    for method, path, body in (
        ("GET", "/v1/models", None),
        ("POST", CHAT, chat_body("hi", 4)),
        ("POST", CHAT, chat_body("hi", 4, stream=True)),
    ):
        resp = http.request(method, f"{site.url}{path}", json=body)
        assert resp.status_code in (502, 503), resp.text
        assert resp.headers["content-type"].startswith("application/json")
        err = resp.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["type"] == "server_error" and err["message"]
    assert http.get(f"{site.url}/health").status_code in (502, 503)
    # The page itself is still there, to show the error.
    assert http.get(f"{site.url}/").status_code == 200
