"""One phone book: a responder's mobile number lives only in ``notify_contacts`` (where the robots' @-mentions
and SMS read it), not also in ``responders.phone``, so the two can no longer disagree. Numbers kept in
``responders.phone`` move to ``notify_contacts`` when that has none for the person.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    have = {c["name"] for c in sa.inspect(bind).get_columns("responders")}
    if "phone" not in have:  # 0001 made the tables from today's schema: nothing to move
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    listed = {r[0] for r in bind.execute(sa.text("SELECT username FROM notify_contacts"))}
    for username, phone in bind.execute(sa.text("SELECT username, phone FROM responders WHERE phone <> ''")).all():
        if username not in listed:
            bind.execute(sa.text("INSERT INTO notify_contacts (username, phone, updated) VALUES (:u, :p, :t)"),
                         {"u": username, "p": phone, "t": now})
    with op.batch_alter_table("responders") as batch:
        batch.drop_column("phone")


def downgrade() -> None:
    with op.batch_alter_table("responders") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=False, server_default=""))
    bind = op.get_bind()
    for username, phone in bind.execute(sa.text("SELECT username, phone FROM notify_contacts")).all():
        bind.execute(sa.text("UPDATE responders SET phone = :p WHERE username = :u"), {"u": username, "p": phone or ""})
