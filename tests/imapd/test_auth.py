"""Greeting, CAPABILITY, LOGIN, AUTHENTICATE (PLAIN, LOGIN, SCRAM-SHA-256, SASL-IR), STARTTLS, LOGOUT."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket

import pytest

from pochta.proto.sasl import saslprep

from .harness import PASSWORD, Client, Imap, make_listener

_AUTH = "STARTTLS AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN"
_PRE = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE"
_POST = (
    "NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE CONDSTORE"
    " QRESYNC ESEARCH SEARCHRES BINARY STATUS=SIZE MULTIAPPEND APPENDLIMIT=52428800 WITHIN SAVEDATE OBJECTID"
    " QUOTA QUOTA=RES-STORAGE"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_greeting_capability_login_logout(imap: Imap) -> None:
    client = await imap.transcript(
        f"""
        S: * OK [CAPABILITY {_PRE} {_AUTH} {_POST}] imap.example.test Pochta ready
        C: a CAPABILITY
        S: * CAPABILITY {_PRE} {_AUTH} {_POST}
        S: a OK CAPABILITY completed
        C: b NOOP
        S: b OK NOOP completed
        C: c SELECT INBOX
        S: c BAD SELECT is not allowed in state NOT_AUTHENTICATED
        C: d LOGIN alice@example.test "{PASSWORD}"
        S: d OK [CAPABILITY {_PRE} {_POST}] logged in
        C: e ID ("name" "test")
        S: * ID ("name" "Pochta" "version" "0.1.0")
        S: e OK ID completed
        C: f LOGOUT
        S: * BYE logging out
        S: f OK LOGOUT completed
        """
    )
    assert await client.is_closed()


async def test_wrong_password_is_refused(imap: Imap) -> None:
    await imap.transcript(
        """
        S: * OK *
        C: a LOGIN alice@example.test wrong-password
        S: a NO [AUTHENTICATIONFAILED] invalid credentials
        C: b LOGIN nobody@example.test wrong-password
        S: b NO [AUTHENTICATIONFAILED] invalid credentials
        C: c LOGIN "not an address" x
        S: c NO [AUTHENTICATIONFAILED] invalid credentials
        """
    )


async def test_authenticate_plain_with_initial_response_and_continuation(imap: Imap) -> None:
    token = b64(f"\0alice@example.test\0{PASSWORD}".encode())
    wrong = b64(b"\0alice@example.test\0nope")
    await imap.transcript(
        f"""
        S: * OK *
        C: a AUTHENTICATE PLAIN {token}
        S: a OK [CAPABILITY *
        """
    )
    await imap.transcript(
        f"""
        S: * OK *
        C: a AUTHENTICATE PLAIN
        S: + *
        C: {token}
        S: a OK [CAPABILITY *
        """
    )
    await imap.transcript(
        f"""
        S: * OK *
        C: a AUTHENTICATE PLAIN
        S: + *
        C: *
        S: a BAD AUTHENTICATE cancelled
        C: b AUTHENTICATE PLAIN {wrong}
        S: b NO [AUTHENTICATIONFAILED] invalid credentials
        C: c AUTHENTICATE CRAM-MD5
        S: c NO [CANNOT] unsupported mechanism
        """
    )


async def test_authenticate_login(imap: Imap) -> None:
    await imap.transcript(
        f"""
        S: * OK *
        C: a AUTHENTICATE LOGIN
        S: + VXNlcm5hbWU6
        C: {b64(b"alice@example.test")}
        S: + UGFzc3dvcmQ6
        C: {b64(PASSWORD.encode())}
        S: a OK [CAPABILITY *
        """
    )


def _scram_proof(server_first: str, client_first_bare: str, password: str) -> tuple[str, bytes]:
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salt = base64.b64decode(fields["s"])
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_bare = f"c=biws,r={fields['r']}"
    auth_message = f"{client_first_bare},{server_first},{final_bare}".encode()
    signature = hmac.new(stored_key, auth_message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    server_signature = hmac.new(server_key, auth_message, "sha256").digest()
    return f"{final_bare},p={b64(proof)}", server_signature


async def test_authenticate_scram_sha_256(imap: Imap) -> None:
    client = await imap.connect()
    await client.line()
    first_bare = "n=alice@example.test,r=clientnonce123"
    await client.send(f"a AUTHENTICATE SCRAM-SHA-256 {b64(('n,,' + first_bare).encode())}\r\n".encode())
    challenge = await client.line()
    assert challenge.startswith("+ ")
    server_first = base64.b64decode(challenge[2:]).decode()
    final, server_signature = _scram_proof(server_first, first_bare, PASSWORD)
    await client.send(b64(final.encode()).encode() + b"\r\n")
    server_final = await client.line()
    assert base64.b64decode(server_final[2:]) == b"v=" + base64.b64encode(server_signature)
    await client.send(b"\r\n")
    assert (await client.line()).startswith("a OK [CAPABILITY")


async def test_starttls_then_login_and_implicit_tls(imap: Imap) -> None:
    client = await imap.transcript(
        """
        S: * OK *
        C: a STARTTLS
        S: a OK begin TLS negotiation now
        """
    )
    await client.starttls()
    lines = await client.command("CAPABILITY")
    assert "STARTTLS" not in lines[0] and "AUTH=PLAIN" in lines[0]
    assert (await client.command("STARTTLS"))[-1].endswith("BAD STARTTLS not available")
    assert " OK " in (await client.command(f'LOGIN alice@example.test "{PASSWORD}"'))[-1]

    secure = await imap.connect(name="imaps", tls=True)
    greeting = await secure.line()
    assert greeting.startswith("* OK [CAPABILITY") and "STARTTLS" not in greeting
    assert " OK " in (await secure.command(f'LOGIN alice@example.test "{PASSWORD}"'))[-1]


async def test_too_many_bad_commands_end_the_session(imap: Imap) -> None:
    client = await imap.connect()
    await client.line()
    for _ in range(19):
        assert " BAD " in (await client.command("FOO"))[-1]
    await client.send(b"x FOO\r\n")
    assert (await client.line()).startswith("x BAD")
    assert (await client.line()).startswith("* BYE")
    assert await client.is_closed()


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, to connect as a remote client would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel only picks a source
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


async def test_plaintext_login_needs_tls_off_loopback(imap: Imap) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    listener = make_listener("imap", imap.services["imap"], tls=None, idle_timeout=30)
    await listener.bind([f"{address}:0"])
    try:
        reader, writer = await asyncio.open_connection(address, listener.ports[0])
        client = Client(reader, writer)
        imap.clients.append(client)
        greeting = await client.line()
        assert "LOGINDISABLED" in greeting and "AUTH=PLAIN" not in greeting and "STARTTLS" in greeting
        assert (await client.command(f'LOGIN alice@example.test "{PASSWORD}"', tag="a")) == [
            "a NO [PRIVACYREQUIRED] use STARTTLS first"
        ]
        token = b64(f"\0alice@example.test\0{PASSWORD}".encode())
        assert (await client.command(f"AUTHENTICATE PLAIN {token}", tag="b")) == [
            "b NO [PRIVACYREQUIRED] use STARTTLS first"
        ]
        await client.command("STARTTLS", tag="c")
        await client.starttls()
        assert " OK " in (await client.command(f'LOGIN alice@example.test "{PASSWORD}"', tag="d"))[-1]
    finally:
        listener.stop_accepting()
        await listener.finish(2.0)


async def test_a_broken_sasl_line_ends_the_exchange(imap: Imap) -> None:
    await imap.transcript(
        """
        S: * OK *
        C: a AUTHENTICATE PLAIN
        S: + *
        C: %%%not-base64%%%
        S: a BAD SASL response is not base64
        C: b NOOP
        S: b OK NOOP completed
        """
    )
