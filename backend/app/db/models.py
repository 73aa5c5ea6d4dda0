"""The tables. Every per-person table to come (conversations, messages, presets, documents,
files, usage per day) hangs off `users.id` with ON DELETE CASCADE, as sessions and API keys do
here, so deleting an account deletes what it owns; usage rows also carry `api_keys.id`, which is
why a revoked key keeps its row (revoked_at) instead of disappearing."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC time on every database (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower-cased at the door, so "Ann" and "ann" are one account.
    username: Mapped[str] = mapped_column(String(254), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    # None for accounts made by AUTH=header: they never sign in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    # An admin's per-user limits; None: the defaults (USER_RPM, USER_TOKENS_PER_DAY), 0: none.
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    tokens_per_day_limit: Mapped[int | None] = mapped_column(BigInteger)


class AuthSession(Base):
    """A signed-in browser: the cookie holds a random token, the row only its SHA-256."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ApiKey(Base):
    """A personal API key: shown once, kept as its SHA-256 (a 256-bit random key needs no slow
    hash), with a short prefix so its owner can tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UsageDay(Base):
    """What one user (None: the operator's API_KEY) sent through one key (None: the page's
    session or the SSO proxy) to one model on one UTC day. Replicas add to a row with an upsert
    on `bucket`, which names those four (a unique index over nullable columns would let NULLs
    differ, so it cannot be the conflict target)."""

    __tablename__ = "usage_days"
    # A user's days: the daily token limit's lookup and /auth/me/usage.
    __table_args__ = (Index("ix_usage_days_user_id_day", "user_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(300), unique=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)  # embeddings: input tokens
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
