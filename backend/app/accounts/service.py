"""Users, sessions and personal API keys on the database. Every method is one short
transaction, synchronous: the HTTP side calls them in a thread."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..core.errors import Refusal
from ..db.models import LOCAL_USERNAME, ApiKey, AuthSession, User, now

Role = Literal["admin", "user"]
LimitName = Literal["rpm_limit", "tokens_per_day_limit"]
KEY_PREFIX = "sk-lc-"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 takes any length; this only bounds the work one request can ask for
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,253}$")


class AccountError(Refusal):
    """A request the accounts cannot honour."""


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    email: str | None
    role: str
    disabled: bool
    created_at: datetime
    rpm_limit: int | None  # None: USER_RPM
    tokens_per_day_limit: int | None  # None: USER_TOKENS_PER_DAY

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            user.id,
            user.username,
            user.email,
            user.role,
            user.disabled,
            user.created_at,
            user.rpm_limit,
            user.tokens_per_day_limit,
        )


@dataclass(frozen=True)
class KeyView:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who sent a request, and how they proved it."""

    user_id: int | None  # None: the operator's shared API_KEY
    username: str
    role: str
    via: Literal["session", "api_key", "header", "operator"]
    api_key_id: int | None = None
    # An admin's limits for this account (None: the defaults).
    rpm_limit: int | None = None
    tokens_per_day_limit: int | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_username(name: str) -> str:
    username = name.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            400,
            "A username is 1 to 254 characters: letters, digits and . _ @ + - (an email address works).",
            "invalid_username",
            "username",
        )
    return username


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(
            400,
            f"A password is {MIN_PASSWORD} to {MAX_PASSWORD} characters long.",
            "invalid_password",
            "password",
        )


class Accounts:
    def __init__(self, engine: Engine, session_ttl: timedelta, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self.session_ttl = session_ttl
        self.db = sessionmaker(engine, expire_on_commit=False)
        # Argon2id with RFC 9106's low-memory profile (64 MiB, 3 passes) unless told otherwise.
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def dummy_hash(self) -> str:
        """Verified against when the account does not exist, so a miss costs as long as a hit
        and the timing does not tell which usernames exist."""
        return self.hasher.hash(secrets.token_hex(16))

    # Users

    @staticmethod
    def _people() -> Select[tuple[int]]:
        """How many accounts people hold: AUTH=none's own user is not one (the first to sign
        up after switching to AUTH=password still becomes admin)."""
        return select(func.count()).select_from(User).where(User.username != LOCAL_USERNAME)

    def count_users(self) -> int:
        with self.db() as db:
            return db.scalar(self._people()) or 0

    def create_user(
        self,
        username: str,
        password: str | None,
        role: Role = "user",
        email: str | None = None,
        only_if_first: bool = False,
    ) -> UserView:
        """A new account; with `only_if_first`, only while there is none (the first admin's
        sign-up), checked in the same transaction as the insert."""
        name = normal_username(username)
        if password is not None:
            check_password(password)
        hashed = self.hasher.hash(password) if password is not None else None
        with self.db.begin() as db:
            if only_if_first:
                self._lock_users(db)
                if db.scalar(self._people()):
                    raise AccountError(
                        403, "Sign-up is closed: an administrator creates accounts.", "signup_closed"
                    )
            user = User(username=name, email=email, password_hash=hashed, role=role, disabled=False)
            db.add(user)
            try:
                db.flush()
            except IntegrityError:
                raise AccountError(
                    409, f"The username '{name}' is taken; choose another.", "username_taken", "username"
                ) from None
            return UserView.of(user)

    def _lock_users(self, db: Session) -> None:
        """Serialises first-account sign-ups: two at once must not both become admin."""
        if self.engine.dialect.name == "postgresql":
            db.execute(select(func.pg_advisory_xact_lock(0x6C6F636163636E74)))
        else:
            # A write takes SQLite's database lock now instead of at the insert.
            db.execute(update(User).where(User.id == -1).values(role="user"))

    def list_users(self) -> list[UserView]:
        with self.db() as db:
            return [UserView.of(u) for u in db.scalars(select(User).order_by(User.id))]

    def get_user(self, user_id: int) -> UserView:
        with self.db() as db:
            return UserView.of(self._user(db, user_id))

    def _user(self, db: Session, user_id: int) -> User:
        user = db.get(User, user_id)
        if user is None:
            raise AccountError(
                404, f"No user with id {user_id}; GET /auth/users lists them.", "user_not_found"
            )
        return user

    def update_user(
        self,
        user_id: int,
        *,
        disabled: bool | None = None,
        role: Role | None = None,
        password: str | None = None,
        limits: Mapping[LimitName, int | None] | None = None,
    ) -> UserView:
        """An admin's change. Disabling an account or resetting its password ends its sessions.
        `limits`: the account's own limits to set (None: back to the default)."""
        if password is not None:
            check_password(password)
        hashed = self.hasher.hash(password) if password is not None else None
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if (disabled or role == "user") and user.role == "admin" and not user.disabled:
                self._keep_an_admin(db, user_id)
            if disabled is not None:
                user.disabled = disabled
            if role is not None:
                user.role = role
            if hashed is not None:
                user.password_hash = hashed
            for name, value in (limits or {}).items():
                setattr(user, name, value)
            if disabled or hashed is not None:
                db.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
            return UserView.of(user)

    def change_password(self, user_id: int, current: str, new: str) -> None:
        """The user's own change: needs the current password; ends their other sessions."""
        check_password(new)
        with self.db() as db:
            user = self._user(db, user_id)
            if not self._verify(user.password_hash, current):
                raise AccountError(
                    403, "The current password is wrong.", "wrong_password", "current_password"
                )
        self.update_user(user_id, password=new)

    def delete_user(self, user_id: int) -> None:
        with self.db.begin() as db:
            user = self._user(db, user_id)
            if user.role == "admin" and not user.disabled:
                self._keep_an_admin(db, user_id)
            db.delete(user)

    def _keep_an_admin(self, db: Session, leaving: int) -> None:
        others = db.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.disabled.is_(False), User.id != leaving)
        )
        if not others:
            raise AccountError(
                409, "This is the last active admin; make another user admin first.", "last_admin"
            )

    def _verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(hashed or self.dummy_hash, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    def authenticate(self, username: str, password: str) -> UserView | None:
        """The account these credentials open (None: wrong username or password). A disabled
        account is refused only after the password matched, so the answer tells nothing to
        someone who does not know it."""
        name = username.strip().lower()
        with self.db() as db:
            user = db.scalar(select(User).where(User.username == name))
            if not self._verify(user.password_hash if user else None, password) or user is None:
                return None
            if user.disabled:
                raise AccountError(403, "This account is disabled; ask an administrator.", "account_disabled")
            if user.password_hash and self.hasher.check_needs_rehash(user.password_hash):
                with self.db.begin() as rehash:
                    rehash.execute(
                        update(User)
                        .where(User.id == user.id)
                        .values(password_hash=self.hasher.hash(password))
                    )
            return UserView.of(user)

    def header_user(self, username: str, email: str | None) -> Principal:
        """AUTH=header: the account the proxy names, made on first sight (the very first one
        becomes admin, as with passwords)."""
        name = normal_username(username)
        with self.db() as db:
            user = db.scalar(select(User).where(User.username == name))
        if user is None:
            try:
                view = self.create_user(name, None, "admin", email, only_if_first=True)
            except AccountError as exc:
                if exc.code != "signup_closed":
                    raise
                try:
                    view = self.create_user(name, None, "user", email)
                except AccountError as taken:  # made by a concurrent request
                    if taken.code != "username_taken":
                        raise
                    return self.header_user(name, email)
            return Principal(view.id, view.username, view.role, "header")
        if user.disabled:
            raise AccountError(403, "This account is disabled; ask an administrator.", "account_disabled")
        return Principal(
            user.id,
            user.username,
            user.role,
            "header",
            rpm_limit=user.rpm_limit,
            tokens_per_day_limit=user.tokens_per_day_limit,
        )

    # Sessions

    def start_session(self, user_id: int, replaces: str | None = None) -> str:
        """A new session token (a fresh one at every sign-in, so a token planted before sign-in
        is worth nothing after it); `replaces`, the browser's old token, is ended."""
        token = secrets.token_urlsafe(32)
        expires = now() + self.session_ttl
        with self.db.begin() as db:
            if replaces:
                db.execute(delete(AuthSession).where(AuthSession.token_hash == digest(replaces)))
            # Expired rows of anyone go too: sign-ins are rare enough to carry the cleaning.
            db.execute(delete(AuthSession).where(AuthSession.expires_at < now()))
            db.add(AuthSession(token_hash=digest(token), user_id=user_id, expires_at=expires))
        return token

    def end_session(self, token: str) -> None:
        with self.db.begin() as db:
            db.execute(delete(AuthSession).where(AuthSession.token_hash == digest(token)))

    def session_principal(self, token: str) -> Principal | None:
        with self.db() as db:
            row = db.execute(
                select(User.id, User.username, User.role, User.rpm_limit, User.tokens_per_day_limit)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(
                    AuthSession.token_hash == digest(token),
                    AuthSession.expires_at > now(),
                    User.disabled.is_(False),
                )
            ).first()
        if row is None:
            return None
        return Principal(
            row.id,
            row.username,
            row.role,
            "session",
            rpm_limit=row.rpm_limit,
            tokens_per_day_limit=row.tokens_per_day_limit,
        )

    # Personal API keys

    def create_key(self, user_id: int, name: str) -> tuple[str, KeyView]:
        """A new key: the token is returned now and never again."""
        label = name.strip()
        if not 1 <= len(label) <= 100:
            raise AccountError(400, "Give the key a name of 1 to 100 characters.", "invalid_name", "name")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(user_id=user_id, name=label, prefix=token[:12], key_hash=digest(token))
        with self.db.begin() as db:
            db.add(key)
        return token, self._key_view(key)

    @staticmethod
    def _key_view(key: ApiKey) -> KeyView:
        return KeyView(key.id, key.name, key.prefix, key.created_at, key.last_used_at)

    def list_keys(self, user_id: int) -> list[KeyView]:
        with self.db() as db:
            keys = db.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.id)
            )
            return [self._key_view(k) for k in keys]

    def revoke_key(self, user_id: int, key_id: int) -> None:
        """Revokes one of the user's own keys; another user's key is 'not found', as if absent."""
        with self.db.begin() as db:
            done = db.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                raise AccountError(404, f"You have no API key with id {key_id}.", "key_not_found")

    def key_principal(self, token: str) -> Principal | None:
        """The owner of a live key, marking it used now."""
        with self.db.begin() as db:
            row = db.execute(
                select(
                    ApiKey.id,
                    User.id.label("user_id"),
                    User.username,
                    User.role,
                    User.rpm_limit,
                    User.tokens_per_day_limit,
                )
                .join(User, ApiKey.user_id == User.id)
                .where(
                    ApiKey.key_hash == digest(token), ApiKey.revoked_at.is_(None), User.disabled.is_(False)
                )
            ).first()
            if row is None:
                return None
            db.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now()))
        return Principal(
            row.user_id,
            row.username,
            row.role,
            "api_key",
            row.id,
            row.rpm_limit,
            row.tokens_per_day_limit,
        )
