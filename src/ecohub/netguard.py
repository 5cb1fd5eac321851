"""Where the hub may send requests on a user's behalf (webhooks): public addresses only, checked when a URL is
saved and again right before each request (a name may resolve elsewhere by then: DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ecohub.errors import ErrorCode, InvalidInput

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """`allow_private` admits loopback and private networks (tests, a development hub); `require_https` refuses
    plain http (on outside development)."""

    allow_private: bool = False
    require_https: bool = False

    def check(self, url: str) -> list[str]:
        """Refuse a URL whose host is or resolves to a private, loopback, link-local, multicast, reserved or cloud
        metadata address (every address the name resolves to is checked); returns those addresses."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("must be an http:// or https:// URL", code=ErrorCode.UNSAFE_URL)
        if self.require_https and parts.scheme != "https":
            raise InvalidInput("must be an https:// URL", code=ErrorCode.UNSAFE_URL)
        if parts.username or parts.password:
            raise InvalidInput("must not carry credentials in the URL", code=ErrorCode.UNSAFE_URL)
        host = parts.hostname.rstrip(".").lower()
        if host in METADATA_HOSTS and not self.allow_private:
            raise InvalidInput(f"{host} is a cloud metadata service", code=ErrorCode.UNSAFE_URL)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as err:
            raise InvalidInput(f"the host {host!r} does not resolve: {err}", code=ErrorCode.UNSAFE_URL) from err
        addresses = sorted({str(info[4][0]) for info in infos})
        if not self.allow_private:
            for address in addresses:
                reason = _not_public(ipaddress.ip_address(address.split("%")[0]))
                if reason:
                    raise InvalidInput(f"{host} resolves to {address}, {reason}: the hub sends requests to public "
                                       "addresses only", code=ErrorCode.UNSAFE_URL)
        return addresses


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _not_public(ip.ipv4_mapped)
    for flag, why in ((ip.is_loopback, "a loopback address"), (ip.is_link_local, "a link-local address"),
                      (ip.is_private, "a private address"), (ip.is_multicast, "a multicast address"),
                      (ip.is_reserved, "a reserved address"), (ip.is_unspecified, "an unspecified address")):
        if flag:
            return why
    if not ip.is_global:
        return "not a public address"
    return None
