"""Conversation affinity through the real Nginx and two real replicas: a request carrying
X-Conversation-Id (as the page sends it) goes to the replica chosen by a consistent hash of the
id, so every turn of one conversation lands on one replica; different conversations use both;
when that replica dies, the conversation's next turn is answered by the other without an error.
Which replica answered is read from each replica's own request counter on its /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import CHAT_MODEL

from conftest import Site
from support import DEPLOY_DIR, REPO, replica_requests, restart_replica, timed_chat_stream

CHAT = "/v1/chat/completions"
HEADER = "X-Conversation-Id"
CONF = (DEPLOY_DIR / "nginx.conf").read_text()
BROWSER_SCRIPT = Path(__file__).with_name("browser_conversation.mjs")


def answered(site: Site) -> list[float]:
    return [replica_requests(r, CHAT) for r in site.replicas]


def turn(http: httpx.Client, site: Site, conversation: str, messages: list[dict[str, str]]) -> int:
    """Send one streamed turn the way the page does; return the index of the replica that answered
    and append the answer to `messages`."""
    before = answered(site)
    body: dict[str, Any] = {"model": CHAT_MODEL, "messages": messages, "max_tokens": 6, "ignore_eos": True}
    s = timed_chat_stream(http, f"{site.url}{CHAT}", body, headers={HEADER: conversation})
    assert s.status == 200, s.raw[:300]
    assert s.deltas and s.raw.rstrip().endswith(b"data: [DONE]"), s.raw[-300:]
    assert b'"error"' not in s.raw, s.raw[-300:]
    got = [a - b for a, b in zip(answered(site), before, strict=True)]
    assert sorted(got) == [0, 1], got
    messages.append({"role": "assistant", "content": s.text})
    return got.index(1)


def test_both_upstream_groups_list_the_same_replicas() -> None:
    """Affinity and least-connections groups must name the same servers, or a conversation could
    be sent where plain requests never go."""
    groups = dict(re.findall(r"upstream (\w+) \{(.*?)\}", CONF, re.S))
    servers = {name: re.findall(r"^\s*(server\s+[^;]+;)", body, re.M) for name, body in groups.items()}
    assert servers["localchat_affinity"] == servers["localchat_backend"]
    assert "hash $http_x_conversation_id consistent;" in groups["localchat_affinity"]
    assert "least_conn;" in groups["localchat_backend"]


def test_one_conversation_stays_on_one_replica(site: Site, http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "Name a fruit."}]
    chosen = {turn(http, site, "conv-one-replica", messages)}
    for question in ("And another?", "One more, please.", "Which is sweetest?"):
        messages.append({"role": "user", "content": question})
        chosen.add(turn(http, site, "conv-one-replica", messages))
    assert len(chosen) == 1, chosen


def test_different_conversations_use_both_replicas(site: Site, http: httpx.Client) -> None:
    per_replica = [0, 0]
    placement: dict[str, int] = {}
    for i in range(16):
        key = f"conversation-{i}"
        placement[key] = turn(http, site, key, [{"role": "user", "content": f"Say {i}."}])
        per_replica[placement[key]] += 1
    assert min(per_replica) >= 1, f"all conversations went to one replica: {per_replica}"
    # The placement is a function of the id: asking again gives the same replicas.
    for key in list(placement)[:4]:
        assert turn(http, site, key, [{"role": "user", "content": "Again."}]) == placement[key]


@pytest.mark.destructive
def test_a_killed_replicas_conversation_moves_to_the_other(site: Site, http: httpx.Client, run_root) -> None:
    messages = [{"role": "user", "content": "Tell me about the moon."}]
    home = turn(http, site, "conv-failover", messages)
    site.replicas[home].kill()  # SIGKILL, as a crash

    other = 1 - home
    for question in ("Go on.", "And the sun?"):
        messages.append({"role": "user", "content": question})
        before = replica_requests(site.replicas[other], CHAT)
        body = {"model": CHAT_MODEL, "messages": messages, "max_tokens": 6, "ignore_eos": True}
        s = timed_chat_stream(http, f"{site.url}{CHAT}", body, headers={HEADER: "conv-failover"})
        assert s.status == 200 and s.deltas, s.raw[:300]
        assert b'"error"' not in s.raw, s.raw[-300:]
        assert s.raw.rstrip().endswith(b"data: [DONE]")
        assert replica_requests(site.replicas[other], CHAT) - before == 1
        messages.append({"role": "assistant", "content": s.text})

    # Back to two replicas for the tests that follow.
    restart_replica(site.url, site.replicas, home, run_root / f"backend-{home}-affinity-restarted.log", http)


@pytest.mark.destructive
def test_the_pages_conversation_survives_its_replica_in_chromium(
    site: Site, http: httpx.Client, run_root
) -> None:
    """The real page in Chromium: its turns carry one X-Conversation-Id and land on one replica;
    that replica is killed between turns, and the next turn is answered by the other with no error
    shown in the page."""
    if shutil.which("node") is None or not Path("/usr/bin/chromium").exists():
        pytest.fail("node and Debian's Chromium are needed: `make sysdeps`")
    proc = subprocess.Popen(
        ["node", str(BROWSER_SCRIPT), site.url, "3"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    turns: list[dict[str, Any]] = []
    served: list[list[float]] = []  # per turn: chat requests each live replica answered

    def turn() -> None:
        live = [i for i, r in enumerate(site.replicas) if r.alive]
        before = {i: replica_requests(site.replicas[i], CHAT) for i in live}
        if turns:
            proc.stdin.write("next\n")  # the script waits for this before each later turn
            proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"the browser script ended early:\n{proc.stderr.read()[-3000:]}"
        result = json.loads(line)
        assert "error" not in result, result["error"]
        turns.append(result)
        after = {i: replica_requests(site.replicas[i], CHAT) for i in live}
        served.append([after[i] - before[i] if i in live else 0 for i in range(2)])

    try:
        turn()
        turn()
        assert served[0] == served[1] and sorted(served[0]) == [0, 1], served
        home = served[0].index(1)
        site.replicas[home].kill()
        turn()
        assert served[2][1 - home] == 1, served
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    ids = {t["conversationId"] for t in turns}
    assert len(ids) == 1 and None not in ids and "" not in ids, ids
    for t in turns:
        assert t["status"] == 200, t
        assert t["alerts"] == [] and t["pageErrors"] == [], t
        assert t["answer"].strip(), t

    log = run_root / f"backend-{home}-browser-restarted.log"
    restart_replica(site.url, site.replicas, home, log, http)
