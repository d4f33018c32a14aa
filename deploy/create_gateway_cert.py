"""Make a self-signed certificate for the gateway once (docker-compose's `gateway-cert` job).

Local use only: browsers will warn about it. In production mount your own certificate and key
at the gateway's /etc/nginx/tls (cert.pem with the chain, key.pem; VODHUB_GATEWAY_TLS_DIR in
compose); this job leaves a directory that already has them alone.
`python /opt/vodhub/create_gateway_cert.py /etc/nginx/tls [host names…]`
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _subject_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def main(directory: str, *hosts: str) -> int:
    target = Path(directory)
    cert_file, key_file = target / "cert.pem", target / "key.pem"
    if cert_file.exists() and key_file.exists():
        print(f"gateway certificate {cert_file} already exists")
        return 0
    hosts_list = list(hosts) or ["localhost", "127.0.0.1", "::1"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts_list[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(_subject_names(hosts_list)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    target.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    # nginx's master reads the key as root; the world-readable certificate is public anyway.
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    print(f"created a self-signed gateway certificate {cert_file} for {', '.join(hosts_list)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *sys.argv[2:]))
