"""Sieve end to end: a script uploaded with the real `sieve-connect` client (Debian package sieve-connect)
over ManageSieve with STARTTLS files list mail into a folder it creates; vacation replies and forwards
set with `pochta user vacation|forward` reach a second Pochta through the queue, found by MX records a
real DNS server process serves on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pochta.admin.cli import cli

from ..conftest import need
from ..smtpd.harness import PASSWORD, Mx, running_mx
from .test_outbound import _publish, _until

TESTS = Path(__file__).resolve().parents[1]

LIST_SCRIPT = """require ["fileinto", "mailbox"];
if header :contains "List-Id" "dev.lists.test" {
    fileinto :create "Lists/dev";
}
"""


@pytest.fixture
def nameserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    zone_file = tmp_path / "zone.json"
    _publish(zone_file, {"remote.test.": {"MX": ["10 mx.remote.test."]}, "mx.remote.test.": {"A": ["127.0.0.1"]}})
    with subprocess.Popen(
        [sys.executable, str(TESTS / "dnsserver.py"), str(zone_file)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            yield address, zone_file
        finally:
            process.kill()
            process.stdout.close()


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Mx]:
    async with running_mx(tmp_path / "remote", hostname="mx.remote.test") as server:
        await server.add_user("carol@remote.test")
        await server.add_user("list@remote.test")
        await server.add_user("alice.away@remote.test")
        yield server


async def _send(mx: Mx, sender: str, recipient: str, message: bytes) -> str:
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    await client.command("EHLO client.test")
    assert (await client.command(f"MAIL FROM:<{sender}>"))[0].startswith("250")
    assert (await client.command(f"RCPT TO:<{recipient}>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    await client.send(message + b".\r\n")
    reply = (await client.reply())[-1]
    await client.close()
    return reply


async def _pochta(mx: Mx, *args: str, stdin: str | None = None) -> str:
    """The real CLI on the running server's data directory (as an admin runs it beside `pochta serve`)."""
    config = mx.tmp_path / "cli.toml"
    config.write_text(f'hostname = "mx.example.test"\ndata_dir = "{mx.tmp_path / "data"}"\n')
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(config), *args], input=stdin, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _sieve_connect(port: int, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "sieve-connect",
        "--server",
        "127.0.0.1",
        "--port",
        str(port),
        "--user",
        "alice@example.test",
        "--passwordfd",
        "0",
        "--notlsverify",
        "--noclearchan",  # STARTTLS or nothing
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(PASSWORD.encode() + b"\n"), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_sieve_connect_uploads_a_script_that_files_list_mail(tmp_path: Path) -> None:
    need(shutil.which("sieve-connect") is not None, "sieve-connect not installed (Debian package sieve-connect)")
    async with running_mx(tmp_path / "mx", listen={"managesieve": ["127.0.0.1:0"]}) as mx:
        await mx.add_user("alice@example.test")
        port = mx.server.ports("managesieve")[0]
        script = tmp_path / "lists.sieve"
        script.write_text(LIST_SCRIPT)
        await _sieve_connect(port, "--upload", "--localsieve", str(script), "--remotesieve", "lists")
        await _sieve_connect(port, "--activate", "--remotesieve", "lists")
        assert await _sieve_connect(port, "--list") == '"lists" ACTIVE\n'
        downloaded = tmp_path / "back.sieve"
        await _sieve_connect(port, "--download", "--remotesieve", "lists", "--localsieve", str(downloaded))
        assert downloaded.read_text() == LIST_SCRIPT
        bad = tmp_path / "bad.sieve"
        bad.write_text('fileinto "x";\n')
        process = await asyncio.create_subprocess_exec(
            "sieve-connect", "--server", "127.0.0.1", "--port", str(port), "--user", "alice@example.test",
            "--passwordfd", "0", "--notlsverify", "--noclearchan", "--authmech", "PLAIN",
            "--upload", "--localsieve", str(bad), "--remotesieve", "bad",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate(PASSWORD.encode() + b"\n")
        assert process.returncode != 0 and b"line 1:1:" in err

        listed = (
            b"From: dev@lists.test\r\nTo: dev@lists.test\r\nList-Id: Dev <dev.lists.test>\r\n"
            b"Subject: [dev] x\r\n\r\nnews\r\n"
        )
        other = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n"
        assert (await _send(mx, "dev-bounces@lists.test", "alice@example.test", listed)).startswith("250")
        assert (await _send(mx, "carol@remote.test", "alice@example.test", other)).startswith("250")
        account = await mx.store.get_account("alice@example.test")
        assert account is not None
        folder = await mx.store.get_mailbox(account.id, "Lists/dev")
        assert folder is not None  # created on demand by fileinto :create
        (filed,) = await mx.store.messages(folder.id)
        assert (await mx.blobs.read(filed.blob_id)).endswith(listed)
        (kept,) = await mx.inbox_bytes("alice@example.test")
        assert kept.endswith(other)


async def test_vacation_reaches_each_sender_once_and_never_a_list(
    tmp_path: Path, nameserver: tuple[str, Path], remote: Mx
) -> None:
    async with running_mx(
        tmp_path / "mx", outbound={"port": remote.port}, dns={"nameservers": [nameserver[0]], "timeout": 2.0}
    ) as mx:
        await mx.add_user("alice@example.test")
        body = tmp_path / "away.txt"
        body.write_text("I am away until Monday.\n")
        await _pochta(mx, "user", "vacation", "alice@example.test", "--subject", "Away", "--body-file", str(body))
        mail = (
            b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: lunch?\r\n"
            b"Message-ID: <c1@remote.test>\r\n\r\nlunch?\r\n"
        )
        for _ in range(3):
            assert (await _send(mx, "carol@remote.test", "alice@example.test", mail)).startswith("250")
        listed = (
            b"From: list@remote.test\r\nTo: alice@example.test\r\nList-Id: <news.remote.test>\r\n"
            b"Subject: news\r\n\r\nx\r\n"
        )
        assert (await _send(mx, "list@remote.test", "alice@example.test", listed)).startswith("250")

        async def replied() -> bool:
            return len(await remote.inbox("carol@remote.test")) == 1 and await mx.store.queue_entries() == []

        await _until(replied)
        (reply,) = await remote.inbox_bytes("carol@remote.test")
        assert reply.startswith(b"Return-Path: <>\r\n")  # sent from the null reverse-path
        assert b"\r\nAuto-Submitted: auto-replied\r\n" in reply and b"\r\nSubject: Away\r\n" in reply
        assert b"\r\nIn-Reply-To: <c1@remote.test>\r\n" in reply and reply.endswith(b"I am away until Monday.\r\n")
        assert await remote.inbox("list@remote.test") == []
        assert len(await mx.inbox("alice@example.test")) == 4  # vacation never costs a message
        await _pochta(mx, "user", "vacation", "alice@example.test", "--off")
        assert await _pochta(mx, "sieve", "list", "alice@example.test") == ""  # nothing generated is left
        assert (await _send(mx, "list@remote.test", "alice@example.test", mail)).startswith("250")
        assert await mx.store.queue_entries() == []  # a reply would be queued in the message's own commit


async def test_forward_reaches_an_external_address_through_the_queue(
    tmp_path: Path, nameserver: tuple[str, Path], remote: Mx
) -> None:
    async with running_mx(
        tmp_path / "mx", outbound={"port": remote.port}, dns={"nameservers": [nameserver[0]], "timeout": 2.0}
    ) as mx:
        await mx.add_user("alice@example.test")
        await _pochta(mx, "user", "forward", "alice@example.test", "alice.away@remote.test", "--keep")
        mail = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: for you\r\n\r\nhello\r\n"
        assert (await _send(mx, "carol@remote.test", "alice@example.test", mail)).startswith("250")

        async def forwarded() -> bool:
            return len(await remote.inbox("alice.away@remote.test")) == 1 and await mx.store.queue_entries() == []

        await _until(forwarded)
        (arrived,) = await remote.inbox_bytes("alice.away@remote.test")
        assert arrived.startswith(b"Return-Path: <carol@remote.test>\r\n")  # the original envelope sender
        assert b"\r\nDelivered-To: alice@example.test\r\n" in arrived and arrived.endswith(mail)
        assert len(await mx.inbox("alice@example.test")) == 1  # --keep
