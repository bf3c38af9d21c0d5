"""Who is calling: ``client_address(request)`` for the limits and ``is_local(request)`` for the
operator endpoints.

The client address is the socket peer. Proxy headers (``X-Forwarded-For``, ``X-Real-IP``) count only
when the peer is one of ``[server] trusted_proxies`` (IPs or CIDRs): then it is the right-most
``X-Forwarded-For`` entry that is not itself a trusted proxy, since every entry left of that one was
written by the client and can say anything."""
from __future__ import annotations

import ipaddress

from core.config import ConfigError

FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def trusted_proxies(config: dict) -> tuple:
    """``[server] trusted_proxies`` as networks (``ConfigError`` for an entry that is not an IP or CIDR)."""
    entries = config.get("server", {}).get("trusted_proxies", [])
    if not isinstance(entries, list):
        raise ConfigError("[server] trusted_proxies must be a list of IPs or CIDRs")
    try:
        return tuple(ipaddress.ip_network(str(e).strip(), strict=False) for e in entries)
    except ValueError as exc:
        raise ConfigError(f"[server] trusted_proxies: {exc}") from None


def _ip(text: str):
    """The address in ``text`` (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if ip.version == 6 else ip


def _trusted(ip, networks) -> bool:
    return any(ip in net for net in networks)


def client_address(request) -> str:
    peer = _ip(request.ip)
    networks = getattr(request.app.ctx, "trusted_proxies", ())
    if peer is None:
        return request.ip           # a UNIX socket: no address to speak of
    if not _trusted(peer, networks):
        return str(peer)
    hops = [h for value in request.headers.getall("x-forwarded-for", []) for h in value.split(",")]
    if not hops and request.headers.get("x-real-ip"):
        hops = [request.headers["x-real-ip"]]
    nearest = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break                   # unreadable: stay with the last hop a trusted proxy vouched for
        nearest = ip
        if not _trusted(ip, networks):
            break
    return str(nearest)


def is_local(request) -> bool:
    """The socket peer is loopback and the request was not forwarded (a reverse proxy on this host
    would otherwise make every outside request look local)."""
    peer = _ip(request.ip)
    return (peer is not None and peer.is_loopback
            and not any(name in request.headers for name in FORWARDING_HEADERS))
