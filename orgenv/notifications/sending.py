"""One HTTP POST to a webhook endpoint, made safely: the standard library's http.client on a
socket this module connects itself.

- The destination must be `https` (or `http` to a host in WEBHOOK_ALLOWED_HOSTS), and the
  address connected to must be public unless the host is allowed. The name is resolved once,
  each address checked, and the socket connected to a checked address itself — never to the
  name again — so a DNS answer that changes between the check and the connection (DNS
  rebinding) cannot reach a private address. The peer address of the connected socket is
  checked once more.
- The whole attempt (connecting, sending, the answer's head and its first KB) has
  WEBHOOK_TIMEOUT seconds; past them the socket is shut, whatever the receiver trickles.
- Redirects are never followed (http.client does not follow them; a 3xx is a failure).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from django.conf import settings

ANSWER_KEPT = 1024
USER_AGENT = "orgenv-webhooks/1"


class Refused(Exception):
    """The destination may not be connected to; the message says why."""


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status and the answer's first KB, or an error before any."""

    status: int | None
    body: str
    duration_ms: int
    error: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def allowed_host(host: str) -> bool:
    return host.lower().strip("[]") in settings.WEBHOOK_ALLOWED_HOSTS


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an endpoint's address, in one sentence; None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "Enter a valid URL, such as https://hooks.example.com/orgenv."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Enter an https:// URL, such as https://hooks.example.com/orgenv."
    if parts.username or parts.password:
        return "Leave the user name and password out of the URL: deliveries are signed instead."
    if parts.scheme == "http" and not allowed_host(parts.hostname):
        return (
            f"Use https: http is only allowed to the hosts in WEBHOOK_ALLOWED_HOSTS, and "
            f"{parts.hostname} is not one of them."
        )
    return None


def public(address: str) -> bool:
    """Whether an IP address is on the public internet: not private, loopback, link-local,
    shared (100.64/10), reserved or multicast, also when written as IPv4 in IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def guarded_connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected to `host`, at an address the SSRF rule allows. Raises Refused
    (before any connection is attempted) when no resolved address is allowed."""
    allowed = allowed_host(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"{host} does not resolve ({error.strerror})") from None
    permitted = [info for info in infos if allowed or public(info[4][0])]
    if not permitted:
        addresses = ", ".join(sorted({info[4][0] for info in infos}))
        raise Refused(
            f"{host} resolves to {addresses}, not a public address (add the host to "
            "WEBHOOK_ALLOWED_HOSTS to allow it)"
        )
    error: OSError | None = None
    for family, kind, proto, _, address in permitted:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as failure:
            sock.close()
            error = failure
            continue
        peer = sock.getpeername()[0]
        if not (allowed or public(peer)):  # the address actually connected to
            sock.close()
            raise Refused(f"{host} connected to {peer}, not a public address")
        return sock
    raise error or OSError(f"could not connect to {host}")


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, timeout: float, tls: bool) -> None:
        super().__init__(host, port, timeout=timeout)
        self.tls = tls

    def connect(self) -> None:
        sock = guarded_connect(self.host, self.port, self.timeout)
        if self.tls:
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Answer:
    """POST `body` to `url` once; never raises for what the network or the receiver does
    (the Answer says it), only Refused for a destination the rules forbid."""
    timeout = settings.WEBHOOK_TIMEOUT if timeout is None else timeout
    problem = url_problem(url)  # WEBHOOK_ALLOWED_HOSTS may have changed since it was saved
    if problem:
        raise Refused(problem)
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _Connection(parts.hostname or "", port, timeout, tls)
    started = time.monotonic()
    timer = threading.Timer(timeout, _abort, args=(connection,))
    timer.daemon = True
    timer.start()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = connection.getresponse()
        answer = response.read(ANSWER_KEPT).decode("utf-8", errors="replace")
        status = response.status
        error = ""
        if 300 <= status < 400:
            location = response.getheader("Location", "")
            error = f"redirect to {location[:200] or '?'} not followed"
        return Answer(
            status=status,
            body=answer,
            duration_ms=took(),
            error=error,
            retry_after=retry_after(response.getheader("Retry-After")),
        )
    except Refused:
        raise
    except (OSError, http.client.HTTPException) as failure:
        timed_out = isinstance(failure, TimeoutError) or time.monotonic() - started >= timeout
        error = f"timed out after {timeout:g} s" if timed_out else _describe(failure)
        return Answer(status=None, body="", duration_ms=took(), error=error)
    finally:
        timer.cancel()
        connection.close()


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _describe(failure: Exception) -> str:
    if isinstance(failure, ConnectionRefusedError):
        return "connection refused"
    if isinstance(failure, ssl.SSLError):
        return f"TLS failed: {failure.reason or failure}"[:300]
    if isinstance(failure, http.client.RemoteDisconnected):
        return "the receiver closed the connection without answering"
    text = str(failure) or type(failure).__name__
    return text[:300]


def retry_after(header: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
