"""Hub settings: PINGAN_* environment variables (and an optional .env file), validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import SettingsError


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINGAN_", env_file=".env", extra="ignore")

    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://")
    mqtt_username: str | None = Field(default=None, description="The hub's own broker user")
    mqtt_password: str | None = Field(default=None)
    mqtt_enabled: bool = Field(default=True, description="Off only in unit tests of the API")
    database_url: str | None = Field(default=None,
                                     description="SQLAlchemy URL; default SQLite in PINGAN_DATA_DIR")
    data_dir: Path = Field(default=Path("var/hub"), description="Database, keys and state")
    broker_dir: Path | None = Field(default=None, description=(
        "The folder of `pingan-hub broker config` (ca.crt, ca.key): node bundles made in the console then carry "
        "the broker's CA and may log in with a client certificate from it (as `nodes add --ca --auth cert`)"))
    http_host: str = Field(default="127.0.0.1",
                           description="Address to bind; loopback by default, 0.0.0.0 to serve the centre's LAN")
    http_port: int = Field(default=8000, ge=1, le=65535)
    replica: str = Field(default="1", pattern=r"^[a-z0-9-]{1,32}$", description="Replica name")
    offline_after_s: float = Field(default=35, ge=5, description="Silence that makes a node offline")
    offline_grace_s: float = Field(default=60, ge=0,
                                   description="No offline alarms this soon after (re)connecting to the broker")
    outage_min_nodes: int = Field(default=10, ge=2, description=(
        "This many nodes going silent together raise one nodes.offline incident, not an alarm each"))
    ack_resend_s: float = Field(default=5, ge=0.5, description="Resend alarm.ack until the node replies")
    delayed_after_s: float = Field(default=30, ge=1, description="Events older than this on arrival are 'delayed'")
    secret_key: str | None = Field(default=None, description="Fernet key for node keys at rest")
    timezone: str = Field(default="Asia/Shanghai")
    ha_discovery: bool = Field(default=False, description="Publish Home Assistant MQTT discovery")
    session_ttl_s: float = Field(default=12 * 3600, ge=60, description="Idle time before a staff session ends")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins per username+IP in the window")
    login_window_s: float = Field(default=300, ge=1, description="Window of the login rate limit")
    login_max_failures_per_ip: int = Field(default=20, ge=1, description=(
        "Failed logins per IP in the window, whatever the usernames (random usernames from one address)"))
    login_hash_concurrency: int = Field(default=1, ge=1, le=64, description=(
        "Password hashes (argon2, ~64 MiB and 4 threads each) run at once; other logins wait"))
    login_hash_queue: int = Field(default=8, ge=0, le=1000, description=(
        "Logins that may wait for a hash; beyond them a login gets 503 with Retry-After at once"))
    metrics_token: str | None = Field(default=None, description="Bearer token Prometheus sends to /metrics")
    trusted_proxies: str = Field(default="", description=(
        "Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For / X-Forwarded-Proto are "
        "believed; empty (the default): the header is ignored from everyone, loopback included"))
    escalate_after_s: float = Field(default=60, ge=1, description="Unacknowledged this long: the alarm escalates")
    escalation_webhook: str | None = Field(default=None, description="URL an escalation is POSTed to (JSON)")
    sensitive_tick_s: float = Field(default=5, ge=0.2, le=60, description=(
        "Seconds between rounds of the sensitive-period job (starts, profile pushes, 08:00 reports, ends)"))
    live_ice_servers: list[dict[str, Any]] = Field(default_factory=list, description=(
        'Live view: ICE servers for browser and node, JSON, e.g. [{"urls": "turn:hub.lan:3478", "username": '
        '"pingan", "credential": "..."}]; empty on a flat district LAN (docs/live-view.md)'))
    live_viewer_timeout_s: float = Field(default=15, ge=3, le=300,
                                         description="Live view: a console silent this long has left; its session ends")
    live_answer_timeout_s: float = Field(default=10, ge=1, le=60,
                                         description="Live view: how long to wait for the node's SDP answer")
    # responders and dispatch (issue 18, docs/responders.md); shifts are in `timezone`
    accept_within_s: float = Field(default=60, ge=5, le=3600, description=(
        "A dispatch not accepted this long is offered to the next nearest responder and flagged to the operator"))
    auto_dispatch_kinds: list[str] = Field(default_factory=list, description=(
        'Alarm kinds dispatched to the nearest on-duty responder without an operator, JSON, e.g. '
        '["alarm.pressed"]; empty (the default): an operator always decides'))
    health_keep_days: float = Field(default=90, gt=0, le=3650, description=(
        "Nodes' hourly health (heartbeats, reboots, temperature, outbox) older than this is deleted"))
    position_keep_days: float = Field(default=30, gt=0, le=3650,
                                      description="Responders' positions older than this are deleted")
    on_scene_warn_m: float = Field(default=200, gt=0, description=(
        "'On scene' farther than this from the pole is recorded with a warning"))
    photo_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest resolution photo accepted")
    map_tiles: str = Field(default="none", description=(
        "The console map's base layer: none (grids and nodes only), tianditu (天地图, needs "
        "PINGAN_MAP_TIANDITU_KEY) or an offline tile server's URL template, e.g. http://tiles.lan/{z}/{x}/{y}.png"))
    map_tianditu_key: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{8,64}$",
                                         description="The district's 天地图 key (tk=), for map_tiles=tianditu")
    share_group: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,32}$",
                             description="Replicas: node-to-hub topics via $share/<group>/ (e.g. pingan-hub), "
                                         "clean sessions; needs PostgreSQL (docs/scale.md)")

    # --- notify (hub/notify, docs/notify.md): channels tried in order, each one bounded by a timeout
    notify_order: str = Field(default="webpush,wecom,dingtalk,sms", description=(
        "Channels tried in this order for each recipient until one delivers (comma-separated among webpush, "
        "wecom, dingtalk, sms); channels without their settings are left out. In mainland China put the "
        "robots and SMS first: Chrome's Web Push goes through FCM, which is blocked there"))
    notify_timeout_s: float = Field(default=4, gt=0, le=60,
                                    description="One channel's send for one notice, at most this long, then the next")
    public_url: str = Field(default="", description=(
        "The hub's address as phones reach it (https://hub.lan:8443): links in messages and on the patrol QR stickers"))
    notify_vapid_subject: str = Field(default="mailto:pingan@localhost", description=(
        "Web Push: the VAPID 'sub' claim, mailto: or https: (push services may contact it)"))
    notify_vapid_key_file: Path | None = Field(default=None, description=(
        "Web Push: the VAPID private key (PEM); default <data_dir>/notify/vapid.pem, made on first start"))
    notify_wecom_webhook: str | None = Field(default=None, description=(
        "WeCom group robot: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."))
    notify_dingtalk_webhook: str | None = Field(default=None, description=(
        "DingTalk robot: https://oapi.dingtalk.com/robot/send?access_token=..."))
    notify_dingtalk_secret: str | None = Field(default=None, description=(
        "DingTalk robot's signing secret (SEC...): requests carry timestamp and HMAC-SHA256 sign"))
    notify_sms_url: str | None = Field(default=None, description="SMS gateway: the URL a message is POSTed to")
    notify_sms_token: str | None = Field(default=None, description="SMS gateway: sent as Authorization: Bearer")
    notify_sms_template: str = Field(default="【平安】{kind_zh} {place}（{grid}）{text} {url}", description=(
        "SMS text; fields {kind} {kind_zh} {node} {place} {grid} {text} {url} {alarm}"))
    notify_sms_body: str = Field(default='{"to": "{phone}", "text": "{message}"}', description=(
        "SMS gateway's JSON body; string values may hold {phone} and {message}"))
    # --- patrols (hub/patrols): signed QR stickers on the poles
    patrol_token_max_age_days: int = Field(default=730, ge=1, le=3650, description=(
        "A sticker older than this is refused as stale (print new ones: pingan-hub nodes qr)"))
    patrol_night: str = Field(default="20:00-08:00",
                              pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
                              description="Night hours (district time) for the longest-gap report, HH:MM-HH:MM")

    # --- city networking (GB/T 28181 cascade, hub/gb28181, docs/gb28181.md): off while gb_upstream is unset
    gb_id: str | None = Field(default=None, description=(
        "The hub's 20-digit GB/T 28181 ID, given by the city platform (e.g. 35020300002000000001)"))
    gb_upstream: str | None = Field(default=None, description=(
        "The city platform: sip:<server-id>@<host>:<port>;transport=udp|tcp; unset: no city networking"))
    gb_password: str | None = Field(default=None, description="The password the city platform gave the hub")
    gb_expires_s: int = Field(default=3600, ge=60, le=86400, description="Registration lifetime asked for")
    gb_keepalive_s: float = Field(default=60, ge=1, le=3600, description="Keepalive MESSAGE interval")
    gb_sip_port: int = Field(default=5060, ge=1, le=65535, description="The hub's local SIP port (UDP and TCP)")
    gb_sip_host: str = Field(default="0.0.0.0", description="Address the SIP port binds to")
    gb_civil_code: str | None = Field(default=None, description=(
        "Prefix of the node IDs the hub makes: 8-digit civil code, or 10 digits with the industry code; "
        "default the first 10 digits of PINGAN_GB_ID"))
    gb_streams_per_pole: int = Field(default=2, ge=1, le=16, description="City live-video streams per pole at once")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        return v

    @field_validator("map_tiles")
    @classmethod
    def _map_tiles(cls, v: str) -> str:
        v = v.strip()
        if v in ("none", "tianditu"):
            return v
        u = urlparse(v)
        if u.scheme not in ("http", "https") or not u.netloc or not all(p in v for p in ("{z}", "{x}", "{y}")):
            raise ValueError("must be none, tianditu, or a tile URL template with {z}, {x} and {y}, "
                             "e.g. http://tiles.lan/{z}/{x}/{y}.png")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, v: str) -> str:
        out = []
        for item in (i.strip() for i in v.split(",") if i.strip()):
            try:  # normalised: 10.0.0.7/24 -> 10.0.0.0/24 (uvicorn's ProxyHeadersMiddleware wants exact networks)
                out.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item
                           else str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return ",".join(out)

    @field_validator("notify_order")
    @classmethod
    def _notify_order(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        unknown = [n for n in names if n not in ("webpush", "wecom", "dingtalk", "sms")]
        if unknown:
            raise ValueError(f"unknown channels {unknown}; use webpush, wecom, dingtalk, sms")
        if len(set(names)) != len(names):
            raise ValueError("a channel is named twice")
        return ",".join(names)

    @field_validator("public_url", "notify_wecom_webhook", "notify_dingtalk_webhook", "notify_sms_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v and (urlparse(v).scheme not in ("http", "https") or not urlparse(v).hostname):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("notify_vapid_subject")
    @classmethod
    def _vapid_subject(cls, v: str) -> str:
        if not (v.startswith("mailto:") or v.startswith("https://")):
            raise ValueError("must start with mailto: or https:// (the VAPID 'sub' claim)")
        return v

    @field_validator("notify_sms_template")
    @classmethod
    def _sms_template(cls, v: str) -> str:
        from hub.notify.models import check_template

        return check_template(v, {"kind", "kind_zh", "node", "place", "grid", "text", "url", "alarm"})

    @field_validator("notify_sms_body")
    @classmethod
    def _sms_body(cls, v: str) -> str:
        from hub.notify.models import check_json_template

        return check_json_template(v, {"phone", "message"})

    @model_validator(mode="after")
    def _dingtalk_secret_needs_webhook(self) -> HubSettings:
        if self.notify_dingtalk_secret and not self.notify_dingtalk_webhook:
            raise ValueError("notify_dingtalk_secret is set but notify_dingtalk_webhook is not")
        return self

    @model_validator(mode="after")
    def _tianditu_needs_key(self) -> HubSettings:
        if self.map_tiles == "tianditu" and not self.map_tianditu_key:
            raise ValueError("map_tiles=tianditu needs the district's key: set PINGAN_MAP_TIANDITU_KEY "
                             "(or PINGAN_MAP_TILES=none, or an offline tile server's URL)")
        return self

    @model_validator(mode="after")
    def _replicas_need_postgresql(self) -> HubSettings:
        if self.share_group and not self.db_url.startswith("postgresql"):
            raise ValueError("share_group (hub replicas) needs PostgreSQL: set PINGAN_DATABASE_URL=postgresql+psycopg://"
                             "... (replicas share the store and its LISTEN/NOTIFY; one SQLite file cannot)")
        return self

    @field_validator("gb_id")
    @classmethod
    def _gb_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9]{20}", v):
            raise ValueError("must be the hub's 20-digit GB/T 28181 ID, e.g. 35020300002000000001")
        return v

    @field_validator("gb_civil_code")
    @classmethod
    def _gb_civil_code(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9]{8}([0-9]{2})?", v):
            raise ValueError("must be the 8-digit civil code (e.g. 35020300), or 10 digits with the industry code")
        return v

    @field_validator("gb_upstream")
    @classmethod
    def _gb_upstream(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        from hub.gb28181.sip import parse_upstream

        parse_upstream(v)  # raises ValueError with the sentence
        return v.strip()

    @model_validator(mode="after")
    def _gb_needs_id_and_password(self) -> HubSettings:
        if self.gb_upstream and not self.gb_id:
            raise ValueError("PINGAN_GB_UPSTREAM is set but PINGAN_GB_ID is not: the city platform gives the hub a "
                             "20-digit ID; set it (or unset PINGAN_GB_UPSTREAM to turn city networking off)")
        if self.gb_upstream and not self.gb_password:  # systemd's LoadCredential=pingan-gb-password:...
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            cred = Path(cred_dir) / "pingan-gb-password" if cred_dir else None
            if cred is not None and cred.is_file():
                self.gb_password = cred.read_text(encoding="utf-8").strip() or None
        if self.gb_upstream and not self.gb_password:
            raise ValueError("PINGAN_GB_UPSTREAM is set but PINGAN_GB_PASSWORD is not: the city platform's "
                             "registration needs the password it gave the hub (or a credential pingan-gb-password)")
        return self

    @property
    def mqtt_host(self) -> str:
        return urlparse(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def mqtt_port(self) -> int:
        u = urlparse(self.mqtt_url)
        return u.port or (8883 if u.scheme == "mqtts" else 1883)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"


def load_settings(**overrides: object) -> HubSettings:
    try:
        return HubSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join((f"PINGAN_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
                             + e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise SettingsError(f"invalid hub settings: {problems}") from None
