"""The client address behind trusted proxies, and how addresses are counted for throttling."""

from __future__ import annotations

import pytest

from ywmessaging.auth.throttle import client_net, ip_key
from ywmessaging.config import Settings
from ywmessaging.errors import ConfigError
from ywmessaging.forwarded import client_address, parse_trusted

LB = parse_trusted("10.0.0.0/8, 192.168.1.7, fd00::/8")


def test_parse_trusted_reads_addresses_and_networks_and_names_a_bad_one() -> None:
    assert [str(n) for n in LB] == ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
    assert parse_trusted(" , ") == ()
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_trusted("10.0.0.1, 10.0.0.300")
    with pytest.raises(ConfigError, match="YWM_TRUSTED_PROXIES"):
        Settings(trusted_proxies="example.org").validate()


@pytest.mark.parametrize(("peer", "header", "expected"), [
    ("203.0.113.5", "198.51.100.1", "203.0.113.5"),        # a direct client: header ignored
    ("10.1.2.3", "198.51.100.1", "198.51.100.1"),          # through the balancer
    ("10.1.2.3", "198.51.100.1, 10.9.9.9", "198.51.100.1"),  # two trusted hops
    ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),   # the client's own part: ignored
    ("10.1.2.3", "junk, 198.51.100.1", "198.51.100.1"),
    ("10.1.2.3", "198.51.100.1, junk", "10.1.2.3"),        # garbage next to us: keep the peer
    ("10.1.2.3", "10.4.4.4, 10.5.5.5", "10.4.4.4"),        # all trusted: the leftmost
    ("::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"),   # IPv4-mapped peer
    ("fd00::1", "2001:db8::7", "2001:db8::7"),
    ("10.1.2.3", ",".join(["198.51.100.1"] * 33), "10.1.2.3"),  # too long to believe
])
def test_client_address(peer: str, header: str, expected: str) -> None:
    assert client_address(peer, [header], LB) == expected


def test_several_headers_are_one_list_and_no_proxies_means_the_peer() -> None:
    assert client_address("10.1.2.3", ["198.51.100.1", "10.9.9.9"], LB) == "198.51.100.1"
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"
    assert client_address(None, ["198.51.100.1"], LB) is None


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert client_net("2001:db8:1:2:aaaa::1") == client_net("2001:db8:1:2:bbbb::9") \
        == "2001:db8:1:2::/64"
    assert client_net("2001:db8:1:3::1") != client_net("2001:db8:1:2::1")
    assert client_net("::ffff:198.51.100.1") == "198.51.100.1"
    assert (client_net("198.51.100.1"), client_net(None)) == ("198.51.100.1", "unknown")
    assert ip_key("2001:db8::1") == "ip:2001:db8::/64"
