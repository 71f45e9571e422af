"""APPEND (MULTIAPPEND, LITERAL+, APPENDUID, TRYCREATE, OVERQUOTA) and FETCH items read from the blob."""

from __future__ import annotations

import base64

from pochta.imapd.content import decode_quoted_printable

from .harness import Imap

PLAIN = (
    b"From: Carol <carol@example.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"Date: Tue, 3 Nov 2026 10:00:00 +0100\r\n\r\nHello there.\r\n"
)
PDF = bytes(range(256)) * 4
MIXED = (
    b"From: dave@example.test\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: report\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe, the report=\r\n is attached.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(PDF).replace(b"\n", b"\r\n") + b"--XX--\r\n"
)


async def test_append_and_multiappend(imap: Imap) -> None:
    client = await imap.session()
    lines = await client.append("INBOX", PLAIN, flags="\\Seen $Important")
    assert lines[-1].startswith("t2 OK [APPENDUID ") and lines[-1].endswith(" 1] APPEND completed")
    message = b"Subject: x\r\n\r\ny\r\n"
    await client.send(b"m APPEND Sent {%d}\r\n" % len(message))
    assert (await client.line()).startswith("+ ")
    await client.send(message + b' (\\Draft) "01-Feb-2026 10:00:00 +0000" {%d+}\r\n%s\r\n' % (len(message), message))
    lines = await client.until("m")
    assert lines[-1].endswith(" 1:2] APPEND completed"), lines
    await client.send(b"n APPEND Nowhere {3}\r\n")
    assert await client.line() == "n NO [TRYCREATE] no such mailbox"
    await client.send(b"o APPEND Nowhere {3+}\r\nabc\r\n")
    assert await client.line() == "o NO [TRYCREATE] no such mailbox"
    lines = await client.command("EXAMINE Sent")
    assert "* 2 EXISTS" in lines
    lines = await client.command("FETCH 1:2 (FLAGS INTERNALDATE)")
    assert lines[0] == '* 1 FETCH (FLAGS (\\Recent) INTERNALDATE "27-Nov-2026 12:00:00 +0000")' or lines[0].startswith(
        "* 1 FETCH (FLAGS (\\Recent) INTERNALDATE"
    )
    assert lines[1] == '* 2 FETCH (FLAGS (\\Draft \\Recent) INTERNALDATE " 1-Feb-2026 10:00:00 +0000")'


async def test_append_over_quota(imap: Imap) -> None:
    await imap.add_user("carol@example.test", quota=100)
    client = await imap.session("carol@example.test")
    assert (await client.append("INBOX", b"x" * 60))[-1].endswith("APPEND completed")
    assert (await client.append("INBOX", b"x" * 60))[-1].endswith("NO [OVERQUOTA] quota exceeded")


async def test_fetch_sections_are_exact_bytes(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", MIXED)
    await client.command("SELECT INBOX")
    header_end = MIXED.index(b"\r\n\r\n") + 4
    part1 = MIXED.index(b"Gr=C3")
    part1_end = MIXED.index(b"\r\n--XX\r\nContent-Type: application")

    async def fetch(item: str) -> bytes:
        await client.send(b"f UID FETCH 1 (%s)\r\n" % item.encode())
        data = await client.raw_line()
        assert (await client.line()) == "f OK FETCH completed"
        return data

    assert await fetch("BODY.PEEK[]") == b"* 1 FETCH (BODY[] {%d}\r\n%s UID 1)" % (len(MIXED), MIXED)
    assert await fetch("BODY.PEEK[HEADER]") == b"* 1 FETCH (BODY[HEADER] {%d}\r\n%s UID 1)" % (
        header_end,
        MIXED[:header_end],
    )
    assert await fetch("BODY.PEEK[1]") == b"* 1 FETCH (BODY[1] {%d}\r\n%s UID 1)" % (
        part1_end - part1,
        MIXED[part1:part1_end],
    )
    mime = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    assert await fetch("BODY.PEEK[1.MIME]") == b"* 1 FETCH (BODY[1.MIME] {%d}\r\n%s UID 1)" % (len(mime), mime)
    fields = b"From: dave@example.test\r\nSubject: report\r\n\r\n"
    assert await fetch("BODY.PEEK[HEADER.FIELDS (subject FROM)]") == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (subject FROM)] {%d}\r\n%s UID 1)" % (len(fields), fields)
    )
    assert await fetch("BODY.PEEK[TEXT]<0.8>") == b"* 1 FETCH (BODY[TEXT]<0> {8}\r\npreamble UID 1)"
    assert await fetch("BODY.PEEK[]<100000.10>") == b"* 1 FETCH (BODY[]<100000> {0}\r\n UID 1)"
    text = "Grüße, the report is attached.".encode()
    assert await fetch("BINARY.PEEK[1]") == b"* 1 FETCH (BINARY[1] {%d}\r\n%s UID 1)" % (len(text), text)
    assert await fetch("BINARY.PEEK[2]") == b"* 1 FETCH (BINARY[2] ~{1024}\r\n%s UID 1)" % PDF
    assert await fetch("BINARY.SIZE[2]") == b"* 1 FETCH (BINARY.SIZE[2] 1024 UID 1)"
    assert await fetch("BODY.PEEK[3]") == b"* 1 FETCH (BODY[3] NIL UID 1)"
    assert await fetch("RFC822.SIZE") == b"* 1 FETCH (RFC822.SIZE %d UID 1)" % len(MIXED)
    structure = await fetch("BODYSTRUCTURE")
    assert structure.startswith(b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL')
    assert b'"mixed" ("boundary" "XX")' in structure
    envelope = await fetch("ENVELOPE")
    assert envelope.startswith(b'* 1 FETCH (ENVELOPE (NIL "report" ((NIL NIL "dave" "example.test"))')


async def test_body_sets_seen_and_peek_does_not(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", PLAIN)
    await imap.transcript(
        """
        C: a SELECT INBOX
        S: * FLAGS *
        S: * OK *
        S: * 1 EXISTS
        S: * 1 RECENT
        S: * OK [UNSEEN 1] first unseen
        S: * OK [UIDVALIDITY *
        S: * OK [UIDNEXT 2] next UID
        S: * OK [HIGHESTMODSEQ *
        S: * OK [MAILBOXID (F1)] mailbox id
        S: a OK [READ-WRITE] SELECT completed
        C: b FETCH 1 (BODY.PEEK[TEXT] FLAGS)
        S: * 1 FETCH (BODY[TEXT] {14}\\r\\nHello there.\\r\\n FLAGS (\\Recent))
        S: b OK FETCH completed
        C: c FETCH 1 BODY[TEXT]
        S: * 1 FETCH (BODY[TEXT] {14}\\r\\nHello there.\\r\\n FLAGS (\\Recent \\Seen))
        S: c OK FETCH completed
        C: d FETCH 1 (FLAGS RFC822.HEADER)
        S: * 1 FETCH (FLAGS (\\Recent \\Seen) RFC822.HEADER {*
        S: d OK FETCH completed
        C: e FETCH 2 FLAGS
        S: e BAD invalid message sequence number
        C: f UID FETCH 2 FLAGS
        S: f OK FETCH completed
        """,
        client,
    )


async def test_fetch_macros_and_object_ids(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", PLAIN)
    await client.append("INBOX", PLAIN)
    await client.command("EXAMINE INBOX")
    lines = await client.command("FETCH 1:* (EMAILID THREADID MODSEQ)")
    assert lines.pop(0) == "* OK [HIGHESTMODSEQ 3] CONDSTORE enabled"  # RFC 7162 §3.1: FETCH MODSEQ enables it
    assert lines[0].split("EMAILID")[1] == lines[1].split("EMAILID")[1].replace("MODSEQ (3)", "MODSEQ (2)")
    assert "THREADID NIL" in lines[0]
    lines = await client.command("FETCH 1 FAST")
    assert lines[0].startswith("* 1 FETCH (FLAGS (\\Recent) INTERNALDATE ") and lines[0].endswith(
        f" RFC822.SIZE {len(PLAIN)})"
    )
    lines = await client.command("FETCH 1 ENVELOPE")
    assert '"=?utf-8?q?caf=C3=A9?="' in lines[0] and '"Tue, 3 Nov 2026 10:00:00 +0100"' in lines[0]


async def test_large_sections_stream_exact_bytes(imap: Imap) -> None:
    client = await imap.session()
    body = b"".join(b"line %06d of a long message\r\n" % number for number in range(25000))
    message = b"Subject: big\r\n\r\n" + body
    assert (await client.append("INBOX", message))[-1].endswith("APPEND completed")
    await client.command("SELECT INBOX")

    async def fetch(item: str) -> bytes:
        await client.send(b"f FETCH 1 (%s)\r\n" % item.encode())
        data = await client.raw_line()
        assert (await client.line()) == "f OK FETCH completed"
        return data

    assert await fetch("UID BODY.PEEK[]") == b"* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)" % (len(message), message)
    part = body[1000:301000]
    assert await fetch("BODY.PEEK[TEXT]<1000.300000>") == b"* 1 FETCH (BODY[TEXT]<1000> {300000}\r\n%s)" % part
    assert await fetch("RFC822") == b"* 1 FETCH (RFC822 {%d}\r\n%s FLAGS (\\Recent \\Seen))" % (len(message), message)


def test_quoted_printable_follows_rfc_2045() -> None:
    body = b"hello  \r\nbar=\r\n\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\na=3d=3D=zz\r\n"
    # trailing whitespace is padding, "=" then whitespace is a soft break, a bad escape stays as written
    expected = b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar\r\na===zz\r\n"
    assert decode_quoted_printable(body) == expected
    assert decode_quoted_printable(body.replace(b"\r\n", b"\n")) == expected


async def test_a_part_with_nul_goes_out_base64_in_body_and_as_stored_in_binary(imap: Imap) -> None:
    """RFC 3516 §4.4 APPEND with literal8; a plain literal cannot carry NUL (RFC 9051 §4.3), so BODY[]
    sends that part base64-encoded (as Dovecot stores it), while BINARY[] gives the stored octets."""
    client = await imap.session()
    payload = b"\x00-\xe4\r\n\r\n"
    message = (
        b"From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n" + payload
    )
    await client.send(b"a APPEND INBOX ~{%d}\r\n" % len(message))
    assert (await client.line()).startswith("+ ")
    await client.send(message + b"\r\n")
    assert (await client.line()).startswith("a OK [APPENDUID ")
    await client.command("SELECT INBOX")
    await client.send(b"f FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1])\r\n")
    line = await client.raw_line()
    assert b"\x00" not in line.partition(b"BINARY[1]")[0]
    encoded = b"AC3kDQoNCg==\r\n"
    assert line == b"* 1 FETCH (BODY[1] {%d}\r\n%s BINARY[1] ~{%d}\r\n%s BINARY.SIZE[1] %d)" % (
        len(encoded),
        encoded,
        len(payload),
        payload,
        len(payload),
    )
    assert await client.line() == "f OK FETCH completed"
    await client.send(b"g FETCH 1 (BODY.PEEK[HEADER] BINARY.PEEK[] RFC822.SIZE)\r\n")
    line = await client.raw_line()
    assert b"Content-Transfer-Encoding: base64\r\n\r\n" in line.partition(b"BINARY[]")[0]
    assert b"BINARY[] ~{%d}\r\n%s RFC822.SIZE %d)" % (len(message), message, len(message)) in line
