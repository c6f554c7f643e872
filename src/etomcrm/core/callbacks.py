"""Where hub listeners may be: not inside the provider's network unless it says so.

A callback is an address etomcrm itself will call; left open, a customer could make it
call the cloud's metadata service, the database port or an internal admin page
(server-side request forgery). Loopback, private, link-local (metadata), multicast,
reserved and unspecified addresses are refused, by the addresses the host name
resolves to, at registration and again before every delivery (the name may resolve
elsewhere by then). ``ETOMCRM_HUB_INTERNAL_TARGETS`` names the provider's own internal
listeners that are allowed all the same: host names or networks in CIDR notation.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from etomcrm.config import get_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names of metadata services that resolve to link-local addresses on their clouds, and
# may resolve elsewhere on a machine that merely looks them up.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def _allowed_internal(host: str, addresses: list[Address]) -> bool:
    allowed = get_settings().hub_internal_targets
    names = {entry.lower() for entry in allowed if not _is_network(entry)}
    if host.lower() in names:
        return True
    networks = [
        ipaddress.ip_network(entry, strict=False) for entry in allowed if _is_network(entry)
    ]
    return bool(addresses) and all(
        any(address in network for network in networks) for address in addresses
    )


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _internal(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def refusal(callback: str, *, unresolved_ok: bool = False) -> str | None:
    """Why etomcrm will not call ``callback``, or None when it may.

    ``unresolved_ok``: a name that does not resolve yet is no refusal (a listener may
    be registered before its DNS entry exists; each delivery checks again).
    """
    host = (urlsplit(callback).hostname or "").rstrip(".")
    if not host:
        return "the callback names no host"
    if host.lower() in METADATA_HOSTS and not _allowed_internal(host, []):
        return f"{host!r} is a cloud metadata service"
    try:
        literal = ipaddress.ip_address(host)
        addresses: list[Address] = [literal]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            return None if unresolved_ok else f"the host {host!r} does not resolve"
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if _allowed_internal(host, addresses):
        return None
    inside = sorted({str(a) for a in addresses if _internal(a)})
    if inside:
        return (
            f"the host {host!r} is inside a private, loopback or link-local network "
            f"({', '.join(inside)}); the provider allows its own internal listeners with "
            "ETOMCRM_HUB_INTERNAL_TARGETS"
        )
    return None
