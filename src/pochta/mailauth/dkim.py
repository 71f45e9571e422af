"""DKIM keys and signing (RFC 6376 with RSA-SHA256, RFC 8463 with Ed25519-SHA256), over dkimpy.

dkimpy is the well-kept implementation (also used by Mailman and many milters); we only choose what
to sign and keep the keys in the form it takes.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

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
