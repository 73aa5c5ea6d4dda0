"""AUTH=password on a real server (SQLite in a temporary DATA_DIR, 127.0.0.1 as its trusted
proxy, an operator API_KEY, METRICS_PER_USER on): the first admin's sign-up, sign-in and out,
cookie flags, CSRF, personal API keys on the OpenAI and Anthropic routes, a disabled user,
throttled sign-in, usage per owner and key, per-user limits, and no password or key in the
server's log."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from api_support import REQUEST_TIMEOUT_S
from prometheus_client.parser import text_string_to_metric_families
from server_process import CHAT_MODEL, EMBEDDING_MODEL, ServerProcess, start_server
from sqlalchemy import text

from app.db.engine import database_url, make_engine

OPERATOR_KEY = "operator-key-for-tests"
ADMIN = {"username": "ann", "password": "correct horse battery"}
SECRETS: list[str] = [ADMIN["password"]]  # everything that must never reach the log


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth-server")


def replica_settings(folder: Path) -> dict[str, str]:
    """One site's settings: every replica started with them shares its database."""
    return {"AUTH": "password", "DATA_DIR": str(folder / "data"), "TRUSTED_PROXIES": "127.0.0.1"}


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[ServerProcess]:
    proc = start_server(
        folder / "server.log", api_key=OPERATOR_KEY, METRICS_PER_USER="true", **replica_settings(folder)
    )
    yield proc
    proc.stop()


def browser(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S)


@pytest.fixture(scope="module")
def signup(server: ServerProcess) -> httpx.Response:
    with browser(server) as http:
        assert http.get("/auth/status").json()["signup_open"] is True
        return http.post("/auth/signup", json=ADMIN)


@pytest.fixture
def admin(server: ServerProcess, signup: httpx.Response) -> Iterator[httpx.Client]:
    with browser(server) as http:
        assert http.post("/auth/login", json=ADMIN).status_code == 200
        yield http


def make_user(admin: httpx.Client, name: str) -> tuple[dict[str, str], int]:
    credentials = {"username": name, "password": f"{name}'s long password"}
    SECRETS.append(credentials["password"])
    made = admin.post("/auth/users", json=credentials)
    assert made.status_code == 201, made.text
    return credentials, made.json()["id"]


def test_first_admin_signs_up_once_with_a_safe_cookie(server: ServerProcess, signup: httpx.Response) -> None:
    assert signup.status_code == 201 and signup.json()["role"] == "admin"
    cookie = signup.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=lax", "path=/", "max-age=604800"):
        assert flag in cookie, cookie
    assert "secure" not in cookie, "plain HTTP: a Secure cookie would never come back"
    with browser(server) as http:
        again = http.post("/auth/signup", json={"username": "eve", "password": "x" * 12})
        assert again.status_code == 403 and "administrator" in again.json()["error"]["message"]
        assert http.get("/auth/status").json()["signup_open"] is False
        # Behind a trusted proxy that terminated HTTPS, the cookie is Secure.
        https = http.post("/auth/login", json=ADMIN, headers={"X-Forwarded-Proto": "https"})
        assert "secure" in https.headers["set-cookie"].lower()


def test_sign_in_rotates_the_session_and_sign_out_ends_it(
    server: ServerProcess, signup: httpx.Response
) -> None:
    with browser(server) as http:
        assert http.get("/auth/me").status_code == 401
        assert http.get("/v1/models").status_code == 401
        wrong = http.post("/auth/login", json={**ADMIN, "password": "not it at all"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
        assert http.post("/auth/login", json=ADMIN).status_code == 200
        first = http.cookies["localchat_session"]
        assert http.get("/auth/me").json()["username"] == "ann"
        assert http.get("/v1/models").status_code == 200, "the page calls the API with its session"
        assert http.post("/auth/login", json=ADMIN).status_code == 200
        second = http.cookies["localchat_session"]
        assert second != first
        stale = httpx.get(
            f"{server.url}/auth/me", cookies={"localchat_session": first}, timeout=REQUEST_TIMEOUT_S
        )
        assert stale.status_code == 401, "the session from before sign-in must be dead"
        assert http.post("/auth/logout").status_code == 204
        assert "localchat_session" not in http.cookies
        ended = httpx.get(
            f"{server.url}/auth/me", cookies={"localchat_session": second}, timeout=REQUEST_TIMEOUT_S
        )
        assert ended.status_code == 401


def test_cross_site_changes_are_refused(server: ServerProcess, admin: httpx.Client) -> None:
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        refused = admin.post("/auth/keys", json={"name": "csrf"}, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error"]["code"] == "csrf_refused"
    forged_login = httpx.post(
        f"{server.url}/auth/login",
        json=ADMIN,
        headers={"Origin": "https://evil.example"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert forged_login.status_code == 403
    same = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert admin.post("/auth/keys", json={"name": "same origin"}, headers=same).status_code == 201
    assert admin.get("/auth/keys", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200, (
        "reads are safe"
    )


def test_personal_keys_work_on_both_apis_until_revoked(server: ServerProcess, admin: httpx.Client) -> None:
    bob, _ = make_user(admin, "bob")
    with browser(server) as http:
        assert http.post("/auth/login", json=bob).status_code == 200
        assert http.get("/auth/users").status_code == 403
        created = http.post("/auth/keys", json={"name": "agent"}).json()
        key = created["key"]
        SECRETS.append(key)
        gpt = openai.OpenAI(
            base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
        answer = gpt.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
        assert answer.choices[0].message.content
        claude = anthropic.Anthropic(
            base_url=server.url, api_key=key, max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
        message = claude.messages.create(
            model=CHAT_MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}]
        )
        assert message.content[0].type == "text"
        listed = http.get("/auth/keys").json()
        assert [k["id"] for k in listed] == [created["id"]] and listed[0]["last_used_at"] is not None
        assert "key" not in listed[0], "a key is shown once"
        # A person's key is no operator's: loading and unloading models, /metrics are for admins.
        for path in ("/models/unload", "/metrics"):
            denied = httpx.request(
                "POST" if path.startswith("/models") else "GET",
                f"{server.url}{path}",
                json={"model": CHAT_MODEL},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert denied.status_code == 403 and "is for admins" in denied.json()["error"]["message"], path

        assert http.delete(f"/auth/keys/{created['id']}").status_code == 204
        with pytest.raises(openai.AuthenticationError) as revoked:
            gpt.models.list()
        assert "POST /auth/keys" in str(revoked.value)
        with pytest.raises(anthropic.AuthenticationError) as refused:
            claude.messages.create(
                model=CHAT_MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}]
            )
        assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    # The operator's shared key still opens everything, the admin routes included.
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert (
        httpx.get(f"{server.url}/v1/models", headers=operator, timeout=REQUEST_TIMEOUT_S).status_code == 200
    )
    assert (
        httpx.get(f"{server.url}/auth/users", headers=operator, timeout=REQUEST_TIMEOUT_S).status_code == 200
    )
    # Unloading the model loaded at start-up is refused by the route itself, not by the guard.
    pinned = httpx.post(
        f"{server.url}/models/unload", json={"model": CHAT_MODEL}, headers=operator, timeout=REQUEST_TIMEOUT_S
    )
    assert pinned.status_code == 400, pinned.text


def test_a_disabled_user_loses_sessions_and_keys(server: ServerProcess, admin: httpx.Client) -> None:
    carol, carol_id = make_user(admin, "carol")
    with browser(server) as http:
        assert http.post("/auth/login", json=carol).status_code == 200
        key = http.post("/auth/keys", json={"name": "sdk"}).json()["key"]
        SECRETS.append(key)
        bearer = {"Authorization": f"Bearer {key}"}
        assert http.get("/v1/models", headers=bearer).status_code == 200
        assert admin.patch(f"/auth/users/{carol_id}", json={"disabled": True}).status_code == 200
        assert http.get("/auth/me").status_code == 401
        assert (
            httpx.get(f"{server.url}/v1/models", headers=bearer, timeout=REQUEST_TIMEOUT_S).status_code == 401
        )
        refused = httpx.post(f"{server.url}/auth/login", json=carol, timeout=REQUEST_TIMEOUT_S)
        assert refused.status_code == 403 and "disabled" in refused.json()["error"]["message"]
        assert admin.patch(f"/auth/users/{carol_id}", json={"disabled": False}).status_code == 200
        assert (
            httpx.get(f"{server.url}/v1/models", headers=bearer, timeout=REQUEST_TIMEOUT_S).status_code == 200
        )
        assert admin.delete(f"/auth/users/{carol_id}").status_code == 204
        assert (
            httpx.get(f"{server.url}/v1/models", headers=bearer, timeout=REQUEST_TIMEOUT_S).status_code == 401
        )


def test_sign_in_is_throttled_per_account(server: ServerProcess, admin: httpx.Client) -> None:
    dave, _ = make_user(admin, "dave")
    # Each try from its own address (X-Forwarded-For from the trusted proxy), so only the
    # account's count can stop them.
    for n in range(5):
        wrong = httpx.post(
            f"{server.url}/auth/login",
            json={**dave, "password": f"guess number {n}"},
            headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
            timeout=REQUEST_TIMEOUT_S,
        )
        assert wrong.status_code == 401
    throttled = httpx.post(
        f"{server.url}/auth/login",
        json=dave,
        headers={"X-Forwarded-For": "198.51.100.99"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert throttled.status_code == 429, "even the right password waits"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300
    assert "try again in" in throttled.json()["error"]["message"]
    assert httpx.post(f"{server.url}/auth/login", json=ADMIN, timeout=REQUEST_TIMEOUT_S).status_code == 200, (
        "other accounts are not locked"
    )


def test_only_who_started_an_answer_may_resume_it(server: ServerProcess, admin: httpx.Client) -> None:
    """A kept stream (X-Message-Id) is read again by the person who started it, from any of their
    sessions; anyone else (here the operator's key) is told it is not kept: a 404, not a 403."""
    headers = {"X-Conversation-Id": "shared-conversation", "X-Message-Id": "m1"}
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 2,
        "stream": True,
    }
    with admin.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status_code == 200
        answer = resp.read()
    path = "/v1/stream/shared-conversation/m1"
    with browser(server) as other_session:
        assert other_session.post("/auth/login", json=ADMIN).status_code == 200
        again = other_session.get(path)
        assert again.status_code == 200 and again.content == answer
    stranger = httpx.get(
        f"{server.url}{path}", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=REQUEST_TIMEOUT_S
    )
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "stream_not_found"


@contextmanager
def signed_in(server: ServerProcess, credentials: dict[str, str]) -> Iterator[httpx.Client]:
    with browser(server) as http:
        assert http.post("/auth/login", json=credentials).status_code == 200
        yield http


def personal_key(http: httpx.Client) -> tuple[str, int]:
    created = http.post("/auth/keys", json={"name": "agent"}).json()
    SECRETS.append(created["key"])
    return created["key"], created["id"]


HI = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def test_usage_counts_against_the_keys_owner_and_only_they_and_admins_read_it(
    server: ServerProcess, admin: httpx.Client
) -> None:
    erin, erin_id = make_user(admin, "erin")
    _, frank_id = make_user(admin, "frank")
    with signed_in(server, erin) as http:
        key, key_id = personal_key(http)
        gpt = openai.OpenAI(
            base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
        chunks = gpt.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Count to ten"}],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
        streamed = [c.usage for c in chunks if c.usage][-1]
        embedded = gpt.embeddings.create(model=EMBEDDING_MODEL, input=["hello there", "general kenobi"]).usage
        from_page = http.post("/v1/chat/completions", json=HI).json()["usage"]  # the session's own
        # A stream cut short by its client counts the tokens it had produced when it ended.
        cut_key, cut_id = personal_key(http)
        long = {**HI, "max_tokens": 200, "ignore_eos": True, "stream": True}
        received = 0
        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json=long,
            headers={"Authorization": f"Bearer {cut_key}"},
        ) as cut:
            for line in cut.iter_lines():
                received += '"content":"' in line and '"content":""' not in line
                if received == 3:
                    break
        deadline = time.monotonic() + 30
        while not (
            cut_rows := [r for r in http.get("/auth/me/usage").json()["rows"] if r["api_key_id"] == cut_id]
        ):
            assert time.monotonic() < deadline, "the cut stream's usage was never recorded"
            time.sleep(0.2)
        assert 3 <= cut_rows[0]["completion_tokens"] < 200 and cut_rows[0]["requests"] == 1

        mine = http.get("/auth/me/usage").json()
        rows = {(r["api_key_id"], r["model"]): r for r in mine["rows"]}
        del rows[(cut_id, CHAT_MODEL)]
        counts = {k: (r["requests"], r["prompt_tokens"], r["completion_tokens"]) for k, r in rows.items()}
        assert counts == {
            (key_id, CHAT_MODEL): (1, streamed.prompt_tokens, streamed.completion_tokens),
            (key_id, EMBEDDING_MODEL): (1, embedded.prompt_tokens, 0),
            (None, CHAT_MODEL): (1, from_page["prompt_tokens"], from_page["completion_tokens"]),
        }
        assert {(r["user_id"], r["username"]) for r in mine["rows"]} == {(erin_id, "erin")}
        assert rows[(key_id, CHAT_MODEL)]["key_name"] == "agent" and key not in str(mine)
        assert len(mine["daily"]) == 30 and mine["daily"][-1]["requests"] == 4 == mine["total"]["requests"]
        # Nobody else's usage: not everyone's, not another user's.
        for path in ("/auth/usage", f"/auth/usage?user_id={frank_id}"):
            denied = http.get(path)
            assert denied.status_code == 403 and "/auth/me/usage" in denied.json()["error"]["message"]
    seen = admin.get("/auth/usage", params={"user_id": erin_id}).json()
    assert seen["rows"] == mine["rows"]
    assert {u["username"] for u in admin.get("/auth/usage").json()["users"]} >= {"erin", "bob"}
    assert admin.get("/auth/usage", params={"user_id": 99999}).status_code == 404
    assert admin.get("/auth/usage", params={"user_id": 2**70}).status_code == 400
    bad = admin.get("/auth/usage", params={"start": "2026-13-01"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "start"
    backwards = admin.get("/auth/usage", params={"start": "2026-02-02", "end": "2026-02-01"})
    assert backwards.status_code == 400 and "after" in backwards.json()["error"]["message"]

    # METRICS_PER_USER: requests and tokens by the account's name.
    scraped = httpx.get(
        f"{server.url}/metrics",
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        timeout=REQUEST_TIMEOUT_S,
    ).text
    samples = {
        (s.name, s.labels.get("model")): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.labels.get("user") == "erin"
    }
    assert samples[("llm_user_requests_total", CHAT_MODEL)] == 3
    assert samples[("llm_user_prompt_tokens_total", EMBEDDING_MODEL)] == embedded.prompt_tokens
    assert samples[("llm_user_generation_tokens_total", CHAT_MODEL)] == (
        streamed.completion_tokens + from_page["completion_tokens"] + cut_rows[0]["completion_tokens"]
    )


def test_per_user_limits_answer_429_saying_which_and_when(server: ServerProcess, admin: httpx.Client) -> None:
    gus, gus_id = make_user(admin, "gus")
    with signed_in(server, gus) as http:
        key, _ = personal_key(http)
    bearer = {"Authorization": f"Bearer {key}"}
    chat = f"{server.url}/v1/chat/completions"
    set_to = admin.patch(f"/auth/users/{gus_id}", json={"rpm_limit": 1})
    assert set_to.status_code == 200 and set_to.json()["rpm_limit"] == 1
    assert set_to.json()["tokens_per_day_limit"] is None
    assert httpx.post(chat, json=HI, headers=bearer, timeout=REQUEST_TIMEOUT_S).status_code == 200
    over = httpx.post(chat, json=HI, headers=bearer, timeout=REQUEST_TIMEOUT_S)
    assert over.status_code == 429, over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    error = over.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "requests_per_minute_exceeded")
    assert "1 request per minute (set for this account by an admin)" in error["message"]
    claude = httpx.post(
        f"{server.url}/v1/messages",
        json={"model": CHAT_MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert claude.status_code == 429 and claude.json()["error"]["type"] == "rate_limit_error"

    # The first chat's tokens are past a limit of 1 a day: refused until midnight UTC.
    assert (
        admin.patch(f"/auth/users/{gus_id}", json={"rpm_limit": 0, "tokens_per_day_limit": 1}).status_code
        == 200
    )
    spent = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": EMBEDDING_MODEL, "input": "x"},
        headers=bearer,
        timeout=REQUEST_TIMEOUT_S,
    )
    assert spent.status_code == 429
    assert 1 <= int(spent.headers["Retry-After"]) <= 86400
    message = spent.json()["error"]["message"]
    assert "Daily token limit reached: 'gus' has used" in message and "of 1 tokens today" in message
    assert "resets at 00:00 UTC" in message

    back = admin.patch(f"/auth/users/{gus_id}", json={"rpm_limit": None, "tokens_per_day_limit": None}).json()
    assert (back["rpm_limit"], back["tokens_per_day_limit"]) == (None, None)
    assert httpx.post(chat, json=HI, headers=bearer, timeout=REQUEST_TIMEOUT_S).status_code == 200, (
        "this server's defaults set no limit"
    )


def test_conversations_are_kept_per_user_over_real_http(server: ServerProcess, admin: httpx.Client) -> None:
    """The /api storage on the real server (migrated at start-up): what the page stores comes
    back equal, to its owner only; a stale write is a 409 and a cross-site one a 403.
    tests/test_conversations.py covers the routes in full."""
    page = {
        "id": "real-1",
        "title": "Real",
        "createdAt": 1,
        "updatedAt": 2,
        "params": {"seed": None},
        "messages": [{"id": "m1", "role": "user", "content": "Hi", "createdAt": 1, "parentId": None}],
    }
    created = admin.put("/api/conversations/real-1", json={"conversation": page})
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    assert admin.get("/api/conversations/real-1/export").json() == page
    assert admin.put("/api/conversations/real-1", json={"conversation": page}).status_code == 409
    forged = admin.delete("/api/conversations/real-1", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    erin, _ = make_user(admin, "gwen")
    with browser(server) as http:
        assert http.post("/auth/login", json=erin).status_code == 200
        assert http.get("/api/conversations/real-1").status_code == 404
    assert httpx.get(f"{server.url}/api/conversations", timeout=REQUEST_TIMEOUT_S).status_code == 401


def test_a_replica_killed_mid_answer_loses_no_stored_message(
    server: ServerProcess, admin: httpx.Client, folder: Path
) -> None:
    """Item 7: a second replica on the same database is killed (SIGKILL) while it streams an
    answer and just after it stored the user's next question. The other replica still knows the
    session, has every message stored before the kill (the answers the user saw completed)
    exactly, takes the cut answer as interrupted, and the database passes its integrity check."""
    replica = start_server(folder / "replica.log", api_key=OPERATOR_KEY, **replica_settings(folder))
    on_replica = f"{replica.url}/api/conversations/replica-1"
    first = {"id": "q1", "role": "user", "content": "Hi", "createdAt": 1, "parentId": None}
    answered = {
        "id": "a1",
        "role": "assistant",
        "content": "Hello!",
        "createdAt": 2,
        "parentId": "q1",
        "status": "done",
    }
    page = {
        "id": "replica-1",
        "title": "Kept",
        "createdAt": 1,
        "updatedAt": 2,
        "params": {},
        "messages": [first, answered],
    }
    second = {
        "id": "q2",
        "role": "user",
        "content": "Tell me a long story.",
        "createdAt": 3,
        "parentId": "a1",
    }
    try:
        # Failed sign-ins are counted across replicas: 3 here and 2 there hold the account back.
        hana, _ = make_user(admin, "hana")
        for n, url in enumerate([server.url] * 3 + [replica.url] * 2):
            wrong = httpx.post(
                f"{url}/auth/login", json={**hana, "password": f"guess {n}"}, timeout=REQUEST_TIMEOUT_S
            )
            assert wrong.status_code == 401
        held = httpx.post(f"{replica.url}/auth/login", json=hana, timeout=REQUEST_TIMEOUT_S)
        assert held.status_code == 429, held.text
        # The same session cookie works on either replica: sessions live in the database.
        assert admin.put(on_replica, json={"conversation": page}).status_code == 201
        assert admin.patch(on_replica, json={"base_version": 1, "messages": [second]}).json()["version"] == 2
        body = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": 500,
            "ignore_eos": True,
            "stream": True,
        }
        with admin.stream("POST", f"{replica.url}/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            seen = [line for _, line in zip(range(8), resp.iter_lines(), strict=False)]
            replica.kill()
        assert replica.proc.returncode == -signal.SIGKILL and any('"content"' in line for line in seen)
    finally:
        replica.stop()
    kept = admin.get("/api/conversations/replica-1")
    assert kept.status_code == 200 and kept.json()["version"] == 2
    assert admin.get("/api/conversations/replica-1/export").json()["messages"] == [first, answered, second]
    cut = {
        "id": "a2",
        "role": "assistant",
        "content": "Once",
        "createdAt": 4,
        "parentId": "q2",
        "status": "interrupted",
    }
    assert (
        admin.patch("/api/conversations/replica-1", json={"base_version": 2, "messages": [cut]}).json()[
            "version"
        ]
        == 3
    )
    database = make_engine(database_url(folder / "data", None))
    try:
        with database.connect() as db:
            assert db.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    finally:
        database.dispose()


def test_no_password_or_key_in_the_log(server: ServerProcess) -> None:
    log = Path(server.log_path).read_text(errors="replace")
    assert "POST /auth/login" in log
    leaked = [secret for secret in SECRETS if secret in log]
    assert leaked == []
