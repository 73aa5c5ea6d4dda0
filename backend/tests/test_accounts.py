"""Accounts against SQLite and a real PostgreSQL: the service (users, sessions, personal keys),
the /auth routes and the guard in-process (header mode from a trusted and an untrusted address),
and migrations run by several processes at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from db_support import FAST
from server_process import BACKEND_DIR, server_env
from sqlalchemy import Engine, inspect, text
from starlette.testclient import TestClient

from app.__main__ import open_to_everyone
from app.accounts.service import AccountError, Accounts
from app.conversations.service import Storage
from app.core.config import Settings
from app.db.engine import make_engine
from app.db.migrate import alembic_config, upgrade
from app.main import create_app


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    return Accounts(engine, timedelta(hours=1), FAST)


def test_first_account_only_by_sign_up_and_names_are_unique(accounts: Accounts, engine: Engine) -> None:
    # What AUTH=none kept belongs to its built-in user, which is nobody's account: after a switch
    # to AUTH=password the first to sign up still becomes admin.
    Storage(engine, quota_bytes=1 << 20).local_user()
    assert accounts.count_users() == 0
    admin = accounts.create_user("  Ann@Example.org ", "correct horse", "admin", only_if_first=True)
    assert (admin.username, admin.role) == ("ann@example.org", "admin")
    with pytest.raises(AccountError) as closed:
        accounts.create_user("bob", "correct horse", "admin", only_if_first=True)
    assert closed.value.status == 403
    with pytest.raises(AccountError) as taken:
        accounts.create_user("ANN@example.org", "another one")
    assert (taken.value.status, taken.value.code) == (409, "username_taken")
    for name, password in (("", "correct horse"), ("bad name", "correct horse"), ("bob", "short")):
        with pytest.raises(AccountError) as bad:
            accounts.create_user(name, password)
        assert bad.value.status == 400
    with accounts.db() as db:
        stored = db.execute(text("SELECT password_hash FROM users WHERE role = 'admin'")).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_sign_in_sessions_rotate_expire_and_die_with_the_account(accounts: Accounts, engine: Engine) -> None:
    admin = accounts.create_user("ann", "correct horse", "admin")
    bob = accounts.create_user("bob", "battery staple")
    assert accounts.authenticate("BOB", "battery staple") == bob
    assert accounts.authenticate("bob", "wrong password") is None
    assert accounts.authenticate("nobody", "battery staple") is None

    first = accounts.start_session(bob.id)
    assert accounts.session_principal(first).username == "bob"  # type: ignore[union-attr]
    second = accounts.start_session(bob.id, replaces=first)
    assert accounts.session_principal(first) is None, "sign-in must replace the old session"
    assert accounts.session_principal(second) is not None
    accounts.end_session(second)
    assert accounts.session_principal(second) is None

    expired = Accounts(engine, timedelta(seconds=-1), FAST)
    stale = expired.start_session(bob.id)
    assert accounts.session_principal(stale) is None

    live = accounts.start_session(bob.id)
    accounts.update_user(bob.id, disabled=True)
    assert accounts.session_principal(live) is None
    with pytest.raises(AccountError) as disabled:
        accounts.authenticate("bob", "battery staple")
    assert disabled.value.status == 403
    accounts.update_user(bob.id, disabled=False, password="new password")
    assert accounts.authenticate("bob", "battery staple") is None
    assert accounts.authenticate("bob", "new password") is not None

    with pytest.raises(AccountError) as last:
        accounts.update_user(admin.id, disabled=True)
    assert last.value.code == "last_admin"
    with pytest.raises(AccountError):
        accounts.delete_user(admin.id)
    with pytest.raises(AccountError) as missing:
        accounts.update_user(999, disabled=True)
    assert missing.value.status == 404


def test_personal_keys_are_hashed_named_revocable_and_die_with_the_account(accounts: Accounts) -> None:
    ann = accounts.create_user("ann", "correct horse", "admin")
    bob = accounts.create_user("bob", "battery staple")
    token, view = accounts.create_key(bob.id, " laptop ")
    assert token.startswith("sk-lc-") and view.name == "laptop" and token.startswith(view.prefix)
    assert view.last_used_at is None
    with accounts.db() as db:
        assert (
            db.execute(text("SELECT count(*) FROM api_keys WHERE key_hash = :t"), {"t": token}).scalar() == 0
        )

    owner = accounts.key_principal(token)
    assert owner is not None and (owner.user_id, owner.via, owner.api_key_id) == (bob.id, "api_key", view.id)
    assert accounts.list_keys(bob.id)[0].last_used_at is not None
    assert accounts.key_principal(token + "x") is None

    with pytest.raises(AccountError) as foreign:
        accounts.revoke_key(ann.id, view.id)
    assert foreign.value.status == 404
    accounts.update_user(bob.id, disabled=True)
    assert accounts.key_principal(token) is None
    accounts.update_user(bob.id, disabled=False)
    accounts.revoke_key(bob.id, view.id)
    assert accounts.key_principal(token) is None and accounts.list_keys(bob.id) == []

    kept, _ = accounts.create_key(bob.id, "agent")
    accounts.start_session(bob.id)
    accounts.delete_user(bob.id)
    assert accounts.key_principal(kept) is None
    with accounts.db() as db:
        for table in ("auth_sessions", "api_keys"):
            assert db.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table


def test_header_accounts_are_made_on_first_sight(accounts: Accounts) -> None:
    first = accounts.header_user("Ann", "ann@example.org")
    again = accounts.header_user("ann", None)
    other = accounts.header_user("bob@example.org", None)
    assert (first.role, other.role) == ("admin", "user")
    assert first.user_id == again.user_id != other.user_id
    assert len(accounts.list_users()) == 2


def test_migrations_run_by_several_replicas_at_once(database_url: str) -> None:
    """Replicas starting together all migrate: each on its own connection (and, for SQLite, its
    own open of the lock file, which flock treats as another process would), released at the
    same moment. Each must finish cleanly, the schema made once."""
    engines = [make_engine(database_url) for _ in range(3)]
    together = threading.Barrier(len(engines))

    def replica(engine: Engine) -> None:
        together.wait()
        upgrade(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            for done in [pool.submit(replica, engine) for engine in engines]:
                done.result(timeout=120)
        tables = set(inspect(engines[0]).get_table_names())
        assert {"users", "auth_sessions", "api_keys", "usage_days", "alembic_version"} <= tables
        with engines[0].connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        # The newest revision, once: no replica ran a migration twice.
        assert versions == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
    finally:
        for engine in engines:
            engine.dispose()


def in_process(
    database_url: str, auth: str, client: str = "127.0.0.1", **settings: object
) -> closing[TestClient]:
    """The real app's middleware and /auth routes over ASGI, from `client`'s address, without
    a model: its start-up does not run, so the API routes answer 503 past the guard."""
    app = create_app(Settings(auth=auth, database_url=database_url, **settings))  # type: ignore[arg-type]
    app.state.gate.accounts.hasher = FAST
    upgrade(app.state.gate.accounts.engine)
    return closing(TestClient(app, client=(client, 50000)))


def test_routes_sign_up_sign_in_keys_and_admin(database_url: str) -> None:
    with in_process(database_url, "password") as http:
        assert http.get("/auth/status").json() == {"auth": "password", "user": None, "signup_open": True}
        assert http.get("/v1/models").status_code == 401
        ann = http.post("/auth/signup", json={"username": "ann", "password": "correct horse"})
        assert ann.status_code == 201 and ann.json()["role"] == "admin"
        assert http.get("/auth/me").json()["username"] == "ann"
        # Signed in, the API routes get past the guard (503: no model in this app).
        assert http.get("/v1/models").status_code == 503
        closed = http.post("/auth/signup", json={"username": "eve", "password": "correct horse"})
        assert closed.status_code == 403 and closed.json()["error"]["code"] == "signup_closed"

        made = http.post("/auth/users", json={"username": "bob", "password": "battery staple"})
        assert made.status_code == 201
        bob_id = made.json()["id"]
        assert (
            http.post("/auth/users", json={"username": "bob", "password": "battery staple"}).status_code
            == 409
        )
        assert http.patch("/auth/users/999", json={"disabled": True}).status_code == 404
        bad = http.post("/auth/users", json={"username": "carl", "password": "x", "rôle": 1})
        assert bad.status_code == 400 and "error" in bad.json()

        key = http.post("/auth/keys", json={"name": "sdk"}).json()
        listed = http.get("/auth/keys").json()
        assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]

        http.post("/auth/logout")
        assert http.get("/auth/me").status_code == 401
        assert (
            http.post("/auth/login", json={"username": "bob", "password": "battery staple"}).status_code
            == 200
        )
        assert http.get("/auth/users").status_code == 403
        change = {"current_password": "not the one", "new_password": "horse battery"}
        assert http.post("/auth/password", json=change).status_code == 403
        change["current_password"] = "battery staple"
        assert http.post("/auth/password", json=change).status_code == 204
        assert http.get("/auth/me").status_code == 200, "the session that changed it goes on"
        assert (
            http.post("/auth/login", json={"username": "bob", "password": "battery staple"}).status_code
            == 401
        )
        assert http.delete(f"/auth/keys/{key['id']}").status_code == 404, "another user's key must not exist"
        assert http.get("/auth/users", headers={"Authorization": f"Bearer {key['key']}"}).status_code == 200
        assert {u["id"] for u in http.get("/auth/users", headers={"x-api-key": key["key"]}).json()} >= {
            bob_id
        }


def test_header_mode_believes_only_trusted_proxies(database_url: str) -> None:
    named = {"X-Forwarded-User": "ann", "X-Forwarded-Email": "ann@example.org"}
    with in_process(database_url, "header", client="10.0.0.9", trusted_proxies=["10.0.0.0/24"]) as proxy:
        me = proxy.get("/auth/me", headers=named)
        assert me.status_code == 200 and me.json()["email"] == "ann@example.org"
        assert proxy.get("/auth/me").status_code == 401
        assert proxy.post("/auth/login", json={"username": "ann", "password": "x" * 8}).status_code == 400
    with in_process(database_url, "header", client="192.0.2.7", trusted_proxies=["10.0.0.0/24"]) as direct:
        assert direct.get("/auth/me", headers=named).status_code == 401
        assert direct.get("/v1/models", headers=named).status_code == 401


def test_sign_in_is_throttled_per_address(tmp_path: Path) -> None:
    """20 failures from one address in 5 minutes close sign-in from it, whatever the account;
    another address is not held back."""
    with in_process(f"sqlite:///{tmp_path / 'a.db'}", "password", client="192.0.2.1") as http:
        http.post("/auth/signup", json={"username": "ann", "password": "correct horse"})
        for n in range(20):
            assert (
                http.post("/auth/login", json={"username": f"u{n}", "password": "guessing"}).status_code
                == 401
            )
        held = http.post("/auth/login", json={"username": "ann", "password": "correct horse"})
        assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
        assert held.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("auth", "api_key", "host", "warned"),
    [
        ("none", "", "0.0.0.0", True),
        ("none", "", "127.0.0.1", False),
        ("none", "k", "0.0.0.0", False),
        ("password", "", "0.0.0.0", False),
    ],
)
def test_listening_on_every_interface_without_protection_is_warned(
    auth: str, api_key: str, host: str, warned: bool
) -> None:
    assert open_to_everyone(Settings(auth=auth, api_key=api_key), host) is warned  # type: ignore[arg-type]


def test_admin_command_creates_and_lists_accounts(tmp_path: Path) -> None:
    """`python -m app.admin create-user NAME --admin` on the server's database (DATA_DIR),
    migrated first."""
    env = server_env(AUTH="password", DATA_DIR=str(tmp_path), DATABASE_URL="")

    def admin(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app.admin", *args]
        return subprocess.run(
            command, cwd=BACKEND_DIR, env=env, input=password, capture_output=True, text=True
        )

    made = admin("create-user", "Root", "--admin", "--password-stdin", password="a long secret\n")
    assert made.returncode == 0 and "created admin 'root'" in made.stdout, made.stderr
    again = admin("create-user", "root", "--password-stdin", password="a long secret\n")
    assert again.returncode == 1 and "taken" in again.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'localchat.db'}")
    try:
        accounts = Accounts(engine, timedelta(hours=1))
        assert [(u.username, u.role) for u in accounts.list_users()] == [("root", "admin")]
        assert accounts.authenticate("root", "a long secret") is not None
    finally:
        engine.dispose()
