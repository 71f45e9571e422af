"""Each command parsed from the wire (RFC 9051 §6 examples where there are some), whole and byte at a time."""

import datetime

import pytest

from pochta.proto.imap import ServerConnection, Status
from pochta.proto.imap import commands as c
from pochta.proto.imap.seqset import STAR, SequenceSet

from .dialogue import command_of, logged_in, refusal_of, selected


def authenticated(**kwargs: object) -> ServerConnection:
    return logged_in(**kwargs)


def with_enabled(*capabilities: str, make=logged_in):  # type: ignore[no-untyped-def]
    def factory() -> ServerConnection:
        conn = make()
        conn.enable(*capabilities)
        return conn

    return factory


# ---- any state and not authenticated ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"abcd CAPABILITY", c.Capability()),
        (b"a002 NOOP", c.Noop()),
        (b"A023 LOGOUT", c.Logout()),
        (b"a1 capability", c.Capability()),
        (b"a002 STARTTLS", c.StartTls()),
        (b"a001 LOGIN SMITH SESAME", c.Login(user="SMITH", password="SESAME")),
        (b'a1 LOGIN "fred foobar" "pass\\"\\\\word"', c.Login(user="fred foobar", password='pass"\\word')),
        (b"a1 LOGIN {4+}\r\nuser {3+}\r\npwd", c.Login(user="user", password="pwd")),
        (b'a1 LOGIN "j\xc3\xb6rg" x', c.Login(user="jörg", password="x")),
        (b"A001 AUTHENTICATE GSSAPI", c.Authenticate(mechanism="GSSAPI")),
        (b"a1 AUTHENTICATE plain =", c.Authenticate(mechanism="PLAIN", initial_response=b"")),
        (
            b"a1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==",
            c.Authenticate(mechanism="PLAIN", initial_response=b"\x00user\x00pass"),
        ),
        (
            b'a023 ID ("name" "sodr" "version" "19.34" "vendor" NIL)',
            c.Id(params=(("name", "sodr"), ("version", "19.34"), ("vendor", None))),
        ),
        (b"a1 ID NIL", c.Id(params=None)),
        (b"a1 ID ()", c.Id(params=())),
    ],
)
def test_not_authenticated_commands(line: bytes, command: c.CommandType) -> None:
    assert command_of(line) == command


@pytest.mark.parametrize(
    "line",
    [
        b"a1 LOGIN onlyuser",
        b"a1 LOGIN user pass extra",
        b"a1 LOGIN (user) pass",
        b"a1 AUTHENTICATE PLAIN not*base64",
        b"a1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw",  # missing padding
        b"a1 CAPABILITY now",
        b"a1 NOOP ",
        b'a1 ID ("name")',
        b"a1  NOOP",
        b'a1 LOGIN "unterminated',
    ],
)
def test_malformed_commands_are_bad(line: bytes) -> None:
    refusal = refusal_of(line)
    assert refusal.tag == "a1"
    assert refusal.reply.status is Status.BAD


# ---- authenticated ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"A142 SELECT INBOX", c.Select(mailbox="INBOX")),
        (b"A142 SELECT inBox", c.Select(mailbox="INBOX")),
        (b'A142 SELECT "InBoX"', c.Select(mailbox="INBOX")),
        (b"A932 EXAMINE blurdybloop", c.Select(mailbox="blurdybloop", is_read_only=True)),
        (b"a1 SELECT INBOX (CONDSTORE)", c.Select(mailbox="INBOX", is_condstore=True)),
        (b"a1 SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-", c.Select(mailbox="~peter/mail/台北/日本語")),
        (b"A003 CREATE owatagusiam/", c.Create(mailbox="owatagusiam/")),
        (
            b"t1 CREATE MySpecial (USE (\\Drafts \\Sent))",
            c.Create(mailbox="MySpecial", special_use=("\\Drafts", "\\Sent")),
        ),
        (b"A683 DELETE blurdybloop", c.Delete(mailbox="blurdybloop")),
        (b"A683 RENAME blurdybloop sarasoop", c.Rename(mailbox="blurdybloop", new_name="sarasoop")),
        (b"A002 SUBSCRIBE #news.comp.mail.mime", c.Subscribe(mailbox="#news.comp.mail.mime")),
        (b"A002 UNSUBSCRIBE #news.comp.mail.mime", c.Unsubscribe(mailbox="#news.comp.mail.mime")),
        (b'A101 LIST "" ""', c.List(reference="", patterns=("",))),
        (b'A102 LIST #news.comp.mail.misc ""', c.List(reference="#news.comp.mail.misc", patterns=("",))),
        (b"A202 LIST ~/Mail/ %", c.List(reference="~/Mail/", patterns=("%",))),
        (b'a1 LIST "" *', c.List(reference="", patterns=("*",))),
        (b'a1 LIST "" foo/*/b%r', c.List(reference="", patterns=("foo/*/b%r",))),
        (
            b'A01 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
            c.List(
                reference="",
                patterns=("%",),
                selection=frozenset({c.ListSelection.SUBSCRIBED, c.ListSelection.RECURSIVEMATCH}),
                returns=frozenset({c.ListReturn.CHILDREN}),
                is_extended=True,
            ),
        ),
        (
            b'A02 LIST "" ("INBOX" "Drafts" Sent/%)',
            c.List(reference="", patterns=("INBOX", "Drafts", "Sent/%"), is_extended=True),
        ),
        (
            b'A03 LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES UNSEEN) SUBSCRIBED)',
            c.List(
                reference="",
                patterns=("*",),
                selection=frozenset({c.ListSelection.SPECIAL_USE}),
                returns=frozenset({c.ListReturn.STATUS, c.ListReturn.SUBSCRIBED}),
                status_items=(c.StatusItem.MESSAGES, c.StatusItem.UNSEEN),
                is_extended=True,
            ),
        ),
        (b'A002 LSUB "#news." "comp.mail.*"', c.Lsub(reference="#news.", pattern="comp.mail.*")),
        (b"A001 NAMESPACE", c.Namespace()),
        (
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES SIZE HIGHESTMODSEQ deleted)",
            c.Status(
                mailbox="blurdybloop",
                items=(
                    c.StatusItem.UIDNEXT,
                    c.StatusItem.MESSAGES,
                    c.StatusItem.SIZE,
                    c.StatusItem.HIGHESTMODSEQ,
                    c.StatusItem.DELETED,
                ),
            ),
        ),
        (b"t2 ENABLE CONDSTORE qresync", c.Enable(capabilities=("CONDSTORE", "QRESYNC"))),
        (b"a1 IDLE", c.Idle()),
        (b"a1 SELECT {5+}\r\nINBOX", c.Select(mailbox="INBOX")),
    ],
)
def test_authenticated_commands(line: bytes, command: c.CommandType) -> None:
    assert command_of(line, authenticated) == command


@pytest.mark.parametrize(
    "line",
    [
        b"a1 SELECT",
        b"a1 SELECT INBOX (FOO)",
        b"a1 SELECT INBOX (QRESYNC (1 2))",  # QRESYNC not enabled (RFC 7162 §3.2.5)
        b"a1 CREATE &AGE-",  # a new name must be valid modified UTF-7
        b"a1 RENAME INBOX/x &AGE-",
        b"a1 SELECT Entw\xc3\xbcrfe",
        b'a1 SELECT "Entw\xc3\xbcrfe"',
        b"a1 STATUS INBOX ()",
        b"a1 STATUS INBOX (FOO)",
        b'a1 LIST (RECURSIVEMATCH) "" %',
        b'a1 LIST (RECURSIVEMATCH REMOTE) "" %',  # RFC 5258 §3.1: REMOTE selects nothing
        b'a1 LIST (BOGUS) "" %',
        b'a1 LIST "" % RETURN (BOGUS)',
        b"a1 ENABLE",
        b"a1 CREATE x (USE \\Sent)",
        b"a1 RENAME a",
        b"a1 APPEND INBOX",
        b"a1 FROB",
    ],
)
def test_malformed_authenticated_commands_are_bad(line: bytes) -> None:
    refusal = refusal_of(line, authenticated)
    assert refusal.reply.status is Status.BAD


def test_utf8_mailbox_names_after_enable() -> None:
    make = with_enabled("UTF8=ACCEPT")
    assert command_of('a1 SELECT "Entwürfe"'.encode(), make) == c.Select(mailbox="Entwürfe")
    # RFC 6855 §3: no modified UTF-7 decoding once UTF-8 is on
    assert command_of(b"a1 SELECT &APw-", make) == c.Select(mailbox="&APw-")
    rev2 = with_enabled("IMAP4rev2")
    assert command_of('a1 CREATE "日本語"'.encode(), rev2) == c.Create(mailbox="日本語")


def test_qresync_select() -> None:
    make = with_enabled("QRESYNC")
    # RFC 7162 §3.2.5.2
    command = command_of(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))", make)
    assert command == c.Select(
        mailbox="INBOX",
        qresync=c.QresyncParams(
            uidvalidity=67890007,
            modseq=20050715194045000,
            known_uids=SequenceSet.parse("41,43:211,214:541"),
        ),
    )
    command = command_of(
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
        b"15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        make,
    )
    assert isinstance(command, c.Select) and command.qresync is not None
    assert command.qresync.known_sequence_numbers == SequenceSet.parse("5000,7500,9000,9990:9999")
    assert command_of(b"a1 SELECT INBOX (QRESYNC (1 2))", make) == c.Select(
        mailbox="INBOX", qresync=c.QresyncParams(uidvalidity=1, modseq=2)
    )


# ---- selected -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"FXXZ CHECK", c.Check()),
        (b"A341 CLOSE", c.Close()),
        (b"A342 UNSELECT", c.Unselect()),
        (b"A202 EXPUNGE", c.Expunge()),
        (b"A003 UID EXPUNGE 3000:3002", c.Expunge(uids=SequenceSet(ranges=((3000, 3002),)))),
        (
            b"A003 STORE 2:4 +FLAGS (\\Deleted)",
            c.Store(sequence_set=SequenceSet(ranges=((2, 4),)), mode=c.StoreMode.ADD, flags=("\\Deleted",)),
        ),
        (
            b"a1 UID STORE 1:* -FLAGS.SILENT \\seen $Junk",
            c.Store(
                sequence_set=SequenceSet(ranges=((1, STAR),)),
                mode=c.StoreMode.REMOVE,
                flags=("\\Seen", "$Junk"),
                is_silent=True,
                is_uid=True,
            ),
        ),
        (
            b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
            c.Store(
                sequence_set=SequenceSet(ranges=((7, 7), (5, 5), (9, 9))),
                mode=c.StoreMode.ADD,
                flags=("\\Deleted",),
                is_silent=True,
                unchanged_since=320162338,
            ),
        ),
        (b"a1 STORE $ FLAGS ()", c.Store(sequence_set=SequenceSet(is_saved=True), mode=c.StoreMode.REPLACE, flags=())),
        (b"A003 COPY 2:4 MEETING", c.Copy(sequence_set=SequenceSet(ranges=((2, 4),)), mailbox="MEETING")),
        (
            b"a UID MOVE 42:69 foo",
            c.Copy(sequence_set=SequenceSet(ranges=((42, 69),)), mailbox="foo", is_move=True, is_uid=True),
        ),
        (b"a1 MOVE 1 inbox", c.Copy(sequence_set=SequenceSet(ranges=((1, 1),)), mailbox="INBOX", is_move=True)),
        (b"a1 UID COPY 1 x", c.Copy(sequence_set=SequenceSet(ranges=((1, 1),)), mailbox="x", is_uid=True)),
        (b"a1 SELECT other", c.Select(mailbox="other")),
    ],
)
def test_selected_commands(line: bytes, command: c.CommandType) -> None:
    assert command_of(line, selected) == command


@pytest.mark.parametrize(
    "line",
    [
        b"a1 STORE 0 +FLAGS (\\Seen)",
        b"a1 STORE 1 FLAGS",
        b"a1 STORE 1 +FLAGS (\\Seen",
        b"a1 STORE 1 XFLAGS (\\Seen)",
        b"a1 STORE 1 (UNCHANGEDSINCE x) FLAGS ()",
        b"a1 COPY 1:",
        b"a1 COPY , x",
        b"a1 UID EXPUNGE",
        b"a1 UID FROB 1",
        b"a1 UID",
        b"a1 EXPUNGE 1",
    ],
)
def test_malformed_selected_commands_are_bad(line: bytes) -> None:
    assert refusal_of(line, selected).reply.status is Status.BAD


def test_literal_inside_command() -> None:
    command = command_of(b"a1 LOGIN {3+}\r\nfoo {8+}\r\nbar\r\nbaz")
    assert command == c.Login(user="foo", password="bar\r\nbaz")


def test_literal_with_nul_is_bad() -> None:
    assert refusal_of(b"a1 LOGIN {3+}\r\na\x00b x").reply.status is Status.BAD


def test_date_time_in_append_is_parsed_with_its_offset() -> None:
    from pochta.proto.imap import AppendStart

    from .dialogue import events_of

    events = events_of(b'a1 APPEND x " 7-Feb-1994 21:52:25 -0800" {1+}\r\nx\r\n', authenticated)
    start = events[0]
    assert isinstance(start, AppendStart)
    assert start.date == datetime.datetime(
        1994, 2, 7, 21, 52, 25, tzinfo=datetime.timezone(-datetime.timedelta(hours=8))
    )


def test_a_name_that_is_not_modified_utf7_is_taken_as_written() -> None:
    # it names no mailbox (SELECT answers NO, LIST nothing); only a name being made must be valid
    assert command_of(b"a1 SELECT &AGE-x", logged_in) == c.Select(mailbox="&AGE-x")


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b'q GETQUOTA ""', c.GetQuota(root="")),
        (b"q GETQUOTA User", c.GetQuota(root="User")),
        (b"q GETQUOTAROOT inbox", c.GetQuotaRoot(mailbox="INBOX")),
        (b'q SETQUOTA "" (STORAGE 512 message 10)', c.SetQuota(root="", limits=(("STORAGE", 512), ("MESSAGE", 10)))),
        (b'q SETQUOTA "" ()', c.SetQuota(root="", limits=())),
        (
            b"q STATUS INBOX (DELETED-STORAGE SIZE)",
            c.Status(mailbox="INBOX", items=(c.StatusItem.DELETED_STORAGE, c.StatusItem.SIZE)),
        ),
    ],
)
def test_quota_commands(line: bytes, command: c.CommandType) -> None:  # RFC 9208 §4.1, §4.3
    assert command_of(line, logged_in) == command


@pytest.mark.parametrize(
    "line", [b"q GETQUOTA", b'q SETQUOTA "" (STORAGE)', b'q SETQUOTA "" STORAGE 1', b"q GETQUOTAROOT"]
)
def test_bad_quota_commands(line: bytes) -> None:
    assert refusal_of(line, logged_in).reply.status is Status.BAD


def test_quota_commands_need_authentication() -> None:
    assert refusal_of(b"q GETQUOTAROOT INBOX").reply.status is Status.BAD
