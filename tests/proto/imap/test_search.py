import datetime

import pytest

from pochta.proto.imap import Status
from pochta.proto.imap import commands as c
from pochta.proto.imap.search import (
    All,
    And,
    Body,
    Criteria,
    Date,
    DateField,
    DateRelation,
    Flag,
    Header,
    Modseq,
    Not,
    ObjectId,
    Or,
    Recent,
    SaveDateSupported,
    Sequence,
    Size,
    Text,
    Within,
)
from pochta.proto.imap.seqset import SequenceSet

from .dialogue import command_of, refusal_of, selected


def search(line: bytes) -> c.Search:
    command = command_of(line, selected)
    assert isinstance(command, c.Search)
    return command


def keys(line: bytes) -> tuple[Criteria, ...]:
    return search(line).criteria.keys


def test_rfc9051_example() -> None:
    # RFC 9051 §6.4.4
    command = search(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert command.returns == frozenset({c.SearchReturn.MIN, c.SearchReturn.COUNT})
    assert command.criteria == And(
        keys=(
            Flag(flag="\\Flagged", is_set=True),
            Date(field=DateField.INTERNAL, relation=DateRelation.SINCE, date=datetime.date(1994, 2, 1)),
            Not(key=Header(name="FROM", value="Smith")),
        )
    )


def test_charset_and_literal() -> None:
    command = search(b"A284 SEARCH CHARSET UTF-8 TEXT {13+}\r\n\xd0\xbd\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb5\xd1\x81")
    assert command.charset == "UTF-8"
    assert command.criteria.keys == (Text(text="нет мес"),)


def test_unknown_charset_is_no_badcharset() -> None:
    refusal = refusal_of(b"A285 SEARCH CHARSET WINDOWS-1252 TEXT x", selected)
    assert refusal.reply.status is Status.NO  # RFC 9051 §6.4.4
    assert refusal.reply.code is not None and refusal.reply.code.name == "BADCHARSET"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b"ALL", All()),
        (b"ANSWERED", Flag(flag="\\Answered", is_set=True)),
        (b"UNANSWERED", Flag(flag="\\Answered", is_set=False)),
        (b"DELETED", Flag(flag="\\Deleted", is_set=True)),
        (b"undeleted", Flag(flag="\\Deleted", is_set=False)),
        (b"DRAFT", Flag(flag="\\Draft", is_set=True)),
        (b"UNDRAFT", Flag(flag="\\Draft", is_set=False)),
        (b"FLAGGED", Flag(flag="\\Flagged", is_set=True)),
        (b"UNFLAGGED", Flag(flag="\\Flagged", is_set=False)),
        (b"SEEN", Flag(flag="\\Seen", is_set=True)),
        (b"UNSEEN", Flag(flag="\\Seen", is_set=False)),
        (b"KEYWORD $Junk", Flag(flag="$Junk", is_set=True)),
        (b"UNKEYWORD $Junk", Flag(flag="$Junk", is_set=False)),
        (b"BCC x", Header(name="BCC", value="x")),
        (b'CC "a b"', Header(name="CC", value="a b")),
        (b"FROM x", Header(name="FROM", value="x")),
        (b"TO x", Header(name="TO", value="x")),
        (b"SUBJECT x", Header(name="SUBJECT", value="x")),
        (b'HEADER Message-ID ""', Header(name="Message-ID", value="")),
        (b"BODY x", Body(text="x")),
        (b"TEXT x", Text(text="x")),
        (
            b"BEFORE 1-Feb-1994",
            Date(field=DateField.INTERNAL, relation=DateRelation.BEFORE, date=datetime.date(1994, 2, 1)),
        ),
        (
            b'ON "21-Dec-2023"',
            Date(field=DateField.INTERNAL, relation=DateRelation.ON, date=datetime.date(2023, 12, 21)),
        ),
        (
            b"SENTBEFORE 1-feb-1994",
            Date(field=DateField.SENT, relation=DateRelation.BEFORE, date=datetime.date(1994, 2, 1)),
        ),
        (b"SENTON 1-Feb-1994", Date(field=DateField.SENT, relation=DateRelation.ON, date=datetime.date(1994, 2, 1))),
        (
            b"SENTSINCE 1-Feb-1994",
            Date(field=DateField.SENT, relation=DateRelation.SINCE, date=datetime.date(1994, 2, 1)),
        ),
        (
            b"SAVEDBEFORE 1-Feb-1994",
            Date(field=DateField.SAVED, relation=DateRelation.BEFORE, date=datetime.date(1994, 2, 1)),
        ),
        (b"SAVEDON 1-Feb-1994", Date(field=DateField.SAVED, relation=DateRelation.ON, date=datetime.date(1994, 2, 1))),
        (
            b"SAVEDSINCE 1-Feb-1994",
            Date(field=DateField.SAVED, relation=DateRelation.SINCE, date=datetime.date(1994, 2, 1)),
        ),
        (b"SAVEDATESUPPORTED", SaveDateSupported()),
        (b"LARGER 1000", Size(is_larger=True, size=1000)),
        (b"SMALLER 0", Size(is_larger=False, size=0)),
        (b"YOUNGER 3600", Within(is_younger=True, seconds=3600)),
        (b"OLDER 60", Within(is_younger=False, seconds=60)),
        (b"UID 1:*", Sequence(sequence_set=SequenceSet.parse("1:*"), is_uid=True)),
        (b"2,4:7", Sequence(sequence_set=SequenceSet.parse("2,4:7"), is_uid=False)),
        (b"$", Sequence(sequence_set=SequenceSet(is_saved=True), is_uid=False)),
        (b"UID $", Sequence(sequence_set=SequenceSet(is_saved=True), is_uid=True)),
        (b"RECENT", Recent(is_set=True)),
        (b"UNRECENT", Recent(is_set=False)),
        (b"OLD", Recent(is_set=False)),
        (b"NEW", And(keys=(Recent(is_set=True), Flag(flag="\\Seen", is_set=False)))),
        (b"MODSEQ 620162338", Modseq(modseq=620162338)),
        (
            b'MODSEQ "/flags/\\\\draft" all 620162338',
            Modseq(modseq=620162338, entry_name="/flags/\\draft", entry_type="all"),
        ),
        (b"EMAILID M6d99ac3275bb4e", ObjectId(is_thread=False, object_id="M6d99ac3275bb4e")),
        (b"THREADID T64b478a75b7ea9", ObjectId(is_thread=True, object_id="T64b478a75b7ea9")),
        (b"OR SEEN FLAGGED", Or(left=Flag(flag="\\Seen", is_set=True), right=Flag(flag="\\Flagged", is_set=True))),
        (b"NOT NOT SEEN", Not(key=Not(key=Flag(flag="\\Seen", is_set=True)))),
        (b"(SEEN)", Flag(flag="\\Seen", is_set=True)),
        (
            b"(SEEN (DELETED FROM x))",
            And(
                keys=(
                    Flag(flag="\\Seen", is_set=True),
                    And(keys=(Flag(flag="\\Deleted", is_set=True), Header(name="FROM", value="x"))),
                )
            ),
        ),
    ],
)
def test_each_key(text: bytes, key: Criteria) -> None:
    assert keys(b"a SEARCH " + text) == (key,)


def test_return_options() -> None:
    assert search(b"a SEARCH RETURN () ALL").returns == frozenset({c.SearchReturn.ALL})  # RFC 4731 §3.1
    assert search(b"a UID SEARCH RETURN (SAVE MIN MAX ALL COUNT) ALL").returns == frozenset(c.SearchReturn)
    assert search(b"a UID SEARCH ALL").is_uid
    assert search(b"a SEARCH ALL").returns is None


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"FOO",
        b"FROM",
        b"OR SEEN",
        b"NOT",
        b"(SEEN",
        b"()",
        b"SINCE 1-Foo-1994",
        b"SINCE 31-Feb-1994",
        b"LARGER x",
        b"YOUNGER 0",
        b"UID 0",
        b"0",
        b"1,$",
        b"MODSEQ",
        b'MODSEQ "/flags/x" bogus 5',
        b"SEEN  FLAGGED",
        b"RETURN (FOO) ALL",
        b'TEXT "\xff"',
        b"NOT " * 60 + b"SEEN",
    ],
)
def test_bad_search(text: bytes) -> None:
    assert refusal_of(b"a SEARCH " + text, selected).reply.status is Status.BAD
