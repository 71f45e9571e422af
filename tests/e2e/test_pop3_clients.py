"""Real POP3 clients (poplib, curl, fetchmail) against the POP3 service over real sockets and real TLS;
what they download is the stored blob, byte for byte."""

from __future__ import annotations

import asyncio
import os
import poplib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ..conftest import need
from ..pop3d.harness import PASSWORD, Pop3, client_tls, running_pop3

pytestmark = pytest.mark.e2e

ALICE = "alice@example.test"
MESSAGES = [
    b"From: a@remote.test\r\nSubject: first\r\n\r\nHello.\r\n.\r\n..two dots\r\n",
    b"From: b@remote.test\r\nSubject: =?utf-8?q?zweite?=\r\n\r\n" + "Grüße\r\n".encode() * 3,
    b"From: c@remote.test\r\nSubject: third\r\n\r\n" + b"".join(b".line %d\r\n" % n for n in range(5000)),
]


@pytest.fixture
async def pop3(tmp_path: Path) -> AsyncIterator[Pop3]:
    async with running_pop3(tmp_path) as running:
        await running.add_user(ALICE)
        for message in MESSAGES:
            await running.deliver(ALICE, message)
        yield running


async def stored(pop3: Pop3) -> list[bytes]:
    return [await pop3.blobs.read(m.blob_id) for m in await pop3.inbox(ALICE)]


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


# ---- poplib ------------------------------------------------------------------------------------------


async def test_poplib_reads_lists_and_deletes(pop3: Pop3) -> None:
    blobs = await stored(pop3)

    def session() -> None:
        client = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
        assert client.getwelcome().startswith(b"+OK")
        caps = client.capa()
        assert {"TOP", "UIDL", "USER", "STLS", "RESP-CODES", "PIPELINING"} <= set(caps)
        assert "SCRAM-SHA-256" in caps["SASL"]
        client.user(ALICE)
        client.pass_(PASSWORD)
        assert client.stat() == (3, sum(len(m) for m in MESSAGES))
        _, listing, _ = client.list()
        assert listing == [b"%d %d" % (n, len(m)) for n, m in enumerate(MESSAGES, 1)]
        _, uids, _ = client.uidl()
        assert len({line.split()[1] for line in uids}) == 3
        for n, blob in enumerate(blobs, 1):
            _, lines, _ = client.retr(n)
            assert _joined(lines) == blob  # exactly the stored octets
        _, lines, _ = client.top(1, 1)
        assert _joined(lines) == MESSAGES[0][: MESSAGES[0].index(b"\r\n\r\n") + 4] + b"Hello.\r\n"
        client.dele(1)
        with pytest.raises(poplib.error_proto, match="already deleted"):
            client.retr(1)
        client.quit()

    await asyncio.to_thread(session)
    assert await stored(pop3) == blobs[1:]


async def test_poplib_after_stls_and_over_pop3s(pop3: Pop3) -> None:
    blobs = await stored(pop3)

    def over_stls() -> None:
        client = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
        client.stls(client_tls())
        assert "STLS" not in client.capa()
        client.user(ALICE)
        client.pass_(PASSWORD)
        assert _joined(client.retr(2)[1]) == blobs[1]
        client.rset()
        client.quit()

    def over_pop3s() -> None:
        client = poplib.POP3_SSL("127.0.0.1", pop3.tls_port, timeout=10, context=client_tls())
        client.user(ALICE)
        client.pass_(PASSWORD)
        assert _joined(client.retr(3)[1]) == blobs[2]
        client.quit()

    def apop_and_in_use() -> None:
        client = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
        with pytest.raises(poplib.error_proto):
            client.apop(ALICE, PASSWORD)  # no APOP timestamp in our greeting
        client.user(ALICE)
        client.pass_(PASSWORD)
        other = poplib.POP3_SSL("127.0.0.1", pop3.tls_port, timeout=10, context=client_tls())
        other.user(ALICE)
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            other.pass_(PASSWORD)
        other.quit()
        client.quit()

    await asyncio.to_thread(over_stls)
    await asyncio.to_thread(over_pop3s)
    await asyncio.to_thread(apop_and_in_use)
    assert await stored(pop3) == blobs


# ---- curl --------------------------------------------------------------------------------------------


def _curl(*args: str) -> bytes:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", "--user", f"{ALICE}:{PASSWORD}", *args],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


async def test_curl_list_uidl_retr_and_dele(pop3: Pop3) -> None:
    need(shutil.which("curl") is not None, "curl is not installed (apt-get install curl)")
    blobs = await stored(pop3)
    url = f"pop3://127.0.0.1:{pop3.port}"

    def run() -> None:
        listing = _curl(f"{url}/")
        assert listing == b"".join(b"%d %d\r\n" % (n, len(m)) for n, m in enumerate(MESSAGES, 1))
        uidl = _curl("--request", "UIDL", f"{url}/")
        assert len(uidl.splitlines()) == 3
        for n, blob in enumerate(blobs, 1):
            assert _curl(f"{url}/{n}") == blob
        # STLS required, and pop3s
        assert _curl("--ssl-reqd", "--insecure", f"{url}/2") == blobs[1]
        assert _curl("--insecure", f"pop3s://127.0.0.1:{pop3.tls_port}/3") == blobs[2]
        _curl("--request", "DELE", "--list-only", f"{url}/1")  # DELE, then QUIT

    await asyncio.to_thread(run)
    assert await stored(pop3) == blobs[1:]


# ---- fetchmail ---------------------------------------------------------------------------------------

_MDA = """import os, sys
directory = sys.argv[1]
with open(os.path.join(directory, str(len(os.listdir(directory)))), "wb") as handle:
    handle.write(sys.stdin.buffer.read())
"""


def _fetchmail(tmp_path: Path, port: int, *, keep: bool) -> list[bytes]:
    out = tmp_path / ("kept" if keep else "fetched")
    out.mkdir()
    rc = tmp_path / f"fetchmailrc-{out.name}"
    options = "keep fetchall" if keep else "fetchall"
    mda = tmp_path / "mda.py"
    mda.write_text(_MDA)
    rc.write_text(
        f"poll 127.0.0.1 service {port} protocol pop3 timeout 20\n"
        f'  user "{ALICE}" there with password "{PASSWORD}" is "{os.environ.get("USER", "root")}" here\n'
        f"  options {options} no rewrite sslproto '' mda \"{sys.executable} {mda} {out}\"\n"
    )
    rc.chmod(0o600)
    result = subprocess.run(
        ["fetchmail", "--nodetach", "--nosyslog", "--invisible", "-f", str(rc), "-i", str(tmp_path / "ids")],
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return [(out / name).read_bytes() for name in sorted(os.listdir(out), key=int)]


async def test_fetchmail_keep_then_fetch_all(pop3: Pop3, tmp_path: Path) -> None:
    need(shutil.which("fetchmail") is not None, "fetchmail is not installed (apt-get install fetchmail)")
    blobs = await stored(pop3)
    kept = await asyncio.to_thread(_fetchmail, tmp_path, pop3.port, keep=True)
    assert len(kept) == 3
    for got, blob in zip(kept, blobs, strict=True):
        assert got.endswith(blob[blob.index(b"\r\n\r\n") + 4 :].replace(b"\r\n", b"\n"))
    assert await stored(pop3) == blobs
    fetched = await asyncio.to_thread(_fetchmail, tmp_path, pop3.port, keep=False)
    assert len(fetched) == 3
    assert await stored(pop3) == []
