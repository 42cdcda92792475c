"""The audit store as the first migration finds it: made where there is none, and completed
where a store made before the migrations lacks a part (the checkpoints' publication, root and
note columns; the (column, seq) filter indexes in place of single-column ones).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FILTERED = ("event_type", "task_id", "actor", "actordept", "event_id")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary()),
        sa.Column("value", sa.LargeBinary()),
        sa.Column("headers", sa.LargeBinary(), nullable=False),
        sa.Column("event_id", sa.String(200)),
        sa.Column("event_type", sa.String(200)),
        sa.Column("subject", sa.String(200)),
        sa.Column("task_id", sa.String(200)),
        sa.Column("actor", sa.String(200)),
        sa.Column("actordept", sa.String(32)),
        sa.Column("event_time", sa.String(40)),
        sa.Column("decode_error", sa.Text()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_audit_position"),
        if_not_exists=True,
    )
    op.create_index("ix_audit_entries_event_time", "audit_entries", ["event_time"], if_not_exists=True)
    op.create_table(
        "audit_offsets",
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("root_hash", sa.String(64)),
        sa.Column("note", sa.Text()),
        if_not_exists=True,
    )
    op.create_table(
        "audit_tree",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_verifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("verified_at", sa.String(40), nullable=False),
        sa.Column("by_user", sa.String(200), nullable=False),
        sa.Column("by_department", sa.String(32), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("checkpoints", sa.Integer(), nullable=False),
        sa.Column("against_log", sa.Boolean(), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_refused",
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("offset", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary()),
        sa.Column("value", sa.LargeBinary()),
        sa.Column("headers", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.String(40), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_task_access",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("department", sa.String(32), primary_key=True),
        if_not_exists=True,
    )
    _checkpoint_columns()
    for name in FILTERED:
        op.drop_index(f"ix_audit_entries_{name}", table_name="audit_entries", if_exists=True)
        op.create_index(f"ix_audit_entries_{name}_seq", "audit_entries", [name, "seq"], if_not_exists=True)


def _checkpoint_columns() -> None:
    """Stores made before checkpoints were marked on publication (they are published once more:
    a repeated checkpoint event is harmless, a missing one is not), or before the tree. SQLite
    has no ADD COLUMN IF NOT EXISTS: the columns present are looked up."""
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("audit_checkpoints")}
    if "published" not in present:
        op.add_column(
            "audit_checkpoints", sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    if "root_hash" not in present:
        op.add_column("audit_checkpoints", sa.Column("root_hash", sa.String(64)))
    if "note" not in present:
        op.add_column("audit_checkpoints", sa.Column("note", sa.Text()))


def downgrade() -> None:
    raise NotImplementedError("the trail is append-only: its store is never taken back to an earlier schema")
