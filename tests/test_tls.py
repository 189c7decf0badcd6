"""Sync over TLS: the fake Hub's CDN origin speaks https with a self-signed certificate.

The HTTP session builds its https transport (and loads a trust store) only when the first https request
goes out, so a plain-http sync skips that start-up cost; these tests prove the deferred transport still
verifies: the certificate is accepted when ``SSL_CERT_FILE`` names it, and refused, in one line and with
nothing stored, when it does not.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from pathlib import Path

import pytest
from conftest import run_cli, write_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hubserver import HubServer

pytestmark = pytest.mark.timeout(120)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hubmirror test CDN")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cdn.pem", folder / "cdn.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_upstream(tmp_path: Path):
    """A fake Hub whose LFS bodies come from an https CDN origin; yields (hub, certificate path, weights)."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    hub = HubServer(tmp_path / "upstream")
    hub.cdn_tls = context
    hub.lfs_threshold = 1024
    weights = os.urandom(256 * 1024)
    hub.commit("org/secure", {"config.json": b'{"a": 1}', "model.bin": weights})
    with hub:
        assert hub.cdn_url.startswith("https://")
        yield hub, cert, weights


def test_a_redirect_to_an_https_cdn_is_verified_against_the_trust_store(tls_upstream, tmp_path: Path) -> None:
    hub, cert, weights = tls_upstream
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", hub.url, home, [{"repo": "org/secure"}])
    result = run_cli("-c", str(cfg), "sync", env={"SSL_CERT_FILE": str(cert)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(r.path.startswith("/blobs/") for r in hub.requests)  # the body did come over TLS
    path = run_cli("-c", str(cfg), "resolve", "org/secure").stdout.strip()
    assert hashlib.sha256((Path(path) / "model.bin").read_bytes()).digest() == hashlib.sha256(weights).digest()


def test_an_untrusted_certificate_is_refused_at_once_and_nothing_is_stored(tls_upstream, tmp_path: Path) -> None:
    hub, _cert, weights = tls_upstream
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "hubmirror.yaml", hub.url, home, [{"repo": "org/secure"}])
    result = run_cli("-c", str(cfg), "sync")
    assert result.returncode == 6, result.stdout + result.stderr  # the README's "upstream unavailable"
    assert "Traceback" not in result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "TLS certificate" in failed[0] and "SSL_CERT_FILE" in failed[0], result.stdout
    # refused on the first handshake, not retried: the CDN saw one connection and answered nothing
    assert not any(r.origin == "cdn" for r in hub.requests)
    sha = hashlib.sha256(weights).hexdigest()
    assert not any(sha in p.name for p in (home / "blobs").rglob("*")), "a blob of the refused body was stored"
    assert run_cli("-c", str(cfg), "resolve", "org/secure").returncode != 0  # no half snapshot was published
