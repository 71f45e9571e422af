"""One `pochta serve`: mail delivered over SMTP is the same octets over POP3 RETR and IMAP BODY[]."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
from pathlib import Path

from .servers import pochta_server

MESSAGES = [
    b"From: a@remote.test\r\nSubject: one\r\n\r\nHello.\r\n.\r\n..two dots\r\n",
    b"From: b@remote.test\r\nSubject: =?utf-8?q?zwei?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "Grüße\r\n".encode() * 3,
    b"From: c@remote.test\r\nSubject: three\r\n\r\n" + b"".join(b".line %d\r\n" % n for n in range(3000)),
]


def test_pop3_retr_and_imap_body_are_byte_identical(tmp_path: Path) -> None:
    with pochta_server(tmp_path, services=("smtp", "imap", "pop3")) as server:
        assert server.cli("domain", "add", "example.test").returncode == 0
        added = server.cli("user", "add", "alice@example.test", "--password-stdin", stdin="secret-pass\n")
        assert added.returncode == 0, added.stderr
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
            for message in MESSAGES:
                smtp.sendmail("x@remote.test", ["alice@example.test"], message, mail_options=["BODY=8BITMIME"])

        imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
        imap.login("alice@example.test", "secret-pass")
        imap.select("INBOX", readonly=True)
        over_imap = []
        for number in range(1, len(MESSAGES) + 1):
            status, data = imap.fetch(str(number), "(BODY.PEEK[])")
            assert status == "OK"
            part = data[0]
            assert isinstance(part, tuple)
            over_imap.append(part[1])
        imap.logout()

        pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
        pop.user("alice@example.test")
        pop.pass_("secret-pass")
        over_pop = []
        for number in range(1, len(MESSAGES) + 1):
            _, lines, _ = pop.retr(number)  # poplib undoes the byte-stuffing and splits the lines
            over_pop.append(b"".join(line + b"\r\n" for line in lines))
        pop.quit()

    assert over_pop == over_imap
    for original, fetched in zip(MESSAGES, over_imap, strict=True):
        assert fetched.endswith(original) and fetched.startswith(b"Return-Path: <x@remote.test>\r\nReceived: ")
