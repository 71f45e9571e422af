"""The SMTP client core: replies, capabilities, commands, pipelined transactions, dot-stuffing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pochta.mail.address import parse_address
from pochta.proto.smtp import Body, ConnectionClosed, LocalProtocolError, NeedData, Notify, Orcpt, Reply, Ret
from pochta.proto.smtp.client import (
    ClientConnection,
    Command,
    DotStuffer,
    MailRequest,
    MalformedReply,
    Outcome,
    Phase,
    RecipientRequest,
    RecipientResult,
    Replied,
    ReplyParser,
    Transaction,
    describe,
    encode_xtext,
    parse_capabilities,
)
from pochta.proto.smtp.content import DataReader
from pochta.proto.smtp.parse import decode_xtext

EHLO_FULL = """
S: 250-mx.example.test hello
S: 250-PIPELINING
S: 250-SIZE 1000
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250-DSN
S: 250 ENHANCEDSTATUSCODES
"""
EHLO_PLAIN = "S: 250 mx.example.test\n"


def _script(text: str) -> tuple[bytes, bytes]:
    client, server = bytearray(), bytearray()
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "C:" or line.startswith("C: "):
            client += line[3:].encode() + b"\r\n"
        elif line.startswith("S: "):
            server += line[3:].encode() + b"\r\n"
        else:
            raise ValueError(line)
    return bytes(client), bytes(server)


def _request(*addresses: str, **fields: object) -> MailRequest:
    recipients = tuple(RecipientRequest(address=parse_address(a)) for a in addresses)
    return MailRequest(mail_from=parse_address("alice@client.example"), recipients=recipients, **fields)  # type: ignore[arg-type]


class _Peer:
    """Scripted server bytes fed whole or one octet at a time, then EOF."""

    def __init__(self, conn: ClientConnection, server: bytes, *, octets: bool) -> None:
        self.conn = conn
        self._packets: Iterator[bytes] = iter([bytes([b]) for b in server] if octets else [server])

    def next(self) -> Replied | MalformedReply | ConnectionClosed:
        while True:
            event = self.conn.next_event()
            if not isinstance(event, NeedData):
                return event
            self.conn.receive_data(next(self._packets, b""))


def _deliver(
    script: str,
    request: MailRequest,
    *,
    content: tuple[bytes, ...] = (b"Subject: hi\r\n\r\nhello\r\n",),
    use_chunking: bool = False,
) -> tuple[tuple[RecipientResult, ...], Transaction]:
    """Greet, EHLO (HELO after a 5xx), one transaction, QUIT; both feeds must write the C: lines."""
    expected, server = _script(script)
    outcomes = []
    for octets in (False, True):
        conn = ClientConnection(hostname="client.example")
        peer = _Peer(conn, server, octets=octets)
        written = bytearray()
        assert peer.next() == Replied(command=Command.GREETING, reply=Reply(code=220, text="mx.example.test ESMTP"))
        written += conn.ehlo()
        event = peer.next()
        assert isinstance(event, Replied)
        if event.reply.code >= 500:
            written += conn.helo()
            peer.next()
        tx = Transaction(conn, request, use_chunking=use_chunking)
        written += tx.start()
        while not tx.is_done:
            if tx.phase is Phase.CONTENT:
                written += b"".join(tx.content(chunk) for chunk in content) + tx.end_content()
                continue
            event = peer.next()
            if isinstance(event, Replied):
                written += tx.receive(event)
            elif isinstance(event, MalformedReply):
                tx.fail(event.reply)
            else:
                tx.fail(Reply(code=421, status="4.4.2", text="connection lost"))
        if not conn.is_closed:
            written += conn.quit()
        assert written.decode() == expected.decode()
        outcomes.append((tx.results, tx))
    assert outcomes[0][0] == outcomes[1][0]
    return outcomes[0]


# ---- replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("octets", [False, True])
def test_replies_multi_line_and_enhanced_status(octets: bool) -> None:
    data = b"250-first\r\n250-second\r\n250 last\r\n550 5.1.1 no such user\r\n451-4.3.0 try\r\n451 4.3.0 later\r\n"
    parser = ReplyParser()
    got = []
    for packet in [bytes([b]) for b in data] if octets else [data]:
        parser.feed(packet)
        while (reply := parser.next_reply()) is not None:
            got.append(reply)
    assert got == [
        Reply(code=250, text=("first", "second", "last")),
        Reply(code=550, status="5.1.1", text="no such user"),
        Reply(code=451, status="4.3.0", text=("try", "later")),
    ]


def test_reply_without_text_and_with_bare_lf() -> None:
    parser = ReplyParser()
    parser.feed(b"250\n354 go\r\n")
    assert parser.next_reply() == Reply(code=250, text="")
    assert parser.next_reply() == Reply(code=354, text="go")


def test_status_of_the_wrong_class_stays_text() -> None:
    parser = ReplyParser()
    parser.feed(b"250 5.0.0 odd\r\n")
    assert parser.next_reply() == Reply(code=250, text="5.0.0 odd")


@pytest.mark.parametrize(
    "data",
    [b"hello\r\n", b"250-a\r\n550 b\r\n", b"150 old\r\n", b"2500 x\r\n", b"250" + b"x" * 9000],
)
def test_malformed_replies_are_events(data: bytes) -> None:
    conn = ClientConnection(hostname="client.example")
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, MalformedReply)
    assert event.reply.code == 451 and event.reply.status == "4.5.0"
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_control_characters_in_reply_text_are_blanked() -> None:
    parser = ReplyParser()
    parser.feed(b"250 a\x00b\rc\r\n")
    assert parser.next_reply() == Reply(code=250, text="a b c")


@given(st.binary(max_size=300))
def test_any_bytes_give_events_never_exceptions(data: bytes) -> None:
    conn = ClientConnection(hostname="client.example")
    conn.ehlo()
    conn.receive_data(data)
    conn.receive_data(b"")
    for _ in range(400):
        if isinstance(conn.next_event(), ConnectionClosed):
            break


def test_unsolicited_421_closes() -> None:
    conn = ClientConnection(hostname="client.example")
    conn.receive_data(b"220 hi\r\n421 4.3.2 shutting down\r\n")
    assert isinstance(conn.next_event(), Replied)
    event = conn.next_event()
    assert isinstance(event, Replied) and event.command is Command.UNSOLICITED and event.reply.code == 421
    assert conn.is_closed
    with pytest.raises(LocalProtocolError):
        conn.noop()


def test_describe_joins_lines() -> None:
    assert describe(Reply(code=550, status="5.1.1", text=("no such", "user"))) == "550 5.1.1 no such user"


# ---- capabilities and commands ------------------------------------------------------------------


def test_ehlo_keywords() -> None:
    reply = Reply(
        code=250,
        text=("mx", "PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "CHUNKING", "BINARYMIME", "DSN",
              "STARTTLS", "AUTH PLAIN login", "AUTH=CRAM-MD5", "ENHANCEDSTATUSCODES", "X-FOO bar"),
    )  # fmt: skip
    caps = parse_capabilities(reply)
    assert caps.is_esmtp and caps.has_pipelining and caps.has_8bitmime and caps.has_smtputf8
    assert caps.has_chunking and caps.has_binarymime and caps.has_dsn and caps.has_starttls
    assert caps.has_enhanced_status_codes and caps.has_size and caps.size_limit == 52428800
    assert caps.auth_mechanisms == {"PLAIN", "LOGIN", "CRAM-MD5"}
    assert "X-FOO" in caps.keywords
    assert parse_capabilities(Reply(code=250, text=("mx", "SIZE"))).size_limit is None
    assert parse_capabilities(Reply(code=250, text=("mx", "SIZE 0"))).size_limit is None


def _connection(ehlo: str) -> ClientConnection:
    conn = ClientConnection(hostname="client.example")
    conn.receive_data(b"220 hi\r\n" + _script(ehlo)[1])
    conn.next_event()
    conn.ehlo()
    assert isinstance(conn.next_event(), Replied)
    return conn


def test_mail_and_rcpt_parameters_only_when_offered() -> None:
    alice, bob = parse_address("alice@client.example"), parse_address("bob@example.test")
    plain = _connection(EHLO_PLAIN)
    assert plain.capabilities.is_esmtp
    assert (
        plain.mail(alice, size=10, body=Body.EIGHT_BIT_MIME, is_smtputf8=True, ret=Ret.HDRS, envid="x")
        == b"MAIL FROM:<alice@client.example>\r\n"
    )
    assert plain.rcpt(bob, notify=frozenset({Notify.FAILURE}), orcpt=Orcpt(addr_type="rfc822", address="b")) == (
        b"RCPT TO:<bob@example.test>\r\n"
    )
    full = _connection(EHLO_FULL)
    assert full.mail(None, size=10, body=Body.EIGHT_BIT_MIME, is_smtputf8=True, ret=Ret.HDRS, envid="a+b=c d") == (
        b"MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb+3Dc+20d\r\n"
    )
    notify = frozenset({Notify.DELAY, Notify.FAILURE})
    orcpt = Orcpt(addr_type="rfc822", address="bob+x@example.test")
    assert full.rcpt(bob, notify=notify, orcpt=orcpt) == (
        b"RCPT TO:<bob@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+2Bx@example.test\r\n"
    )
    assert full.rcpt(parse_address('"a b"@example.test')) == b'RCPT TO:<"a b"@example.test>\r\n'


def test_xtext_round_trip() -> None:
    for text in ["plain", "a+b=c", "sp ace", "ünï", "\r\n"]:
        assert decode_xtext(encode_xtext(text)) == text
    assert encode_xtext("\r\n") == "+0D+0A"


def test_auth_commands() -> None:
    conn = ClientConnection(hostname="client.example")
    assert conn.auth_plain(username="alice", password="secret") == b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
    assert conn.auth_login(username="alice") == b"AUTH LOGIN YWxpY2U=\r\n"
    assert conn.auth_response(b"secret") == b"c2VjcmV0\r\n"
    assert conn.auth_cancel() == b"*\r\n"
    assert conn.pending == (Command.GREETING, Command.AUTH, Command.AUTH, Command.AUTH, Command.AUTH)


def test_ehlo_name_must_be_a_name() -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(hostname="evil\r\nRSET")


def test_starttls_drops_what_came_before_the_handshake() -> None:
    conn = _connection("S: 250-mx\nS: 250 STARTTLS\n")
    assert conn.capabilities.has_starttls
    conn.starttls()
    conn.receive_data(b"220 2.0.0 go ahead\r\n250 injected\r\n")
    assert conn.next_event() == Replied(
        command=Command.STARTTLS, reply=Reply(code=220, status="2.0.0", text="go ahead")
    )
    conn.receive_data(b"250 more injected\r\n")
    assert isinstance(conn.next_event(), NeedData)
    with pytest.raises(LocalProtocolError):
        conn.ehlo()
    conn.tls_established()
    assert conn.is_tls and not conn.capabilities.is_esmtp
    conn.ehlo()
    conn.receive_data(b"250-mx\r\n250 AUTH PLAIN\r\n")
    event = conn.next_event()
    assert isinstance(event, Replied) and event.command is Command.EHLO
    assert conn.capabilities.auth_mechanisms == {"PLAIN"}


def test_tls_established_without_starttls_is_our_mistake() -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(hostname="c").tls_established()


# ---- transactions -------------------------------------------------------------------------------


def test_pipelined_transaction_maps_replies_per_recipient() -> None:
    results, tx = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example> SIZE=30 BODY=8BITMIME
        C: RCPT TO:<bob@example.test>
        C: RCPT TO:<carol@example.test>
        C: RCPT TO:<dave@example.test>
        C: DATA
        S: 250 2.1.0 sender ok
        S: 250 2.1.5 ok
        S: 550 5.1.1 no such user
        S: 450 4.2.1 try later
        S: 354 go ahead
        C: Subject: hi
        C:
        C: ..dot
        C: .
        S: 250 2.0.0 queued as X
        C: QUIT
        S: 221 2.0.0 bye
        """,
        _request("bob@example.test", "carol@example.test", "dave@example.test", size=30, body=Body.EIGHT_BIT_MIME),
        content=(b"Subject: hi\r\n\r\n", b".dot"),
    )
    assert [(r.address.local, r.outcome, r.reply.status) for r in results] == [
        ("bob", Outcome.ACCEPTED, "2.0.0"),
        ("carol", Outcome.PERMANENT, "5.1.1"),
        ("dave", Outcome.TEMPORARY, "4.2.1"),
    ]
    assert not tx.lacks_8bitmime


def test_transaction_without_pipelining_goes_step_by_step() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_PLAIN}
        C: MAIL FROM:<alice@client.example>
        S: 250 ok
        C: RCPT TO:<bob@example.test>
        S: 550 no
        C: RCPT TO:<carol@example.test>
        S: 251 will forward
        C: DATA
        S: 354 go
        C: Subject: hi
        C:
        C: hello
        C: .
        S: 452 4.3.1 disk full
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", "carol@example.test", body=Body.EIGHT_BIT_MIME),
    )
    assert [(r.outcome, r.reply.code) for r in results] == [(Outcome.PERMANENT, 550), (Outcome.TEMPORARY, 452)]


def test_helo_fallback_after_ehlo_5xx_and_8bitmime_reported() -> None:
    results, tx = _deliver(
        """
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        S: 502 command not implemented
        C: HELO client.example
        S: 250 mx.example.test
        C: MAIL FROM:<alice@client.example>
        S: 250 ok
        C: RCPT TO:<bob@example.test>
        S: 250 ok
        C: DATA
        S: 354 go
        C: no final newline
        C: .
        S: 250 ok
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", body=Body.EIGHT_BIT_MIME),
        content=(b"no final newline",),
    )
    assert tx.lacks_8bitmime
    assert results[0].outcome is Outcome.ACCEPTED


def test_pipelined_all_rejected_and_data_rejected_sends_rset() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 ok
        S: 550 5.1.1 unknown
        S: 554 5.5.1 no valid recipients
        C: RSET
        S: 250 ok
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test"),
    )
    assert results[0].reply == Reply(code=550, status="5.1.1", text="unknown")


def test_pipelined_all_rejected_but_data_accepted_sends_a_lone_dot() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 ok
        S: 450 4.2.0 greylisted
        S: 354 go ahead anyway
        C: .
        S: 554 no recipients
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test"),
    )
    assert results[0].outcome is Outcome.TEMPORARY and results[0].reply.status == "4.2.0"


def test_pipelined_mail_rejected_fails_every_recipient_with_its_reply() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: RCPT TO:<carol@example.test>
        C: DATA
        S: 553 5.7.1 sender rejected
        S: 503 5.5.1 need MAIL
        S: 503 5.5.1 need MAIL
        S: 503 5.5.1 need MAIL
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", "carol@example.test"),
    )
    assert {r.reply.text for r in results} == {"sender rejected"}
    assert {r.outcome for r in results} == {Outcome.PERMANENT}


def test_connection_lost_mid_transaction_is_temporary() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: RCPT TO:<carol@example.test>
        C: DATA
        S: 250 ok
        S: 550 5.1.1 unknown
        """,
        _request("bob@example.test", "carol@example.test"),
    )
    assert [(r.outcome, r.reply.code) for r in results] == [(Outcome.PERMANENT, 550), (Outcome.TEMPORARY, 421)]


def test_421_reply_ends_the_transaction() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 421 4.3.2 going down
        """,
        _request("bob@example.test"),
    )
    assert results[0].reply == Reply(code=421, status="4.3.2", text="going down")


def test_garbage_mid_transaction_is_a_temporary_failure() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: MAIL FROM:<alice@client.example>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 ok
        S: HTTP/1.1 400 Bad Request
        """,
        _request("bob@example.test"),
    )
    assert results[0].outcome is Outcome.TEMPORARY and results[0].reply.status == "4.5.0"


def test_bdat_transaction() -> None:
    results, _ = _deliver(
        """
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        S: 250-mx
        S: 250-PIPELINING
        S: 250-CHUNKING
        S: 250 BINARYMIME
        C: MAIL FROM:<alice@client.example> BODY=BINARYMIME
        C: RCPT TO:<bob@example.test>
        S: 250 ok
        S: 250 ok
        C: BDAT 4
        C: ab
        C: BDAT 0 LAST
        S: 250 chunk
        S: 250 2.0.0 done
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", body=Body.BINARY_MIME),
        content=(b"ab\r\n", b""),
    )
    assert results[0].reply.text == "done"


def test_bdat_failure_wins_over_later_replies() -> None:
    results, _ = _deliver(
        """
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        S: 250-mx
        S: 250 CHUNKING
        C: MAIL FROM:<alice@client.example>
        S: 250 ok
        C: RCPT TO:<bob@example.test>
        S: 250 ok
        C: BDAT 3
        C: abcBDAT 0 LAST
        S: 552 5.3.4 too big
        S: 503 5.5.1 no transaction
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test"),
        content=(b"abc",),
        use_chunking=True,
    )
    assert results[0].reply.status == "5.3.4"


def test_missing_smtputf8_is_a_bounce_without_a_command() -> None:
    results, tx = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_PLAIN}
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", is_smtputf8=True),
    )
    assert tx.refusal is not None
    assert results[0].outcome is Outcome.PERMANENT
    assert describe(results[0].reply) == "553 5.6.7 remote does not support SMTPUTF8"


def test_too_large_for_the_remote_is_a_bounce() -> None:
    results, _ = _deliver(
        f"""
        S: 220 mx.example.test ESMTP
        C: EHLO client.example
        {EHLO_FULL}
        C: QUIT
        S: 221 bye
        """,
        _request("bob@example.test", size=1001),
    )
    assert results[0].reply.status == "5.3.4"


def test_transaction_misuse_raises() -> None:
    conn = _connection(EHLO_FULL)
    with pytest.raises(LocalProtocolError):
        Transaction(conn, _request())
    tx = Transaction(conn, _request("bob@example.test"))
    with pytest.raises(LocalProtocolError):
        tx.content(b"x")
    with pytest.raises(LocalProtocolError):
        _ = tx.results
    tx.start()
    with pytest.raises(LocalProtocolError):
        tx.start()


# ---- dot-stuffing -------------------------------------------------------------------------------


def _stuff(chunks: list[bytes]) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.stuff(chunk) for chunk in chunks) + stuffer.end()


def _unstuff(wire: bytes) -> bytes:
    reader = DataReader()
    buffer = bytearray(wire)
    content = reader.read(buffer)
    assert reader.is_done and not buffer and not reader.has_bare_line_ending
    return content


@pytest.mark.parametrize(
    ("chunks", "wire"),
    [
        ([b""], b".\r\n"),
        ([b"."], b"..\r\n.\r\n"),
        ([b"a\r\n", b".b\r\n"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b"\n.", b"\r\n"], b"a\r\n..\r\n.\r\n"),
        ([b"a\r", b"\r"], b"a\r\n\r\n.\r\n"),
        ([b"a\nb\rc"], b"a\r\nb\r\nc\r\n.\r\n"),
        ([b"x\r\n.\r\n"], b"x\r\n..\r\n.\r\n"),
    ],
)
def test_dot_stuffing_examples(chunks: list[bytes], wire: bytes) -> None:
    assert _stuff(chunks) == wire


_LINES = st.lists(st.sampled_from([b"", b".", b"..", b"a", b".a", b"x.y", b"\xff", b" ."]), max_size=12)


@given(_LINES, st.booleans(), st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_stuff_then_unstuff_gives_the_content_back(lines: list[bytes], has_final: bool, cuts: list[int]) -> None:
    content = b"\r\n".join(lines) + (b"\r\n" if has_final and lines else b"")
    points = sorted({min(c, len(content)) for c in cuts})
    chunks = [content[a:b] for a, b in zip([0, *points], [*points, len(content)], strict=True)]
    expected = content if not content or content.endswith(b"\r\n") else content + b"\r\n"
    assert _unstuff(_stuff(chunks)) == expected


def test_content_after_end_is_our_mistake() -> None:
    stuffer = DotStuffer()
    stuffer.end()
    with pytest.raises(LocalProtocolError):
        stuffer.stuff(b"x")
