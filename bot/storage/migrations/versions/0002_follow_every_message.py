"""Guild setting: in a thread started from a bot answer, answer every message (not only mentions).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default fills the rows of servers configured before this revision: off, as before.
    with op.batch_alter_table("guild_settings") as batch:
        batch.add_column(
            sa.Column("answer_every_thread_message", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_column("answer_every_thread_message")
