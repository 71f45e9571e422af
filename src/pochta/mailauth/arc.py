"""ARC chain verification (RFC 8617) over dkimpy, with the keys fetched through our Resolver.

A passing chain says which intermediaries handled the message and what they saw (their
ARC-Authentication-Results). We use it for one decision: a DMARC failure may be forgiven when the newest
seal is by a sealer the operator trusts (a mailing list that rewrote the message, say).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

import dkim
import dkim.util

from pochta.dns import Resolver
from pochta.mail.headers import header_values
from pochta.mailauth.dkim import QUIET_LOG, THREAD_ABOVE, DkimResult, fetch_key

MAX_INSTANCE = 50  # RFC 8617 §4.2.1: i= runs from 1 to 50


class ArcResult(enum.StrEnum):
    """RFC 8617 §4.4 chain validation status, as in ``arc=`` (RFC 8601 registry) and ``cv=``."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"  # a key could not be fetched; the chain is neither good nor bad


@dataclass(frozen=True, slots=True, kw_only=True)
class ArcOutcome:
    result: ArcResult
    instance: int = 0  # the newest i=
    sealer: str = ""  # d= of the newest ARC-Seal (on a pass: who vouches for the chain)
    reason: str = ""


async def verify(message: bytes, resolver: Resolver) -> ArcOutcome:
    header_block = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    seals = header_values(header_block, "ARC-Seal")
    signatures = header_values(header_block, "ARC-Message-Signature")
    if not seals and not signatures and not header_values(header_block, "ARC-Authentication-Results"):
        return ArcOutcome(result=ArcResult.NONE)
    if len(seals) > MAX_INSTANCE or len(signatures) > MAX_INSTANCE:
        return ArcOutcome(result=ArcResult.FAIL, reason="more than 50 ARC sets")
    keys: dict[bytes, bytes] = {}
    for value in [*seals, *signatures]:
        try:
            tags = dkim.util.parse_tag_value(value)
        except dkim.util.InvalidTagValueList:
            continue  # dkimpy reports the broken set
        selector, domain = tags.get(b"s", b"").strip(), tags.get(b"d", b"").strip()
        if not selector or not domain:
            continue
        try:
            name = f"{selector.decode('ascii')}._domainkey.{domain.decode('ascii')}".lower()
        except UnicodeDecodeError:
            continue
        if f"{name}.".encode() in keys:
            continue
        failure, record = await fetch_key(resolver, name)
        if failure and failure[0] is DkimResult.TEMPERROR:
            return ArcOutcome(result=ArcResult.TEMPERROR, reason=failure[1])
        if not failure:
            keys[f"{name}.".encode()] = record
    if len(message) > THREAD_ABOVE:
        return await asyncio.to_thread(_check_chain, message, keys)
    return _check_chain(message, keys)


def _check_chain(message: bytes, keys: dict[bytes, bytes]) -> ArcOutcome:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return keys.get(name.lower())

    try:
        status, sets, comment = dkim.ARC(message, logger=QUIET_LOG, minkey=1024).verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as exc:
        return ArcOutcome(result=ArcResult.FAIL, reason=str(exc))
    newest = sets[0] if sets else {}
    instance = int(newest.get("instance", 0))
    sealer = newest.get("as-domain", b"").decode("ascii", "replace").lower()
    if status == dkim.CV_Pass:
        return ArcOutcome(result=ArcResult.PASS, instance=instance, sealer=sealer, reason=str(comment))
    if status == dkim.CV_None and not sets:
        return ArcOutcome(result=ArcResult.NONE, reason=str(comment))
    return ArcOutcome(result=ArcResult.FAIL, instance=instance, sealer=sealer, reason=str(comment))
