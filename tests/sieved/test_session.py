"""ManageSieve sessions over a real socket: every command, quotas, errors, STARTTLS, SASL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

from .harness import PASSWORD, Sieved, plain

GREETING = """
    S: "IMPLEMENTATION" "Pochta"
    S: "SIEVE" "body comparator-*
    S: "SASL" "SCRAM-SHA-256 PLAIN LOGIN"
    S: "STARTTLS"
    S: "MAXREDIRECTS" "4"
    S: "UNAUTHENTICATE"
    S: "VERSION" "1.0"
    S: OK
"""

LOGIN = (
    GREETING
    + f"""
    C: AUTHENTICATE "PLAIN" "{plain("alice@example.test")}"
    S: OK "logged in"
"""
)

SCRIPT = 'require "fileinto";\r\nfileinto "Lists";\r\n'


async def test_put_list_get_activate_rename_delete(sieve: Sieved) -> None:
    await sieve.transcript(
        LOGIN
        + f"""
        C: HAVESPACE "main" {len(SCRIPT)}
        S: OK "putscript would succeed"
        C: PUTSCRIPT "main" {{{len(SCRIPT)}+}}
        C: require "fileinto";
        C: fileinto "Lists";
        C:
        S: OK "script stored"
        C: PUTSCRIPT "other" "keep;"
        S: OK "script stored"
        C: LISTSCRIPTS
        S: "main"
        S: "other"
        S: OK "listscripts completed"
        C: SETACTIVE "main"
        S: OK "active script set"
        C: LISTSCRIPTS
        S: "main" ACTIVE
        S: "other"
        S: OK "listscripts completed"
        C: GETSCRIPT "main"
        S: {{{len(SCRIPT)}}}
        S: require "fileinto";
        S: fileinto "Lists";
        S:
        S: OK "getscript completed"
        C: DELETESCRIPT "main"
        S: NO (ACTIVE) "the active script cannot be deleted"
        C: RENAMESCRIPT "main" "other"
        S: NO (ALREADYEXISTS) "a script by that name exists"
        C: RENAMESCRIPT "main" "renamed"
        S: OK "script renamed"
        C: GETSCRIPT "main"
        S: NO (NONEXISTENT) "there is no script by that name"
        C: SETACTIVE ""
        S: OK "no script is active"
        C: DELETESCRIPT "renamed"
        S: OK "script deleted"
        C: DELETESCRIPT "renamed"
        S: NO (NONEXISTENT) "there is no script by that name"
        C: SETACTIVE "renamed"
        S: NO (NONEXISTENT) "there is no script by that name"
        C: LISTSCRIPTS
        S: "other"
        S: OK "listscripts completed"
        C: NOOP "tag1"
        S: OK (TAG "tag1") "done"
        C: LOGOUT
        S: OK "logout completed"
        """
    )
    account = await sieve.store.get_account("alice@example.test")
    assert account is not None
    assert [s.name for s in await sieve.store.list_sieve_scripts(account.id)] == ["other"]


async def test_invalid_scripts_are_refused_with_the_parsers_message(sieve: Sieved) -> None:
    await sieve.transcript(
        LOGIN
        + """
        C: PUTSCRIPT "bad" "fileinto \\"x\\";"
        S: NO "line 1:1: *
        C: CHECKSCRIPT "keep;"
        S: OK "script is valid"
        C: CHECKSCRIPT "if true { keep; "
        S: NO "line 1:*
        C: LISTSCRIPTS
        S: OK "listscripts completed"
        """
    )


async def test_quotas(sieve: Sieved) -> None:
    big = "keep; #" + "x" * 250
    await sieve.transcript(
        LOGIN
        + f"""
        C: HAVESPACE "a" 201
        S: NO (QUOTA/MAXSIZE) "scripts are limited to 200 octets"
        C: PUTSCRIPT "a" {{{len(big)}+}}
        C: {big}
        S: NO (QUOTA/MAXSIZE) "script is larger than this server takes"
        C: PUTSCRIPT "a" "keep;"
        S: OK "script stored"
        C: PUTSCRIPT "b" "keep;"
        S: OK "script stored"
        C: PUTSCRIPT "c" "keep;"
        S: OK "script stored"
        C: HAVESPACE "d" 10
        S: NO (QUOTA/MAXSCRIPTS) "at most 3 scripts"
        C: HAVESPACE "c" 10
        S: OK "putscript would succeed"
        C: PUTSCRIPT "d" "keep;"
        S: NO (QUOTA/MAXSCRIPTS) "too many scripts"
        C: PUTSCRIPT "c" "discard;"
        S: OK "script stored"
        """
    )


async def test_commands_need_login_and_bad_passwords_wait(sieve: Sieved) -> None:
    started = asyncio.get_running_loop().time()
    await sieve.transcript(
        GREETING
        + f"""
        C: LISTSCRIPTS
        S: NO "authenticate first"
        C: AUTHENTICATE "PLAIN" "{plain("alice@example.test", "wrong")}"
        S: NO "authentication failed"
        C: AUTHENTICATE "PLAIN" "{plain("nobody@example.test")}"
        S: NO "authentication failed"
        C: AUTHENTICATE "PLAIN" "bm90IGJhc2U2NA"
        S: NO "invalid base64"
        C: AUTHENTICATE "PLAIN"
        S: ""
        C: "*"
        S: NO "authentication cancelled"
        C: AUTHENTICATE "PLAIN"
        S: ""
        C: "{plain("alice@example.test")}"
        S: OK "logged in"
        C: CAPABILITY
        S: "IMPLEMENTATION" "Pochta"
        S: "SIEVE" *
        S: "MAXREDIRECTS" "4"
        S: "OWNER" "alice@example.test"
        S: "UNAUTHENTICATE"
        S: "VERSION" "1.0"
        S: OK
        C: AUTHENTICATE "PLAIN" "{plain("alice@example.test")}"
        S: NO "already authenticated"
        C: UNAUTHENTICATE
        S: OK "unauthenticated"
        C: LISTSCRIPTS
        S: NO "authenticate first"
        """
    )
    assert asyncio.get_running_loop().time() - started >= 0.1  # two failures, each delayed


async def test_scram_sha_256_sends_the_server_final_with_ok(sieve: Sieved) -> None:
    client = await sieve.connect()
    await client.until_status()
    nonce = "rOprNGfwEbeRWgbNEkqO"
    first = f"n,,n=alice@example.test,r={nonce}"
    await client.send(f'AUTHENTICATE "SCRAM-SHA-256" "{base64.b64encode(first.encode()).decode()}"\r\n'.encode())
    challenge = base64.b64decode((await client.line()).strip('"'))
    attributes = dict(item.split("=", 1) for item in challenge.decode().split(","))
    salt = base64.b64decode(attributes["s"])
    final_without_proof = f"c=biws,r={attributes['r']}"
    auth_message = f"{first[3:]},{challenge.decode()},{final_without_proof}".encode()
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, int(attributes["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = f"{final_without_proof},p={base64.b64encode(proof).decode()}"
    await client.send(b'"' + base64.b64encode(final.encode()) + b'"\r\n')
    reply = await client.line()
    assert reply.startswith('OK (SASL "') and reply.endswith('") "logged in"'), reply


async def test_starttls_then_capabilities_again(sieve: Sieved) -> None:
    client = await sieve.connect()
    lines = await client.until_status()
    assert '"STARTTLS"' in lines
    await client.send(b"STARTTLS\r\n")
    assert await client.line() == 'OK "begin TLS negotiation"'
    await client.starttls()
    after = await client.until_status()  # RFC 5804 §2.2: the capabilities again, without STARTTLS
    assert after[0] == '"IMPLEMENTATION" "Pochta"' and '"STARTTLS"' not in after and after[-1] == "OK"
    await client.send(f'AUTHENTICATE "PLAIN" "{plain("alice@example.test")}"\r\n'.encode())
    assert await client.line() == 'OK "logged in"'
