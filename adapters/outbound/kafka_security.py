"""How every Kafka client (producer, consumers, admin) connects: plain text, TLS (with a
client certificate for mTLS), or TLS with SASL (SCRAM-SHA-512 or PLAIN) on top."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"VODHUB_KAFKA_SECURITY_PROTOCOL: one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("VODHUB_KAFKA_CERT_FILE and VODHUB_KAFKA_KEY_FILE go together")
        if self.protocol == "PLAINTEXT" and any((self.ca_file, self.cert_file, self.sasl_mechanism)):
            raise ValueError("Kafka TLS or SASL settings need VODHUB_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL")
        if self.protocol == "SASL_SSL" and (
            self.sasl_mechanism not in SASL_MECHANISMS or not self.sasl_username or not self.sasl_password
        ):
            raise ValueError("SASL_SSL needs VODHUB_KAFKA_SASL_MECHANISM (SCRAM-SHA-512 or PLAIN), "
                             "VODHUB_KAFKA_SASL_USERNAME and VODHUB_KAFKA_SASL_PASSWORD")
        if self.protocol == "SSL" and self.sasl_mechanism:
            raise ValueError("VODHUB_KAFKA_SASL_MECHANISM needs VODHUB_KAFKA_SECURITY_PROTOCOL SASL_SSL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol, "ssl_context": self.ssl_context()}
        if self.protocol == "SASL_SSL":
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                        "sasl_plain_password": self.sasl_password}
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and name (against ca_file, else the system's CAs)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


PLAINTEXT = KafkaSecurity()
