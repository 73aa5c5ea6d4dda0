"""What people keep on the server (app/conversations, /api/…) against SQLite and a real
PostgreSQL: conversations come back equal to what the page sent, versions refuse a stale write
(409 with the server's copy), a change merges as the page's tabs merge (a message both devices
changed is kept twice), the sync cursor returns changes and tombstones, import is idempotent,
the quota answers 413; every /api route called as anonymous, user A, user B, an admin, A's
personal key and the operator's key; AUTH=none's local user; and a SQLite database that a
SIGKILL hit during a burst of writes keeps every write it acknowledged."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from server_process import BACKEND_DIR, server_env
from sqlalchemy import Engine, text
from starlette.testclient import TestClient
from test_accounts import in_process

from app.conversations.service import Conflict, Storage, StorageError
from app.core.config import Settings
from app.db.engine import make_engine
from app.main import create_app

Page = dict[str, Any]


def conversation(conversation_id: str, text_size: int = 5) -> Page:
    """A conversation as the page keeps it: two branches, reasoning, a tool call, an attachment,
    an error, metrics, passages, and fields this server does not know of."""
    return {
        "id": conversation_id,
        "title": "Grüße 🌍",
        "createdAt": 1_733_000_000_000,
        "updatedAt": 1_733_000_005_000,
        "systemPrompt": "Be brief.",
        "params": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024, "seed": None},
        "model": "SmolLM2-135M-Instruct",
        "current": "a2",
        "tools": [{"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}],
        "toolChoice": "auto",
        "pinned": True,
        "folder": "Work",
        "futureField": {"nested": [1, 2.5, None]},
        "messages": [
            {
                "id": "q1",
                "role": "user",
                "content": "x" * text_size,
                "createdAt": 1_733_000_001_000,
                "parentId": None,
                "attachments": [{"id": "f1", "name": "a.txt", "size": 3, "kind": "text", "text": "abc"}],
                "passages": [{"n": 1, "file": "a.txt", "index": 0, "total": 1, "text": "abc"}],
            },
            {
                "id": "a1",
                "role": "assistant",
                "content": "",
                "createdAt": 1_733_000_002_000,
                "parentId": "q1",
                "status": "error",
                "error": {"kind": "server", "message": "boom", "status": 500},
            },
            {
                "id": "a2",
                "role": "assistant",
                "content": "It is noon.",
                "reasoning": "The clock says so.",
                "createdAt": 1_733_000_003_000,
                "parentId": "q1",
                "status": "done",
                "model": "SmolLM2-135M-Instruct",
                "finishReason": None,
                "toolCalls": [
                    {"id": "c1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}
                ],
                "metrics": {
                    "completionTokens": 4,
                    "approximate": False,
                    "ttftMs": 12.5,
                    "tokensPerSecond": None,
                    "durationMs": 80,
                },
            },
        ],
    }


def question(message_id: str, parent: str, content: str = "and then?") -> Page:
    return {
        "id": message_id,
        "role": "user",
        "content": content,
        "createdAt": 1_733_000_009_000,
        "parentId": parent,
    }


def make_user(engine: Engine, name: str) -> int:
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO users (username, role, disabled, created_at) "
                "VALUES (:name, 'user', false, CURRENT_TIMESTAMP)"
            ),
            {"name": name},
        )
        return int(
            db.execute(text("SELECT id FROM users WHERE username = :name"), {"name": name}).scalar_one()
        )


def test_storage_versions_merges_sync_import_and_quota(engine: Engine) -> None:
    storage = Storage(engine, quota_bytes=20_000)
    ann, bob = make_user(engine, "ann"), make_user(engine, "bob")
    page = conversation("c1")
    created = storage.put(ann, page, None)
    assert (created["version"], created["conversation"]) == (1, page)
    assert storage.get(ann, "c1")["conversation"] == page, "what the page sent comes back equal"
    with pytest.raises(StorageError) as other:
        storage.get(bob, "c1")
    assert other.value.status == 404, "ids are per user: bob has no c1"
    assert storage.put(bob, conversation("c1"), None)["version"] == 1, "...and may have his own"

    # A stale whole write is refused with the server's copy; the current version passes.
    with pytest.raises(Conflict) as stale:
        storage.put(ann, {**page, "title": "mine"}, None)
    assert stale.value.status == 409 and stale.value.current["conversation"] == page
    renamed = storage.put(ann, {**page, "title": "Renamed", "pinned": False}, 1)
    assert renamed["version"] == 2 and storage.get(ann, "c1")["conversation"]["title"] == "Renamed"

    # Two devices based on version 2: one edits answer a2 and renames; the other also edits a2
    # and adds a question. Both edits of a2 are kept (the second a sibling), nothing is lost.
    a2 = page["messages"][2]
    first = storage.apply_change(
        ann, "c1", 2, {"title": "From A", "folder": None}, [{**a2, "content": "A"}], []
    )
    assert first["version"] == 3 and "folder" not in first["conversation"]
    second = storage.apply_change(
        ann, "c1", 2, {"current": "q2"}, [{**a2, "content": "B"}, question("q2", "a2")], ["a1"]
    )
    messages = {m["id"]: m for m in second["conversation"]["messages"]}
    assert messages["a2"]["content"] == "A" and messages["a2~v4"]["content"] == "B"
    assert messages["a2~v4"]["parentId"] == "q1", "the conflicting copy is a sibling branch"
    assert messages["q2"]["parentId"] == "a2~v4", "this device's follow-up stays on its own copy"
    assert second["conversation"]["current"] == "q2" and "a1" not in messages
    assert second["conversation"]["title"] == "From A", "a field this device did not change stays"
    long_id = "L" * 128
    storage.apply_change(ann, "c1", 4, {}, [question(long_id, "q1")], [])
    storage.apply_change(ann, "c1", 5, {}, [question(long_id, "q1", "first")], [])
    kept = storage.apply_change(ann, "c1", 5, {}, [question(long_id, "q1", "second")], [])
    sibling = kept["conversation"]["messages"][-1]
    assert sibling["content"] == "second" and sibling["id"] == "L" * 125 + "~v7", "an id still fits"

    # The cursor: changes since, deletions as tombstones, paged.
    cursor = storage.changes(ann, 0, 10)["cursor"]
    storage.put(ann, conversation("c2"), None)
    deleted = storage.delete(ann, "c1", None)
    assert deleted["deleted"] and deleted["conversation"] is None
    since = storage.changes(ann, cursor, 1)
    assert since["more"] and [c["id"] for c in since["changes"]] == ["c2"]
    rest = storage.changes(ann, since["cursor"], 10)
    assert [(c["id"], c["deleted"]) for c in rest["changes"]] == [("c1", True)] and not rest["more"]
    assert storage.changes(ann, rest["cursor"], 10)["changes"] == []
    assert [c["id"] for c in storage.changes(ann, 0, 10)["changes"]] == ["c2"], (
        "a first sync skips tombstones"
    )
    with pytest.raises(StorageError) as gone:
        storage.get(ann, "c1")
    assert gone.value.status == 404

    # Import on first sign-in: ids kept, known ones (deleted ones included) skipped, twice is once.
    batch = [conversation("c1"), conversation("c3"), conversation("c2")]
    assert storage.import_many(ann, batch) == {"imported": ["c3"], "skipped": ["c1", "c2"]}
    assert storage.import_many(ann, batch) == {"imported": [], "skipped": ["c1", "c3", "c2"]}
    assert sorted(c["id"] for c in storage.export(ann)) == ["c2", "c3"]
    forked = storage.fork(ann, "c3", "a1", "c4", "Fork")["conversation"]
    assert [m["id"] for m in forked["messages"]] == ["q1", "a1"] and forked["current"] == "a1"

    # The quota: counted in bytes kept, 413 past it (all or nothing), room again after a delete.
    used = storage.usage(ann)["used_bytes"]
    assert 3 * len(json.dumps(page)) // 2 < used < 20_000
    with pytest.raises(StorageError) as full:
        storage.import_many(ann, [conversation("c5"), conversation("big", 20_000)])
    assert full.value.status == 413 and "USER_STORAGE_MB" in full.value.message
    assert storage.usage(ann)["used_bytes"] == used and "c5" not in [c["id"] for c in storage.export(ann)]
    with pytest.raises(StorageError):
        storage.put_file(ann, "f", "big.bin", "application/octet-stream", b"\0" * 20_000)
    storage.put_document(
        ann, "d1", "a.txt", "abc def", "all-MiniLM-L6-v2", [{"text": "abc", "embedding": [0.25, -1.0]}]
    )
    assert storage.document(ann, "d1")["chunks"] == [{"text": "abc", "embedding": [0.25, -1.0]}]
    storage.put_preset(ann, "p1", "Terse", {"systemPrompt": "Be brief."})
    for conversation_id in ("c2", "c3", "c4"):
        storage.delete(ann, conversation_id, None)
    storage.delete_document(ann, "d1")
    storage.delete_preset(ann, "p1")
    assert storage.usage(ann)["used_bytes"] == 0

    # Deleting the account deletes all it kept.
    storage.put_file(ann, "f", "a.txt", "text/plain", b"abc")
    with engine.begin() as db:
        db.execute(text("DELETE FROM users WHERE id = :id"), {"id": ann})
        left = db.execute(text("SELECT count(*) FROM conversations WHERE user_id = :id"), {"id": ann})
        assert left.scalar_one() == 0
        assert db.execute(text("SELECT count(*) FROM files")).scalar_one() == 0


def test_concurrent_changes_from_two_devices_lose_nothing(engine: Engine) -> None:
    """Two devices send changes to one conversation at once, each based on the version it read
    first: every message of both is kept, every write got its own version and cursor, and a
    third reading meanwhile always gets one version whole."""
    storage = Storage(engine, quota_bytes=10_000_000)
    ann = make_user(engine, "ann")
    storage.put(ann, conversation("c1"), None)

    def device(name: str) -> list[int]:
        return [
            storage.apply_change(ann, "c1", 1, {}, [question(f"{name}{n}", "a2")], [])["version"]
            for n in range(10)
        ]

    writing = threading.Event()
    writing.set()

    def reader() -> int:
        """Reads while they write: each copy is one version's (version n holds 3 + n - 1 messages)."""
        reads = 0
        while writing.is_set():
            got = storage.get(ann, "c1")
            assert len(got["conversation"]["messages"]) == 3 + got["version"] - 1
            reads += 1
        return reads

    with ThreadPoolExecutor(3) as pool:
        reads = pool.submit(reader)
        versions = [v for done in pool.map(device, ("x", "y")) for v in done]
        writing.clear()
        assert reads.result() > 0
    assert sorted(versions) == list(range(2, 22))
    final = storage.get(ann, "c1")
    ids = {m["id"] for m in final["conversation"]["messages"]}
    assert {f"{d}{n}" for d in "xy" for n in range(10)} <= ids and final["version"] == 21
    assert storage.usage(ann)["cursor"] == 21


# Over the app's routes (in-process, as test_accounts.py does: the real middleware, guard and
# routes, no model needed).

ADMIN = {"username": "root", "password": "correct horse"}
OPERATOR_KEY = "operator-key-for-tests"


def sign_in(http: TestClient, credentials: dict[str, str]) -> dict[str, str]:
    """The session cookie of `credentials`, for requests sent with it (the client's own jar is
    emptied: a sign-in sent with another's cookie would end that session)."""
    signed = http.post("/auth/login", json=credentials)
    assert signed.status_code == 200, signed.text
    http.cookies.clear()
    return {"Cookie": f"localchat_session={signed.cookies['localchat_session']}"}


@pytest.fixture
def site(database_url: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """The app with accounts (AUTH=password, a 1 MiB quota) and the headers each caller sends:
    nobody, ann (A), bob (B), the admin, A's personal key, the operator's API_KEY."""
    with in_process(database_url, "password", api_key=OPERATOR_KEY, user_storage_mb=1) as http:
        assert http.post("/auth/signup", json=ADMIN).status_code == 201
        http.cookies.clear()
        callers = {"anonymous": {}, "admin": sign_in(http, ADMIN)}
        for name in ("ann", "bob"):
            person = {"username": name, "password": f"{name}'s password"}
            assert http.post("/auth/users", json=person, headers=callers["admin"]).status_code == 201
            callers[name] = sign_in(http, person)
        key = http.post("/auth/keys", json={"name": "sync"}, headers=callers["ann"]).json()["key"]
        callers["ann_key"] = {"Authorization": f"Bearer {key}"}
        callers["operator"] = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        yield http, callers


Request = Callable[[str], dict[str, Any]]  # ids' suffix -> httpx request arguments
SECRET = "ann's eyes only"


def keep(http: TestClient, headers: dict[str, str], suffix: str, kinds: tuple[str, ...] = ()) -> None:
    """Ann's conversation, preset, file and document (or only those `kinds`), ids ending in `suffix`."""
    bodies = {
        "conversations": {"json": {"conversation": {**conversation(f"c{suffix}"), "title": SECRET}}},
        "presets": {"json": {"name": "Terse", "data": {"systemPrompt": "Be brief."}}},
        "files": {"params": {"name": "a.txt"}, "content": b"abc", "headers": {"Content-Type": "text/plain"}},
        "documents": {
            "json": {"name": "a.txt", "text": "abc", "chunks": [{"text": "abc", "embedding": [1.0]}]}
        },
    }
    for kind, body in bodies.items():
        if kinds and kind not in kinds:
            continue
        arguments = {**body, "headers": {**headers, **body.get("headers", {})}}
        stored = http.put(f"/api/{kind}/{kind[0]}{suffix}", **arguments)
        assert stored.status_code in (200, 201), (kind, stored.text)


# Every /api route: how to call it on ann's things (ids ending in the suffix), and what ann
# (with her session or her key) gets. Anyone else gets 404 for ann's ids, or their own
# (empty) collections; nobody gets 401; the operator's key, which is nobody's account, 403.
ROUTES: dict[tuple[str, str], tuple[Request, int]] = {
    ("GET", "/api/conversations"): (lambda s: {"params": {"since": 0}}, 200),
    ("POST", "/api/conversations/import"): (
        lambda s: {"json": {"conversations": [conversation(f"new{s}")]}},
        200,
    ),
    ("GET", "/api/conversations/export"): (lambda s: {}, 200),
    ("GET", "/api/conversations/{conversation_id}"): (lambda s: {"url": f"/api/conversations/c{s}"}, 200),
    ("GET", "/api/conversations/{conversation_id}/export"): (
        lambda s: {"url": f"/api/conversations/c{s}/export"},
        200,
    ),
    ("PUT", "/api/conversations/{conversation_id}"): (
        lambda s: {
            "url": f"/api/conversations/c{s}",
            "json": {"base_version": 1, "conversation": conversation(f"c{s}")},
        },
        200,
    ),
    ("PATCH", "/api/conversations/{conversation_id}"): (
        lambda s: {"url": f"/api/conversations/c{s}", "json": {"base_version": 1, "fields": {"title": "x"}}},
        200,
    ),
    ("DELETE", "/api/conversations/{conversation_id}"): (lambda s: {"url": f"/api/conversations/c{s}"}, 200),
    ("POST", "/api/conversations/{conversation_id}/fork"): (
        lambda s: {"url": f"/api/conversations/c{s}/fork", "json": {"id": f"fork{s}", "message_id": "a2"}},
        201,
    ),
    ("GET", "/api/storage"): (lambda s: {}, 200),
    ("GET", "/api/presets"): (lambda s: {}, 200),
    ("PUT", "/api/presets/{preset_id}"): (
        lambda s: {"url": f"/api/presets/p{s}", "json": {"name": "Mine"}},
        200,
    ),
    ("DELETE", "/api/presets/{preset_id}"): (lambda s: {"url": f"/api/presets/p{s}"}, 204),
    ("GET", "/api/files"): (lambda s: {}, 200),
    ("PUT", "/api/files/{file_id}"): (
        lambda s: {"url": f"/api/files/f{s}", "params": {"name": "b.txt"}, "content": b"xyz"},
        200,
    ),
    ("GET", "/api/files/{file_id}"): (lambda s: {"url": f"/api/files/f{s}"}, 200),
    ("DELETE", "/api/files/{file_id}"): (lambda s: {"url": f"/api/files/f{s}"}, 204),
    ("GET", "/api/documents"): (lambda s: {}, 200),
    ("PUT", "/api/documents/{document_id}"): (
        lambda s: {"url": f"/api/documents/d{s}", "json": {"name": "b.txt", "text": "xyz"}},
        200,
    ),
    ("GET", "/api/documents/{document_id}"): (lambda s: {"url": f"/api/documents/d{s}"}, 200),
    ("DELETE", "/api/documents/{document_id}"): (lambda s: {"url": f"/api/documents/d{s}"}, 204),
}
# Writes into the caller's own space: another user gets their own thing, ann's stays as it was.
OWN_SPACE = {
    ("PUT", "/api/presets/{preset_id}"),
    ("PUT", "/api/files/{file_id}"),
    ("PUT", "/api/documents/{document_id}"),
}


def ann_sees(http: TestClient, headers: dict[str, str], suffix: str) -> Page:
    """Everything of ann's with `suffix`, to compare before and after others' attempts."""
    conv = http.get(f"/api/conversations/c{suffix}", headers=headers).json()
    preset = [p for p in http.get("/api/presets", headers=headers).json() if p["id"] == f"p{suffix}"]
    file = http.get(f"/api/files/f{suffix}", headers=headers).content
    document = http.get(f"/api/documents/d{suffix}", headers=headers).json()
    return {"conversation": conv, "preset": preset, "file": file, "document": document}


def test_authorisation_matrix_over_every_route(site: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    http, callers = site
    spec = http.get("/openapi.json").json()
    storage_paths = {
        path: operations for path, operations in spec["paths"].items() if path.startswith("/api/")
    }
    served = {(method.upper(), path) for path, operations in storage_paths.items() for method in operations}
    assert served == set(ROUTES), "every /api route is in the matrix"
    described = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(storage_paths)))
    assert described <= set(spec["components"]["schemas"]), "their bodies are described"
    suffixes = count()
    shared = f"-{next(suffixes)}"
    keep(http, callers["ann"], shared)
    before = ann_sees(http, callers["ann"], shared)
    for (method, template), (arguments, allowed) in ROUTES.items():
        for caller in ("ann", "ann_key"):
            suffix = shared
            if method != "GET":  # a write changes or deletes what it is given: a fresh one
                suffix = f"-{next(suffixes)}"
                keep(http, callers["ann"], suffix, kinds=(template.split("/")[2],))
            request = {"url": template, **arguments(suffix)}
            answer = http.request(method, headers=callers[caller], **request)
            assert answer.status_code == allowed, (caller, method, template, answer.text)
        for caller, expected in (("anonymous", 401), ("operator", 403), ("bob", None), ("admin", None)):
            own = "{" not in template or (method, template) in OWN_SPACE
            if expected is None:
                expected = allowed if own else 404
            # Their writes to their own space take their own ids (the same id would make theirs, a
            # different thing, which then answers their later calls on that id).
            request = {"url": template, **arguments(f"{shared}-{caller}" if own else shared)}
            answer = http.request(method, headers=callers[caller], **request)
            assert answer.status_code == expected, (caller, method, template, answer.text)
            if expected >= 400:
                assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
            elif method == "GET":
                assert json.dumps(SECRET)[1:-1] not in answer.text, (
                    f"{caller} must not see ann's conversation"
                )
    assert ann_sees(http, callers["ann"], shared) == before, "others' attempts changed nothing of ann's"
    bob_space = http.get("/api/conversations/export", headers=callers["bob"]).json()["conversations"]
    assert sorted(c["id"] for c in bob_space) == [f"new{shared}-bob"], "bob's import went to bob"


NAN_BODY = json.dumps({"conversation": {**conversation("c9"), "x": float("nan")}}).encode()
SURROGATE_BODY = json.dumps({"conversation": {**conversation("c9"), "x": "\ud800"}}).encode()


def test_routes_sync_conflicts_quota_and_bad_input(
    site: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    http, callers = site
    ann = callers["ann"]
    page = conversation("c1")
    created = http.put("/api/conversations/c1", json={"conversation": page}, headers=ann)
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    assert http.get("/api/conversations/c1", headers=ann).json()["conversation"] == page
    assert http.get("/api/conversations/c1/export", headers=ann).json() == page
    cursor = http.get("/api/conversations", headers=ann).json()["cursor"]

    stale = http.put("/api/conversations/c1", json={"conversation": {**page, "title": "mine"}}, headers=ann)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    assert stale.json()["current"] == {"id": "c1", "version": 1, "deleted": False, "conversation": page}
    replaced = http.put(
        "/api/conversations/c1",
        json={"conversation": {**page, "title": "New"}},
        headers={**ann, "If-Match": '"1"'},
    )
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    change = {"base_version": 1, "fields": {"current": "q2"}, "messages": [question("q2", "a2")]}
    merged = http.patch("/api/conversations/c1", json=change, headers=ann).json()
    assert merged["version"] == 3 and merged["conversation"]["title"] == "New", "merged, not refused"
    assert http.delete("/api/conversations/c1", headers={**ann, "If-Match": '"2"'}).status_code == 409
    assert http.delete("/api/conversations/c1?base_version=3", headers=ann).json()["deleted"] is True
    synced = http.get(f"/api/conversations?since={cursor}", headers=ann).json()
    assert [(c["id"], c["version"], c["deleted"]) for c in synced["changes"]] == [("c1", 4, True)]
    assert http.get("/api/conversations/c1", headers=ann).status_code == 404

    batch = {"conversations": [conversation("c1"), conversation("c2")]}
    assert http.post("/api/conversations/import", json=batch, headers=ann).json() == {
        "imported": ["c2"],
        "skipped": ["c1"],
    }
    assert http.post("/api/conversations/import", json=batch, headers=ann).json()["imported"] == []
    forked = http.post("/api/conversations/c2/fork", json={"id": "c2", "message_id": "a2"}, headers=ann)
    assert forked.status_code == 409
    assert (
        http.post(
            "/api/conversations/c2/fork", json={"id": "c3", "message_id": "zz"}, headers=ann
        ).status_code
        == 404
    )

    # USER_STORAGE_MB=1: a conversation or a file past it is refused, and says what to do.
    big = http.put(
        "/api/conversations/big", json={"conversation": conversation("big", 1_100_000)}, headers=ann
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "storage_quota_exceeded"
    large = http.put("/api/files/big?name=big.bin", content=b"\1" * 1_100_000, headers=ann)
    assert large.status_code == 413 and "delete" in large.json()["error"]["message"]
    assert http.get("/api/storage", headers=ann).json()["quota_bytes"] == 1024 * 1024
    # A file is given back as it came, but never as a page of this site.
    script = b"<script>alert(1)</script>"
    assert http.put(
        "/api/files/p?name=p.html", content=script, headers={**ann, "Content-Type": "text/html"}
    ).is_success
    served = http.get("/api/files/p", headers=ann)
    assert served.content == script and served.headers["content-type"].startswith("text/html")
    assert served.headers["content-disposition"] == "attachment"
    assert served.headers["content-security-policy"] == "sandbox"

    # Bad input is a 400 that names the problem, never a 500.
    nul = conversation("c9")
    nul["messages"][0]["content"] = "a\x00b"
    twice = conversation("c9")
    twice["messages"].append(twice["messages"][0])
    for method, url, kwargs, where in (
        ("PUT", "/api/conversations/c9", {"json": {"conversation": conversation("c8")}}, "URL"),
        ("PUT", "/api/conversations/c9", {"json": {"conversation": nul}}, "NUL"),
        ("PUT", "/api/conversations/c9", {"json": {"conversation": twice}}, "twice"),
        ("PUT", "/api/conversations/c9", {"content": b"{not json"}, "JSON"),
        ("PUT", "/api/conversations/c9", {"json": {"conversation": {"id": "c9"}}}, "title"),
        (
            "PUT",
            "/api/conversations/c9",
            {"json": {"conversation": {**conversation("c9"), "messages": 5}}},
            "messages",
        ),
        (
            "PUT",
            "/api/conversations/c9",
            {"json": {"base_version": "x", "conversation": conversation("c9")}},
            "base_version",
        ),
        (
            "PUT",
            "/api/conversations/c9",
            {"json": {"conversation": conversation("c9")}, "headers": {"If-Match": "soon"}},
            "If-Match",
        ),
        ("PATCH", "/api/conversations/c2", {"json": {"base_version": 1, "fields": {"id": "other"}}}, "id"),
        ("GET", "/api/conversations?since=-1", {}, "since"),
        ("GET", "/api/conversations/" + "x" * 200, {}, "conversation_id"),
        ("PUT", "/api/presets/p", {"json": {"name": ""}}, "name"),
        ("PUT", "/api/presets/p", {"content": b'{"name": "n", "data": {"x": NaN}}'}, "NaN"),
        ("PUT", "/api/conversations/c9", {"content": NAN_BODY}, "NaN"),
        ("PUT", "/api/conversations/c9", {"content": SURROGATE_BODY}, "surrogate"),
        (
            "PUT",
            "/api/documents/d",
            {"json": {"name": "a", "text": "t", "chunks": [{"text": "a", "embedding": [1e39]}]}},
            "float32",
        ),
        (
            "PUT",
            "/api/documents/d",
            {"json": {"name": "a", "text": "t", "chunks": [{"text": "a", "embedding": ["x"]}]}},
            "embedding",
        ),
    ):
        headers = {**ann, **kwargs.pop("headers", {})}
        answer = http.request(method, url, headers=headers, **kwargs)
        assert answer.status_code == 400, (where, answer.text)
        assert answer.json()["error"]["message"], where
    assert http.patch("/api/conversations/none", json={"base_version": 1}, headers=ann).status_code == 404
    assert http.get("/api/nothing-here", headers=ann).status_code == 404

    # A cookie's cross-site write is refused; an SDK's (its key, no cookie) from anywhere is not.
    evil = {"Origin": "https://evil.example"}
    forged = http.put(
        "/api/conversations/c7", json={"conversation": conversation("c7")}, headers={**ann, **evil}
    )
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_refused"
    sdk = http.put(
        "/api/conversations/c7",
        json={"conversation": conversation("c7")},
        headers={**callers["ann_key"], **evil},
    )
    assert sdk.status_code == 201


def test_auth_none_keeps_everything_for_one_local_user(tmp_path: Path) -> None:
    """AUTH=none: no sign-in, one built-in user; the database is made on first use only, and
    another site's page may not change anything."""
    app = create_app(Settings(auth="none", data_dir=tmp_path, database_url=None, api_key=None))
    with closing(TestClient(app)) as http:
        assert http.get("/health").status_code in (200, 503) and not (tmp_path / "localchat.db").exists()
        assert http.put("/api/conversations/c1", json={"conversation": conversation("c1")}).status_code == 201
        assert [c["id"] for c in http.get("/api/conversations").json()["changes"]] == ["c1"]
        forged = http.delete("/api/conversations/c1", headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
        assert http.get("/api/conversations/c1").status_code == 200
    engine = make_engine(f"sqlite:///{tmp_path / 'localchat.db'}")
    with engine.connect() as db:
        assert db.execute(text("SELECT username FROM users")).scalars().all() == ["(local)"]
    engine.dispose()
    keyed = create_app(Settings(auth="none", data_dir=tmp_path, database_url=None, api_key="k"))
    with closing(TestClient(keyed)) as http:
        assert http.get("/api/conversations").status_code == 401
        assert http.get("/api/conversations", headers={"Authorization": "Bearer k"}).status_code == 200


WRITER = """
import sys
from app.conversations.service import Storage
from app.db.engine import make_engine
from app.db.migrate import upgrade

engine = make_engine(sys.argv[1])
upgrade(engine)
storage = Storage(engine, 1 << 40)
user = storage.local_user()
# A chain of 20 messages (m0, the first one's parent, is absent: it becomes null).
page = {"id": "", "title": "t", "createdAt": 1, "updatedAt": 1, "messages": [
    {"id": f"m{n}", "role": "user", "content": "x" * 500, "createdAt": 1, "parentId": f"m{n - 1}"}
    for n in range(1, 21)
]}
for n in range(100_000):
    storage.put(user, {**page, "id": f"c{n}"}, None)
    print(n, flush=True)  # acknowledged: committed
"""


def test_sqlite_keeps_every_acknowledged_write_after_sigkill(tmp_path: Path) -> None:
    """Item 7: a process killed (SIGKILL) during a burst of writes leaves a database that opens,
    passes its integrity check, and holds every write it acknowledged, each one whole."""
    url = f"sqlite:///{tmp_path / 'localchat.db'}"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        cwd=BACKEND_DIR,
        env=server_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline() for _ in range(50)]
    writer.send_signal(signal.SIGKILL)
    acknowledged += writer.stdout.readlines()  # those it printed before it died
    writer.wait(timeout=30)
    done = [int(line) for line in acknowledged if line.strip()]
    assert len(done) >= 50 and writer.returncode == -signal.SIGKILL
    engine = make_engine(url)
    with engine.connect() as db:
        assert db.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        stored = dict(
            db.execute(
                text(
                    "SELECT c.id, count(m.id) FROM conversations c "
                    "JOIN messages m ON m.conversation_pk = c.pk GROUP BY c.id"
                )
            ).all()
        )
        rows = db.execute(text("SELECT count(*) FROM conversations")).scalar_one()
    engine.dispose()
    assert {f"c{n}" for n in done} <= set(stored), "every acknowledged write is there"
    assert set(stored.values()) == {20} and rows == len(stored), "and none is there in part"
