"""Server-side SASL (RFC 4422) shared by SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH; sans-IO.

Mechanisms take and return raw octets: each protocol core does its own base64. A mechanism answers
every client message with a step:

* :class:`Challenge`: send it to the client, feed the answer to ``respond()``;
* :class:`NeedCredentials` (SCRAM): look up the stored SCRAM keys (may await), then ``credentials()``;
* :class:`CheckPassword` (PLAIN, LOGIN): the exchange is over, the application checks the password;
* :class:`Success` (SCRAM): authenticated; ``data`` is the server-final message. SMTP (RFC 4954 §4)
  and POP3 (RFC 5034 §4) send it as one more challenge and wait for an empty response before success;
* :class:`Failure`: refuse (``is_malformed`` tells a 501 from a 535).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MECHANISMS = ("SCRAM-SHA-256", "PLAIN", "LOGIN")  # strongest first, the order to advertise
SCRAM_MIN_ITERATIONS = 4096  # RFC 7677 §4: at least 4096
_ATTRIBUTE = re.compile(r"[A-Za-z]=")  # RFC 5802 §7 attr-val
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # RFC 5802 §7 printable, without ","


class SaslUsageError(Exception):
    """The application drove a mechanism out of order (our mistake, not the client's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedCredentials:
    authcid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPassword:
    authcid: str  # the authorization identity is the same: a different one is refused
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Success:
    authcid: str
    data: bytes  # additional data with success (RFC 4422 §3.6); b"" when there is none


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    reason: str
    is_malformed: bool  # the client broke the mechanism's syntax (SMTP 501), not a bad credential (535)


Step = Challenge | NeedCredentials | CheckPassword | Success | Failure


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramCredentials:
    """What the directory stores for SCRAM-SHA-256 (RFC 5802 §3), never the password."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


class Mechanism(Protocol):
    name: str

    def start(self, initial_response: bytes | None) -> Step: ...

    def respond(self, data: bytes) -> Step: ...


def new_mechanism(name: str, *, new_nonce: Callable[[], str] | None = None) -> Mechanism | None:
    """A fresh server-side mechanism for ``name`` (case-insensitive), or None if we have none."""
    match name.upper():
        case "PLAIN":
            return Plain()
        case "LOGIN":
            return Login()
        case "SCRAM-SHA-256":
            return ScramSha256(new_nonce=new_nonce)
        case _:
            return None


# ---- PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) --------------------------------------


class Plain:
    name = "PLAIN"

    def __init__(self) -> None:
        self._is_done = False

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4616 §2: the server sends an empty challenge
        return self.respond(initial_response)

    def respond(self, data: bytes) -> Step:
        if self._is_done:
            raise SaslUsageError("PLAIN takes one message")
        self._is_done = True
        parts = data.split(b"\x00")  # RFC 4616 §2: [authzid] NUL authcid NUL passwd
        if len(parts) != 3:
            return Failure(reason="PLAIN message needs three fields", is_malformed=True)
        try:
            authzid, authcid, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            return Failure(reason="PLAIN message is not UTF-8", is_malformed=True)
        if not authcid or not password:
            return Failure(reason="empty user name or password", is_malformed=True)
        if authzid and authzid != authcid:
            return Failure(reason="acting as another user is not allowed", is_malformed=False)
        return CheckPassword(authcid=authcid, password=password)


class Login:
    name = "LOGIN"

    def __init__(self) -> None:
        self._authcid: str | None = None
        self._is_done = False

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return Challenge(data=b"Username:")
        return self.respond(initial_response)  # some clients send the user name with AUTH LOGIN

    def respond(self, data: bytes) -> Step:
        if self._is_done:
            raise SaslUsageError("LOGIN is over")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self._is_done = True
            return Failure(reason="LOGIN response is not UTF-8", is_malformed=True)
        if self._authcid is None:
            if not text:
                self._is_done = True
                return Failure(reason="empty user name", is_malformed=True)
            self._authcid = text
            return Challenge(data=b"Password:")
        self._is_done = True
        return CheckPassword(authcid=self._authcid, password=text)


# ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) -----------------------------------------------------------


def derive_scram_credentials(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_MIN_ITERATIONS
) -> ScramCredentials:
    """The keys to store when a password is set (RFC 5802 §3); a random 16-octet salt by default."""
    if iterations < SCRAM_MIN_ITERATIONS:
        raise ValueError(f"SCRAM-SHA-256 needs at least {SCRAM_MIN_ITERATIONS} iterations")  # RFC 7677 §4
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)  # Hi()
    client_key = _hmac(salted, b"Client Key")
    return ScramCredentials(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=_hmac(salted, b"Server Key"),
    )


class ScramSha256:
    """SCRAM-SHA-256 without channel binding (we do not offer -PLUS)."""

    name = "SCRAM-SHA-256"

    def __init__(self, *, new_nonce: Callable[[], str] | None = None, mock_key: bytes | None = None) -> None:
        self._new_nonce = new_nonce or _new_nonce
        self._mock_key = mock_key or _MOCK_KEY  # keys the fake salt of unknown users
        self._stage = "start"
        self._authcid = ""
        self._gs2_header = ""
        self._client_first_bare = ""
        self._client_nonce = ""
        self._server_first = ""
        self._nonce = ""
        self._credentials: ScramCredentials | None = None

    def start(self, initial_response: bytes | None) -> Step:
        if self._stage != "start":
            raise SaslUsageError("SCRAM exchange already started")
        self._stage = "client-first"
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4422 §3.3: ask for the client's first message
        return self.respond(initial_response)

    def respond(self, data: bytes) -> Step:
        match self._stage:
            case "client-first":
                return self._client_first(data)
            case "client-final":
                return self._client_final(data)
            case _:
                raise SaslUsageError(f"SCRAM cannot take a message at stage {self._stage}")

    def credentials(self, credentials: ScramCredentials | None) -> Step:
        """The stored keys of ``NeedCredentials.authcid``, or None for an unknown user."""
        if self._stage != "credentials":
            raise SaslUsageError("SCRAM did not ask for credentials")
        if credentials is None:  # RFC 5802 §9: answer as for a real user, so users cannot be probed
            fake_salt = _hmac(self._mock_key, self._authcid.encode("utf-8"))[:16]
            credentials = ScramCredentials(
                salt=fake_salt,
                iterations=SCRAM_MIN_ITERATIONS,
                stored_key=secrets.token_bytes(32),
                server_key=secrets.token_bytes(32),
            )
        self._credentials = credentials
        self._nonce = self._client_nonce + self._new_nonce()
        salt = base64.b64encode(credentials.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={credentials.iterations}"  # RFC 5802 §7
        self._stage = "client-final"
        return Challenge(data=self._server_first.encode("ascii"))

    def _client_first(self, data: bytes) -> Step:
        self._stage = "failed"
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            return _malformed("client-first-message is not UTF-8")
        parts = message.split(",", 2)  # RFC 5802 §7: gs2-cbind-flag "," [authzid] "," bare
        if len(parts) != 3:
            return _malformed("bad gs2 header")
        flag, authzid_field, bare = parts
        if flag.startswith("p="):  # channel binding asked for, but we do not offer -PLUS
            return Failure(reason="channel binding not supported", is_malformed=False)
        if flag not in ("n", "y"):  # RFC 5802 §6: "y" is fine as we offer no channel binding
            return _malformed("bad channel binding flag")
        authzid: str | None = None
        if authzid_field:
            if not authzid_field.startswith("a="):
                return _malformed("bad authzid")
            authzid = _decode_saslname(authzid_field[2:])
        attributes = bare.split(",")
        if len(attributes) < 2 or attributes[0].startswith("m="):  # RFC 5802 §5.1: m= is reserved
            return _malformed("bad client-first-message")
        if not attributes[0].startswith("n=") or not attributes[1].startswith("r="):
            return _malformed("bad client-first-message")
        if not all(_ATTRIBUTE.match(extension) for extension in attributes[2:]):
            return _malformed("bad extension")  # RFC 5802 §7: extensions are attr-val
        authcid = _decode_saslname(attributes[0][2:])
        nonce = attributes[1][2:]
        if not authcid or authzid == "" or not _NONCE.fullmatch(nonce):
            return _malformed("bad user name or nonce")
        if authzid is not None and authzid != authcid:
            return Failure(reason="acting as another user is not allowed", is_malformed=False)
        self._authcid = authcid
        self._gs2_header = f"{flag},{authzid_field},"
        self._client_first_bare = bare
        self._client_nonce = nonce
        self._stage = "credentials"
        return NeedCredentials(authcid=authcid)

    def _client_final(self, data: bytes) -> Step:
        self._stage = "failed"
        credentials = self._credentials
        assert credentials is not None
        try:
            message = data.decode("ascii")
        except UnicodeDecodeError:
            return _malformed("client-final-message is not ASCII")
        without_proof, separator, proof_text = message.rpartition(",p=")  # RFC 5802 §7
        attributes = without_proof.split(",")
        if not separator or len(attributes) < 2:
            return _malformed("bad client-final-message")
        binding, nonce = attributes[0], attributes[1]
        expected_binding = "c=" + base64.b64encode(self._gs2_header.encode("utf-8")).decode("ascii")
        if binding != expected_binding:
            return Failure(reason="channel binding data does not match", is_malformed=False)
        if nonce != f"r={self._nonce}":
            return Failure(reason="nonce does not match", is_malformed=False)
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except binascii.Error:
            return _malformed("proof is not base64")
        if len(proof) != 32:
            return _malformed("proof has the wrong length")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(credentials.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), credentials.stored_key):
            return Failure(reason="invalid proof", is_malformed=False)
        server_signature = _hmac(credentials.server_key, auth_message)
        self._stage = "done"
        verifier = base64.b64encode(server_signature).decode("ascii")
        return Success(authcid=self._authcid, data=f"v={verifier}".encode("ascii"))


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a password or user name (stored strings: unassigned code points refused)."""
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char  # RFC 4013 §2.1
        for char in text
        if not stringprep.in_table_b1(char)
    )
    normalized = unicodedata.normalize("NFKC", mapped)  # RFC 4013 §2.2
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for char in normalized:
        if any(table(char) for table in prohibited):  # RFC 4013 §2.3, §2.5
            raise ValueError(f"character U+{ord(char):04X} is not allowed")
    if any(stringprep.in_table_d1(char) for char in normalized):  # RFC 3454 §6 bidi rules
        if any(stringprep.in_table_d2(char) for char in normalized):
            raise ValueError("mixed right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise ValueError("right-to-left text must start and end with a right-to-left character")
    return normalized


_MOCK_KEY = secrets.token_bytes(32)  # per process: the fake salt of an unknown user stays the same


def _new_nonce() -> str:
    return secrets.token_urlsafe(24)  # base64url: no ","


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _decode_saslname(text: str) -> str:
    """RFC 5802 §5.1: "=2C" is "," and "=3D" is "="; any other "=" makes the name invalid (empty)."""
    if re.search(r"=(?!2C|3D)", text):
        return ""
    return text.replace("=2C", ",").replace("=3D", "=")


def _malformed(reason: str) -> Failure:
    return Failure(reason=reason, is_malformed=True)
