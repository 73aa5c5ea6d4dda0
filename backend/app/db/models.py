"""The tables. Every per-person table to come (conversations, messages, presets, documents,
files, usage per day) hangs off `users.id` with ON DELETE CASCADE, as sessions and API keys do
here, so deleting an account deletes what it owns; usage rows also carry `api_keys.id`, which is
why a revoked key keeps its row (revoked_at) instead of disappearing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
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


# The one user of AUTH=none, made when it first stores something (app/conversations); not a person
# who signed up, so it never closes sign-up. No real username has parentheses.
LOCAL_USERNAME = "(local)"


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


class SignInFailure(Base):
    """A failed sign-in, kept for the throttle's window (accounts/throttle.py): in the database,
    so every replica counts the same failures."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300))  # "account:<name>" or "address:<ip>"
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)


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


# What each person keeps on the server (app/conversations): conversations as the page shapes
# them, presets, uploaded files and documents' text with chunk embeddings. Ids of conversations,
# messages, presets, files and documents are the client's (the page makes them offline), unique
# per user, so two accounts importing the same export never collide.


class UserStorage(Base):
    """Per user: the change counter that orders their writes (the sync cursor) and the bytes
    they keep (the quota). Every write updates this row first, which also serialises one
    user's writes on PostgreSQL, so cursors are handed out in commit order."""

    __tablename__ = "user_storage"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0)


class StoredConversation(Base):
    """A conversation; `settings` holds the page's other fields (system prompt, parameters,
    model, current message, tools…) as it sent them. A deleted one stays as a tombstone
    (deleted_at set, messages gone) so other devices learn of the deletion when they sync."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("user_id", "id", name="uq_conversations_user_id_id"),
        Index("ix_conversations_user_id_seq", "user_id", "seq"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str | None] = mapped_column(String(200))
    pinned: Mapped[bool | None] = mapped_column(Boolean)
    archived: Mapped[bool | None] = mapped_column(Boolean)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The page's createdAt/updatedAt (milliseconds since 1970, its clock).
    created_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StoredMessage(Base):
    """A message of a conversation's tree (parent_id: the message it follows, None: the first);
    `extra` holds the page's other fields (error, metrics, model, finish reason, passages…)."""

    __tablename__ = "messages"

    conversation_pk: Mapped[int] = mapped_column(
        ForeignKey("conversations.pk", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    reasoning: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)
    attachments: Mapped[list[Any] | None] = mapped_column(JSON)
    status: Mapped[str | None] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The conversation's version when this message was last written: a device's edit of a
    # message changed since the version it read is a conflict, kept as a sibling branch.
    version: Mapped[int] = mapped_column(Integer, default=1)


class Preset(Base):
    """A saved prompt or set of chat settings, as the page shapes it."""

    __tablename__ = "presets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class StoredFile(Base):
    """An uploaded file, its bytes in the database (counted against the user's quota)."""

    __tablename__ = "files"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Document(Base):
    """A document's extracted text; its chunks carry their embeddings, so retrieval works on
    any device the user signs in from."""

    __tablename__ = "documents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    # The embedding model the chunks were embedded with: vectors of two models never mix.
    model: Mapped[str | None] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class DocumentChunk(Base):
    """One passage of a document and its embedding (float32, little-endian)."""

    __tablename__ = "document_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "document_id"], ["documents.user_id", "documents.id"], ondelete="CASCADE"
        ),
    )

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
