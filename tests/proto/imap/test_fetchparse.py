import pytest

from pochta.proto.imap import ServerConnection, Status
from pochta.proto.imap import commands as c
from pochta.proto.imap.commands import BinarySize, BodySection, Partial, SectionText
from pochta.proto.imap.commands import FetchAttribute as A
from pochta.proto.imap.seqset import SequenceSet

from .dialogue import command_of, refusal_of, selected


def items(line: bytes, make=selected) -> tuple[c.FetchItem, ...]:  # type: ignore[no-untyped-def]
    command = command_of(line, make)
    assert isinstance(command, c.Fetch)
    return command.items


def qresync_selected() -> ServerConnection:
    conn = selected()
    conn.enable("QRESYNC")
    return conn


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
            (A.FLAGS, BodySection(text=SectionText.HEADER_FIELDS, fields=("DATE", "FROM"))),
        ),
        (b"a FETCH 1 ALL", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE, A.ENVELOPE)),
        (b"a FETCH 1 fast", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE)),
        (b"a FETCH 1 FULL", (A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE, A.ENVELOPE, A.BODY)),
        (b"a FETCH 1 BODY[]", (BodySection(),)),
        (b"a FETCH 1 BODY.PEEK[]<0.2048>", (BodySection(partial=Partial(origin=0, count=2048), is_peek=True),)),
        (b"a FETCH 1 BODY[1.2.3]", (BodySection(part=(1, 2, 3)),)),
        (b"a FETCH 1 BODY[4.2.MIME]", (BodySection(part=(4, 2), text=SectionText.MIME),)),
        (b"a FETCH 1 BODY[3.HEADER]", (BodySection(part=(3,), text=SectionText.HEADER),)),
        (b"a FETCH 1 BODY[TEXT]<10.20>", (BodySection(text=SectionText.TEXT, partial=Partial(origin=10, count=20)),)),
        (
            b'a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT ("Received" X-Spam)]',
            (BodySection(text=SectionText.HEADER_FIELDS_NOT, fields=("Received", "X-Spam"), is_peek=True),),
        ),
        (b"a FETCH 1 BINARY[1]", (BodySection(part=(1,), is_binary=True),)),
        (
            b"a FETCH 1 BINARY.PEEK[]<0.5>",
            (BodySection(partial=Partial(origin=0, count=5), is_peek=True, is_binary=True),),
        ),
        (b"a FETCH 1 BINARY.SIZE[1.2]", (BinarySize(part=(1, 2)),)),
        (
            b"a FETCH 1 (UID RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODYSTRUCTURE BODY ENVELOPE INTERNALDATE)",
            (
                A.UID,
                A.RFC822,
                A.RFC822_HEADER,
                A.RFC822_SIZE,
                A.RFC822_TEXT,
                A.BODYSTRUCTURE,
                A.BODY,
                A.ENVELOPE,
                A.INTERNALDATE,
            ),
        ),
        (b"a FETCH 1 (MODSEQ EMAILID THREADID SAVEDATE)", (A.MODSEQ, A.EMAILID, A.THREADID, A.SAVEDATE)),
        (b"a UID FETCH 1 FLAGS", (A.FLAGS, A.UID)),  # RFC 9051 §6.4.9: UID is always returned
        (b"a UID FETCH 1 (UID FLAGS)", (A.UID, A.FLAGS)),
    ],
)
def test_fetch_items(line: bytes, expected: tuple[c.FetchItem, ...]) -> None:
    assert items(line) == expected


def test_fetch_modifiers() -> None:
    # RFC 7162 §3.1.4.2
    command = command_of(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)", selected)
    assert command == c.Fetch(
        sequence_set=SequenceSet.parse("1:*"), items=(A.FLAGS, A.UID), changed_since=12345, is_uid=True
    )
    # RFC 7162 §3.2.6
    command = command_of(b"A02 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)", qresync_selected)
    assert isinstance(command, c.Fetch) and command.is_vanished and command.changed_since == 12345


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH 1 (ALL)",
        b"a FETCH 1 BODY[",
        b"a FETCH 1 BODY[MIME]",
        b"a FETCH 1 BODY[0]",
        b"a FETCH 1 BODY[1.]",
        b"a FETCH 1 BODY[HEADER.FIELDS ()]",
        b"a FETCH 1 BODY[]<1>",
        b"a FETCH 1 BODY[]<0.0>",
        b"a FETCH 1 BINARY[TEXT]",
        b"a FETCH 1 FLAGS[1]",
        b"a FETCH 1 FOO",
        b"a FETCH 1 ()",
        b"a FETCH 1",
        b"a FETCH FLAGS",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        b"a FETCH 1 FLAGS (FOO)",
        b"a UID FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)",  # QRESYNC not enabled
    ],
)
def test_bad_fetch(line: bytes) -> None:
    assert refusal_of(line, selected).reply.status is Status.BAD


def test_vanished_needs_uid_fetch_and_changedsince() -> None:
    assert refusal_of(b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)", qresync_selected).reply.status is Status.BAD
    assert refusal_of(b"a UID FETCH 1 FLAGS (VANISHED)", qresync_selected).reply.status is Status.BAD
