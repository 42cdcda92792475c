"""Each entry keeps its CloudEvent's attributes as JSON, derived from the record's headers at
ingest, so that export and a page of the trail write them without decoding the headers again.
Entries stored before this revision have none: readers derive them from the record (the chained
bytes), and verification checks the column wherever it is set.

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
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("audit_entries")}
    if "attributes" not in present:
        op.add_column("audit_entries", sa.Column("attributes", sa.LargeBinary()))


def downgrade() -> None:
    raise NotImplementedError("the trail is append-only: its store is never taken back to an earlier schema")
