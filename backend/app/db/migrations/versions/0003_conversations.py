"""What each person keeps on the server: conversations and their messages, presets, files, and
documents with their chunks' embeddings, and per user the sync counter and bytes kept.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.models import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def user_column(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "user_id",
        sa.Integer(),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "user_storage",
        user_column(primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("bytes_used", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("pk", sa.Integer(), primary_key=True),
        user_column(),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("folder", sa.String(200)),
        sa.Column("pinned", sa.Boolean()),
        sa.Column("archived", sa.Boolean()),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", UtcDateTime()),
        sa.UniqueConstraint("user_id", "id", name="uq_conversations_user_id_id"),
    )
    op.create_index("ix_conversations_user_id_seq", "conversations", ["user_id", "seq"])
    op.create_table(
        "messages",
        sa.Column(
            "conversation_pk",
            sa.Integer(),
            sa.ForeignKey("conversations.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(128)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text()),
        sa.Column("tool_calls", sa.JSON()),
        sa.Column("attachments", sa.JSON()),
        sa.Column("status", sa.String(16)),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "presets",
        user_column(primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "files",
        user_column(primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "documents",
        user_column(primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "document_chunks",
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.String(128), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        sa.ForeignKeyConstraint(
            ["user_id", "document_id"], ["documents.user_id", "documents.id"], ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    for table in ("document_chunks", "documents", "files", "presets", "messages", "conversations"):
        op.drop_table(table)
    op.drop_table("user_storage")
