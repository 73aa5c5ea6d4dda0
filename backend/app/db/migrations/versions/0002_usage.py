"""Usage per user, API key, model and UTC day; per-user limits set by an admin.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bucket", sa.String(300), nullable=False, unique=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="CASCADE")),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_usage_days_day", "usage_days", ["day"])
    op.create_index("ix_usage_days_user_id_day", "usage_days", ["user_id", "day"])
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("rpm_limit", sa.Integer()))
        users.add_column(sa.Column("tokens_per_day_limit", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.drop_column("tokens_per_day_limit")
        users.drop_column("rpm_limit")
    op.drop_table("usage_days")
