"""Hand-written messages for the MIME tests, each with the ENVELOPE/BODYSTRUCTURE we expect.

The expected strings were checked against Dovecot 2.3.19 (APPEND, then FETCH) where noted.
"""

from __future__ import annotations

SIMPLE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)

ALTERNATIVE = (
    b"From: a@example.com\r\n"
    b"To: b@example.com\r\n"
    b"Subject: alt\r\n"
    b'Content-Type: multipart/alternative; boundary="XX"\r\n'
    b"\r\n"
    b"This is the preamble.\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Hello=20world\r\n"
    b"second line\r\n"
    b"--XX\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Hello world</p>\r\n"
    b"--XX--\r\n"
    b"This is the epilogue.\r\n"
)

MIXED = (
    b"From: a@example.com\r\n"
    b"Subject: with attachment\r\n"
    b"Content-Type: multipart/mixed; boundary=outer\r\n"
    b"Content-Language: en\r\n"
    b"\r\n"
    b"--outer\r\n"
    b"\r\n"
    b"Default typed part.\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment;\r\n"
    b' filename*0="long "; filename*1="name.pdf"\r\n'
    b"Content-ID: <part2@example.com>\r\n"
    b"Content-Description: The report\r\n"
    b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    b"Content-Language: en, de\r\n"
    b"Content-Location: http://example.com/report.pdf\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"JSVFT0YK\r\n"
    b"--outer--\r\n"
)

NESTED = (
    b"From: outer@example.com\r\n"
    b"Subject: fwd\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"See below.\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.com\r\n"
    b"Subject: inner\r\n"
    b"Content-Type: multipart/alternative; boundary=b2\r\n"
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner text\r\n"
    b"--b2\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<b>inner</b>\r\n"
    b"--b2--\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: single@example.com\r\n"
    b"\r\n"
    b"just text\r\n"
    b"--b1--\r\n"
)

GROUPS = (
    b'From: "Joe Q. Public" <john.q.public@example.com>\r\n'
    b"Sender: Secretary <sec@example.com>\r\n"
    b"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n"
    b'Cc: <boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>\r\n'
    b"Bcc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;\r\n"
    b"Reply-To: <@route.example,@two.example:routed@example.com>\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"In-Reply-To: <parent@example.com>\r\n"
    b"Message-ID: <5678.21-Nov-1997@example.com>\r\n"
    b"\r\n"
    b"body\r\n"
)

NO_HEADERS = b"\r\njust a body\r\n"

BARE_LF = (
    b"From: lf@example.com\n"
    b"Subject: bare\n"
    b" LF\n"
    b"Content-Type: multipart/mixed; boundary=lf\n"
    b"\n"
    b"--lf\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"one\n"
    b"two\n"
    b"--lf--\n"
)

NO_BLANK_LINE = b"From: x@example.com\r\nSubject: no blank\r\nThis line starts the body.\r\nSecond line.\r\n"

TRUNCATED = (
    b"Content-Type: multipart/mixed; boundary=cut\r\n"
    b"\r\n"
    b"--cut\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"first\r\n"
    b"--cut\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"never closed\r\n"
)
