"""The hub's one schema: every table, in one place. Alembic (store/migrations) is its only authority:
a table changes here and in a new revision, never by ``create_all`` at run time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()
# Sequence keys of the big append-only tables: BIGINT on PostgreSQL (a city passes 2^31 events),
# INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the rowid.
BigSeq = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored naive in UTC (SQLite has no zones), always returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


nodes = Table(
    "nodes", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False, default="alarm_post"),
    Column("place", String(200), nullable=False, default=""),
    Column("grid", String(32), nullable=False, default=""),
    Column("lat", Float), Column("lon", Float),
    Column("key_enc", Text),  # command-signing key, Fernet-encrypted
    Column("state", String(16), nullable=False, default="unknown"),
    Column("version", String(32)),
    Column("last_seen", UTCDateTime()),
    Column("heartbeat", JSON),
    Column("created", UTCDateTime(), nullable=False),
)

events = Table(
    "events", metadata,
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("node", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),  # the node's clock
    Column("received_at", UTCDateTime(), nullable=False),  # the hub's clock
    Column("data", JSON, nullable=False),
    Column("snapshot", Boolean, nullable=False, default=False),
    Column("delayed", Boolean, nullable=False, default=False),
    Column("clock_synced", Boolean),
    # PostgreSQL only (server defaults, migration 0005): the inserting transaction and the oldest one still
    # running then, so a replay after a cursor also finds events that committed late (hub/live/replay.py)
    Column("xact", BigInteger), Column("horizon", BigInteger),
    Index("events_node_received", "node", "received_at"),
    Index("events_received", "received_at"),
)

snapshots = Table(
    "snapshots", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("node", String(64), nullable=False),
    Column("jpeg", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

clips = Table(
    "clips", metadata,  # an alarm's pre-press burst, one JPEG per frame
    Column("event_id", String(36), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("node", String(64), nullable=False),
    Column("jpeg", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

alarms = Table(
    "alarms", metadata,
    Column("id", String(36), primary_key=True),  # = the event id that raised it
    Column("node", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("state", String(16), nullable=False, default="open"),
    Column("count", Integer, nullable=False, default=1),
    Column("node_ts", UTCDateTime(), nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("acked_at", UTCDateTime()), Column("acked_by", String(64)),
    Column("dispatched_at", UTCDateTime()), Column("dispatched_to", String(128)),
    Column("on_scene_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()), Column("resolved_by", String(64)),
    Column("outcome", String(32)), Column("note", Text),
    Column("node_stage", String(16)),  # the last stage the node confirmed showing
    Column("last_press_at", UTCDateTime()),  # the latest further press folded into it (alarm.repeat)
    # a node.offline that is part of a nodes.offline incident (its id): worked, listed and escalated as
    # that one incident, still counted in the node's own downtime
    Column("incident", String(36)),
    Index("alarms_state", "state", "raised_at"),
    Index("alarms_incident", "incident"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("node", String(64)),
    Column("topic", String(256), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", String(256), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

commands = Table(
    "commands", metadata,
    Column("id", String(64), primary_key=True),  # one row per signed attempt
    Column("delivery", String(64), nullable=False),  # the logical command its attempts share
    Column("node", String(64), nullable=False),
    Column("name", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("operator", String(64)),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("replied_at", UTCDateTime()),
    Column("ok", Boolean),
    Column("detail", Text),
    Column("data", JSON),  # the reply's data (a door's enrolment: slot; templates are moved out of it)
    Index("commands_delivery", "delivery"),
)

audit = Table(
    "audit", metadata,
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("detail", JSON),
)


# --- rental blocks (issue #4) -----------------------------------------------------------------
blocks = Table(
    "blocks", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("address", String(200), nullable=False, default=""),
    Column("grid", String(32), nullable=False, default=""),
    Column("created", UTCDateTime(), nullable=False),
)

units = Table(
    "units", metadata,
    Column("id", String(64), primary_key=True),  # e.g. "b01-302"
    Column("block", String(64), nullable=False),
    Column("name", String(64), nullable=False),  # as on the door: "302"
    Index("units_block", "block"),
)

doors = Table(
    "doors", metadata,
    Column("node", String(64), primary_key=True),  # a node of kind rental_door
    Column("block", String(64), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("access_version", Integer, nullable=False, default=0),
    Column("created", UTCDateTime(), nullable=False),
    Index("doors_block", "block"),
)

tenants = Table(
    "tenants", metadata,  # real-name registration (实名登记)
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("id_number", String(32)),  # optional; shown masked
    Column("phone", String(32), nullable=False),
    Column("block", String(64), nullable=False),
    Column("unit", String(64), nullable=False, default=""),
    Column("lease_start", UTCDateTime(), nullable=False),
    Column("lease_end", UTCDateTime(), nullable=False),
    Column("state", String(16), nullable=False, default="active"),  # active | revoked
    Column("created", UTCDateTime(), nullable=False),
    Column("source", String(64)),  # "form" | "import:<file name>" (the community office)
    Column("renewed_at", UTCDateTime()),  # the last lease renewal
    Index("tenants_block", "block"),
    Index("tenants_unit", "block", "unit"),  # the same person twice in a unit is refused
    Index("tenants_lease_end", "lease_end"),  # leases ending in the next 7/30 days
)

enrolments = Table(
    "enrolments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(32), nullable=False),
    Column("door", String(64), nullable=False),
    Column("slot", Integer),
    # pending → enrolled | failed; revoking → revoked
    Column("state", String(16), nullable=False, default="pending"),
    Column("command_id", String(64)),
    Column("source", String(16), nullable=False, default="scan"),  # scan | sync (template from another door)
    Column("template_enc", Text),  # ciphertext under the block key; dropped on revoke
    Column("detail", Text),
    Column("updated", UTCDateTime(), nullable=False),
    Index("enrolments_tenant", "tenant"),
    Index("enrolments_door", "door"),
    Index("enrolments_command", "command_id"),
)




users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", UTCDateTime(), nullable=False),
)


sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the bearer token / cookie
    Column("username", String(64), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ip", String(64)),
    Index("sessions_username", "username"),
)


login_failures = Table(
    "login_failures", metadata,  # one row per failed (or in-flight) login, purged after the window
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),  # lower-cased, as typed (may be no user)
    Column("ip", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("login_failures_ip_at", "ip", "at"),
    Index("login_failures_at", "at"),
)


credentials = Table(
    "node_credentials", metadata,
    Column("node", String(64), primary_key=True),
    Column("mqtt_user", String(64), nullable=False),
    Column("mqtt_hash", Text, nullable=False),  # mosquitto $7$ PBKDF2-SHA512 hash, never the password
    Column("revoked", Boolean, nullable=False, default=False),
    Column("issued_at", UTCDateTime(), nullable=False),
)


node_certs = Table(
    "node_certs", metadata,  # client certificates from the hub's CA (nodes added with --auth cert)
    Column("serial", String(64), primary_key=True),  # decimal; the key itself only ever went into the bundle
    Column("node", String(64), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("issued_at", UTCDateTime(), nullable=False),
)


escalations = Table(
    "alarm_escalations", metadata,
    Column("alarm_id", String(36), primary_key=True),
    Column("escalated_at", UTCDateTime(), nullable=False),
    Column("webhook_status", Integer),  # HTTP status of the webhook call, None if none/failed
    Column("webhook_error", Text),
)


door_daily = Table(
    "report_door_daily", metadata,
    Column("tz", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in that zone
    Column("node", String(64), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("n", Integer, nullable=False),
)


rolled_days = Table(
    "report_rolled_days", metadata,
    Column("tz", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("rolled_at", UTCDateTime(), nullable=False),
)


live_sessions = Table(
    "live_sessions", metadata,
    Column("id", String(64), primary_key=True),  # the session id the node knows too
    Column("node", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # live | talk | mjpeg | gb28181
    Column("started", UTCDateTime(), nullable=False),
    Column("ended", UTCDateTime()),
    Column("duration_s", Float),
    Column("end_reason", String(200)),
    Index("live_sessions_node_started", "node", "started"),
    Index("live_sessions_open", "ended"),
)


# --- notify: reaching a phone whose page is closed (issue 18, hub/notify) ------------------------------
notify_deliveries = Table(
    "notify_deliveries", metadata,  # one row per recipient per channel tried: the operator's record
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("notice", String(36), nullable=False),  # the notice's id (one notify() call)
    Column("alarm", String(36)),  # the alarm it is about, if any
    Column("recipient", String(64), nullable=False),  # a username
    Column("channel", String(16), nullable=False),  # webpush | wecom | dingtalk | sms
    Column("attempt", Integer, nullable=False),  # 1 = the first channel tried for this recipient
    Column("status", String(8), nullable=False),  # sent | failed | skipped
    Column("why", Text),  # failed/skipped: the reason, in words
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Index("notify_deliveries_alarm", "alarm"),
    Index("notify_deliveries_notice", "notice"),
)

push_subscriptions = Table(
    "push_subscriptions", metadata,  # a browser's Web Push subscription, per user (several browsers each)
    Column("endpoint", String(1024), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("user_agent", String(200)),
    Column("created", UTCDateTime(), nullable=False),
    Column("last_ok", UTCDateTime()),
    Index("push_subscriptions_username", "username"),
)

notify_contacts = Table(
    "notify_contacts", metadata,  # how the robots @-mention someone and where an SMS goes
    Column("username", String(64), primary_key=True),
    Column("phone", String(32)),  # E.164 or a mainland mobile number
    Column("updated", UTCDateTime(), nullable=False),
)


# --- patrols: QR check-ins at the poles (issue 18, hub/patrols) --------------------------------------
patrol_checkins = Table(
    "patrol_checkins", metadata,
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("node", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),  # the hub's clock
    Column("lat", Float), Column("lon", Float), Column("accuracy_m", Float),  # the phone's, if it gave one
    Column("distance_m", Float),  # from the pole's stored position, when both are known
    Column("token_key", String(16), nullable=False),  # the signing key's id (rotation)
    Column("token_issued", UTCDateTime(), nullable=False),
    Index("patrol_checkins_node_at", "node", "at"),
    Index("patrol_checkins_at", "at"),
)


# --- responders and dispatch (issue 18; hub/responders) -------------------------------------------
teams = Table(
    "teams", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # grid_staff | volunteer | patrol | police_room
    Column("grids", JSON, nullable=False),  # the grids it covers, e.g. ["G01", "G02"]
)

responders = Table(
    "responders", metadata,
    Column("username", String(64), primary_key=True),  # its login (users, role responder)
    Column("name", String(100), nullable=False),
    Column("team", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    # the phone number is in notify_contacts (one phone book for robots, SMS and the roster)
    Column("consent", Boolean, nullable=False, default=False),  # agreed to share position while on duty
    Column("checked_in", UTCDateTime()),  # checked in from the phone (None: off duty)
    Column("last_lat", Float), Column("last_lon", Float), Column("last_accuracy", Float),
    Column("last_fix_at", UTCDateTime()),
    Index("responders_team", "team"),
)

shifts = Table(
    "shifts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team", String(32), nullable=False),
    Column("weekday", Integer, nullable=False),  # 0 = Monday, in the district's time zone
    Column("start_min", Integer, nullable=False),  # minutes after midnight; end < start runs past midnight
    Column("end_min", Integer, nullable=False),
    Index("shifts_team", "team"),
)

positions = Table(
    "responder_positions", metadata,
    Column("seq", BigSeq, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("lat", Float, nullable=False), Column("lon", Float, nullable=False),
    Column("accuracy", Float),
    Index("responder_positions_user_at", "username", "at"),
    Index("responder_positions_at", "at"),
)

dispatches = Table(
    "dispatches", metadata,
    Column("id", String(32), primary_key=True),
    Column("alarm_id", String(36), nullable=False),
    Column("responder", String(64), nullable=False),
    Column("team", String(32), nullable=False),
    Column("by", String(64), nullable=False),  # the operator, or "auto"
    Column("state", String(16), nullable=False),  # offered|accepted|declined|expired|withdrawn|on_scene|resolved
    Column("offered_at", UTCDateTime(), nullable=False),
    Column("distance_m", Float),  # from the responder's last fix when offered
    Column("accepted_at", UTCDateTime()),
    Column("declined_at", UTCDateTime()),
    Column("reason", String(500)),
    Column("expired_at", UTCDateTime()),  # not accepted within accept_within_s
    Column("on_scene_at", UTCDateTime()),
    Column("scene_lat", Float), Column("scene_lon", Float),
    Column("scene_distance_m", Float),  # from the pole, when on scene
    Column("resolved_at", UTCDateTime()),
    Column("outcome", String(32)),
    Column("note", Text),
    Index("dispatches_alarm", "alarm_id"),
    Index("dispatches_responder_state", "responder", "state"),
    Index("dispatches_state_offered", "state", "offered_at"),
)

dispatch_photos = Table(
    "dispatch_photos", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dispatch_id", String(32), nullable=False),
    Column("alarm_id", String(36), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("dispatch_photos_alarm", "alarm_id"),
)


# --- the district's grids (issue 17): boundaries from its GeoJSON, drawn on the console's map --------------
grids = Table(
    "grids", metadata,
    Column("name", String(64), primary_key=True),  # the grid code nodes carry (nodes.grid)
    Column("geometry", JSON, nullable=False),  # a GeoJSON Polygon or MultiPolygon, lon/lat (WGS84)
    Column("properties", JSON),
    Column("imported_at", UTCDateTime(), nullable=False),
)


# --- sensitive periods (issue 20 part 3, hub/sensitive): a raised alert level for a time window -------------
sensitive_periods = Table(
    "sensitive_periods", metadata,
    Column("id", String(32), primary_key=True),
    Column("scope", String(16), nullable=False),  # "district" or "grids"
    Column("grids", JSON, nullable=False),  # the grid codes (nodes.grid) for scope "grids"; [] for the district
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("escalate_after_s", Float, nullable=False),
    Column("profile", JSON, nullable=False),  # hub.sensitive.profile.DetectionProfile
    Column("state", String(16), nullable=False),  # scheduled → active → ended, or cancelled
    Column("activated_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("cancelled_by", String(64)),
    Index("sensitive_periods_state", "state"),
)

# one row per pole and phase of a period: the profile pushed at the start ("apply") and the pole's previous
# config pushed back at the end ("revert"); unique, so a restarted hub never pushes the same phase twice
sensitive_pushes = Table(
    "sensitive_pushes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("period_id", String(32), nullable=False),
    Column("node", String(64), nullable=False),
    Column("phase", String(8), nullable=False),  # apply | revert
    Column("state", String(16), nullable=False),  # pending | sent | skipped | failed
    Column("base_command", String(64)),  # the applied config.update the pole had before (its YAML is kept there)
    Column("command_id", String(64)),  # the config.update this row sent
    Column("reason", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("sensitive_pushes_one", "period_id", "node", "phase", unique=True),
)

# the period's daily report (08:00 district time): the file written and how each delivery went
sensitive_reports = Table(
    "sensitive_reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("period_id", String(32), nullable=False),
    Column("day", String(10), nullable=False),  # the district's date, YYYY-MM-DD
    Column("generated_at", UTCDateTime(), nullable=False),
    Column("path", Text, nullable=False),
    Column("webhook_status", Integer),
    Column("webhook_error", Text),
    Column("notified", JSON),  # per channel: sent/failed counts, or why nothing was sent
    Index("sensitive_reports_one", "period_id", "day", unique=True),
)


# --- city networking (issue 19, hub/gb28181): each node's 20-digit GB/T 28181 ID -----------------------------
gb_ids = Table(
    "gb_ids", metadata,
    Column("node", String(64), primary_key=True),  # nodes.id
    # the ID of the node's main channel (a pole's camera, type 132; a door's alarm input, 134); its other
    # channels are derived from it (hub/gb28181/ids.py), so civil code + industry + serial is unique too
    Column("gb_id", String(20), nullable=False, unique=True),
    Column("serial_key", String(17), nullable=False, unique=True),  # digits 1-10 and 14-20: no two nodes share
    Column("assigned_at", UTCDateTime(), nullable=False),
)


# --- the city's alarms, settled (hub/gb28181/uplink.py): an alarm is retried from the store until the platform
# took it (or refused it, or it is a day old), across a hub restart, a full queue or a dropped live stream
gb_alarm_uplink = Table(
    "gb_alarm_uplink", metadata,
    Column("event_id", String(36), primary_key=True),  # events.id
    Column("outcome", String(16), nullable=False),  # sent | refused | expired
    Column("at", UTCDateTime(), nullable=False),
    Index("gb_alarm_uplink_at", "at"),  # the purge
)
gb_uplink_mark = Table(
    "gb_uplink_mark", metadata,
    Column("id", Integer, primary_key=True),  # one row: 1
    # every alarm event received before this is settled: the sweep reads the store from here on
    Column("settled_before", UTCDateTime(), nullable=False),
)


# --- fleet health over time (issue 21): one row per node and hour, rolled up from its heartbeats -------------
# ``nodes.heartbeat`` keeps only the newest (a city's heartbeats as rows would be 173 M a day); this keeps what a
# trend needs at 24 rows per node a day, upserted by the ingest writer in the same statement batch (hub/nodes/health.py)
node_health_hourly = Table(
    "node_health_hourly", metadata,
    Column("node", String(64), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),  # the hour's start, UTC
    Column("heartbeats", Integer, nullable=False),  # stored (a superseded one, never written, is not counted)
    Column("outbox_max", Integer, nullable=False),
    Column("restarted", Integer, nullable=False),  # 1: a heartbeat's uptime began inside this hour
    Column("cpu_temp_max", Float),
    Column("fps_min", Float),
    Column("disk_free_min", BigInteger),
    Index("node_health_hourly_hour", "hour"),  # the retention purge
)
