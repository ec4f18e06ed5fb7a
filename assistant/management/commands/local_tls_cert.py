"""`manage.py local_tls_cert [--dir D]`: a self-signed certificate for `make run`'s TLS port.

The google-genai SDKs always connect with `wss://`, so a local Pastra needs TLS for them; the
certificate is for 127.0.0.1 and localhost only, and a client trusts it through
`SSL_CERT_FILE=<dir>/cert.pem`. Existing files are kept (pass `--force` to renew); the paths
are printed, the certificate first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management.base import BaseCommand

DEFAULT_DIR = ".local/tls"
VALID_DAYS = 825  # the longest validity clients accept for a server certificate


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """Write cert.pem and key.pem (key readable by the owner only) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pastra local TLS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class Command(BaseCommand):
    help = "Create a self-signed certificate for 127.0.0.1/localhost (make run's TLS port)."

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=DEFAULT_DIR, help=f"where (default {DEFAULT_DIR})")
        parser.add_argument("--force", action="store_true", help="replace existing files")

    def handle(self, *args, dir: str, force: bool, **options):
        folder = Path(dir)
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        if force or not (cert_path.exists() and key_path.exists()):
            cert_path, key_path = write_certificate(folder)
        self.stdout.write(str(cert_path))
        self.stdout.write(str(key_path))
