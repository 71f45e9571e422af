"""mbox reading and writing: our own exports come back byte for byte; other programs' mboxes read right."""

from __future__ import annotations

import io
import mailbox
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from pochta.archive import mbox
from tests.archive.corpus import corpus

DATE = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def read_all(data: bytes) -> list[tuple[bytes, mbox.Entry | mbox.Skip]]:
    return _read(io.BytesIO(data))


def _read(handle: BinaryIO) -> list[tuple[bytes, mbox.Entry | mbox.Skip]]:
    reader = mbox.Reader(handle)
    out: list[tuple[bytes, mbox.Entry | mbox.Skip]] = []
    while True:
        parts: list[bytes] = []
        entry = reader.next(parts.append)
        if entry is None:
            return out
        out.append((b"".join(parts), entry))


def read_file(path: Path) -> list[tuple[bytes, mbox.Entry | mbox.Skip]]:
    with open(path, "rb") as handle:
        return _read(handle)


def write_all(path: Path, messages: list[tuple[bytes, frozenset[str]]]) -> None:
    with open(path, "wb") as out:
        for index, (content, flags) in enumerate(messages):
            source = path.with_name(f"m{index}")
            source.write_bytes(content)
            with open(source, "rb") as blob:
                mbox.write_message(out, blob, flags=flags, internal_date=DATE)


TRICKY = [
    b"",  # empty
    b"no header at all, no newline",
    b"Subject: only a header\n",
    b"Subject: only a header, no newline",
    b"\nbody after an empty header\n",
    b"\r\n\r\n",
    b"Subject: x\n\n",
    b"Subject: x\n\nFrom the start of a line\n>From quoted\n>>From twice\nFrom \n",
    b"From looks like a separator\nSubject: y\n\nbody",
    b"Status: RO\nX-Status: F\nSubject: has its own status headers\n\nbody\n",
    b"Subject: ends with them\nStatus: RO\nContent-Length: 3\n\nbody\n\n\n",
    b"Subject: crlf\r\n\r\nbody\r\nFrom x\r\n",
    b"Subject: bare cr\r\rline\n\nbody\rmore",
    b"Subject: long\n\n" + b"x" * (3 * mbox.LINE_CHUNK + 5) + b"\nFrom " + b"y" * (mbox.LINE_CHUNK * 2) + b"\n",
]


def test_tricky_messages_round_trip_with_flags(tmp_path: Path) -> None:
    flag_sets = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Answered", "\\Flagged", "$Label1", "\\Draft"})]
    messages = [(content, flag_sets[i % 3]) for i, content in enumerate(TRICKY)]
    write_all(tmp_path / "out.mbox", messages)
    got = read_file(tmp_path / "out.mbox")
    assert [content for content, _ in got] == [content for content, _ in messages]
    for (_, entry), (_, flags) in zip(got, messages, strict=True):
        assert isinstance(entry, mbox.Entry)
        assert entry.flags == flags
        assert entry.internal_date == DATE


def test_every_corpus_message_round_trips(tmp_path: Path) -> None:
    files = corpus()
    write_all(tmp_path / "corpus.mbox", [(path.read_bytes(), frozenset({"\\Seen"})) for path in files])
    got = read_file(tmp_path / "corpus.mbox")
    assert len(got) == len(files)
    for (content, _), path in zip(got, files, strict=True):
        assert content == path.read_bytes(), path


def test_offsets_let_a_reader_start_at_any_message(tmp_path: Path) -> None:
    write_all(tmp_path / "out.mbox", [(b"Subject: %d\n\nbody %d\n" % (i, i), frozenset()) for i in range(5)])
    entries = [entry for _, entry in read_file(tmp_path / "out.mbox")]
    with open(tmp_path / "out.mbox", "rb") as handle:
        reader = mbox.Reader(handle, start=entries[3].start)
        parts: list[bytes] = []
        entry = reader.next(parts.append)
    assert b"".join(parts) == b"Subject: 3\n\nbody 3\n"
    assert isinstance(entry, mbox.Entry) and entry.end == entries[3].end


def test_python_mailbox_mboxo_with_unquoted_status_at_the_end(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "py.mbox")
    first = mailbox.mboxMessage(b"Subject: one\n\nFrom inside the body\nbye\n")
    first.set_flags("RF")
    box.add(first)
    box.add(mailbox.mboxMessage(b"Subject: two\nDate: Tue, 02 Feb 2021 10:00:00 +0000\n\nsecond\n"))
    box.flush()
    box.close()
    got = read_file(tmp_path / "py.mbox")
    assert [content for content, _ in got] == [
        b"Subject: one\n\nFrom inside the body\nbye\n",
        b"Subject: two\nDate: Tue, 02 Feb 2021 10:00:00 +0000\n\nsecond\n",
    ]
    first_entry = got[0][1]
    assert isinstance(first_entry, mbox.Entry)
    assert first_entry.flags == {"\\Seen", "\\Flagged"}


def test_dovecot_style_mbox_with_content_length_and_folder_data() -> None:
    body = b"From here, a line that is not quoted\n"
    data = (
        b"From MAILER_DAEMON Mon Jan  4 10:00:00 2021\n"
        b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1609754400 0000000002\n\n"
        b"This text is part of the internal format of your mail folder.\n\n"
        b"From alice@example.test Mon Jan  4 10:00:01 2021\n"
        b"Subject: real\nX-UID: 1\nStatus: RO\nX-Keywords: $Forwarded work\nContent-Length: %d\n\n%s\n"
        b"From bob@example.test Mon Jan  4 10:00:02 2021\nSubject: last\n\nend\n" % (len(body), body)
    )
    got = read_all(data)
    assert len(got) == 3
    assert isinstance(got[0][1], mbox.Entry) and got[0][1].is_folder_data
    assert got[1][0] == b"Subject: real\n\n" + body
    assert isinstance(got[1][1], mbox.Entry)
    assert got[1][1].flags == {"\\Seen", "$Forwarded", "work"}
    assert got[1][1].internal_date == datetime(2021, 1, 4, 10, 0, 1, tzinfo=UTC)
    assert got[2][0] == b"Subject: last\n\nend\n"


def test_a_wrong_content_length_falls_back_to_from_lines() -> None:
    data = (
        b"From a Mon Jan  4 10:00:01 2021\nContent-Length: 999\nSubject: a\n\nbody\n\n"
        b"From b Mon Jan  4 10:00:02 2021\n\nb\n"
    )
    got = read_all(data)
    assert [content for content, _ in got] == [b"Subject: a\n\nbody\n", b"\nb\n"]


def test_text_before_the_first_message_is_reported() -> None:
    got = read_all(b"this is not mail\nat all\nFrom a Mon Jan  4 10:00:01 2021\nSubject: a\n\nbody\n")
    assert isinstance(got[0][1], mbox.Skip)
    assert got[0][1].start == 0 and "not a message" in got[0][1].reason
    assert got[1][0] == b"Subject: a\n\nbody\n"


def test_an_oversized_header_is_skipped_and_the_next_message_read() -> None:
    huge = b"X-Big: " + b"a" * (mbox.MAX_HEADER + 10) + b"\n"
    got = read_all(b"From a Mon Jan  4 10:00:01 2021\n" + huge + b"\nbody\n\nFrom b Mon Jan  4 10:00:02 2021\n\nok\n")
    assert isinstance(got[0][1], mbox.Skip)
    assert got[-1][0] == b"\nok\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"From a@b Thu Nov 26 10:00:00 2026\n", datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)),
        (b"From a@b Thu Nov  5 09:08:07 2026\n", datetime(2026, 11, 5, 9, 8, 7, tzinfo=UTC)),
        (b"From a@b Thu Nov 5 09:08 +0100 2026\n", datetime(2026, 11, 5, 9, 8, 0, tzinfo=UTC)),
        (b"From a@b Sat Jan  1 00:00:00 EST 2000\n", datetime(2000, 1, 1, tzinfo=UTC)),
        (b"From a@b sometime\n", None),
        (b"From a@b Thu Feb 31 00:00:00 2026\n", None),
    ],
)
def test_from_line_dates(line: bytes, expected: datetime | None) -> None:
    assert mbox.parse_from_line(line) == expected
