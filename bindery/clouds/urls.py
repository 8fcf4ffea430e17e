"""Outbound URL policy: no private, link-local or loopback targets unless explicitly allowed."""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from bindery.errors import BinderyError, FieldError


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def proxy_for(url: str) -> str | None:
    """The proxy the outbound clients will use for ``url`` (HTTPS_PROXY / HTTP_PROXY, less NO_PROXY), as
    httpx, botocore and requests read them from the environment."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            parts.hostname or "", proxies):
        return None
    return proxy


def deferred_to_proxy(url: str) -> str | None:
    """Why the address check of ``url`` was left to a proxy (its host does not resolve here), or None."""
    parts = urlsplit(url)
    proxy = proxy_for(url)
    if proxy is None or resolve(parts.hostname or "", parts.port or 443):
        return None
    shown = urlsplit(proxy)._replace(netloc=urlsplit(proxy).hostname or "").geturl()
    return f"{parts.hostname} does not resolve here: the address check is left to the proxy ({shown})"


def check_url(url: str, field: str, *, allow_private: bool, allow_http_loopback: bool = False,
              must_resolve: bool = True) -> str:
    """Refuse URLs that are not https (http only to loopback where allowed) or that resolve to
    non-public addresses (unless BINDERY_ALLOW_PRIVATE_TARGETS=1). Behind a proxy, a name that does not
    resolve here is the proxy's to resolve: what can be checked (a literal address, a name that resolves)
    still is. ``field`` is the option's name (``url``): errors are FieldErrors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise FieldError(field, f"{url[:200]!r} is not an http(s) URL")
    if parts.scheme == "http" and not (allow_http_loopback and is_loopback_host(host)):
        raise FieldError(field, f"{url[:200]!r} must use https" + (" (plain http only to loopback)"
                                                                   if allow_http_loopback else ""))
    if parts.username or parts.password:
        raise FieldError(field, "credentials do not belong in the URL")
    addresses = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        if must_resolve and proxy_for(url) is None:
            raise FieldError(field, f"cannot resolve host {host}", cli_fix="use --no-check to store it anyway",
                             web_fix="check the name, or untick \"Check the target now\" to store it anyway",
                             api_fix="send \"check\": false to store it anyway")
        return url
    for address in addresses:
        if not address.is_global and not allow_private:
            raise FieldError(field, f"{host} resolves to non-public address {address}",
                             cli_fix="set BINDERY_ALLOW_PRIVATE_TARGETS=1 for on-premise clouds",
                             web_fix="private addresses are refused unless the server's administrator allows "
                                     "on-premise targets",
                             api_fix="private addresses are refused unless the server's administrator allows "
                                     "on-premise targets")
    return url


def refused_target(exc: BinderyError) -> str:
    """A stored target refused when a run starts, in words every surface shows as they are: the record's last
    error is read by the CLI, the console and the API alike, so it names neither a flag nor a form field."""
    if isinstance(exc, FieldError):
        return exc.said("the target's address", exc.web_fix)
    return str(exc)
