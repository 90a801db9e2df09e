"""Port publication syntax: ``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]``."""

from __future__ import annotations

import ipaddress

import attrs

PROTOCOLS = ("tcp", "udp", "sctp")


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

    def conflicts_with(self, other: "PortBinding") -> bool:
        """Whether both would try to bind the same host socket."""
        if (self.host_port, self.protocol) != (other.host_port, other.protocol):
            return False
        return not self.host_ip or not other.host_ip or self.host_ip == other.host_ip


class PortSyntaxError(ValueError):
    """A port string that cannot be parsed; the message says why, the hint how to fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


_HINT = "write it as 'HOST:CONTAINER', 'HOST:CONTAINER/udp' or 'IP:HOST:CONTAINER'"


def _port(text: str, what: str, original: str) -> int:
    if not text.isdigit():
        raise PortSyntaxError(f"{what} {text!r} in {original!r} is not a number", _HINT)
    number = int(text)
    if not 1 <= number <= 65535:
        raise PortSyntaxError(
            f"{what} {number} in {original!r} is out of range", "ports are 1 to 65535"
        )
    return number


def parse_port(text: str) -> PortBinding:
    """Parse one port string; raise :class:`PortSyntaxError` with a fix on bad input."""
    original = text
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        if protocol not in PROTOCOLS:
            raise PortSyntaxError(
                f"unknown protocol {protocol!r} in {original!r}",
                "use tcp, udp or sctp",
            )
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise PortSyntaxError(f"malformed IPv6 address in {original!r}", _HINT)
        host_ip, text = text[1:end], text[end + 2 :]
    parts = text.split(":")
    if not host_ip and len(parts) == 3:
        host_ip, parts = parts[0], parts[1:]
    if len(parts) != 2:
        if len(parts) == 1 and parts[0].isdigit():
            raise PortSyntaxError(
                f"{original!r} names no host port",
                "publish on a fixed host port, e.g. '8080:80', so plans stay stable",
            )
        raise PortSyntaxError(f"cannot read {original!r}", _HINT)
    if "-" in parts[0] or "-" in parts[1]:
        raise PortSyntaxError(
            f"port ranges are not supported ({original!r})", "list each port on its own"
        )
    if host_ip:
        try:
            host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            raise PortSyntaxError(
                f"{host_ip!r} in {original!r} is not an IP address", _HINT
            ) from None
    return PortBinding(
        host_port=_port(parts[0], "host port", original),
        container_port=_port(parts[1], "container port", original),
        protocol=protocol,
        host_ip=host_ip,
    )
