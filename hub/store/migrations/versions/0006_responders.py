"""Responders and dispatch (issue 18): teams tied to grids, weekly shifts, responders on duty with
their last fix, positions kept a while (purged), dispatches with each step's time, and resolution photos.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teams',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('grids', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_table('responders',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('team', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('consent', sa.Boolean(), nullable=False),
    sa.Column('checked_in', sa.DateTime(), nullable=True),
    sa.Column('last_lat', sa.Float(), nullable=True),
    sa.Column('last_lon', sa.Float(), nullable=True),
    sa.Column('last_accuracy', sa.Float(), nullable=True),
    sa.Column('last_fix_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('username'),
    if_not_exists=True,
    )
    op.create_index('responders_team', 'responders', ['team'], unique=False, if_not_exists=True)
    op.create_table('shifts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('team', sa.String(length=32), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_min', sa.Integer(), nullable=False),
    sa.Column('end_min', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('shifts_team', 'shifts', ['team'], unique=False, if_not_exists=True)
    op.create_table('responder_positions',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('responder_positions_at', 'responder_positions', ['at'], unique=False, if_not_exists=True)
    op.create_index('responder_positions_user_at', 'responder_positions', ['username', 'at'], unique=False,
                    if_not_exists=True)
    op.create_table('dispatches',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('alarm_id', sa.String(length=36), nullable=False),
    sa.Column('responder', sa.String(length=64), nullable=False),
    sa.Column('team', sa.String(length=32), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('offered_at', sa.DateTime(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('declined_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('expired_at', sa.DateTime(), nullable=True),
    sa.Column('on_scene_at', sa.DateTime(), nullable=True),
    sa.Column('scene_lat', sa.Float(), nullable=True),
    sa.Column('scene_lon', sa.Float(), nullable=True),
    sa.Column('scene_distance_m', sa.Float(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('dispatches_alarm', 'dispatches', ['alarm_id'], unique=False, if_not_exists=True)
    op.create_index('dispatches_responder_state', 'dispatches', ['responder', 'state'], unique=False,
                    if_not_exists=True)
    op.create_index('dispatches_state_offered', 'dispatches', ['state', 'offered_at'], unique=False,
                    if_not_exists=True)
    op.create_table('dispatch_photos',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dispatch_id', sa.String(length=32), nullable=False),
    sa.Column('alarm_id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('dispatch_photos_alarm', 'dispatch_photos', ['alarm_id'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('dispatch_photos_alarm', table_name='dispatch_photos')
    op.drop_table('dispatch_photos')
    op.drop_index('dispatches_state_offered', table_name='dispatches')
    op.drop_index('dispatches_responder_state', table_name='dispatches')
    op.drop_index('dispatches_alarm', table_name='dispatches')
    op.drop_table('dispatches')
    op.drop_index('responder_positions_user_at', table_name='responder_positions')
    op.drop_index('responder_positions_at', table_name='responder_positions')
    op.drop_table('responder_positions')
    op.drop_index('shifts_team', table_name='shifts')
    op.drop_table('shifts')
    op.drop_index('responders_team', table_name='responders')
    op.drop_table('responders')
    op.drop_table('teams')
