"""Port strings: what parses, to what, and what is refused with which fix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackctl.spec.ports import PortBinding, PortSyntaxError, parse_port


@pytest.mark.parametrize("text, expected", [
    ("8080:80", PortBinding(8080, 80, "tcp", "")),
    ("5353:53/udp", PortBinding(5353, 53, "udp", "")),
    ("9000:9000/sctp", PortBinding(9000, 9000, "sctp", "")),
    ("127.0.0.1:9443:443/tcp", PortBinding(9443, 443, "tcp", "127.0.0.1")),
    ("[::1]:8080:80", PortBinding(8080, 80, "tcp", "::1")),
    ("[0:0::1]:8080:80", PortBinding(8080, 80, "tcp", "::1")),  # address normalized
    ("1:65535", PortBinding(1, 65535, "tcp", "")),
])
def test_valid_ports(text: str, expected: PortBinding) -> None:
    assert parse_port(text) == expected


@pytest.mark.parametrize("text, message", [
    ("80", "'80' names no host port"),
    ("http:80", "host port 'http' in 'http:80' is not a number"),
    ("²:80", "host port '²' in '²:80' is not a number"),  # isdigit() would say yes
    ("0:80", "host port 0 in '0:80' is out of range"),
    ("8080:65536", "container port 65536 in '8080:65536' is out of range"),
    ("8080:80/TCP", "unknown protocol 'TCP' in '8080:80/TCP'"),
    ("8080:80/", "unknown protocol '' in '8080:80/'"),
    ("1:2:3:4", "cannot read port '1:2:3:4'"),
    ("127.0.0.1:80", "'127.0.0.1:80' names an address and one port"),
    ("300.1.1.1:80:80", "'300.1.1.1' in '300.1.1.1:80:80' is not an IP address"),
    ("localhost:80:80", "'localhost' in 'localhost:80:80' is not an IP address"),
    ("[::1:80:80", "malformed IPv6 address in '[::1:80:80'"),
    ("8000-8010:80", "port range in '8000-8010:80' is not supported"),
    ("", "cannot read port ''"),
])
def test_invalid_ports_say_why(text: str, message: str) -> None:
    with pytest.raises(PortSyntaxError) as caught:
        parse_port(text)
    assert str(caught.value) == message
    assert caught.value.hint


def test_text_form_is_stable() -> None:
    """``str()`` goes into each owner's config hash: it must not change."""
    assert str(parse_port("8080:80")) == "8080:80/tcp"
    assert str(parse_port("127.0.0.1:9443:443")) == "127.0.0.1:9443:443/tcp"
    assert str(parse_port("[::1]:53:53/udp")) == "[::1]:53:53/udp"


ports = st.integers(1, 65535)
# As validation writes them: an IPv4-mapped IPv6 address is read as the IPv4 address
# Docker binds (see test_an_ipv4_mapped_address_is_read_as_ipv4).
addresses = st.one_of(st.just(""), st.ip_addresses().filter(
    lambda a: getattr(a, "ipv4_mapped", None) is None).map(str))


@given(ports, ports, st.sampled_from(["tcp", "udp", "sctp"]), addresses)
def test_text_form_parses_back_to_the_same_binding(host: int, container: int, proto: str,
                                                   ip: str) -> None:
    binding = PortBinding(host, container, proto, ip)
    assert parse_port(str(binding)) == binding


def test_an_ipv4_mapped_address_is_read_as_ipv4() -> None:
    assert parse_port("[::ffff:0:0]:1:1") == PortBinding(1, 1, "tcp", "0.0.0.0")
    assert str(parse_port("[::ffff:127.0.0.1]:8080:80")) == "127.0.0.1:8080:80/tcp"


@pytest.mark.parametrize("a, b, conflict", [
    ("8080:80", "8080:81", True),
    ("8080:80", "8080:80/udp", False),
    ("127.0.0.1:8080:80", "127.0.0.2:8080:80", False),
    ("127.0.0.1:8080:80", "8080:80", True),          # no address: every address
    ("0.0.0.0:8080:80", "127.0.0.1:8080:80", True),  # 0.0.0.0: every IPv4 address
    ("[::]:8080:80", "[::1]:8080:80", True),
    ("[::]:8080:80", "127.0.0.1:8080:80", False),    # another family
    ("[::1]:8080:80", "[::1]:8080:81", True),
])
def test_conflicts(a: str, b: str, conflict: bool) -> None:
    assert parse_port(a).conflicts_with(parse_port(b)) is conflict
    assert parse_port(b).conflicts_with(parse_port(a)) is conflict
