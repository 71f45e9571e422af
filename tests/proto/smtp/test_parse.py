import pytest

from pochta.mail.address import Address
from pochta.proto.smtp import Body, Notify, Orcpt, Ret
from pochta.proto.smtp.parse import (
    CommandError,
    Offer,
    decode_xtext,
    parse_auth,
    parse_bdat,
    parse_ehlo,
    parse_mail,
    parse_params,
    parse_rcpt,
    split_command,
)

OFFER = Offer(
    params=frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "NOTIFY", "ORCPT", "AUTH"}),
    bodies=frozenset(Body),
    max_message_size=1000,
)
BARE = Offer(params=frozenset(), bodies=frozenset(), max_message_size=None)


def _error(call: object, *args: object, **kwargs: object) -> tuple[int, str | None]:
    assert callable(call)
    with pytest.raises(CommandError) as info:
        call(*args, **kwargs)
    return info.value.reply.code, info.value.reply.status


def rcpt(argument: str, *, offer: Offer = OFFER, is_smtputf8: bool = False):  # type: ignore[no-untyped-def]
    return parse_rcpt(argument, offer=offer, hostname="mx.example.test", is_smtputf8=is_smtputf8)


@pytest.mark.parametrize(
    ("line", "verb", "argument"),
    [
        ("mail FROM:<a@b>", "MAIL", "FROM:<a@b>"),
        ("QUIT", "QUIT", ""),
        ("ehlo   host.example  ", "EHLO", "host.example"),
        ("", "", ""),
        ("M@IL x", "", "M@IL x"),
    ],
)
def test_verbs_are_case_insensitive(line: str, verb: str, argument: str) -> None:
    assert split_command(line) == (verb, argument)


def test_mail_with_every_parameter() -> None:
    event = parse_mail("FROM:<Sender@Example.ORG> SIZE=500 body=8bitmime RET=HDRS ENVID=QQ+2B314 AUTH=<>", offer=OFFER)
    assert event.path == Address("Sender", "example.org")
    assert event.size == 500
    assert event.body is Body.EIGHT_BIT_MIME
    assert event.ret is Ret.HDRS
    assert event.envid == "QQ+314"
    assert event.auth == "<>"
    assert event.params["BODY"] == "8bitmime"


@pytest.mark.parametrize("argument", ["FROM:<>", "from: <>", "FROM:  <>"])
def test_null_reverse_path_and_a_space_after_the_colon(argument: str) -> None:
    assert parse_mail(argument, offer=OFFER).path is None


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("FROM:<@relay.example:user@example.org>", Address("user", "example.org")),
        ("FROM:<@a.example,@b.example:user@example.org>", Address("user", "example.org")),
        ("FROM:<@[192.0.2.1],@b.example:user@example.org>", Address("user", "example.org")),
    ],
)
def test_source_routes_are_accepted_and_dropped(argument: str, expected: Address) -> None:
    assert parse_mail(argument, offer=OFFER).path == expected


def test_quoted_local_part_may_hold_angle_bracket_and_space() -> None:
    event = parse_mail('FROM:<"odd >name"@example.org> SIZE=1', offer=OFFER)
    assert event.path == Address("odd >name", "example.org")
    assert event.size == 1


@pytest.mark.parametrize(
    ("argument", "code", "status"),
    [
        ("FROM:a@example.org", 501, "5.5.4"),  # no angle brackets
        ("FROM:<a@example.org", 501, "5.5.4"),
        ("TO:<a@example.org>", 501, "5.5.4"),
        ("FROM:<not an address>", 501, "5.1.7"),
        ("FROM:<a@-bad-.example>", 501, "5.1.7"),
        ("FROM:<@bad route:a@example.org>", 501, "5.1.7"),
        ("FROM:<a@example.org>SIZE=1", 501, "5.5.4"),
        ("FROM:<a@example.org> SIZE=x", 501, "5.5.4"),
        ("FROM:<a@example.org> SIZE=1001", 552, "5.3.4"),  # RFC 1870 §6.2
        ("FROM:<a@example.org> SIZE=1 SIZE=2", 501, "5.5.4"),
        ("FROM:<a@example.org> FOO=bar", 555, "5.5.4"),
        ("FROM:<a@example.org> NOTIFY=NEVER", 555, "5.5.4"),
        ("FROM:<a@example.org> BODY=9BIT", 501, "5.5.4"),
        ("FROM:<a@example.org> RET=ALL", 501, "5.5.4"),
        ("FROM:<a@example.org> ENVID=a+zz", 501, "5.5.4"),
        ("FROM:<a@example.org> ENVID=" + "x" * 101, 501, "5.5.4"),
        ("FROM:<a@example.org> SMTPUTF8=yes", 501, "5.5.4"),
        ("FROM:<a@example.org> =x", 501, "5.5.4"),
        ("FROM:<jö@example.org>", 553, "5.6.7"),  # RFC 6531: UTF-8 needs SMTPUTF8
    ],
)
def test_bad_mail_commands(argument: str, code: int, status: str) -> None:
    assert _error(parse_mail, argument, offer=OFFER) == (code, status)


def test_parameters_are_refused_when_not_offered() -> None:
    assert _error(parse_mail, "FROM:<a@example.org> SIZE=10", offer=BARE) == (555, "5.5.4")
    no_binary = Offer(params=OFFER.params, bodies=frozenset({Body.SEVEN_BIT}), max_message_size=None)
    assert _error(parse_mail, "FROM:<a@b.example> BODY=BINARYMIME", offer=no_binary) == (555, "5.5.4")


def test_smtputf8_addresses() -> None:
    event = parse_mail("FROM:<jöran@bücher.example> SMTPUTF8", offer=OFFER)
    assert event.is_smtputf8
    assert event.path == Address("jöran", "xn--bcher-kva.example")
    recipient = rcpt("TO:<用户@例子.广告>", is_smtputf8=True)
    assert recipient.path.local == "用户"
    assert _error(rcpt, "TO:<用户@例子.广告>") == (553, "5.6.7")


def test_rcpt_with_dsn_parameters() -> None:
    event = rcpt("TO:<user@example.org> NOTIFY=success,DELAY ORCPT=rfc822;user+2Bdetail@example.org")
    assert event.notify == frozenset({Notify.SUCCESS, Notify.DELAY})
    assert event.orcpt == Orcpt(addr_type="rfc822", address="user+detail@example.org")


def test_orcpt_utf8_address_type_decodes_unicode_escapes() -> None:
    event = rcpt(r"TO:<user@example.org> ORCPT=utf-8;j\x{F6}ran@example.org")
    assert event.orcpt == Orcpt(addr_type="utf-8", address="jöran@example.org")


@pytest.mark.parametrize(
    ("argument", "code", "status"),
    [
        ("TO:<>", 501, "5.1.3"),
        ("TO:<nobody>", 501, "5.1.3"),
        ("TO:user@example.org", 501, "5.5.4"),
        ("TO:<u@example.org> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),  # RFC 3461 §4.1
        ("TO:<u@example.org> NOTIFY=SOMETIMES", 501, "5.5.4"),
        ("TO:<u@example.org> NOTIFY", 501, "5.5.4"),
        ("TO:<u@example.org> ORCPT=rfc822", 501, "5.5.4"),
        ("TO:<u@example.org> ORCPT=rfc822;a+4", 501, "5.5.4"),
        ("TO:<u@example.org> SIZE=10", 555, "5.5.4"),
        ("FROM:<u@example.org>", 501, "5.5.4"),
    ],
)
def test_bad_rcpt_commands(argument: str, code: int, status: str) -> None:
    assert _error(rcpt, argument) == (code, status)


def test_bare_postmaster_is_a_recipient() -> None:
    event = rcpt("TO:<Postmaster>")
    assert event.is_bare_postmaster
    assert event.path == Address("Postmaster", "mx.example.test")


@pytest.mark.parametrize(
    ("text", "decoded"),
    [("", ""), ("abc", "abc"), ("a+2Bb+3Dc", "a+b=c"), ("+41+42", "AB"), ("x+e2+82+ac", "x€")],
)
def test_xtext(text: str, decoded: str) -> None:
    assert decode_xtext(text) == decoded


@pytest.mark.parametrize("text", ["+", "+4", "+GG", "a=b", "a b", "+FF"])
def test_bad_xtext(text: str) -> None:
    assert _error(decode_xtext, text) == (501, "5.5.4")


def test_esmtp_values_may_be_utf8_but_not_contain_equals() -> None:
    assert parse_params("X-A=ö Y") == {"X-A": "ö", "Y": None}
    assert _error(parse_params, "X=a=b")[0] == 501
    assert _error(parse_params, "-X=1")[0] == 501


@pytest.mark.parametrize(
    ("argument", "expected"), [("0 LAST", (0, True)), ("100", (100, False)), ("7 last", (7, True))]
)
def test_bdat(argument: str, expected: tuple[int, bool]) -> None:
    assert parse_bdat(argument) == expected


@pytest.mark.parametrize("argument", ["", "LAST", "-1", "1 FIRST", "1.5", "1 LAST X"])
def test_bad_bdat(argument: str) -> None:
    assert _error(parse_bdat, argument) == (501, "5.5.4")


def test_auth_arguments() -> None:
    assert parse_auth("plain").mechanism == "PLAIN"
    assert parse_auth("PLAIN").initial_response is None
    assert parse_auth("PLAIN =").initial_response == b""
    assert parse_auth("PLAIN AHVzZXIAcGFzcw==").initial_response == b"\0user\0pass"
    assert _error(parse_auth, "PLAIN not*base64") == (501, "5.5.2")
    assert _error(parse_auth, "") == (501, "5.5.4")


def test_ehlo_needs_a_name() -> None:
    assert parse_ehlo("client.example") == "client.example"
    assert parse_ehlo("[192.0.2.1]") == "[192.0.2.1]"
    assert _error(parse_ehlo, "") == (501, "5.5.4")
