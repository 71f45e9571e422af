"""POP3 sessions over real sockets: greeting, CAPA, every way to log in, STLS and implicit TLS, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from .harness import AUTH_DELAY, PASSWORD, Pop3

CAPA_BEFORE_LOGIN = """
    S: +OK capability list follows
    S: TOP
    S: USER
    S: SASL SCRAM-SHA-256 PLAIN LOGIN
    S: RESP-CODES
    S: AUTH-RESP-CODE
    S: PIPELINING
    S: UIDL
    S: UTF8 USER
    S: STLS
    S: IMPLEMENTATION Pochta
    S: .
"""


async def test_greeting_capa_login_and_quit(pop3: Pop3) -> None:
    await pop3.deliver("alice@example.test", b"Subject: one\r\n\r\nbody\r\n")
    client = await pop3.transcript(
        f"""
        S: +OK pop.example.test POP3 server ready
        C: CAPA
        {CAPA_BEFORE_LOGIN}
        C: USER alice@example.test
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK maildrop has 1 messages (22 octets)
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: UIDL
        S: IMPLEMENTATION Pochta
        S: .
        C: NOOP
        S: +OK
        C: QUIT
        S: +OK pop.example.test POP3 server signing off (1 messages left)
        """
    )
    assert await client.is_closed()


async def test_wrong_password_and_unknown_user_get_auth_code_after_a_delay(pop3: Pop3) -> None:
    client = await pop3.connect()
    await client.line()
    for user, password in (("alice@example.test", "wrong password"), ("nobody@example.test", PASSWORD)):
        started = time.monotonic()
        assert await client.login(user, password) == "-ERR [AUTH] invalid user name or password"
        assert time.monotonic() - started >= AUTH_DELAY
    assert await client.command("STAT") == "-ERR log in first"
    assert await client.login("alice@example.test") == "+OK maildrop has 0 messages (0 octets)"


async def test_three_failed_logins_close_the_connection(pop3: Pop3) -> None:
    client = await pop3.connect()
    await client.line()
    for _ in range(3):
        assert (await client.login("alice@example.test", "nope")).startswith("-ERR [AUTH]")
    assert await client.is_closed()


async def test_auth_plain_with_initial_response_and_an_empty_challenge(pop3: Pop3) -> None:
    token = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode()
    await pop3.transcript(
        f"""
        S: +OK*
        C: AUTH PLAIN {token}
        S: +OK maildrop has 0 messages (0 octets)
        """
    )
    client = await pop3.transcript(
        """
        S: +OK*
        C: AUTH PLAIN
        """
    )
    assert await client.raw_line() == b"+ \r\n"
    await pop3.transcript(
        f"""
        C: {token}
        S: -ERR [IN-USE] maildrop is in use by another POP3 session
        """,
        client=client,
    )


async def test_auth_login_challenges_and_a_wrong_password(pop3: Pop3) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    await pop3.transcript(
        f"""
        S: +OK*
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: {b64("alice@example.test")}
        S: + UGFzc3dvcmQ6
        C: {b64("not it")}
        S: -ERR [AUTH] invalid user name or password
        C: AUTH LOGIN {b64("alice@example.test")}
        S: + UGFzc3dvcmQ6
        C: *
        S: -ERR authentication cancelled
        C: AUTH PLAIN {b64("no nul bytes")}
        S: -ERR authentication failed: PLAIN message needs three fields
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: {b64("alice@example.test")}
        S: + UGFzc3dvcmQ6
        C: {b64(PASSWORD)}
        S: +OK maildrop has 0 messages (0 octets)
        """
    )


def _scram_client_proof(password: str, salt: bytes, iterations: int, auth_message: bytes) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    verifier = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(client_key, signature, strict=True)), verifier


async def _scram(pop3: Pop3, password: str) -> tuple[str, bytes | None]:
    client = await pop3.connect()
    await client.line()
    bare = "n=alice@example.test,r=clientnonce123"
    challenge = await client.command("AUTH SCRAM-SHA-256 " + base64.b64encode(f"n,,{bare}".encode()).decode())
    assert challenge.startswith("+ ")
    server_first = base64.b64decode(challenge[2:]).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    without_proof = f"c={base64.b64encode(b'n,,').decode()},r={fields['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    proof, verifier = _scram_client_proof(password, base64.b64decode(fields["s"]), int(fields["i"]), auth_message)
    final = f"{without_proof},p={base64.b64encode(proof).decode()}"
    reply = await client.command(base64.b64encode(final.encode()).decode())
    if not reply.startswith("+ "):
        return reply, None
    server_final = base64.b64decode(reply[2:])
    assert server_final == b"v=" + base64.b64encode(verifier)
    return await client.command(""), server_final  # RFC 5034 §4: an empty response acknowledges it


async def test_scram_sha_256_with_server_final_message(pop3: Pop3) -> None:
    reply, server_final = await _scram(pop3, PASSWORD)
    assert server_final is not None
    assert reply == "+OK maildrop has 0 messages (0 octets)"


async def test_scram_sha_256_with_a_wrong_password(pop3: Pop3) -> None:
    reply, server_final = await _scram(pop3, "wrong password")
    assert server_final is None
    assert reply == "-ERR [AUTH] authentication failed"


async def test_stls_then_login_and_no_second_stls(pop3: Pop3) -> None:
    client = await pop3.transcript(
        """
        S: +OK*
        C: STLS
        S: +OK begin TLS negotiation
        """
    )
    await client.starttls()
    await pop3.transcript(
        f"""
        C: STLS
        S: -ERR TLS is already active
        C: USER alice@example.test
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK maildrop has 0 messages (0 octets)
        """,
        client=client,
    )


async def test_plaintext_pipelined_after_stls_is_discarded(pop3: Pop3) -> None:
    client = await pop3.connect()
    await client.line()
    await client.send(b"STLS\r\nUSER alice@example.test\r\n")
    assert await client.line() == "+OK begin TLS negotiation"
    await client.starttls()
    assert await client.command(f"PASS {PASSWORD}") == "-ERR send USER first"


async def test_implicit_tls_port_offers_no_stls(pop3: Pop3) -> None:
    client = await pop3.connect(tls=True)
    assert await client.line() == "+OK pop.example.test POP3 server ready"
    _, body = await client.multiline("CAPA")
    assert b"STLS" not in body
    assert b"USER\r\n" in body
    assert await client.login("alice@example.test") == "+OK maildrop has 0 messages (0 octets)"


async def test_bad_commands_get_reasons_and_too_many_close(pop3: Pop3) -> None:
    client = await pop3.transcript(
        f"""
        S: +OK*
        C: APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb
        S: -ERR APOP not available, use USER/PASS or AUTH
        C: RETR 1
        S: -ERR log in first
        C: USER alice@example.test
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK maildrop has 0 messages (0 octets)
        C: RETR one
        S: -ERR invalid message number
        C: RETR 1
        S: -ERR no such message
        C: TOP 1
        S: -ERR TOP needs a message number and a number of lines
        C: FOO
        S: -ERR unknown command
        """
    )
    for _ in range(5):  # five bad commands above, ten allowed
        assert (await client.command("FOO")).startswith("-ERR")
    assert await client.command("FOO") == "-ERR too many bad commands, closing connection"
    assert await client.is_closed()


async def test_pipelined_commands_are_answered_in_order(pop3: Pop3) -> None:
    await pop3.deliver("alice@example.test", b"Subject: a\r\n\r\nx\r\n")
    client = await pop3.connect()
    await client.line()
    await client.send(f"USER alice@example.test\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nQUIT\r\n".encode())
    lines = [await client.line() for _ in range(8)]
    assert lines[:6] == [
        "+OK send PASS",
        "+OK maildrop has 1 messages (17 octets)",
        "+OK 1 17",
        "+OK 1 messages (17 octets)",
        "1 17",
        ".",
    ]
    assert lines[6].startswith("+OK 1 ")
    assert lines[7].startswith("+OK pop.example.test POP3 server signing off")


async def test_shutdown_says_goodbye(pop3: Pop3) -> None:
    client = await pop3.connect()
    await client.line()
    pop3.plain.stop_accepting()
    assert await client.line() == "-ERR [SYS/TEMP] server shutting down, try again later"
    assert await client.is_closed()
