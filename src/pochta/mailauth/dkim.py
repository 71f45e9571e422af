"""DKIM keys, signing and verification (RFC 6376 with RSA-SHA256, RFC 8463 with Ed25519-SHA256), over dkimpy.

dkimpy is the well-kept implementation (also used by Mailman and many milters); we only choose what
to sign and keep the keys in the form it takes.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import dkim
import dkim.util
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pochta.dns import DomainNotFound, Resolver, TemporaryLookupFailure
from pochta.mail.headers import header_values

RSA_BITS = 2048  # RFC 8301 §3.2: at least 1024, 2048 recommended


class Algorithm(enum.StrEnum):
    RSA = "rsa-sha256"
    ED25519 = "ed25519-sha256"


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: Algorithm
    private_key: str  # PEM (RSA) or base64 of the 32-octet seed (Ed25519)
    public_key: str  # base64 p= value

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record value to publish (RFC 6376 §3.6.1)."""
        kind = "rsa" if self.algorithm is Algorithm.RSA else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public_key}"


def generate(domain: str, selector: str, algorithm: Algorithm) -> SigningKey:
    if algorithm is Algorithm.RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        ed_key = ed25519.Ed25519PrivateKey.generate()
        seed = ed_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        private = base64.b64encode(seed).decode()
        public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_key=private,
        public_key=base64.b64encode(public).decode(),
    )


def sign(message: bytes, keys: Sequence[SigningKey]) -> bytes:
    """DKIM-Signature fields for `message` (to prepend), one per key: RSA and Ed25519 side by side
    is what RFC 8463 §4 suggests while verifiers learn Ed25519."""
    fields = b""
    for key in keys:
        fields += dkim.sign(
            message,
            key.selector.encode(),
            key.domain.encode(),
            key.private_key.encode(),
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=key.algorithm.value.encode(),
            linesep=b"\r\n",
        )
    return fields


# --- verification (RFC 6376 §6, RFC 8463) -----------------------------------------------------------------

MAX_SIGNATURES = 10  # RFC 6376 §6.1 lets a verifier limit the signatures it checks; more is a denial of service
THREAD_ABOVE = 64 * 1024  # octets: hash larger messages in a worker thread, off the event loop


class DkimResult(enum.StrEnum):
    """RFC 8601 §2.7.1 words for ``dkim=``."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimOutcome:
    """One signature's verdict."""

    result: DkimResult
    domain: str = ""  # d= (the SDID)
    selector: str = ""
    algorithm: str = ""
    identity: str = ""  # i= (the AUID)
    signature: str = ""  # the start of b=, to tell signatures apart (RFC 6008)
    reason: str = ""


async def verify(message: bytes, resolver: Resolver) -> list[DkimOutcome]:
    """Every DKIM-Signature of ``message`` (up to MAX_SIGNATURES), verified with keys from ``resolver``.

    The keys are fetched first through our resolver (so DNS trouble is a temperror for that signature,
    never a fail), then dkimpy checks the hashes and signatures against them.
    """
    header_block = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    values = header_values(header_block, "DKIM-Signature")[:MAX_SIGNATURES]
    if not values:
        return []
    outcomes: list[DkimOutcome | None] = []
    keys: dict[bytes, bytes] = {}
    for value in values:
        outcome, _ = _parse_signature(value)
        if outcome.result is DkimResult.NONE:  # parsed: fetch its key
            name = f"{outcome.selector}._domainkey.{outcome.domain}"
            failure, record = await fetch_key(resolver, name)
            if failure:
                outcome = dataclasses.replace(outcome, result=failure[0], reason=failure[1])
            else:
                keys[f"{name}.".lower().encode()] = record
        outcomes.append(outcome if outcome.result is not DkimResult.NONE else None)
    pending = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if pending:
        checked = (
            await asyncio.to_thread(_check_signatures, message, pending, keys)
            if len(message) > THREAD_ABOVE
            else _check_signatures(message, pending, keys)
        )
        for index, (result, reason) in zip(pending, checked, strict=True):
            parsed, _ = _parse_signature(values[index])
            outcomes[index] = dataclasses.replace(parsed, result=result, reason=reason)
    return [outcome for outcome in outcomes if outcome is not None]


def _parse_signature(value: bytes) -> tuple[DkimOutcome, dict[bytes, bytes]]:
    """The tags of one DKIM-Signature; result NONE means "well formed, verify it"."""
    try:
        tags = dkim.util.parse_tag_value(value)
    except dkim.util.InvalidTagValueList as exc:
        return DkimOutcome(result=DkimResult.PERMERROR, reason=f"bad tag list: {exc}"), {}

    def text(tag: bytes) -> str:
        return re.sub(r"\s+", "", tags.get(tag, b"").decode("utf-8", "replace"))

    outcome = DkimOutcome(
        result=DkimResult.NONE,
        domain=text(b"d").lower(),
        selector=text(b"s"),
        algorithm=text(b"a").lower(),
        identity=text(b"i"),
        signature=text(b"b")[:12],
    )
    missing = [tag.decode() for tag in (b"v", b"a", b"b", b"bh", b"d", b"h", b"s") if tag not in tags]
    if missing:  # RFC 6376 §6.1.1
        return dataclasses.replace(outcome, result=DkimResult.PERMERROR, reason=f"missing {', '.join(missing)}"), tags
    if tags[b"v"] != b"1":
        return dataclasses.replace(outcome, result=DkimResult.PERMERROR, reason="unknown version"), tags
    if outcome.algorithm not in (Algorithm.RSA, Algorithm.ED25519):  # RFC 8301 §3.1: rsa-sha1 is not accepted
        return dataclasses.replace(outcome, result=DkimResult.PERMERROR, reason=f"algorithm {outcome.algorithm}"), tags
    if not _SELECTOR.fullmatch(outcome.selector) or not _SELECTOR.fullmatch(outcome.domain):
        return dataclasses.replace(outcome, result=DkimResult.PERMERROR, reason="bad d= or s="), tags
    return outcome, tags


_SELECTOR = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?)*"
)
# dkimpy logs a remote's broken signature at ERROR; our outcome carries the reason instead.
QUIET_LOG = logging.Logger("dkimpy", level=logging.CRITICAL + 1)


async def fetch_key(resolver: Resolver, name: str) -> tuple[tuple[DkimResult, str] | None, bytes]:
    """The key record at ``name`` (selector._domainkey.domain), or the result it gives without a key."""
    try:
        records = await resolver.txt(name)
    except DomainNotFound:
        records = []
    except TemporaryLookupFailure as exc:
        return (DkimResult.TEMPERROR, f"key lookup: {exc}"), b""
    keys = [record for record in records if record.strip()]
    if not keys:
        return (DkimResult.PERMERROR, f"no key at {name}"), b""  # RFC 6376 §6.1.2
    record = keys[0]
    try:
        tags = dkim.util.parse_tag_value(record)
    except dkim.util.InvalidTagValueList:
        return (DkimResult.PERMERROR, f"bad key record at {name}"), b""
    if not tags.get(b"p", b"").strip():
        return (DkimResult.PERMERROR, "key revoked"), b""  # RFC 6376 §3.6.1: empty p=
    try:
        dkim.evaluate_pk(name.encode(), record)
    except (dkim.DKIMException, ValueError) as exc:
        return (DkimResult.PERMERROR, f"bad key: {exc}"), b""
    return None, record


def _check_signatures(message: bytes, indexes: list[int], keys: dict[bytes, bytes]) -> list[tuple[DkimResult, str]]:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return keys.get(name.lower())

    verifier = dkim.DKIM(message, minkey=1024, logger=QUIET_LOG)  # RFC 8301 §3.2: smaller RSA keys are refused
    results: list[tuple[DkimResult, str]] = []
    for index in indexes:
        try:
            is_valid = verifier.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.ValidationError as exc:  # body hash mismatch, expired, …
            results.append((DkimResult.FAIL, str(exc)))
        except dkim.DKIMException as exc:  # key or message format, unknown key type
            results.append((DkimResult.PERMERROR, str(exc)))
        else:
            results.append((DkimResult.PASS, "") if is_valid else (DkimResult.FAIL, "signature did not verify"))
    return results
