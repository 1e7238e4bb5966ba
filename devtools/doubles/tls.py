"""A certificate for doubles that must speak TLS (clients that force https/wss, such as
google-genai's Live client), made at runtime for 127.0.0.1 and localhost.

The certificate is its own authority: a process trusts it by adding `cert_path` to its
certificate authorities (the `PROVIDER_EXTRA_CA_CERTS` setting does that for vendor
connections)."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class LocalCertificate:
    """A self-signed certificate and its key, as PEM files in `directory` (a temporary one
    when not given)."""

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="double-tls-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.directory / "double-cert.pem"
        self.key_path = self.directory / "double-key.pem"
        if not (self.cert_path.exists() and self.key_path.exists()):
            self._write()

    def _write(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Switchboard test double")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        self.cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context
