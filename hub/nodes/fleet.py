"""The fleet: node credentials, the broker's password file and ACL, and node bundles.

Each node gets its own MQTT user (named after the node id) and password, made here and shown
only inside its bundle; the hub keeps only mosquitto's PBKDF2 hash, so it can write the
broker's password file again at any time without knowing the passwords. The ACL confines each
node to its own topics with ``%u`` patterns, and ``use_username_as_clientid`` stops a node from
taking another's session. Removing a node drops its user: after a broker reload it can no
longer connect.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import os
import pwd
import secrets
import signal
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from edge.config import NodeConfig
from edge.protocol import Topics
from edge.shared.yamlconfig import atomic_write
from hub.alarms.service import HubService
from hub.errors import HubError
from hub.nodes.pki import VALID_DAYS_CLIENT, ensure_ca, issue_client_cert, issue_server_cert, write_crl
from hub.store.engine import add_audit, now_utc
from hub.store.schema import credentials, node_certs, nodes
from hub.transport.broker import size_limits

PBKDF2_ITERATIONS = 1000
BROKER_USER = "mosquitto"  # Debian's package creates it; the broker never runs as root



NODE_ACL = ("# nodes: each may publish only under its own topics and read only its own commands/receipts\n"
            + Topics.node_acl())  # built from the contract's channel list (edge/protocol.py)


def mosquitto_hash(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The hash mosquitto_passwd writes (sha512-pbkdf2, format $7$)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass
class NodeSecrets:
    node: str
    signing_key: str
    mqtt_password: str | None  # None for a node that logs in with a client certificate
    client_key: bytes | None = None
    client_cert: bytes | None = None


class Fleet:
    def __init__(self, engine: Engine, service: HubService) -> None:
        self.engine = engine
        self.service = service

    def add(self, node: str, *, kind: str, grid: str = "", place: str = "", lat: float | None = None,
            lon: float | None = None, actor: str = "installer", ca_dir: Path | None = None) -> NodeSecrets:
        """Register a node with its MQTT login: a password, or (``ca_dir`` given: the folder of the hub's
        CA, as ``broker config`` keeps it) a client certificate from that CA and no password at all."""
        if ca_dir is not None and not (ca_dir / "ca.key").is_file():
            raise HubError(f"{ca_dir} holds no ca.key: give the broker folder of `pingan-hub broker config`")
        key = self.service.register_node(node, kind=kind, place=place, grid=grid, lat=lat, lon=lon, actor=actor)
        with self.engine.begin() as conn:
            conn.execute(credentials.delete().where(credentials.c.node == node))
            conn.execute(update(node_certs).where(node_certs.c.node == node).values(revoked=True))  # re-issue
            if ca_dir is not None:
                client_key, client_cert, serial = issue_client_cert(ca_dir, node)
                conn.execute(node_certs.insert().values(serial=str(serial), node=node, revoked=False,
                                                        issued_at=now_utc()))
                return NodeSecrets(node, key, None, client_key, client_cert)
            password = secrets.token_urlsafe(24)
            conn.execute(credentials.insert().values(node=node, mqtt_user=node, mqtt_hash=mosquitto_hash(password),
                                                     revoked=False, issued_at=now_utc()))
        return NodeSecrets(node, key, password)

    def remove(self, node: str, actor: str = "installer") -> None:
        with self.engine.begin() as conn:
            found = conn.execute(update(credentials).where(credentials.c.node == node).values(revoked=True)).rowcount
            found += conn.execute(update(node_certs).where(node_certs.c.node == node).values(revoked=True)).rowcount
            conn.execute(update(nodes).where(nodes.c.id == node).values(key_enc=None, state="removed"))
            if not found and not conn.execute(select(nodes.c.id).where(nodes.c.id == node)).first():
                raise HubError(f"no node {node}")
            add_audit(conn, actor, "node.remove", node)

    def renew_cert(self, node: str, ca_dir: Path, *, days: int = VALID_DAYS_CLIENT, revoke_old: bool = False,
                   actor: str = "installer") -> tuple[bytes, bytes, int]:
        """A fresh client certificate and key for a node that logs in with one: same CA, same CN (the node
        id, so ``use_identity_as_username`` and the ACL keep working); returns key PEM, cert PEM, serial.
        The node's earlier certificates stay valid until they expire, so it stays online until the new
        one is installed, unless ``revoke_old`` (a lost or stolen key): then they go into the broker's CRL
        at the next ``broker config``."""
        if not (ca_dir / "ca.key").is_file():
            raise HubError(f"{ca_dir} holds no ca.key: give the broker folder of `pingan-hub broker config`")
        with self.engine.begin() as conn:
            row = conn.execute(select(nodes.c.state).where(nodes.c.id == node)).first()
            if row is None:
                raise HubError(f"no node {node} (pingan-hub nodes list shows the known ones)")
            if row.state == "removed":
                raise HubError(f"{node} was removed; register it again with `pingan-hub nodes add {node} "
                               "--auth cert ...`")
            if not conn.execute(select(node_certs.c.serial).where(node_certs.c.node == node)).first():
                if conn.execute(select(credentials.c.node).where(credentials.c.node == node)).first():
                    raise HubError(f"{node} logs in with an MQTT password, not a client certificate: a new "
                                   f"password (or a move to certificates) comes with `pingan-hub nodes add {node} "
                                   "[--auth cert --ca DIR/ca.crt]`, which writes a whole new bundle")
                raise HubError(f"{node} has no MQTT login from the hub; make one with `pingan-hub nodes add {node}`")
            client_key, client_cert, serial = issue_client_cert(ca_dir, node, days=days)
            revoked = 0
            if revoke_old:
                revoked = conn.execute(update(node_certs).where(node_certs.c.node == node,
                                                                node_certs.c.revoked.is_(False))
                                       .values(revoked=True)).rowcount
            conn.execute(node_certs.insert().values(serial=str(serial), node=node, revoked=False, issued_at=now_utc()))
            add_audit(conn, actor, "node.cert_renew", node, {"serial": str(serial), "days": days,
                                                              "revoked_old": revoked})
        return client_key, client_cert, serial

    def rotate_signing_key(self, node: str, actor: str = "installer") -> str:
        """A new command-signing key for a node, sealed like the first; returns it (shown once). From now
        on the hub signs commands with it, so the node refuses them until the new key is installed."""
        new_key = self.service.vault.new_node_key()
        with self.engine.begin() as conn:
            row = conn.execute(select(nodes.c.state, nodes.c.key_enc).where(nodes.c.id == node)).first()
            if row is None:
                raise HubError(f"no node {node} (pingan-hub nodes list shows the known ones)")
            if row.state == "removed" or not row.key_enc:
                raise HubError(f"{node} was removed; register it again with `pingan-hub nodes add {node}`")
            conn.execute(update(nodes).where(nodes.c.id == node).values(key_enc=self.service.vault.seal(new_key)))
            add_audit(conn, actor, "node.key_rotate", node)
        return new_key

    def active_users(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [(r.mqtt_user, r.mqtt_hash) for r in conn.execute(
                select(credentials).where(credentials.c.revoked.is_(False)).order_by(credentials.c.node))]

    def revoked_serials(self) -> list[int]:
        with self.engine.connect() as conn:
            return [int(s) for (s,) in conn.execute(select(node_certs.c.serial).where(node_certs.c.revoked.is_(True)))]

    def hub_user(self, replica: str, out: Path) -> tuple[str, str]:
        """The hub's own broker user and password (kept in the broker folder, mode 0600)."""
        user = f"pingan-hub-{replica}"
        path = out / f"{user}.password"
        if not path.exists():
            atomic_write(path, secrets.token_urlsafe(24).encode(), mode=0o600)
        return user, path.read_text().strip()

    def write_broker_config(self, out: Path, *, port: int = 1883, bind: str = "0.0.0.0",
                            replicas: tuple[str, ...] = ("1",), extra: str = "", tls_port: int | None = None,
                            tls_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1"),
                            cert_port: int | None = None, plain_lan: bool = False,
                            broker_user: str = BROKER_USER) -> Path:
        """mosquitto.conf + password file + ACL for the current fleet; a stock mosquitto enforces them.

        Nodes dial the TLS listeners on ``bind``: ``tls_port`` (password login) and ``cert_port`` (client
        certificates from the hub's CA: ``require_certificate``; ``use_identity_as_username`` makes the
        certificate's CN, the node id, the user the ACL's %u patterns see; removed nodes' certificates are
        in ``crlfile``). The plain listener on ``port`` (0: none) is for the hub on this box and listens on
        loopback only, unless ``plain_lan`` puts it on ``bind`` too (node passwords and commands in clear).
        Size limits and bounded queues: hub/transport/broker.py. The broker drops root for ``broker_user``: as root,
        the files it reads (also on a reload, after dropping) are made readable by that user's group and
        its persistence goes to ``out/data`` owned by it; ``ca.key`` and the hub's passwords stay root's.
        The test harness passes ``broker_user="root"`` (pytest's 0700 tmp dirs), never a deployment."""
        out = out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        owner = _broker_owner(broker_user)
        hub_lines, pw_lines = [], []
        for replica in replicas:
            user, password = self.hub_user(replica, out)
            pw_lines.append(f"{user}:{mosquitto_hash(password)}")
            hub_lines.append(Topics.hub_acl(user))
        pw_lines += [f"{u}:{h}" for u, h in self.active_users()]
        atomic_write(out / "passwords", ("\n".join(pw_lines) + "\n").encode(), mode=0o600)
        atomic_write(out / "acl", ("# the hub\n" + "\n".join(hub_lines) + "\n" + NODE_ACL).encode(), mode=0o600)
        broker_reads = [out / "passwords", out / "acl"]
        plain_bind = bind if plain_lan or is_loopback(bind) else "127.0.0.1"
        conf = ["# written by `pingan-hub broker config`; edit the command's options, not this file"]
        if port:
            conf += ["# plain MQTT: " + ("NOT ENCRYPTED, open to the network (--insecure-plain-lan)"
                                         if not is_loopback(plain_bind) else "the hub on this box only"),
                     f"listener {port} {plain_bind}"]
        if tls_port or cert_port:
            _, ca_crt = ensure_ca(out)
            key, crt = issue_server_cert(out, list(tls_hostnames))
            broker_reads.append(key)
        if tls_port:  # nodes connect here (mqtts://) with their password
            conf += ["# nodes: TLS, password login", f"listener {tls_port} {bind}", f"cafile {ca_crt}",
                     f"certfile {crt}", f"keyfile {key}", "tls_version tlsv1.2"]
        if cert_port:
            crl = write_crl(out, self.revoked_serials())
            conf += ["# nodes: TLS, client certificates from the hub's CA", f"listener {cert_port} {bind}",
                     f"cafile {ca_crt}", f"certfile {crt}", f"keyfile {key}",
                     "tls_version tlsv1.2", "require_certificate true", "use_identity_as_username true",
                     f"crlfile {crl}"]
        data = out / "data"  # written by the broker itself, after it has dropped root
        data.mkdir(exist_ok=True)
        if (out / "mosquitto.db").exists() and not (data / "mosquitto.db").exists():
            os.replace(out / "mosquitto.db", data / "mosquitto.db")  # where earlier versions kept it
        conf += [
            "allow_anonymous false",
            f"password_file {out / 'passwords'}",
            f"acl_file {out / 'acl'}",
            "use_username_as_clientid true",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1",
            "# sizes and queues: a larger packet disconnects its sender before the broker buffers it",
            *size_limits(),
            "set_tcp_nodelay true",
            f"pid_file {data / 'mosquitto.pid'}",
            "log_dest stderr",
            "# started as root, mosquitto drops to this user before it reads the password file and ACL",
            f"user {broker_user}",
        ]
        atomic_write(out / "mosquitto.conf", ("\n".join(conf) + "\n" + extra).encode())
        _grant(out, data, broker_reads, owner)
        return out / "mosquitto.conf"

    @staticmethod
    def reload_broker(out: Path) -> bool:
        """SIGHUP makes mosquitto re-read its password file and ACL (removed nodes are refused)."""
        for pid_file in (out / "data" / "mosquitto.pid", out / "mosquitto.pid"):  # the latter: older configs
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
                return True
            except (OSError, ValueError):
                continue
        return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _broker_owner(user: str) -> tuple[int, int] | None:
    """The uid/gid mosquitto will run as, when we are root and it is not root."""
    if os.geteuid() != 0 or user == "root":
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise HubError(f"no user {user!r} on this machine for the broker to run as: install mosquitto from the "
                       "distribution (it creates the user), or create the user") from None
    return entry.pw_uid, entry.pw_gid


def unreachable_by_broker(out: Path, user: str = BROKER_USER) -> str | None:
    """Why the broker, once it has dropped to ``user``, could not reach ``out`` (None: it can)."""
    try:
        owner = _broker_owner(user)
    except HubError as exc:
        return str(exc)
    if owner is None:
        return None
    uid, gid = owner
    for parent in out.resolve().parents:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001 and not (st.st_gid == gid and st.st_mode & 0o010):
            return f"{parent} (mode {st.st_mode & 0o777:o}) keeps user {user} from reaching {out}"
    return None


def _grant(out: Path, data: Path, broker_reads: list[Path], owner: tuple[int, int] | None) -> None:
    """As root: ``out`` 0750 and the files the broker reads 0640, group of the broker's user; ``data`` its own.
    Otherwise the broker runs as whoever wrote them: 0700 folders, files as written."""
    if owner is None:
        out.chmod(0o700)
        data.chmod(0o700)
        return
    uid, gid = owner
    os.chown(out, 0, gid)
    out.chmod(0o750)
    for path in broker_reads:
        os.chown(path, 0, gid)
        path.chmod(0o640)
    for path in (data, *data.iterdir()):
        os.chown(path, uid, gid)
    data.chmod(0o700)


def node_config_for(node: str, kind: str, grid: str, place: str, lat: float | None, lon: float | None,
                    broker_url: str) -> dict[str, Any]:
    ident: dict[str, Any] = {"id": node, "kind": kind, "grid": grid, "place": place}
    if lat is not None and lon is not None:
        ident["location"] = {"lat": lat, "lon": lon}
    config: dict[str, Any] = {"node": ident, "mqtt": {"url": broker_url, "username": node},
                              "data_dir": "/var/lib/pingan"}
    if kind == "rental_door":  # the wiring of firmware_config/rental_door.example.yaml; edit to the site's
        config["door"] = {"lock_relay": 24, "lock_active_high": True, "mode": "fail_secure", "door_contact": 25,
                          "exit_button": 16, "fire_input": 20}
        config["reader"] = {"port": "/dev/serial0"}
    return config


def ensure_block_key(path: Path) -> str:
    """A block's template key lives with the installer (and on the block's doors), never in the hub."""
    if not path.exists():
        atomic_write(path, secrets.token_urlsafe(32).encode(), mode=0o600)
    return path.read_text().strip()


def write_bundle(secrets_: NodeSecrets, config: dict[str, Any], out: Path, repo_root: Path | None = None,
                 ca_crt: Path | None = None, block_key: str | None = None) -> Path:
    """A tar.gz an installer copies to the node: config, credentials, systemd unit, Pi files."""
    try:
        NodeConfig.model_validate(config)
    except ValueError as exc:
        raise HubError(f"the node config for {secrets_.node} would be invalid: {exc}") from None
    root = repo_root or Path(__file__).resolve().parents[2]  # the checkout: systemd/ and firmware_config/
    files: dict[str, tuple[bytes, int]] = {
        "node.yaml": (yaml.safe_dump(config, sort_keys=False).encode(), 0o644),
        "credentials/node-key": (secrets_.signing_key.encode(), 0o600),
        "README.txt": (BUNDLE_README.format(node=secrets_.node).encode(), 0o644),
    }
    if secrets_.mqtt_password is not None:
        files["credentials/mqtt-password"] = (secrets_.mqtt_password.encode(), 0o600)
    if secrets_.client_key is not None and secrets_.client_cert is not None:
        files["credentials/mqtt-client-key"] = (secrets_.client_key, 0o600)
        files["mqtt-client.crt"] = (secrets_.client_cert, 0o644)
    if block_key is not None:
        files["credentials/block-key"] = (block_key.encode(), 0o600)
    if ca_crt is not None and ca_crt.exists():
        files["ca.crt"] = (ca_crt.read_bytes(), 0o644)
    for extra in ("systemd/pingan-edge.service", "firmware_config/config.txt.fragment"):
        path = root / extra
        if path.exists():
            files[extra.split("/")[-1]] = (path.read_bytes(), 0o644)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{secrets_.node}.bundle.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(f"{secrets_.node}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, int(now_utc().timestamp())
            tar.addfile(info, io.BytesIO(data))
    atomic_write(target, buf.getvalue(), mode=0o600)
    return target


BUNDLE_README = """Pingan node bundle for {node}

On the node (as root):
  pingan-edge install {node}.bundle.tar.gz     # puts everything in place
  pingan-edge doctor /etc/pingan/node.yaml     # checks it, with a fix for each failure

The credentials/ folder holds secrets: the bundle is mode 0600; delete it once installed.
"""
