"""Initial schema: every table the hub had when migrations were introduced.

Runs over an empty database and over one made by the old ``create_all`` (adoption): tables and
indexes that exist are skipped, a missing ``commands.data`` column is added.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alarm_escalations',
    sa.Column('alarm_id', sa.String(length=36), nullable=False),
    sa.Column('escalated_at', sa.DateTime(), nullable=False),
    sa.Column('webhook_status', sa.Integer(), nullable=True),
    sa.Column('webhook_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('alarm_id'),
    if_not_exists=True,
    )
    op.create_table('alarms',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('node_ts', sa.DateTime(), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('acked_at', sa.DateTime(), nullable=True),
    sa.Column('acked_by', sa.String(length=64), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(), nullable=True),
    sa.Column('dispatched_to', sa.String(length=128), nullable=True),
    sa.Column('on_scene_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('node_stage', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('alarms_state', 'alarms', ['state', 'raised_at'], if_not_exists=True)
    op.create_table('audit',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_table('blocks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('grid', sa.String(length=32), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_table('clips',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('jpeg', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'n'),
    if_not_exists=True,
    )
    op.create_table('commands',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('delivery', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('operator', sa.String(length=64), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('replied_at', sa.DateTime(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('commands_delivery', 'commands', ['delivery'], if_not_exists=True)
    op.create_table('doors',
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('block', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('access_version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('node'),
    if_not_exists=True,
    )
    op.create_index('doors_block', 'doors', ['block'], if_not_exists=True)
    op.create_table('enrolments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=32), nullable=False),
    sa.Column('door', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('command_id', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('template_enc', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('enrolments_command', 'enrolments', ['command_id'], if_not_exists=True)
    op.create_index('enrolments_door', 'enrolments', ['door'], if_not_exists=True)
    op.create_index('enrolments_tenant', 'enrolments', ['tenant'], if_not_exists=True)
    op.create_table('events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('snapshot', sa.Boolean(), nullable=False),
    sa.Column('delayed', sa.Boolean(), nullable=False),
    sa.Column('clock_synced', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('events_node_received', 'events', ['node', 'received_at'], if_not_exists=True)
    op.create_index('events_received', 'events', ['received_at'], if_not_exists=True)
    op.create_table('node_credentials',
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('mqtt_user', sa.String(length=64), nullable=False),
    sa.Column('mqtt_hash', sa.Text(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('node'),
    if_not_exists=True,
    )
    op.create_table('nodes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('grid', sa.String(length=32), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('key_enc', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=True),
    sa.Column('last_seen', sa.DateTime(), nullable=True),
    sa.Column('heartbeat', sa.JSON(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_table('quarantine',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('topic', sa.String(length=256), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.String(length=256), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_table('report_door_daily',
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tz', 'day', 'node', 'kind'),
    if_not_exists=True,
    )
    op.create_table('report_rolled_days',
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('rolled_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tz', 'day'),
    if_not_exists=True,
    )
    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('token_hash'),
    if_not_exists=True,
    )
    op.create_index('sessions_username', 'sessions', ['username'], if_not_exists=True)
    op.create_table('snapshots',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('jpeg', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    if_not_exists=True,
    )
    op.create_table('tenants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('block', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('lease_start', sa.DateTime(), nullable=False),
    sa.Column('lease_end', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('tenants_block', 'tenants', ['block'], if_not_exists=True)
    op.create_table('units',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('block', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('units_block', 'units', ['block'], if_not_exists=True)
    op.create_table('users',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('username'),
    if_not_exists=True,
    )
    _adopt_pre_migration_columns()


def _adopt_pre_migration_columns() -> None:
    """A database made by create_all before ``commands.data`` existed gets the column (tables it already had
    were skipped above by ``if_not_exists``)."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("commands")}
    if "data" not in columns:
        op.add_column("commands", sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_table('users')
    op.drop_index('units_block', table_name='units')
    op.drop_table('units')
    op.drop_index('tenants_block', table_name='tenants')
    op.drop_table('tenants')
    op.drop_table('snapshots')
    op.drop_index('sessions_username', table_name='sessions')
    op.drop_table('sessions')
    op.drop_table('report_rolled_days')
    op.drop_table('report_door_daily')
    op.drop_table('quarantine')
    op.drop_table('nodes')
    op.drop_table('node_credentials')
    op.drop_index('events_received', table_name='events')
    op.drop_index('events_node_received', table_name='events')
    op.drop_table('events')
    op.drop_index('enrolments_tenant', table_name='enrolments')
    op.drop_index('enrolments_door', table_name='enrolments')
    op.drop_index('enrolments_command', table_name='enrolments')
    op.drop_table('enrolments')
    op.drop_index('doors_block', table_name='doors')
    op.drop_table('doors')
    op.drop_index('commands_delivery', table_name='commands')
    op.drop_table('commands')
    op.drop_table('clips')
    op.drop_table('blocks')
    op.drop_table('audit')
    op.drop_index('alarms_state', table_name='alarms')
    op.drop_table('alarms')
    op.drop_table('alarm_escalations')
