"""Client addresses: forwarded headers only from trusted proxies, read right to left."""

from __future__ import annotations

import pytest

from consentune.errors import InvalidInput
from consentune.shield.clientaddr import client_address, parse_trusted_proxies

TRUSTED = parse_trusted_proxies(["10.0.0.0/8", "fd00::/8", "192.168.1.1"])


def addr(peer: str, xff: str | None = None, fwd: str | None = None) -> str:
    return client_address(peer=peer, x_forwarded_for=xff, forwarded=fwd, trusted=TRUSTED)


def test_untrusted_peer_ignores_headers() -> None:
    assert addr("203.0.113.9", xff="1.2.3.4", fwd="for=5.6.7.8") == "203.0.113.9"


def test_trusted_peer_walks_chain_right_to_left_skipping_trusted_hops() -> None:
    assert addr("10.0.0.2", xff="6.6.6.6, 198.51.100.7, 10.1.2.3") == "198.51.100.7"


def test_all_hops_trusted_gives_leftmost() -> None:
    assert addr("10.0.0.2", xff="10.9.9.9, 10.1.2.3") == "10.9.9.9"


def test_no_header_from_trusted_peer_gives_peer() -> None:
    assert addr("192.168.1.1") == "192.168.1.1"


@pytest.mark.parametrize("bad", ["unknown", "not an ip", "1.2.3.4.5", "[::1", "", "999.1.1.1"])
def test_malformed_hop_falls_back_to_last_trusted_hop(bad: str) -> None:
    assert addr("10.0.0.2", xff=f"6.6.6.6, {bad}, 10.1.2.3") == "10.1.2.3"
    assert addr("10.0.0.2", xff=bad) in {"10.0.0.2"}


def test_forwarded_header_for_values_with_ports_quotes_and_ipv6() -> None:
    fwd = 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:DB8:cafe::17]:4711", for=10.0.0.5'
    assert addr("10.0.0.2", fwd=fwd) == "2001:db8:cafe::17"
    assert addr("10.0.0.2", fwd="for=_hidden, for=10.0.0.5") == "10.0.0.5"
    assert addr("10.0.0.2", fwd="proto=https") == "10.0.0.2"


def test_x_forwarded_for_wins_in_either_mode_and_header_choice_is_respected() -> None:
    assert addr("10.0.0.2", xff="1.1.1.1", fwd="for=2.2.2.2") == "1.1.1.1"
    only_forwarded = client_address(
        peer="10.0.0.2", x_forwarded_for="1.1.1.1", forwarded="for=2.2.2.2", trusted=TRUSTED, header="forwarded"
    )
    assert only_forwarded == "2.2.2.2"


def test_normalisation_of_ports_brackets_ipv6_and_mapped_ipv4() -> None:
    assert addr("198.51.100.7:5555") == "198.51.100.7"
    assert addr("[2001:0db8:0000::0001]:443") == "2001:db8::1"
    assert addr("::ffff:198.51.100.7") == "198.51.100.7"
    assert addr("10.0.0.2", xff="198.51.100.7:1234") == "198.51.100.7"
    assert addr("fd00::1", xff="2001:DB8::2") == "2001:db8::2"


def test_unparseable_peer_is_returned_verbatim() -> None:
    assert addr("testclient", xff="1.2.3.4") == "testclient"


def test_spoofed_chain_cannot_rotate_address_behind_a_trusted_proxy() -> None:
    seen = {addr("10.0.0.2", xff=f"{i}.{i}.{i}.{i}, 198.51.100.7") for i in range(1, 50)}
    assert seen == {"198.51.100.7"}


def test_parse_trusted_proxies_accepts_cidrs_hosts_and_host_bits() -> None:
    nets = parse_trusted_proxies(["10.0.0.1/8", "::1", " 127.0.0.1 "])
    assert [str(n) for n in nets] == ["10.0.0.0/8", "::1/128", "127.0.0.1/32"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.local", "", "1.2.3"])
def test_parse_trusted_proxies_rejects_bad_entries_with_a_hint(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_trusted_proxies([bad])
    assert repr(bad) in info.value.message and info.value.hint
