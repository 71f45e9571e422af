"""How much an SMTP peer may send, and what the server offers (the EHLO keywords)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_command_line: int = 4096  # RFC 5321 §4.5.3.1.4 says 512 with CRLF; ESMTP params need more (§4.5.3.1)
    max_auth_line: int = 12288  # RFC 4954 §4: AUTH command and response lines up to 12288 octets
    max_message_size: int = 50 * 2**20  # advertised with SIZE (RFC 1870 §4)
    max_header_size: int = 1 * 2**20  # header block, up to the first empty line (RFC 5322 §2.1)
    max_recipients: int = 1000  # RFC 5321 §4.5.3.1.8: at least 100
    max_errors: int = 10  # errors answered before 421 (RFC 5321 §4.3.2 lets a server close on abuse)


@dataclass(frozen=True, slots=True, kw_only=True)
class Extensions:
    """The service extensions offered in the EHLO reply (RFC 5321 §4.1.1.1, §2.2)."""

    pipelining: bool = True  # RFC 2920
    size: bool = True  # RFC 1870, with Limits.max_message_size
    eight_bit_mime: bool = True  # RFC 6152
    smtputf8: bool = True  # RFC 6531
    chunking: bool = True  # RFC 3030 BDAT
    binary_mime: bool = True  # RFC 3030 §3, only together with chunking
    dsn: bool = True  # RFC 3461
    enhanced_status_codes: bool = True  # RFC 2034
    starttls: bool = False  # RFC 3207; offered until TLS is on
    auth_mechanisms: tuple[str, ...] = ()  # RFC 4954; empty: no AUTH
    is_auth_tls_only: bool = True  # offer AUTH only once TLS is on (RFC 4954 §4, RFC 8314 §3)
