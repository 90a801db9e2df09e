"""Port publication syntax: ``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]``.

The text form of a :class:`PortBinding` (``str()``) is part of each owner's config hash,
so it must stay stable: changing it would make every owner look changed.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

PROTOCOLS = ("tcp", "udp", "sctp")

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() accepts '²', int() does not
_HINT = "write it as 'HOST:CONTAINER', 'HOST:CONTAINER/udp' or 'IP:HOST:CONTAINER'"

# 1..65535 without leading zeros, for the JSON Schema (ECMAScript regex syntax).
PORT_NUMBER_PATTERN = (
    r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
    r"|[1-9][0-9]{0,3})"
)
PORT_PATTERN = (
    r"^(?:(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?"
    + PORT_NUMBER_PATTERN + ":" + PORT_NUMBER_PATTERN + r"(?:/(?:tcp|udp|sctp))?$"
)


@attrs.frozen(order=True)
class PortBinding:
    """One published port of a group's owner."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def __str__(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        if ":" in self.host_ip:
            ip = f"[{self.host_ip}]:"
        return f"{ip}{self.host_port}:{self.container_port}/{self.protocol}"

    @property
    def host_socket(self) -> str:
        """The host side as an operator reads it: ``127.0.0.1:8080/tcp`` or ``8080/tcp``."""
        ip = f"[{self.host_ip}]:" if ":" in self.host_ip else (
            f"{self.host_ip}:" if self.host_ip else "")
        return f"{ip}{self.host_port}/{self.protocol}"

    def conflicts_with(self, other: "PortBinding") -> bool:
        """Whether both would try to bind the same host socket.

        No address means every address; ``0.0.0.0`` and ``::`` mean every address of
        their family, so they collide with any address of that family.
        """
        if (self.host_port, self.protocol) != (other.host_port, other.protocol):
            return False
        if not self.host_ip or not other.host_ip or self.host_ip == other.host_ip:
            return True
        mine, theirs = ipaddress.ip_address(self.host_ip), ipaddress.ip_address(other.host_ip)
        if mine.version != theirs.version:
            return False
        return mine.is_unspecified or theirs.is_unspecified


class PortSyntaxError(ValueError):
    """A port string that cannot be parsed; the message says why, the hint how to fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _number(text: str, what: str, original: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise PortSyntaxError(f"{what} {text!r} in {original!r} is not a number", _HINT)
    number = int(text)
    if not 1 <= number <= 65535:
        raise PortSyntaxError(f"{what} {number} in {original!r} is out of range",
                              "ports are 1 to 65535")
    return number


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def parse_port(text: str) -> PortBinding:
    """Parse one port string; raise :class:`PortSyntaxError` with a fix on bad input."""
    original = text
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        if protocol not in PROTOCOLS:
            raise PortSyntaxError(f"unknown protocol {protocol!r} in {original!r}",
                                  "use tcp, udp or sctp, in lower case")
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise PortSyntaxError(f"malformed IPv6 address in {original!r}",
                                  "write IPv6 addresses in brackets: '[::1]:8080:80'")
        host_ip, text = text[1:end], text[end + 2 :]
    parts = text.split(":")
    if not host_ip and len(parts) == 3:
        host_ip, parts = parts[0], parts[1:]
    if len(parts) == 1 and _DIGITS.fullmatch(parts[0]):
        raise PortSyntaxError(
            f"{original!r} names no host port",
            "publish on a fixed host port, e.g. '8080:80', so that plans stay stable")
    if len(parts) == 2 and not host_ip and _looks_like_ip(parts[0]):
        raise PortSyntaxError(f"{original!r} names an address and one port",
                              "write 'IP:HOST_PORT:CONTAINER_PORT', e.g. '127.0.0.1:8080:80'")
    if len(parts) != 2:
        raise PortSyntaxError(f"cannot read port {original!r}", _HINT)
    if "-" in parts[0] or "-" in parts[1]:
        raise PortSyntaxError(f"port range in {original!r} is not supported",
                              "list each port on its own")
    if host_ip:
        try:
            ip = ipaddress.ip_address(host_ip)
        except ValueError:
            raise PortSyntaxError(f"{host_ip!r} in {original!r} is not an IP address",
                                  "use an IPv4 address, or an IPv6 address in brackets") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            # Docker drops the zone and binds every address (measured): refuse it.
            raise PortSyntaxError(f"{host_ip!r} in {original!r} has a zone id, which Docker "
                                  "drops to publish on every address instead",
                                  f"drop the '%{ip.scope_id}', or publish on another address")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # Docker binds the IPv4 address: say so, as it reports it
        host_ip = str(ip)
    return PortBinding(
        host_port=_number(parts[0], "host port", original),
        container_port=_number(parts[1], "container port", original),
        protocol=protocol,
        host_ip=host_ip,
    )
