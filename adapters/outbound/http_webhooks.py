"""Webhook deliveries over HTTP(S), guarded against server-side request forgery.

Before every attempt the host is resolved here and each address it resolves to is checked
(domain.webhooks.is_public_address); then the connection goes to that checked address, with
the original name in the Host header and in TLS SNI (and the certificate checked against
it), so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are never followed, proxies from the environment are ignored, and the response
is read only up to a bound."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from adapters.outbound.webhook_signing import signed_headers
from application.webhook_ports import AttemptResult
from domain.webhooks import is_public_address

Resolver = Callable[[str, int], Awaitable[list[str]]]
USER_AGENT = "vodhub-webhooks/1"
DEFAULT_PORTS = {"https": 443, "http": 80}


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the host name resolves to, as text."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Refused(Exception):
    """The URL may not be contacted."""


@dataclass(frozen=True)
class Target:
    url: str  # the URL with the checked address in place of the host name
    host_header: str  # the original host[:port]
    server_name: str  # the original host name, for SNI and the certificate check
    address: str


class HttpWebhookSender:
    def __init__(
        self, *, allow_http: bool = False, allow_private: bool = False, resolver: Resolver = system_resolver,
        timeout_s: float = 10.0, max_response_bytes: int = 64 * 1024, transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private
        self.resolver = resolver
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._transport = transport
        self._ssl = ssl_context or ssl.create_default_context()

    async def send(self, url: str, secret: bytes, message_id: str, timestamp: datetime, body: bytes) -> AttemptResult:
        try:
            target = await self.target(url)
        except Refused as refusal:
            return AttemptResult(None, f"refused: {refusal}")
        headers = {**signed_headers(secret, message_id, timestamp, body), "host": target.host_header,
                   "user-agent": USER_AGENT}
        with anyio.move_on_after(self.timeout_s):
            try:
                return await self._post(target, headers, body)
            except httpx.TimeoutException:
                return AttemptResult(None, f"no answer within {self.timeout_s:g} s")
            except httpx.HTTPError as error:
                return AttemptResult(None, f"{type(error).__name__} talking to {target.address}: {error}"[:300])
        return AttemptResult(None, f"no answer within {self.timeout_s:g} s")

    async def _post(self, target: Target, headers: dict[str, str], body: bytes) -> AttemptResult:
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=httpx.Timeout(self.timeout_s), verify=self._ssl,
            transport=self._transport,
        ) as client:
            request = client.build_request("POST", target.url, headers=headers, content=body,
                                           extensions={"sni_hostname": target.server_name})
            response = await client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break  # the answer's status is all that counts; the rest is dropped
            finally:
                await response.aclose()
            return AttemptResult(response.status_code)

    async def target(self, url: str) -> Target:
        """Where to connect for url: a checked address; raises Refused."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (self.allow_http and parts.scheme == "http"):
            raise Refused("only https:// URLs are delivered to")
        host = parts.hostname
        if not host:
            raise Refused("the URL has no host")
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                resolved = await self.resolver(host, port)
            except OSError as error:
                raise Refused(f"{host} does not resolve: {error}") from None
            addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in resolved]
        if not addresses:
            raise Refused(f"{host} does not resolve")
        if not self.allow_private:
            for address in addresses:
                if not is_public_address(address):
                    raise Refused(f"{host} resolves to {address}, which is not a public address")
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{port}"
        return Target(
            url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
            host_header=parts.netloc.rpartition("@")[2],
            server_name=host, address=str(address),
        )
