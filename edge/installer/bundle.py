"""``pingan-edge install BUNDLE``: put a node bundle's files in place on the node.

The bundle comes from ``pingan-hub nodes add``. Its config is validated before anything is
written; every file is written atomically; secrets land in a root-only folder that the
systemd unit hands to the agent with LoadCredential.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

import yaml

from edge.config import NodeConfig
from edge.errors import ConfigError, PinganError
from edge.shared.yamlconfig import atomic_write

DESTINATIONS = {
    "node.yaml": ("etc/pingan/node.yaml", 0o644),
    "credentials/node-key": ("etc/pingan/credentials/node-key", 0o600),
    "credentials/mqtt-password": ("etc/pingan/credentials/mqtt-password", 0o600),
    "credentials/block-key": ("etc/pingan/credentials/block-key", 0o600),
    "pingan-edge.service": ("etc/systemd/system/pingan-edge.service", 0o644),
    "config.txt.fragment": ("etc/pingan/config.txt.fragment", 0o644),
    "ca.crt": ("etc/pingan/ca.crt", 0o644),
    "block-key.conf": ("etc/systemd/system/pingan-edge.service.d/block-key.conf", 0o644),
    "credentials/mqtt-client-key": ("etc/pingan/credentials/mqtt-client-key", 0o600),
    "mqtt-client.crt": ("etc/pingan/mqtt-client.crt", 0o644),
    "00-client-cert.conf": ("etc/systemd/system/pingan-edge.service.d/00-client-cert.conf", 0o644),
}

# A node with a client certificate has no MQTT password file, and systemd refuses to start a unit whose
# LoadCredential= source is missing: reset the list and load the key instead. "00-" sorts before
# block-key.conf, which adds to the list again.
CLIENT_CERT_DROPIN = """[Service]
LoadCredential=
LoadCredential=PINGAN_NODE_KEY:/etc/pingan/credentials/node-key
LoadCredential=PINGAN_MQTT_CLIENT_KEY:/etc/pingan/credentials/mqtt-client-key
"""


BLOCK_KEY_DROPIN = """[Service]
LoadCredential=PINGAN_BLOCK_KEY:/etc/pingan/credentials/block-key
"""


def install_bundle(bundle: Path, root: Path = Path("/")) -> list[Path]:
    if not bundle.is_file():
        raise PinganError(f"{bundle}: no such bundle (make one with pingan-hub nodes add)")
    try:
        tar = tarfile.open(bundle, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise PinganError(f"{bundle} is not a node bundle: {exc}") from None
    files: dict[str, bytes] = {}
    with tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 2 or ".." in parts or parts[0].startswith("/"):
                continue
            inner = "/".join(parts[1:])
            if inner in DESTINATIONS:
                fh = tar.extractfile(member)
                if fh is not None:
                    files[inner] = fh.read()
    if "node.yaml" not in files:
        raise PinganError(f"{bundle} has no node.yaml: not a node bundle")
    try:
        NodeConfig.model_validate(yaml.safe_load(files["node.yaml"]))
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"the bundle's node.yaml is invalid: {exc}") from None
    if "credentials/block-key" in files:  # a door: hand its block key to the agent too
        files["block-key.conf"] = BLOCK_KEY_DROPIN.encode()
    if "credentials/mqtt-client-key" in files:  # logs in with a client certificate, not a password
        files["00-client-cert.conf"] = CLIENT_CERT_DROPIN.encode()
    written = []
    for inner, data in files.items():
        rel, mode = DESTINATIONS[inner]
        target = root / rel
        atomic_write(target, data, mode=mode)
        if inner.startswith("credentials/"):
            target.parent.chmod(0o700)
        written.append(target)
    return written
