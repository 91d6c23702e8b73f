"""The hub's own certificate authority for the broker's TLS listener (district networks have no
public CA). The CA key never leaves the hub box; nodes get only ``ca.crt`` in their bundle."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.shared.yamlconfig import atomic_write

VALID_DAYS_CA = 3650
VALID_DAYS_SERVER = 825


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pingan"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    atomic_write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()), mode=0o600)


def ensure_ca(folder: Path, name: str = "Pingan district CA") -> tuple[Path, Path]:
    """Make ca.key/ca.crt once; later calls reuse them."""
    key_path, crt_path = folder / "ca.key", folder / "ca.crt"
    if key_path.exists() and crt_path.exists():
        return key_path, crt_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS_CA))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    atomic_write(crt_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path


def issue_server_cert(folder: Path, hostnames: list[str], stem: str = "broker") -> tuple[Path, Path]:
    """<stem>.key/<stem>.crt signed by the CA, valid for the names and addresses clients dial (the broker's
    for nodes; ``stem="https"`` for the hub's web server, which phones need for HTTPS: issue 18)."""
    ca_key_path, ca_crt_path = ensure_ca(folder)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca_crt = x509.load_pem_x509_certificate(ca_crt_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(hostnames[0])).issuer_name(ca_crt.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS_SERVER))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    _write_key(folder / f"{stem}.key", key)
    atomic_write(folder / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM))
    return folder / f"{stem}.key", folder / f"{stem}.crt"


def https_cert(folder: Path, hostnames: list[str]) -> tuple[Path, Path, Path]:
    """The hub's HTTPS key and certificate for ``hostnames`` from the CA in ``folder``: reused while it names
    the same hosts and has more than 30 days left, issued again otherwise. Returns (key, cert, ca cert)."""
    key_path, crt_path = folder / "https.key", folder / "https.crt"
    _, ca_crt = ensure_ca(folder)
    if key_path.exists() and crt_path.exists():
        cert = x509.load_pem_x509_certificate(crt_path.read_bytes())
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(n.value) for n in sans}
        except x509.ExtensionNotFound:
            have = set()
        fresh = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=30)
        if fresh and have == {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hostnames}:
            return key_path, crt_path, ca_crt
    key_path, crt_path = issue_server_cert(folder, hostnames, stem="https")
    return key_path, crt_path, ca_crt


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


VALID_DAYS_CLIENT = 825


def issue_client_cert(folder: Path, node: str, days: int = VALID_DAYS_CLIENT) -> tuple[bytes, bytes, int]:
    """A node's client certificate (CN = node id, so mosquitto's ``use_identity_as_username`` makes the
    node id its user and the ACL's %u patterns confine it); returns key PEM, cert PEM and serial. The
    key is made here and goes only into the node's bundle: the hub keeps the serial, for revocation.
    It is valid ``days`` days, but never past the CA's own end (OpenSSL would refuse it then anyway)."""
    ca_key_path, ca_crt_path = ensure_ca(folder)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca_crt = x509.load_pem_x509_certificate(ca_crt_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    serial = x509.random_serial_number()
    cert = (x509.CertificateBuilder().subject_name(_name(node)).issuer_name(ca_crt.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=days), ca_crt.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), serial


def write_crl(folder: Path, revoked_serials: list[int]) -> Path:
    """crl.pem listing removed nodes' certificates, for the broker's ``crlfile``. Its next update is set
    as far out as the CA's life: an expired CRL would make OpenSSL refuse every node."""
    ca_key_path, ca_crt_path = ensure_ca(folder)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca_crt = x509.load_pem_x509_certificate(ca_crt_path.read_bytes())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_crt.subject)
               .last_update(now - dt.timedelta(minutes=5)).next_update(ca_crt.not_valid_after_utc))
    for serial in sorted(set(revoked_serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    atomic_write(folder / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
    return folder / "crl.pem"
