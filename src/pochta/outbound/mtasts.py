"""MTA-STS (RFC 8461): a domain asks, over DNS and HTTPS, that mail to it go only over verified TLS to
the mail hosts it names. Policies are fetched when the TXT record's id changes and cached for max_age.

Fetching uses the standard library's http.client (certificate verified, no redirects followed, RFC
8461 §3.3) in a worker thread; a policy is small and fetched rarely.
"""

from __future__ import annotations

import asyncio
import enum
import http.client
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

MAX_POLICY_SIZE = 64 * 1024  # RFC 8461 §3.3: policy bodies are small; refuse more
MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: at most a year
_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # RFC 8461 §3.1


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    mode: Mode
    mx: tuple[str, ...]  # host patterns; "*.example.com" matches one leftmost label
    max_age: int

    def allows(self, host: str) -> bool:
        """Whether `host` is one of the policy's mail hosts (RFC 8461 §4.1)."""
        name = host.rstrip(".").lower()
        for pattern in (p.lower() for p in self.mx):
            if pattern.startswith("*."):
                label, _, rest = name.partition(".")
                if label and rest == pattern[2:]:
                    return True
            elif name == pattern:
                return True
        return False


def parse_record(texts: Sequence[bytes]) -> str | None:
    """The policy id from `_mta-sts.DOMAIN` TXT records, or None when there is no single valid one (§3.1)."""
    records = [t.decode("ascii", "replace") for t in texts if t.startswith(b"v=STSv1")]
    if len(records) != 1:
        return None
    fields = dict(part.strip().split("=", 1) for part in records[0].split(";") if "=" in part)
    policy_id = fields.get("id", "").strip()
    return policy_id if _ID.fullmatch(policy_id) else None


def parse_policy(text: str) -> Policy | None:
    """The policy file (RFC 8461 §3.2), or None when it is not a valid STSv1 policy."""
    values: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None
        values.setdefault(key.strip(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        return None
    try:
        mode = Mode(values.get("mode", [""])[0])
        max_age = int(values.get("max_age", [""])[0])
    except ValueError:
        return None
    mx = tuple(values.get("mx", []))
    if not 0 <= max_age <= MAX_AGE_LIMIT or (mode is not Mode.NONE and not mx):
        return None
    return Policy(mode=mode, mx=mx, max_age=max_age)


class _Connection(http.client.HTTPSConnection):
    """HTTPS to an address we resolved ourselves (through the configured resolver, like MX lookups),
    verifying the certificate against the policy host's name."""

    def __init__(self, host: str, *, address: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def fetch_policy_text(
    domain: str, *, address: str, context: ssl.SSLContext, port: int = 443, timeout: float = 30.0
) -> str:
    """GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt with a verified certificate; no redirects
    are followed and only a 200 text/plain answer counts (RFC 8461 §3.3)."""
    connection = _Connection(f"mta-sts.{domain}", address=address, port=port, context=context, timeout=timeout)
    try:
        connection.request("GET", "/.well-known/mta-sts.txt", headers={"Host": f"mta-sts.{domain}"})
        response = connection.getresponse()
        if response.status != 200:
            raise ValueError(f"policy answered HTTP {response.status}")
        if response.headers.get_content_type() != "text/plain":
            raise ValueError("policy is not text/plain")
        body = response.read(MAX_POLICY_SIZE + 1)
    finally:
        connection.close()
    if len(body) > MAX_POLICY_SIZE:
        raise ValueError("policy too large")
    return body.decode("utf-8")


@dataclass(slots=True)
class _Cached:
    policy_id: str
    policy: Policy
    expires: datetime


class PolicyCache:
    """Looks up a domain's policy: the TXT record each time (cheap, cached by DNS), the HTTPS fetch only
    when its id changes or the cached policy expired. A failed fetch keeps a still valid cached policy."""

    def __init__(
        self,
        *,
        txt: Callable[[str], Awaitable[list[bytes]]],
        addresses: Callable[[str], Awaitable[list[str]]],
        context: ssl.SSLContext,
        now: Callable[[], datetime],
        port: int = 443,
    ) -> None:
        self._txt = txt
        self._addresses = addresses
        self._context = context
        self._now = now
        self._port = port
        self._cache: dict[str, _Cached] = {}

    async def policy(self, domain: str) -> Policy | None:
        now = self._now()
        cached = self._cache.get(domain)
        try:
            policy_id = parse_record(await self._txt(f"_mta-sts.{domain}"))
        except Exception:  # DNS trouble: a cached policy still holds (RFC 8461 §5.1)
            policy_id = None
        if policy_id is None:
            return cached.policy if cached and cached.expires > now else None
        if cached and cached.policy_id == policy_id and cached.expires > now:
            return cached.policy
        try:
            address = (await self._addresses(f"mta-sts.{domain}"))[0]
            text = await asyncio.to_thread(
                fetch_policy_text, domain, address=address, context=self._context, port=self._port
            )
        except Exception as exc:  # DNS, TLS, HTTP or content: no fresh policy this time
            log.warning("mta-sts domain=%s policy fetch failed: %s", domain, exc)
            return cached.policy if cached and cached.expires > now else None
        policy = parse_policy(text)
        if policy is None:
            log.warning("mta-sts domain=%s policy invalid", domain)
            return cached.policy if cached and cached.expires > now else None
        self._cache[domain] = _Cached(
            policy_id=policy_id, policy=policy, expires=now + timedelta(seconds=policy.max_age)
        )
        return policy
