"""The client address a request is counted and logged under: X-Forwarded-For is believed only
from a trusted proxy (VODHUB_TRUSTED_PROXIES), and then only up to the first hop it does not
trust, counting from the right."""

from __future__ import annotations

from ipaddress import ip_network
from types import SimpleNamespace

import pytest

from adapters.inbound.http.middleware.state import TRUSTED_PROXIES, TrustedProxies, client_address
from entrypoints.settings import Settings

GATEWAY = "10.0.0.5"


def scope(peer: str, *forwarded_for: str, trusted: str = "10.0.0.0/24, 192.0.2.10, fd00::/8") -> dict:
    proxies = TrustedProxies(ip_network(part.strip(), strict=False) for part in trusted.split(",") if part.strip())
    return {
        "type": "http", "client": (peer, 40000), "state": {},
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
        "litestar_app": SimpleNamespace(state={TRUSTED_PROXIES: proxies}),
    }


def test_an_untrusted_peer_cannot_name_another_client():
    assert client_address(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_nothing_is_trusted_by_default():
    assert client_address(scope("127.0.0.1", "198.51.100.1", trusted="")) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client():
    assert client_address(scope(GATEWAY, "198.51.100.1")) == "198.51.100.1"


def test_the_right_most_untrusted_hop_wins_over_what_the_client_wrote():
    spoofed = scope(GATEWAY, "6.6.6.6, 198.51.100.1, 192.0.2.10")  # client's lie, client, a trusted proxy
    assert client_address(spoofed) == "198.51.100.1"
    assert client_address(scope(GATEWAY, "6.6.6.6", "198.51.100.1")) == "198.51.100.1"  # repeated headers


def test_when_every_hop_is_trusted_the_left_most_is_the_client():
    assert client_address(scope(GATEWAY, "10.0.0.7, 192.0.2.10")) == "10.0.0.7"
    assert client_address(scope(GATEWAY)) == GATEWAY  # no header: the proxy itself


def test_garbage_hops_are_never_trusted_and_ipv6_works():
    assert client_address(scope(GATEWAY, "not-an-address")) == "not-an-address"
    assert client_address(scope("fd00::1", "2001:db8::7")) == "2001:db8::7"
    assert client_address(scope("::ffff:10.0.0.5", "198.51.100.1")) == "198.51.100.1"  # IPv4-mapped peer


def test_the_address_is_worked_out_once_per_request():
    request = scope(GATEWAY, "198.51.100.1")
    assert client_address(request) == "198.51.100.1"
    request["headers"] = [(b"x-forwarded-for", b"6.6.6.6")]
    assert client_address(request) == "198.51.100.1"


def test_a_bad_trusted_proxies_setting_stops_the_process():
    assert len(Settings.from_env({"VODHUB_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}).trusted_proxy_networks()) == 2
    with pytest.raises(SystemExit, match="VODHUB_TRUSTED_PROXIES"):
        Settings.from_env({"VODHUB_TRUSTED_PROXIES": "10.0.0.0/33"})
