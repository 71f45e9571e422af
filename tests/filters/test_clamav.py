"""Antivirus: the INSTREAM framing and reply parser without sockets; the client and the check against a real
clamd over its unix socket and TCP; the MX and submission refusing EICAR over real SMTP sockets."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import mmap
import zipfile
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from pochta.config import ConfigError, from_mapping, parse_socket_address
from pochta.filters.clamav import (
    COMMAND,
    END,
    Clamd,
    ClamdUnavailable,
    OnOversize,
    ScanResult,
    Status,
    VirusCheck,
    instream,
    parse_reply,
)
from pochta.filters.pipeline import Action, Inbound
from pochta.mail.envelope import Envelope

from ..smtpd.harness import PASSWORD, Client, Mx, running_mx
from .clamd import BODY_SIGNATURE, EICAR, FILE_SIGNATURE, STREAM_MAX_LENGTH, ClamdProcess, find_clamd

# --- the protocol without sockets


def _unframe(pieces: list[bytes]) -> list[bytes]:
    """The chunks of an INSTREAM request, checking its framing."""
    data = b"".join(pieces)
    assert data.startswith(COMMAND)
    data = data[len(COMMAND) :]
    chunks: list[bytes] = []
    while True:
        size = int.from_bytes(data[:4], "big")
        data = data[4:]
        if size == 0:
            assert data == b""
            return chunks
        chunks.append(data[:size])
        data = data[size:]


def test_small_message_is_one_write() -> None:
    pieces = list(instream(b"hello", chunk_size=1024))
    assert pieces == [COMMAND + b"\0\0\0\x05hello" + END]


@pytest.mark.parametrize(("size", "chunks"), [(0, 0), (1, 1), (9, 3), (10, 4), (12, 4)])
def test_chunks_carry_big_endian_lengths_and_a_zero_terminator(size: int, chunks: int) -> None:
    content = bytes(range(size))
    pieces = list(instream(content, chunk_size=3))
    assert len(pieces) == max(chunks, 1)
    assert all(len(piece) <= 3 + 4 + len(COMMAND) + len(END) for piece in pieces)
    unframed = _unframe(pieces)
    assert [len(chunk) for chunk in unframed] == [3] * (size // 3) + ([size % 3] if size % 3 else [])
    assert b"".join(unframed) == content


def test_mapped_message_is_sliced_not_copied_whole(tmp_path: Path) -> None:
    path = tmp_path / "message"
    content = b"x" * 1000 + EICAR + b"y" * 1000
    path.write_bytes(content)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        pieces = list(instream(mapped, chunk_size=512))
    assert max(len(piece) for piece in pieces) <= 512 + 18
    assert b"".join(_unframe(pieces)) == content


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"stream: OK\0", ScanResult(status=Status.CLEAN)),
        (b"stream: OK\n", ScanResult(status=Status.CLEAN)),
        (
            b"stream: Win.Test.EICAR_HDB-1 FOUND\0",
            ScanResult(status=Status.INFECTED, detail="Win.Test.EICAR_HDB-1"),
        ),
        (
            b"stream: Evil\r\nSig<x> FOUND\0",  # never let clamd's words break our SMTP reply
            ScanResult(status=Status.INFECTED, detail="Evil??Sig?x?"),
        ),
        (
            b"INSTREAM size limit exceeded. ERROR\0",
            ScanResult(status=Status.OVERSIZE, detail="INSTREAM size limit exceeded. ERROR"),
        ),
        (
            b"stream: Can't allocate memory ERROR\0",
            ScanResult(status=Status.ERROR, detail="stream: Can't allocate memory ERROR"),
        ),
        (b"UNKNOWN COMMAND\0", ScanResult(status=Status.ERROR, detail="UNKNOWN COMMAND")),
        (b"\0", ScanResult(status=Status.ERROR, detail="empty reply")),
    ],
)
def test_reply_parser(raw: bytes, expected: ScanResult) -> None:
    assert parse_reply(raw) == expected


def test_socket_addresses() -> None:
    assert parse_socket_address("unix:/run/clamav/clamd.ctl") == "/run/clamav/clamd.ctl"
    assert parse_socket_address("tcp:127.0.0.1:3310") == ("127.0.0.1", 3310)
    assert parse_socket_address("tcp:[::1]:3310") == ("::1", 3310)
    for bad in ("unix:relative.sock", "tcp:localhost", "tcp::3310", "/run/clamd.ctl", "udp:1.2.3.4:5"):
        with pytest.raises(ValueError, match="neither"):
            parse_socket_address(bad)


@pytest.mark.parametrize(
    ("antivirus", "message"),
    [
        ({"clamd": "localhost:3310"}, "antivirus.clamd: 'localhost:3310' is neither"),
        ({"on_oversize": "bounce"}, "antivirus.on_oversize: must be one of accept, tempfail, reject"),
        ({"timeout": 0}, "antivirus.timeout: it and connect_timeout must be more than 0"),
        ({"fail_open": "yes"}, "antivirus.fail_open: must be true or false"),
    ],
)
def test_bad_config_is_refused(antivirus: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({"antivirus": antivirus})
    assert str(error.value).startswith(message)


# --- the client against a real clamd


def _addresses(clamd: ClamdProcess) -> dict[str, str | tuple[str, int]]:
    return {"unix": str(clamd.socket_path), "tcp": ("127.0.0.1", clamd.port)}


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_clean_and_infected_over_both_sockets(clamd: ClamdProcess, kind: str) -> None:
    client = Clamd(_addresses(clamd)[kind], timeout=10, connect_timeout=5)
    assert await client.scan(b"Subject: hi\r\n\r\nhello\r\n") == ScanResult(status=Status.CLEAN)
    assert await client.scan(b"") == ScanResult(status=Status.CLEAN)
    result = await client.scan(b"Subject: hi\r\n\r\n" + EICAR + b"\r\n")
    assert result.status is Status.INFECTED and result.detail.startswith(BODY_SIGNATURE)


async def test_signature_split_across_chunks_is_found(clamd: ClamdProcess) -> None:
    client = Clamd(str(clamd.socket_path), timeout=10, connect_timeout=5, chunk_size=7)
    result = await client.scan(b"Subject: hi\r\n\r\n" + EICAR)
    assert result.status is Status.INFECTED


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_over_clamd_stream_limit(clamd: ClamdProcess, kind: str) -> None:
    client = Clamd(_addresses(clamd)[kind], timeout=10, connect_timeout=5)
    result = await client.scan(b"x" * (STREAM_MAX_LENGTH + 1))
    assert result.status is Status.OVERSIZE
    assert await client.scan(b"x" * STREAM_MAX_LENGTH) == ScanResult(status=Status.CLEAN)


async def test_nothing_listening_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ClamdUnavailable):
        await Clamd(str(tmp_path / "absent.sock"), timeout=5, connect_timeout=5).scan(b"hi")
    port = await _closed_port()
    with pytest.raises(ClamdUnavailable):
        await Clamd(("127.0.0.1", port), timeout=5, connect_timeout=5).scan(b"hi")


async def _closed_port() -> int:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):  # takes everything, answers nothing
        pass
    writer.close()


@pytest.fixture
async def silent_clamd() -> AsyncIterator[tuple[str, int]]:
    """A real TCP listener that reads the scan and never answers: a hung clamd."""
    server = await asyncio.start_server(_silent, "127.0.0.1", 0)
    yield "127.0.0.1", int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_silent_clamd_times_out(silent_clamd: tuple[str, int]) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(ClamdUnavailable, match=r"no answer within 0\.3 s"):
        await Clamd(silent_clamd, timeout=0.3, connect_timeout=5).scan(b"Subject: hi\r\n\r\nhello\r\n")
    assert 0.3 <= asyncio.get_running_loop().time() - started < 3


async def test_clamd_hanging_up_without_answer_is_unavailable() -> None:
    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        with pytest.raises(ClamdUnavailable):
            await Clamd(("127.0.0.1", port), timeout=5, connect_timeout=5).scan(b"hi")
    finally:
        server.close()
        await server.wait_closed()


# --- the check's verdicts and facts


def _inbound(content: bytes) -> Inbound:
    return Inbound(
        id="t1",
        content=content,
        envelope=Envelope(mail_from="", recipients=()),
        remote_ip="192.0.2.1",
        helo="x",
        is_tls=False,
    )


def _check(
    address: str | tuple[str, int],
    *,
    fail_open: bool = False,
    on_oversize: OnOversize = OnOversize.ACCEPT,
    max_scan_size: int = 0,
) -> VirusCheck:
    clamd = Clamd(address, timeout=10, connect_timeout=5)
    return VirusCheck(clamd, fail_open=fail_open, on_oversize=on_oversize, max_scan_size=max_scan_size)


async def test_facts_for_sieve_virustest(clamd: ClamdProcess, tmp_path: Path) -> None:
    check = _check(str(clamd.socket_path))
    clean = await check.check(_inbound(b"Subject: hi\r\n\r\nhello\r\n"), {})
    assert clean.action is Action.ACCEPT and clean.facts == {"virustest": "1"}  # RFC 5235: tested, clean
    infected = await check.check(_inbound(EICAR), {})
    assert infected.action is Action.REJECT and infected.facts == {"virustest": "5"}
    assert infected.reply is not None and infected.reply.code == 554 and infected.reply.status == "5.7.1"
    down = _check(str(tmp_path / "absent.sock"), fail_open=True)
    unscanned = await down.check(_inbound(b"hello"), {})
    assert unscanned.action is Action.ACCEPT and unscanned.facts == {"virustest": "0"}


@pytest.mark.parametrize(
    ("on_oversize", "action", "reply"),
    [
        (OnOversize.ACCEPT, Action.ACCEPT, None),
        (OnOversize.TEMPFAIL, Action.TEMPFAIL, "451 4.3.4"),
        (OnOversize.REJECT, Action.REJECT, "552 5.3.4"),
    ],
)
@pytest.mark.parametrize("limit", ["ours", "clamd"])
async def test_oversize_policy(
    clamd: ClamdProcess, on_oversize: OnOversize, action: Action, reply: str | None, limit: str
) -> None:
    # ours: max_scan_size refuses to send it at all; clamd: it is sent and clamd says it is over StreamMaxLength
    check = _check(str(clamd.socket_path), on_oversize=on_oversize, max_scan_size=1000 if limit == "ours" else 0)
    content = b"Subject: big\r\n\r\n" + b"x" * (STREAM_MAX_LENGTH + 1000)
    verdict = await check.check(_inbound(content), {})
    assert verdict.action is action
    assert (f"{verdict.reply.code} {verdict.reply.status}" if verdict.reply else None) == reply
    if action is Action.ACCEPT:
        assert verdict.facts == {"virustest": "0"}


async def test_clamd_down_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pochta.filters.clamav"):
        verdict = await _check(str(tmp_path / "absent.sock")).check(_inbound(b"hello"), {})
    assert verdict.action is Action.TEMPFAIL and verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.status) == (451, "4.7.1")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "clamd unavailable" in record.getMessage()


# --- through the MX and submission over real sockets

CLEAN = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHi Alice.\r\n"


def _with_attachment(data: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "carol@remote.test"
    message["To"] = "alice@example.test"
    message["Subject"] = "the file you asked for"
    message.set_content("See the attachment.\n")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    content = message.as_bytes(policy=SMTP)
    assert base64.b64encode(data)[:40] in content.replace(b"\r\n", b"")  # really a base64 attachment
    return content


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


INFECTED = {
    "body": b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: test\r\n\r\n" + EICAR + b"\r\n",
    "base64 attachment": _with_attachment(EICAR, "eicar.com"),
    "zip attachment": _with_attachment(_zipped("eicar.com", EICAR), "invoice.zip"),
}


async def _send(client: Client, content: bytes, *, sender: str = "carol@remote.test") -> list[str]:
    assert (await client.command(f"MAIL FROM:<{sender}>"))[0].startswith("250")
    assert (await client.command("RCPT TO:<alice@example.test>"))[0].startswith("250")
    assert (await client.command("DATA"))[0].startswith("354")
    stuffed = content.replace(b"\r\n.", b"\r\n..")  # RFC 5321 §4.5.2
    await client.send(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    return await client.reply()


async def _mx_send(mx: Mx, content: bytes) -> list[str]:
    client = await mx.connect()
    assert (await client.reply())[0].startswith("220")
    assert (await client.command("EHLO client.remote.test"))[0].startswith("250")
    return await _send(client, content)


@pytest.mark.parametrize("kind", list(INFECTED))
async def test_mx_refuses_eicar_and_stores_nothing(clamd: ClamdProcess, tmp_path: Path, kind: str) -> None:
    async with running_mx(tmp_path, antivirus={"clamd": clamd.unix_address}) as mx:
        await mx.add_user("alice@example.test")
        (reply,) = await _mx_send(mx, INFECTED[kind])
        assert reply.startswith("554 5.7.1 message refused: virus found (Pochta.Test.EICAR-")
        assert BODY_SIGNATURE in reply or FILE_SIGNATURE in reply
        assert await mx.inbox("alice@example.test") == []
        assert await mx.store.queue_entries() == []


@pytest.mark.parametrize("address", ["unix", "tcp"])
async def test_mx_passes_clean_mail(clamd: ClamdProcess, tmp_path: Path, address: str) -> None:
    clamd_address = clamd.unix_address if address == "unix" else clamd.tcp_address
    async with running_mx(tmp_path, antivirus={"clamd": clamd_address}) as mx:
        await mx.add_user("alice@example.test")
        assert (await _mx_send(mx, CLEAN))[0].startswith("250 2.0.0")
        clean_attachment = _with_attachment(_zipped("report.txt", b"quarterly numbers\n" * 100), "report.zip")
        assert (await _mx_send(mx, clean_attachment))[0].startswith("250 2.0.0")
        stored = await mx.inbox_bytes("alice@example.test")
        assert len(stored) == 2 and stored[0].endswith(CLEAN)


async def test_submission_refuses_eicar_attachment(clamd: ClamdProcess, tmp_path: Path) -> None:
    listen = {"smtp": [], "submission": ["127.0.0.1:0"]}
    async with running_mx(tmp_path, listen=listen, antivirus={"clamd": clamd.tcp_address}) as mx:
        await mx.add_user("alice@example.test")
        client = await mx.connect("submission")
        assert (await client.reply())[0].startswith("220")
        await client.command("EHLO laptop")
        assert (await client.command("STARTTLS"))[0].startswith("220")
        await client.starttls()
        await client.command("EHLO laptop")
        login = base64.b64encode(f"\0alice@example.test\0{PASSWORD}".encode()).decode()
        assert (await client.command(f"AUTH PLAIN {login}"))[0].startswith("235")
        content = INFECTED["zip attachment"].replace(b"carol@remote.test", b"alice@example.test")
        (reply,) = await _send(client, content, sender="alice@example.test")
        assert reply.startswith("554 5.7.1 message refused: virus found (Pochta.Test.EICAR-")
        assert await mx.store.queue_entries() == []
        assert await mx.inbox("alice@example.test") == []
        clean = CLEAN.replace(b"carol@remote.test", b"alice@example.test")
        assert (await _send(client, clean, sender="alice@example.test"))[0].startswith("250 2.0.0")


@pytest.mark.parametrize("address", ["unix", "tcp"])
@pytest.mark.parametrize(("fail_open", "expected"), [(False, "451 4.7.1"), (True, "250 2.0.0")])
async def test_mx_with_clamd_stopped(
    clamd: ClamdProcess, tmp_path: Path, fail_open: bool, expected: str, address: str
) -> None:
    # a clamd of its own that scans one message, then stops while Pochta runs
    binary = find_clamd()
    assert binary is not None  # the session's clamd started, so it is there
    (tmp_path / "clamd").mkdir()
    own = await asyncio.to_thread(ClamdProcess.start, binary, tmp_path / "clamd")
    try:
        antivirus = {"clamd": own.unix_address if address == "unix" else own.tcp_address, "fail_open": fail_open}
        async with running_mx(tmp_path, antivirus=antivirus) as mx:
            await mx.add_user("alice@example.test")
            assert (await _mx_send(mx, CLEAN))[0].startswith("250 2.0.0")
            await asyncio.to_thread(own.stop)
            assert (await _mx_send(mx, CLEAN))[0].startswith(expected)
            assert len(await mx.inbox("alice@example.test")) == (2 if fail_open else 1)
    finally:
        own.stop()


async def test_mx_with_clamd_hung_tempfails_after_the_timeout(silent_clamd: tuple[str, int], tmp_path: Path) -> None:
    host, port = silent_clamd
    async with running_mx(tmp_path, antivirus={"clamd": f"tcp:{host}:{port}", "timeout": 0.5}) as mx:
        await mx.add_user("alice@example.test")
        (reply,) = await _mx_send(mx, CLEAN)
        assert reply == "451 4.7.1 virus scanner unavailable, try again later"
        assert await mx.inbox("alice@example.test") == []


@pytest.mark.parametrize(("on_oversize", "expected"), [("accept", "250 2.0.0"), ("reject", "552 5.3.4")])
async def test_mx_oversize(clamd: ClamdProcess, tmp_path: Path, on_oversize: str, expected: str) -> None:
    # over clamd's StreamMaxLength, and large enough that the MX hands the check a mapped file
    antivirus = {"clamd": clamd.unix_address, "on_oversize": on_oversize, "max_scan_size": 0}
    async with running_mx(tmp_path, antivirus=antivirus) as mx:
        await mx.add_user("alice@example.test")
        big = CLEAN + (b"x" * 998 + b"\r\n") * (STREAM_MAX_LENGTH // 1000 + 10)
        assert (await _mx_send(mx, big))[0].startswith(expected)
        assert len(await mx.inbox("alice@example.test")) == (1 if on_oversize == "accept" else 0)
