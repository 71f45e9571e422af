"""STARTTLS (RFC 3207) and AUTH (RFC 4954) in the SMTP server core."""

import pytest

from pochta.proto.smtp import (
    Auth,
    AuthCancelled,
    AuthResponse,
    Event,
    Extensions,
    LocalProtocolError,
    MailFrom,
    Paused,
    Reply,
    ServerConnection,
    StartTls,
    State,
    replies,
)

from .dialogue import TLS, bytewise, converse, merged, permissive

SUBMISSION = Extensions(starttls=True, auth_mechanisms=("PLAIN", "LOGIN"))


def submission(*, is_tls: bool = False) -> ServerConnection:
    return ServerConnection(hostname="mx.example.test", extensions=SUBMISSION, is_tls=is_tls)


def keywords(dialogue_written: bytes) -> list[str]:
    return [line[4:] for line in dialogue_written.decode().split("\r\n") if line.startswith("250")]


def test_starttls_is_offered_before_tls_and_auth_after() -> None:
    packets = [b"EHLO c.example\r\nSTARTTLS\r\n", TLS, b"EHLO c.example\r\n"]
    dialogue = converse(packets, conn=submission())
    text = dialogue.written.decode()
    before, after = text.split("220 2.0.0 ready to start TLS\r\n")
    assert "250 STARTTLS" in before and "AUTH" not in before
    assert "STARTTLS" not in after and "AUTH PLAIN LOGIN" in after


def test_plaintext_pipelined_after_starttls_is_discarded() -> None:
    # CVE-2011-0411: commands sent with STARTTLS in one packet must not run inside TLS.
    injected = b"STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<x@example.test>\r\n"
    packets = [b"EHLO c.example\r\n" + injected, TLS, b"EHLO c.example\r\nMAIL FROM:<good@c.example>\r\n"]
    for run in (packets, bytewise(packets)):
        dialogue = converse(run, conn=submission())
        mails = dialogue.of_type(MailFrom)
        assert [str(mail.path) for mail in mails] == ["good@c.example"]
    assert merged(converse(packets, conn=submission()).events) == merged(
        converse(bytewise(packets), conn=submission()).events
    )


def test_tls_resets_the_session_to_before_ehlo() -> None:
    packets = [b"EHLO c.example\r\nSTARTTLS\r\n", TLS, b"MAIL FROM:<a@c.example>\r\n"]
    dialogue = converse(packets, conn=submission())
    assert dialogue.replies[-1] == "503 5.5.1 send EHLO or HELO first"  # RFC 3207 §4.2


def test_core_waits_for_tls() -> None:
    conn = submission()
    conn.send(Reply(code=220, text="hi"))
    conn.receive_data(b"EHLO c\r\n")
    conn.next_event()
    conn.send(conn.ehlo_reply())
    conn.receive_data(b"STARTTLS\r\n")
    assert conn.next_event() == StartTls()
    assert isinstance(conn.next_event(), Paused)
    conn.send(replies.READY_FOR_TLS)
    conn.receive_data(b"NOOP\r\n")  # not TLS: dropped
    assert isinstance(conn.next_event(), Paused)
    conn.tls_established()
    assert conn.state is State.GREETED and conn.is_tls
    with pytest.raises(LocalProtocolError):
        conn.tls_established()


def test_refused_starttls_keeps_the_plaintext_session() -> None:
    def policy(conn: ServerConnection, event: Event) -> Reply | None:
        return replies.TLS_NOT_AVAILABLE if isinstance(event, StartTls) else permissive(conn, event)

    dialogue = converse([b"EHLO c\r\nSTARTTLS\r\nNOOP\r\n"], conn=submission(), policy=policy)
    assert dialogue.replies[-2:] == ["454 4.7.0 TLS not available", "250 2.0.0 OK"]


@pytest.mark.parametrize(
    ("commands", "last_reply"),
    [
        (b"STARTTLS\r\n", "503 5.5.1 send EHLO first"),
        (b"EHLO c\r\nSTARTTLS now\r\n", "501 5.5.4 STARTTLS takes no argument"),
        (b"EHLO c\r\nMAIL FROM:<>\r\nSTARTTLS\r\n", "503 5.5.1 mail transaction in progress"),
    ],
)
def test_starttls_errors(commands: bytes, last_reply: str) -> None:
    assert converse([commands], conn=submission()).replies[-1] == last_reply


def test_starttls_twice() -> None:
    dialogue = converse([b"EHLO c\r\nSTARTTLS\r\n", TLS, b"EHLO c\r\nSTARTTLS\r\n"], conn=submission())
    assert dialogue.replies[-1] == "503 5.5.1 TLS already active"


# ---- AUTH ------------------------------------------------------------------------------------


def test_auth_plain_with_initial_response() -> None:
    dialogue = converse([b"EHLO c\r\nAUTH PLAIN AHVzZXIAcGVuY2ls\r\nAUTH PLAIN =\r\n"], conn=submission(is_tls=True))
    assert dialogue.of_type(Auth) == [Auth(mechanism="PLAIN", initial_response=b"\0user\0pencil")]
    assert dialogue.replies[-2:] == ["235 2.7.0 authentication succeeded", "503 5.5.1 already authenticated"]
    assert dialogue.conn.is_authenticated


def test_auth_exchange_lines_are_responses_not_commands() -> None:
    data = b"EHLO c\r\nAUTH LOGIN\r\nUVVJVA==\r\n"  # base64("QUIT")
    for run in ([data], bytewise([data])):
        dialogue = converse(run, conn=submission(is_tls=True))
        assert dialogue.of_type(AuthResponse) == [AuthResponse(data=b"QUIT")]
        assert dialogue.replies[-2:] == ["334 ", "235 2.7.0 authentication succeeded"]


def test_auth_cancel_and_bad_base64() -> None:
    conn = submission(is_tls=True)
    dialogue = converse([b"EHLO c\r\nAUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n!!!\r\nNOOP\r\n"], conn=conn)
    assert dialogue.of_type(AuthCancelled) == [AuthCancelled()]
    assert dialogue.replies[-5:] == [
        "334 ",
        "501 5.0.0 authentication cancelled",
        "334 ",
        "501 5.5.2 cannot decode base64 response",
        "250 2.0.0 OK",
    ]
    assert not conn.is_authenticated


@pytest.mark.parametrize(
    ("conn_factory", "commands", "last_reply"),
    [
        (submission, b"EHLO c\r\nAUTH PLAIN\r\n", "530 5.7.0 must issue a STARTTLS command first"),
        (lambda: submission(is_tls=True), b"AUTH PLAIN\r\n", "503 5.5.1 send EHLO first"),
        (lambda: submission(is_tls=True), b"EHLO c\r\nAUTH CRAM-MD5\r\n", "504 5.5.4 unrecognized authentication type"),
        (lambda: submission(is_tls=True), b"EHLO c\r\nMAIL FROM:<>\r\nAUTH PLAIN\r\n",
         "503 5.5.1 AUTH not allowed in a mail transaction"),
        (lambda: ServerConnection(hostname="mx"), b"EHLO c\r\nAUTH PLAIN\r\n", "502 5.5.1 command not implemented"),
    ],
)  # fmt: skip
def test_auth_errors(conn_factory, commands: bytes, last_reply: str) -> None:  # type: ignore[no-untyped-def]
    assert converse([commands], conn=conn_factory()).replies[-1] == last_reply


def test_auth_line_may_exceed_the_command_line_limit() -> None:
    response = b"A" * 8000
    dialogue = converse(
        [b"EHLO c\r\nAUTH PLAIN " + response + b"\r\nNOOP " + response + b"\r\n"], conn=submission(is_tls=True)
    )
    assert dialogue.replies[-2:] == ["235 2.7.0 authentication succeeded", "500 5.5.2 line too long"]


def test_mail_auth_parameter_only_when_auth_is_offered() -> None:
    data = b"EHLO c\r\nMAIL FROM:<a@c.example> AUTH=a+2Bb@c.example\r\n"
    offered = converse([data], conn=submission(is_tls=True))
    assert offered.of_type(MailFrom)[0].auth == "a+b@c.example"
    assert converse([data]).replies[-1] == "555 5.5.4 AUTH parameter not recognized"
