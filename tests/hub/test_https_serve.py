"""`pingan-hub serve` over HTTPS (issue 18: phones need it): a certificate from the hub's CA for LAN names,
reused while it fits, issued again when the names change; clear errors for a half-given or unusable pair.
The browser over HTTPS is tests/hub/test_responder_browser.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from hub.nodes.pki import https_cert


def names(crt: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    return {str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value}


def test_the_hubs_ca_issues_an_https_certificate_once_per_set_of_names(tmp_path: Path) -> None:
    key, crt, ca = https_cert(tmp_path, ["hub.lan", "192.168.1.10"])
    assert names(crt) == {"hub.lan", "192.168.1.10"} and ca == tmp_path / "ca.crt"
    issuer = x509.load_pem_x509_certificate(ca.read_bytes()).subject
    assert x509.load_pem_x509_certificate(crt.read_bytes()).issuer == issuer
    assert (key.stat().st_mode & 0o777) == 0o600
    first = crt.read_bytes()
    assert https_cert(tmp_path, ["hub.lan", "192.168.1.10"])[1].read_bytes() == first  # reused
    https_cert(tmp_path, ["hub.lan"])
    assert crt.read_bytes() != first and names(crt) == {"hub.lan"}  # new names: issued again
    assert not (tmp_path / "broker.crt").exists()  # the broker's certificate is not touched


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub"), "PINGAN_MQTT_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "hub.cli", "serve", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_serve_says_what_is_wrong_with_the_https_options(tmp_path: Path) -> None:
    r = serve(tmp_path, "--cert", str(tmp_path / "x.crt"))
    assert r.returncode == 2 and "both --cert and --key" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    r = serve(tmp_path, "--cert", str(bad), "--key", str(bad))
    assert r.returncode == 2 and "not a usable certificate and key" in r.stderr and "Traceback" not in r.stderr
    r = serve(tmp_path, "--cert", str(tmp_path / "none.crt"), "--key", str(bad))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = serve(tmp_path, "--cert", str(bad), "--key", str(bad), "--tls-name", "hub.lan")
    assert r.returncode == 2 and "not both" in r.stderr
