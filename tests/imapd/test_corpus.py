"""Every message of the shared MIME corpus, appended in one MULTIAPPEND and fetched back: BODY[] byte-exact
and BODYSTRUCTURE as the parser renders it.

The three corpus files holding NUL are appended as literal8 (RFC 3516) and kept as they are: BINARY[]
returns them byte-exact, while BODY[] (no plain literal may carry NUL, RFC 9051 §4.3) sends their
NUL-holding parts base64-encoded (mail.binary), as Dovecot does."""

from __future__ import annotations

import re

from pochta.mail.binary import without_nul
from pochta.mail.mime import parse_message

from ..conftest import need
from ..mail.test_mime_corpus import CORPUS, MESSAGES
from .harness import Imap

_HEAD = re.compile(rb"\* (\d+) FETCH \(UID (\d+) BODY\[\] ~?\{(\d+)\}\r\n")


async def test_corpus_round_trip(imap: Imap) -> None:
    need(bool(MESSAGES), f"MIME corpus missing at {CORPUS}: it ships in the shared data folder")
    client = await imap.session()
    originals = [path.read_bytes() for path in MESSAGES]
    command = [b"c APPEND INBOX"]
    for data in originals:
        marker = b"~{%d+}" if b"\x00" in data else b"{%d+}"
        command.append(b" " + marker % len(data) + b"\r\n" + data)
    await client.send(b"".join(command) + b"\r\n")
    lines = await client.until("c")
    assert lines[-1].startswith("c OK [APPENDUID ") and lines[-1].endswith(f" 1:{len(originals)}] APPEND completed")
    await client.command("EXAMINE INBOX")
    await client.send(b"f FETCH 1:* (UID BODY.PEEK[] BODYSTRUCTURE)\r\n")
    for index, original in enumerate(originals, 1):
        line = await client.raw_line()
        head = _HEAD.match(line)
        assert head is not None, line[:200]
        assert int(head.group(1)) == index
        start = head.end()
        size = int(head.group(3))
        sent = without_nul(original)
        assert line[start : start + size] == sent, MESSAGES[index - 1]
        rest = line[start + size :]
        expected = parse_message(original).bodystructure
        assert rest == b" BODYSTRUCTURE " + expected + b")", MESSAGES[index - 1]
    assert await client.line() == "f OK FETCH completed"
    for index, original in enumerate(originals, 1):
        if b"\x00" in original:
            await client.send(b"g FETCH %d (BINARY.PEEK[])\r\n" % index)
            line = await client.raw_line()
            assert line == b"* %d FETCH (BINARY[] ~{%d}\r\n%s)" % (index, len(original), original)
            assert await client.line() == "g OK FETCH completed"
