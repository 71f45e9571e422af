import datetime

from pochta.proto.imap import commands as c
from pochta.proto.imap.responses import (
    CapabilityData,
    Code,
    Condition,
    Continuation,
    EnabledData,
    ESearchData,
    ExistsData,
    ExpungeData,
    FetchData,
    FlagsData,
    IdData,
    ListData,
    NamespaceData,
    RawData,
    RecentData,
    SearchData,
    Status,
    StatusData,
    Tagged,
    VanishedData,
    appenduid,
    copyuid,
    fetch_item_name,
    flags_code,
    number_code,
    render,
    render_date_time,
    render_flags,
)


def test_status_responses() -> None:
    assert render(Tagged(tag="a1", status=Status.OK, text="LOGIN completed")) == b"a1 OK LOGIN completed\r\n"
    assert render(Tagged(tag="a", status=Status.NO, text="x", code=Code(name="TRYCREATE"))) == b"a NO [TRYCREATE] x\r\n"
    assert render(Condition(status=Status.OK, text="UIDs valid", code=number_code("UIDVALIDITY", 3857529045))) == (
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    )
    assert render(
        Condition(status=Status.OK, text="Limited", code=flags_code("PERMANENTFLAGS", ["\\Deleted", "\\Seen", "\\*"]))
    ) == (b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n")
    assert render(Condition(status=Status.BYE, text="bye\r\nnow")) == b"* BYE bye  now\r\n"
    assert render(Condition(status=Status.OK, text="", code=Code(name="READ-WRITE"))) == b"* OK [READ-WRITE] OK\r\n"
    assert render(Continuation()) == b"+ Ready\r\n"
    assert render(Continuation(text="")) == b"+ \r\n"


def test_uidplus_codes() -> None:
    # RFC 4315 §3
    assert render(Tagged(tag="A003", status=Status.OK, text="done", code=appenduid(38505, [3955]))) == (
        b"A003 OK [APPENDUID 38505 3955] done\r\n"
    )
    code = copyuid(38505, [304, 319, 320], [3956, 3957, 3958])
    assert code.value == b"38505 304,319:320 3956:3958"


def test_untagged_data() -> None:
    assert (
        render(CapabilityData(capabilities=("IMAP4rev2", "IMAP4rev1", "IDLE")))
        == b"* CAPABILITY IMAP4rev2 IMAP4rev1 IDLE\r\n"
    )
    assert render(EnabledData(capabilities=())) == b"* ENABLED\r\n"
    assert render(EnabledData(capabilities=("CONDSTORE",))) == b"* ENABLED CONDSTORE\r\n"
    assert render(FlagsData(flags=("\\Answered", "\\Seen", "$Junk"))) == b"* FLAGS (\\Answered \\Seen $Junk)\r\n"
    assert render(ExistsData(count=23)) == b"* 23 EXISTS\r\n"
    assert render(RecentData(count=5)) == b"* 5 RECENT\r\n"
    assert render(ExpungeData(sequence_number=3)) == b"* 3 EXPUNGE\r\n"
    assert render(VanishedData(uids=[405, 407, 406, 410])) == b"* VANISHED 405:407,410\r\n"
    assert render(VanishedData(uids=[1, 2], is_earlier=True)) == b"* VANISHED (EARLIER) 1:2\r\n"
    assert render(RawData(data=b'QUOTA "" (STORAGE 10 512)')) == b'* QUOTA "" (STORAGE 10 512)\r\n'


def test_fetch() -> None:
    items = [(b"FLAGS", render_flags(["\\Seen"])), (b"UID", b"4827313"), (b"BODY[]", b"{3}\r\nabc")]
    assert (
        render(FetchData(sequence_number=12, items=items))
        == b"* 12 FETCH (FLAGS (\\Seen) UID 4827313 BODY[] {3}\r\nabc)\r\n"
    )


def test_fetch_item_names() -> None:
    assert fetch_item_name(c.FetchAttribute.RFC822_SIZE) == b"RFC822.SIZE"
    assert fetch_item_name(c.BodySection(is_peek=True)) == b"BODY[]"
    section = c.BodySection(
        part=(1, 2),
        text=c.SectionText.HEADER_FIELDS,
        fields=("From", "X Y"),
        partial=c.Partial(origin=10, count=5),
        is_peek=True,
    )
    assert fetch_item_name(section) == b'BODY[1.2.HEADER.FIELDS (From "X Y")]<10>'  # RFC 9051 §7.5.2
    assert fetch_item_name(c.BodySection(text=c.SectionText.TEXT)) == b"BODY[TEXT]"
    assert fetch_item_name(c.BodySection(part=(3,), is_binary=True, is_peek=True)) == b"BINARY[3]"
    assert fetch_item_name(c.BinarySize(part=())) == b"BINARY.SIZE[]"


def test_date_time() -> None:
    zone = datetime.timezone(-datetime.timedelta(hours=7))
    assert render_date_time(datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)) == b'"17-Jul-1996 02:44:25 -0700"'
    assert (
        render_date_time(datetime.datetime(2024, 1, 1, 0, 0, 0, tzinfo=datetime.UTC)) == b'" 1-Jan-2024 00:00:00 +0000"'
    )


def test_list() -> None:
    assert render(ListData(attributes=("\\HasNoChildren",), delimiter="/", mailbox="INBOX")) == (
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    )
    assert render(ListData(attributes=("\\Noselect",), delimiter=None, mailbox="")) == b'* LIST (\\Noselect) NIL ""\r\n'
    assert render(ListData(attributes=(), delimiter="\\", mailbox="台北")) == b'* LIST () "\\\\" "&U,BTFw-"\r\n'
    assert render(ListData(attributes=(), delimiter="/", mailbox="台北"), is_utf8=True) == (
        b'* LIST () "/" {6}\r\n\xe5\x8f\xb0\xe5\x8c\x97\r\n'
    )
    # RFC 5258 §4 CHILDINFO, RFC 9051 §6.3.9.7 OLDNAME
    assert render(ListData(attributes=("\\Subscribed",), delimiter="/", mailbox="Foo", child_info=("SUBSCRIBED",))) == (
        b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert render(ListData(attributes=(), delimiter="/", mailbox="New", old_name="Old")) == (
        b'* LIST () "/" "New" ("OLDNAME" ("Old"))\r\n'
    )
    assert render(ListData(attributes=(), delimiter="/", mailbox="x", is_lsub=True)) == b'* LSUB () "/" "x"\r\n'


def test_status() -> None:
    data = StatusData(mailbox="blurdybloop", items=[("MESSAGES", 231), ("UIDNEXT", 44292)])
    assert render(data) == b'* STATUS "blurdybloop" (MESSAGES 231 UIDNEXT 44292)\r\n'


def test_search_and_esearch() -> None:
    assert render(SearchData(numbers=[2, 3, 6])) == b"* SEARCH 2 3 6\r\n"
    assert render(SearchData(numbers=[])) == b"* SEARCH\r\n"
    assert render(SearchData(numbers=[2, 5], modseq=917162500)) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    # RFC 9051 §6.4.4 / RFC 4731
    assert render(ESearchData(tag="A282", is_uid=False, min=2, count=3)) == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    assert render(ESearchData(tag="a", is_uid=True, all=[7, 3, 4, 5, 9], max=9)) == (
        b'* ESEARCH (TAG "a") UID MAX 9 ALL 3:5,7,9\r\n'
    )
    assert render(ESearchData(tag="a", is_uid=False, all=[], count=0)) == b'* ESEARCH (TAG "a") COUNT 0\r\n'


def test_id_and_namespace() -> None:
    assert render(IdData(params=None)) == b"* ID NIL\r\n"
    assert render(IdData(params=[("name", "Pochta"), ("os", None)])) == b'* ID ("name" "Pochta" "os" NIL)\r\n'
    assert render(NamespaceData(personal=[("", "/")])) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert render(NamespaceData(personal=[("", "/")], shared=[("#shared/", "/"), ("#public/", "/")])) == (
        b'* NAMESPACE (("" "/")) NIL (("#shared/" "/")("#public/" "/"))\r\n'
    )
