"""The HTTP webhook sender: Standard Webhooks signatures a receiver on 127.0.0.1 verifies, the
SSRF guard (tested without connecting anywhere), the checked address being the one connected
to, TLS checked against the URL's name, no redirects, bounded time and reads."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook

from adapters.outbound.http_webhooks import HttpWebhookSender
from application.webhooks import new_secret

NOW = dt.datetime.now(dt.UTC)


def resolving_to(*addresses: str, calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


class NoNetwork(httpx.AsyncBaseTransport):
    """Fails the test if the sender ever tries to connect."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise AssertionError(f"the sender connected to {request.url}")


def send(sender: HttpWebhookSender, url: str, secret: bytes = b"k" * 32, body: bytes = b'{"type":"t"}'):
    return anyio.run(sender.send, url, secret, "msg_1", dt.datetime.now(dt.UTC), body)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
                                     "0.0.0.0", "224.0.0.251", "fe80::1", "100.64.0.1", "192.168.1.1"])
def test_hosts_resolving_to_non_public_addresses_are_refused_without_connecting(address):
    transport = NoNetwork()
    sender = HttpWebhookSender(resolver=resolving_to(address), transport=transport)
    result = send(sender, "https://hooks.example.com/in")
    assert result.status_code is None and result.error.startswith("refused: hooks.example.com resolves to")
    assert ipaddress.ip_address(address) == ipaddress.ip_address(result.error.split(" to ")[1].split(",")[0])
    assert transport.requests == []


@pytest.mark.parametrize("url", ["https://[::1]/in", "https://[::ffff:127.0.0.1]/in", "https://10.0.0.1/in",
                                 "https://169.254.169.254/latest/meta-data/"])
def test_address_literals_are_checked_too(url):
    transport, calls = NoNetwork(), []
    result = send(HttpWebhookSender(resolver=resolving_to("93.184.215.14", calls=calls), transport=transport), url)
    assert result.error.startswith("refused:") and calls == [] and transport.requests == []


def test_one_non_public_address_among_public_ones_is_enough_to_refuse():
    transport = NoNetwork()
    sender = HttpWebhookSender(resolver=resolving_to("93.184.215.14", "127.0.0.1"), transport=transport)
    assert send(sender, "https://hooks.example.com/in").error.startswith("refused:")
    assert transport.requests == []


def test_plain_http_is_refused_unless_allowed():
    transport = NoNetwork()
    result = send(HttpWebhookSender(resolver=resolving_to("93.184.215.14"), transport=transport), "http://a.example/")
    assert result.error == "refused: only https:// URLs are delivered to" and transport.requests == []


def test_the_receiver_verifies_the_signature_of_a_delivery_to_the_checked_address(webhook_receiver):
    """`hooks.test` resolves (here) to 127.0.0.1 once; the sender connects to that address
    itself, naming the host in the Host header, so DNS cannot change its mind in between."""
    key, secret = new_secret()
    calls: list[str] = []
    sender = HttpWebhookSender(allow_http=True, allow_private=True, resolver=resolving_to("127.0.0.1", calls=calls))
    port = webhook_receiver.base_url.rsplit(":", 1)[1]
    body = b'{"type":"video.ready","timestamp":"2026-01-01T00:00:00Z","data":{"id":"v"}}'
    result = send(sender, f"http://hooks.test:{port}/in?a=1", key, body)
    assert result.succeeded and calls == ["hooks.test"]
    (received,) = webhook_receiver.wait_for(1)
    assert received.path == "/in?a=1" and received.headers["host"] == f"hooks.test:{port}"
    assert Webhook(secret).verify(received.body, received.headers) == {
        "type": "video.ready", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "v"}}
    assert received.headers["webhook-id"] == "msg_1" and received.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()[1]).verify(received.body, received.headers)


def test_redirects_are_not_followed(webhook_receiver):
    webhook_receiver.statuses = [307]
    webhook_receiver.redirect_to = webhook_receiver.url("/elsewhere")
    sender = HttpWebhookSender(allow_http=True, allow_private=True)
    result = send(sender, webhook_receiver.url())
    assert (result.succeeded, result.status_code) == (False, 307)
    assert [r.path for r in webhook_receiver.received] == ["/hook"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_an_endpoint_that_does_not_answer_in_time_fails(silent_server):
    sender = HttpWebhookSender(allow_http=True, allow_private=True, timeout_s=0.3)
    result = send(sender, f"http://127.0.0.1:{silent_server}/in")
    assert (result.status_code, result.error) == (None, "no answer within 0.3 s")


@pytest.fixture
def endless_server() -> Iterator[int]:
    """Answers 200 with a body that never ends."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
            try:
                while True:
                    connection.sendall(b"x" * 65536)
            except OSError:
                return  # the sender hung up: what this test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(timeout=5)


def test_the_answer_is_read_only_up_to_a_bound(endless_server):
    sender = HttpWebhookSender(allow_http=True, allow_private=True, max_response_bytes=64 * 1024)
    assert send(sender, f"http://127.0.0.1:{endless_server}/in").status_code == 200


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only `hooks.test`, and a context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert_path))
    yield server.server_address[1], client_context
    server.shutdown()
    server.server_close()


def test_tls_is_checked_against_the_urls_host_while_connecting_to_the_checked_address(tls_receiver):
    port, trusted = tls_receiver
    sender = HttpWebhookSender(allow_private=True, resolver=resolving_to("127.0.0.1"), ssl_context=trusted)
    assert send(sender, f"https://hooks.test:{port}/in").status_code == 204
    impostor = HttpWebhookSender(allow_private=True, resolver=resolving_to("127.0.0.1"), ssl_context=trusted)
    refused = send(impostor, f"https://other.test:{port}/in")  # same address, a name the certificate lacks
    assert refused.status_code is None and "ConnectError" in refused.error
