"""Differential test: the same scripts on the same messages through Pochta and Dovecot Pigeonhole's
``sieve-test`` (Debian ``dovecot-sieve``) must give the same actions, and the same scripts must fail
to compile. Actions are compared normalised: stores (mailbox, lowercase flags), redirects, rejects,
discard (only when nothing else delivers), vacation (whether a reply goes out), run-time failure."""

from __future__ import annotations

import datetime as dt
import email.header
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pochta.filters.sieve import (
    Discard,
    Environment,
    FileInto,
    Keep,
    MessageView,
    Redirect,
    Reject,
    SieveError,
    Vacation,
    parse,
    run,
)
from tests.conftest import SHARED_DATA, need

SIEVE_TEST = shutil.which("sieve-test")
NOBODY = 65534
# Pigeonhole enables these only on request; the rest of our extensions it has by default.
EXTENSIONS = "+editheader +vacation-seconds +spamtest +spamtestplus +virustest"

Normal = frozenset[tuple[str, ...]]


@dataclass(frozen=True)
class Sample:
    name: str
    content: bytes
    envelope_from: str
    envelope_to: str


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


MESSAGES = [
    Sample(
        "plain",
        _crlf(
            "Return-Path: <alice+news@example.org>\n"
            "From: Alice Example <alice+news@example.org>\n"
            "To: Bob <bob@example.com>, carol@example.net\n"
            "Cc: team@lists.example.com\n"
            "Subject: [acme-users] [fwd] version 1.0 is out\n"
            "Date: Tue, 01 Apr 1997 09:06:31 -0800\n"
            "Message-ID: <plain-1@example.org>\n"
            "X-Priority: 2\n"
            "X-Spam-Score: 7\n"
            "\n"
            "Hello Bob,\n"
            "the new version is out: see https://example.org/release.\n"
            "-- \n"
            "Alice\n"
        ),
        "alice+news@example.org",
        "bob@example.com",
    ),
    Sample(
        "list",
        _crlf(
            "From: owner-announce@lists.example.com\n"
            "To: announce@lists.example.com\n"
            "Subject: Re: Meeting tomorrow\n"
            "Date: Fri, 27 Nov 2026 08:00:00 +0100\n"
            "Message-ID: <list-7@lists.example.com>\n"
            "List-Id: Announcements <announce.lists.example.com>\n"
            "Precedence: bulk\n"
            "Received: from a.example.com by mx.example.com; Fri, 27 Nov 2026 08:00:05 +0100\n"
            "Received: from b.example.com by a.example.com; Fri, 27 Nov 2026 07:59:59 +0100\n"
            "\n"
            "The meeting is moved to 10:00.\n"
        ),
        "owner-announce@lists.example.com",
        "bob+lists@example.com",
    ),
    Sample(
        "multipart",
        _crlf(
            "From: =?UTF-8?B?SsO8cmdlbg==?= <juergen@example.de>\n"
            "To: bob@example.com\n"
            "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=\n"
            "Date: Mon, 15 Jun 2026 23:30:00 +0200\n"
            "Message-ID: <mp-1@example.de>\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/alternative; boundary="b1"\n'
            "\n"
            "--b1\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
            "Viele Gr=C3=BC=C3=9Fe, das Angebot ist g=C3=BCltig.\n"
            "--b1\n"
            "Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: base64\n"
            "\n"
            "PGh0bWw+PGJvZHk+PHA+VmllbGUgR3LDvMOfZSwgPGI+U29uZGVyYW5nZWJvdDwvYj48L3A+PC9ib2R5PjwvaHRtbD4=\n"
            "--b1--\n"
        ),
        "juergen@example.de",
        "bob@example.com",
    ),
    Sample(
        "minimal",
        _crlf("From: someone@example.net\nTo: undisclosed-recipients:;\n\nno subject, no date\n"),
        "someone@example.net",
        "bob@example.com",
    ),
    Sample(
        "addresses",
        _crlf(
            'From: "Doe, John" <"john doe"@example.com>, =?UTF-8?Q?J=C3=BCrgen?= <j+tag@EXAMPLE.de>\n'
            "To: team: ann@example.com, ben@example.com;, bob+box@example.com\n"
            "Cc: <>, broken@, (comment only)\n"
            "Subject: Price: 100 EUR [offer] *special* ?\n"
            "Date: Sun, 29 Mar 2026 01:30:00 -0000\n"
            "X-Priority: 2 (High)\n"
            "X-Spam-Score: 2\n"
            "X-Virus-Score: 4\n"
            "Received: from c by d; Sun, 29 Mar 2026 01:29:00 +0000\n"
            "\n"
            "body\n"
        ),
        "john@example.com",
        "bob+box@example.com",
    ),
    Sample(
        "autoreply",
        _crlf(
            "From: Carol <carol@example.net>\n"
            "To: bob@example.com\n"
            "Subject: Out of office\n"
            "Auto-Submitted: auto-replied\n"
            "Message-ID: <auto-1@example.net>\n"
            "\n" + "I am away until Monday.\n" * 600
        ),
        "carol@example.net",
        "bob@example.com",
    ),
]

SCRIPTS: dict[str, str] = {
    "empty": "",
    "keep": "keep;",
    "discard": "discard;",
    "stop": "stop; discard;",
    "redirect": 'redirect "carol@example.net";',
    "redirect-twice": 'redirect "carol@example.net"; redirect "carol@example.net";',
    "redirect-invalid": 'redirect "not an address";',
    "syntax-error": 'if header :is "Subject" { keep; }',
    "unknown-command": "frobnicate;",
    "missing-require": 'fileinto "x";',
    "header-is": (
        'require "fileinto"; if header :is "subject" "[ACME-users] [fwd] version 1.0 is out" { fileinto "acme"; }'
    ),
    "header-contains": (
        'require "fileinto"; if header :contains ["X-Priority", "Subject"] ["meeting", "1"] { fileinto "hit"; }'
    ),
    "header-octet": (
        'require "fileinto"; if header :comparator "i;octet" :contains "Subject" "MEETING" { fileinto "hit"; }'
    ),
    "header-matches": (
        'require "fileinto"; if header :matches "Subject" "*version ?.0*" { fileinto "v"; } else { discard; }'
    ),
    "header-encoded": 'require "fileinto"; if header :contains "subject" "München" { fileinto "de"; }',
    "address-all": 'require "fileinto"; if address :is "from" "alice+news@example.org" { fileinto "alice"; }',
    "address-parts": (
        'require "fileinto";\n'
        'if address :domain :is ["to", "cc"] "lists.example.com" { fileinto "lists"; }\n'
        'elsif address :localpart :is "from" "someone" { fileinto "someone"; }\n'
        'elsif address :all :contains "from" "example.de" { fileinto "de"; }'
    ),
    "exists": (
        'require "fileinto"; '
        'if exists ["List-Id", "Precedence"] { fileinto "bulk"; } elsif not exists "Subject" { discard; }'
    ),
    "size": 'require "fileinto"; if size :over 10K { fileinto "big"; } elsif size :under 300 { fileinto "small"; }',
    "allof-anyof": (
        'require "fileinto";\n'
        'if allof (header :contains "from" "example", anyof (size :over 1M, exists "date", false)) {\n'
        '  fileinto "dated";\n'
        "}"
    ),
    "envelope": (
        'require ["envelope", "fileinto"];\n'
        'if envelope :domain :is "from" "example.org" { fileinto "org"; }\n'
        'if envelope :all :is "to" "bob+lists@example.com" { fileinto "tagged"; }'
    ),
    "subaddress": (
        'require ["envelope", "subaddress", "fileinto", "variables"];\n'
        'if envelope :detail :matches "to" "*" { fileinto "sub/${1}"; }\n'
        'if address :user :is "from" "alice" { fileinto "alice-any"; }\n'
        'if address :detail :is "from" "news" { fileinto "alice-news"; }'
    ),
    "copy": 'require ["fileinto", "copy"]; fileinto :copy "archive"; redirect :copy "archive@example.net";',
    "fileinto-twice": 'require "fileinto"; fileinto "a"; fileinto "a"; fileinto "INBOX"; keep;',
    "flags": (
        'require ["fileinto", "imap4flags"];\n'
        'setflag "\\\\Seen";\n'
        'addflag ["$Work", "\\\\Flagged $Work"];\n'
        'removeflag "\\\\Seen";\n'
        'if hasflag :contains "work" { fileinto "work"; }\n'
        'fileinto :flags "\\\\Answered" "answered";'
    ),
    "flags-implicit": 'require "imap4flags"; if header :contains "subject" "meeting" { addflag "\\\\Flagged"; }',
    "variables": (
        'require ["fileinto", "variables"];\n'
        'if header :matches "Subject" "[*] *" { set :lower :upperfirst "list" "${1}"; fileinto "lists/${list}"; }\n'
        'set "a" "${unknown}x"; if string :is "${a}" "x" { addflag_missing_is_not_called; }'
    ),
    "variables-modifiers": (
        'require ["fileinto", "variables"];\n'
        'set :length "n" "hello";\n'
        'set :upper "u" "mixed Case";\n'
        'set :quotewildcard "q" "a*b?c";\n'
        'if allof (string :is "${n}" "5", string :is "${u}" "MIXED CASE", string :is "${q}" "a\\\\*b\\\\?c") {\n'
        '  fileinto "ok";\n'
        "}"
    ),
    "relational": (
        'require ["fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "5" { fileinto "spam"; }\n'
        'if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "many"; }\n'
        'if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { fileinto "two-hops"; }'
    ),
    "relational-string": (
        'require ["fileinto", "relational"]; if header :value "lt" "subject" "M" { fileinto "early"; }'
    ),
    "body": (
        'require ["body", "fileinto"];\n'
        'if body :contains "version" { fileinto "body-text"; }\n'
        'if body :text :contains "Grüße" { fileinto "body-de"; }\n'
        'if body :raw :contains "PGh0bWw" { fileinto "body-raw"; }\n'
        'if body :content "text/html" :contains "Sonderangebot" { fileinto "body-html"; }'
    ),
    "date": (
        'require ["date", "fileinto", "relational"];\n'
        'if date :originalzone :is "date" "year" "1997" { fileinto "old"; }\n'
        'if date :zone "+0000" :value "ge" "date" "hour" "20" { fileinto "late-utc"; }\n'
        'if date :is "date" "weekday" "1" { fileinto "monday"; }\n'
        'if currentdate :value "ge" "year" "2020" { addflag_never; }'
    ),
    "date-parts": (
        'require ["date", "fileinto", "variables"];\n'
        'if date :originalzone :matches "date" "iso8601" "*" { set "iso" "${1}"; }\n'
        'if date :originalzone :matches "date" "std11" "*" { set "std" "${1}"; }\n'
        'if date :originalzone :matches "date" "julian" "*" { set "mjd" "${1}"; }\n'
        'if date :originalzone :matches "date" "zone" "*" { set "zone" "${1}"; }\n'
        'fileinto "${iso}|${std}|${mjd}|${zone}";'
    ),
    "index": (
        'require ["date", "index", "fileinto", "relational"];\n'
        'if header :index 1 :last :contains "received" "b.example.com" { fileinto "first-hop"; }\n'
        'if date :index 1 :originalzone :is "received" "time" "08:00:05" { fileinto "last-hop"; }'
    ),
    "regex": (
        'require ["regex", "fileinto", "variables"];\n'
        'if header :regex "subject" "^\\\\[([a-z-]+)\\\\]" { fileinto "re/${1}"; }\n'
        'if address :regex :domain "from" "^lists?\\\\." { fileinto "re-list"; }'
    ),
    "editheader": (
        'require ["editheader", "fileinto"];\n'
        'addheader "X-Sieve" "seen";\n'
        'deleteheader "precedence";\n'
        'if allof (exists "X-Sieve", not exists "Precedence") { fileinto "edited"; }'
    ),
    "editheader-index": (
        'require ["editheader", "fileinto", "index"];\n'
        'deleteheader :index 1 "received";\n'
        'addheader :last "X-Count" "1";\n'
        'if header :is "X-Count" "1" { fileinto "counted"; }'
    ),
    "reject": 'require "reject"; if header :contains "subject" "meeting" { reject "I do not do meetings."; }',
    "reject-conflict": 'require ["reject", "fileinto"]; fileinto "x"; reject "no";',
    "mailbox": 'require ["fileinto", "mailbox"]; fileinto :create "Folders/New";',
    "encoded-character": 'require ["encoded-character", "fileinto"]; fileinto "${hex:41 42}${unicode:263A}";',
    "vacation": 'require "vacation"; vacation :days 3 :subject "Away" "I am away.";',
    "vacation-default-subject": 'require "vacation"; vacation "I am away.";',
    "vacation-seconds": 'require "vacation-seconds"; vacation :seconds 60 :addresses "bob@example.com" "Away.";',
    "duplicate": 'require ["duplicate", "fileinto"]; if duplicate { discard; } else { fileinto "first"; }',
    "rfc5228-example": (
        "# RFC 5228 §9 (adapted)\n"
        'require ["fileinto"];\n'
        'if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }\n'
        'elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }\n'
        'elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",\n'
        '             header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {\n'
        '  fileinto "spam";\n'
        "} else {\n"
        '  fileinto "personal";\n'
        "}"
    ),
}

PERSONAL = {
    "lists": 'require ["fileinto", "include"]; if exists "List-Id" { fileinto "lists"; return; } fileinto "not-list";',
    "once": 'require ["include", "imap4flags"]; addflag "$Included";',
    "globals": 'require ["include", "variables"]; global "box"; set "box" "${box}-personal";',
}
GLOBAL = {
    "spam": 'require ["fileinto", "include"]; if header :contains "subject" "offer" { fileinto "Junk"; stop; }',
}

MORE_SCRIPTS: dict[str, str] = {
    "include": 'require "include"; include "lists"; include :global "spam";',
    "include-once-optional": (
        'require ["include", "imap4flags"]; include :once "once"; include :once "once"; include :optional "none";'
    ),
    "include-global-variables": (
        'require ["include", "variables", "fileinto"]; global "box"; set "box" "main"; include "globals";'
        ' fileinto "${box}";'
    ),
    "spamtest": (
        'require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "variables"];\n'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "5" { fileinto "spam"; }\n'
        'if spamtest :matches "*" { fileinto "level-${1}"; }'
    ),
    "spamtestplus": (
        'require ["spamtestplus", "fileinto", "variables"];\n'
        'if spamtest :percent :matches "*" { fileinto "percent-${1}"; }'
    ),
    "virustest": (
        'require ["virustest", "relational", "comparator-i;ascii-numeric", "fileinto", "variables"];\n'
        'if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; stop; }\n'
        'if virustest :matches "*" { fileinto "virus-${1}"; }'
    ),
    "mailboxexists": (
        'require ["mailbox", "fileinto"]; if mailboxexists "INBOX" { fileinto "yes"; }'
        ' if mailboxexists ["INBOX", "Nope"] { fileinto "no"; }'
    ),
    "matches-escapes": (
        'require "fileinto";\n'
        'if header :matches "subject" "*\\\\[*\\\\]*" { fileinto "brackets"; }\n'
        'if header :matches "subject" "*\\\\*special\\\\* \\\\?" { fileinto "stars"; }\n'
        'if header :matches "subject" "?*" { fileinto "nonempty"; }'
    ),
    "ascii-numeric-edge": (
        'require ["fileinto", "comparator-i;ascii-numeric", "relational"];\n'
        'if header :value "gt" :comparator "i;ascii-numeric" "subject" "99999" { fileinto "infinite"; }\n'
        'if header :is :comparator "i;ascii-numeric" "x-priority" "2" { fileinto "two"; }\n'
        'if header :value "lt" :comparator "i;ascii-numeric" "x-spam-score" "3" { fileinto "low"; }'
    ),
    "match-variables-address": (
        'require ["fileinto", "variables"];\nif address :matches "from" "*@*" { fileinto "${2}/${1}"; }'
    ),
    "address-counts": (
        'require ["fileinto", "relational", "comparator-i;ascii-numeric", "variables"];\n'
        'if address :count "eq" :comparator "i;ascii-numeric" "to" "1" { fileinto "to-1"; }\n'
        'elsif address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "to-2"; }\n'
        'elsif address :count "eq" :comparator "i;ascii-numeric" "to" "3" { fileinto "to-3"; }\n'
        'if header :count "ge" :comparator "i;ascii-numeric" ["to", "cc", "from"] "3" { fileinto "fields-3"; }'
    ),
    "address-odd": (
        'require ["fileinto", "subaddress"];\n'
        'if address :localpart :is "from" "john doe" { fileinto "quoted-local"; }\n'
        'if address :domain :is "from" "example.de" { fileinto "upper-domain"; }\n'
        'if address :detail :is "from" "tag" { fileinto "detail"; }\n'
        'if address :domain :is "to" "example.com" { fileinto "group-member"; }'
    ),
    "regex-groups": (
        'require ["regex", "fileinto", "variables"];\n'
        'if header :regex "subject" "([0-9]+) ([A-Z]+)" { fileinto "${2}-${1}"; }\n'
        'if header :regex "from" "example\\\\.(org|de)" { fileinto "re-${1}"; }'
    ),
    "hasflag": (
        'require ["imap4flags", "fileinto", "variables", "relational", "comparator-i;ascii-numeric"];\n'
        'setflag "\\\\Seen $A"; addflag "$B"; removeflag "$A";\n'
        'if hasflag :count "eq" :comparator "i;ascii-numeric" "2" { fileinto "two-flags"; }\n'
        'if hasflag :is "\\\\seen" { fileinto "seen"; }'
    ),
    "deleteheader-match": (
        'require ["editheader", "fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'deleteheader :matches "received" "*a.example.com*";\n'
        'if header :count "eq" :comparator "i;ascii-numeric" "received" "1" { fileinto "one-left"; }\n'
        'if header :count "eq" :comparator "i;ascii-numeric" "received" "0" { fileinto "none"; }'
    ),
    "editheader-address": (
        'require ["editheader", "fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'addheader "From" "extra@example.net";\n'
        'if address :count "ge" :comparator "i;ascii-numeric" "from" "2" { fileinto "two-from"; }\n'
        'if address :index 1 :is "from" "extra@example.net" { fileinto "added-on-top"; }'
    ),
    "date-zones": (
        'require ["date", "fileinto", "variables"];\n'
        'if date :zone "+0530" :matches "date" "time" "*" { set "t" "${1}"; }\n'
        'if date :zone "-1100" :matches "date" "date" "*" { set "d" "${1}"; }\n'
        'fileinto "${t} ${d}";'
    ),
    "currentdate": (
        'require ["date", "relational", "fileinto"]; if currentdate :value "gt" "year" "2000" { fileinto "now"; }'
    ),
    "nested-control": (
        'require ["fileinto"];\n'
        'if exists "from" { if exists "x-none" { fileinto "a"; } elsif exists "subject" { fileinto "b"; stop; }'
        ' else { fileinto "c"; } }\n'
        'fileinto "after";'
    ),
    "keep-discard-mix": 'require ["imap4flags"]; discard; keep :flags "$Kept"; discard;',
    "set-modifiers": (
        'require ["variables", "fileinto"];\n'
        'if header :matches "from" "*" { set :upperfirst :lower "f" "${1}"; set :length "n" "${1}"; }\n'
        'fileinto "${f}|${n}";'
    ),
    "string-tests": (
        'require ["variables", "fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'set "a" "${nothing}";\n'
        'if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "x"] "1" { fileinto "count-1"; }\n'
        'if string :is "${a}" "" { fileinto "empty"; }'
    ),
    "octet-case": (
        'require "fileinto";\n'
        'if header :comparator "i;octet" :matches "subject" "re:*" { fileinto "lower"; }\n'
        'if header :comparator "i;octet" :matches "subject" "Re:*" { fileinto "exact"; }\n'
        'if header :comparator "i;ascii-casemap" :is "subject" "RE: MEETING TOMORROW" { fileinto "casemap"; }'
    ),
    "headers-list-index": (
        'require ["fileinto", "index", "variables"];\n'
        'if header :index 2 :matches ["received", "subject"] "*" { fileinto "second-${1}"; }'
    ),
    "edit-then-delete": (
        'require ["editheader", "fileinto", "index", "relational", "comparator-i;ascii-numeric"];\n'
        'addheader "X-A" "1"; addheader :last "X-A" "2"; addheader "X-A" "3";\n'
        'deleteheader :index 2 "x-a";\n'
        'if header :index 1 :is "x-a" "3" { fileinto "first-is-3"; }\n'
        'if header :index 2 :is "x-a" "2" { fileinto "second-is-2"; }\n'
        'if header :count "eq" :comparator "i;ascii-numeric" "x-a" "2" { fileinto "two-left"; }'
    ),
    "delete-last-index": (
        'require ["editheader", "fileinto", "index"];\n'
        'deleteheader :index 1 :last "received";\n'
        'if header :contains "received" "b.example.com" { fileinto "b-left"; }\n'
        'if header :contains "received" "a.example.com" { fileinto "a-left"; }'
    ),
    "envelope-detail-missing": (
        'require ["envelope", "subaddress", "fileinto"];\n'
        'if envelope :detail :is "to" "" { fileinto "empty-detail"; }\n'
        'if not envelope :detail :contains "to" "" { fileinto "no-detail"; }\n'
        'if envelope :user :is "to" "bob" { fileinto "user-bob"; }'
    ),
    "value-address-parts": (
        'require ["fileinto", "relational"];\n'
        'if address :value "ge" :domain "from" "m" { fileinto "domain-m-z"; }\n'
        'if address :value "lt" :localpart "from" "b" { fileinto "local-a"; }'
    ),
    "size-exact": (
        'require ["fileinto", "variables"];\n'
        'if size :over 200 { fileinto "over-200"; }\n'
        'if size :under 1000 { fileinto "under-1000"; }\n'
        'if size :over 5000 { fileinto "over-5000"; }'
    ),
    "variables-in-flags-and-redirect": (
        'require ["variables", "imap4flags", "envelope", "subaddress"];\n'
        'if envelope :domain :matches "from" "*" { set "dom" "${1}"; }\n'
        'addflag "${dom}";\n'
        'if address :is :localpart "from" "alice+news" { redirect "copy-${dom}@example.net"; }'
    ),
    "body-multiline-keys": (
        'require ["body", "fileinto"];\n'
        'if body :contains ["version is", "10:00", "nothing"] { fileinto "hit"; }\n'
        'if body :matches "*Alice*" { fileinto "signed"; }'
    ),
    "stop-after-actions": (
        'require ["fileinto", "imap4flags"];\naddflag "$Before"; fileinto "first"; stop; fileinto "never";'
    ),
    "discard-only-if": 'if header :contains "subject" "meeting" { discard; stop; } keep;',
    "quoted-strings": (
        'require ["fileinto", "variables"];\nset "a" "back\\\\slash \\"quoted\\" \\a";\nfileinto "${a}";'
    ),
    "multiline-reject": (
        'require "reject";\nif size :over 10K {\n  reject text:\nYour message is too big.\n..and dot-stuffed.\n.\n;\n}'
    ),
    "date-warnings": (
        'require ["date", "fileinto", "variables"];\n'
        'if currentdate :zone "CET" :matches "zone" "*" { fileinto "zone${1}"; }\n'
        'if currentdate :matches "century" "*" { fileinto "never"; }\n'
        'if header :contains "a b" "" { fileinto "never-header"; }'
    ),
    "redirect-name-addr": 'redirect "Carol Example <carol@example.net>";',
    "invalid-flags": 'require "imap4flags"; addflag ["\\\\Bogus", "(paren", "$ok", "\\\\Draft"];',
    "vacation-from": 'require "vacation"; vacation :from "Bob <bob@example.com>" :subject "Away" "Away.";',
    "body-matches": (
        'require ["body", "fileinto"];\n'
        'if body :raw :contains "=C3=BC" { fileinto "raw-qp"; }\n'
        'if body :text :matches "*Gr??e*" { fileinto "two-chars"; }\n'
        'if body :content "multipart" :contains "" { fileinto "multipart"; }'
    ),
}


def _shared_messages() -> list[Sample]:
    zbateson = "zbateson-mail-mime-parser/tests/_data/emails"
    stalwart = "stalwart-mail-parser/resources/eml"
    names = [
        f"{zbateson}/{name}" for name in ("m0001.txt", "m0005.txt", "m1002.txt", "m2005.txt", "m3002.txt", "m4002.txt")
    ]
    names += [f"{stalwart}/malformed/019.eml", f"{stalwart}/rfc/003.eml"]
    paths = [SHARED_DATA / "mime" / name for name in names]
    return [
        Sample(f"shared-{path.parent.name}-{path.name}", path.read_bytes(), "sender@example.org", "bob@example.com")
        for path in paths
        if path.is_file()
    ]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    need(SIEVE_TEST is not None, "sieve-test not installed (apt-get install dovecot-sieve dovecot-core)")
    # Not under pytest's 0700 tmp_path: sieve-test runs as nobody when we are root (Dovecot refuses root).
    with tempfile.TemporaryDirectory(prefix="pochta-pigeonhole-") as name:
        base = Path(name)
        os.chmod(base, 0o777)
        (base / "mail").mkdir()
        os.chmod(base / "mail", 0o777)
        for location, scripts in (("personal", PERSONAL), ("global", GLOBAL)):
            (base / location).mkdir()
            for script_name, text in scripts.items():
                (base / location / f"{script_name}.sieve").write_text(text)
            for path in [base / location, *(base / location).iterdir()]:
                os.chmod(path, 0o777 if path.is_dir() else 0o666)
        (base / "dovecot.conf").write_text(
            f"mail_location = maildir:{base}/mail\n"
            "plugin {\n"
            f"  sieve_extensions = {EXTENSIONS}\n"
            f"  sieve = file:{base}/personal\n"
            f"  sieve_global = {base}/global\n"
            # spamtest = 1 + score (0..9) and virustest = 1 + score (0..4): the facts our filters give
            "  sieve_spamtest_status_type = score\n"
            "  sieve_spamtest_status_header = X-Spam-Score\n"
            "  sieve_spamtest_max_value = 9\n"
            "  sieve_virustest_status_type = score\n"
            "  sieve_virustest_status_header = X-Virus-Score\n"
            "  sieve_virustest_max_value = 4\n"
            "}\n"
        )
        os.chmod(base / "dovecot.conf", 0o644)
        yield base


def _pigeonhole(workdir: Path, script: str, sample: Sample, tag: str) -> tuple[str, Normal]:
    script_path = workdir / f"{tag}.sieve"
    message_path = workdir / f"{sample.name}.eml"
    script_path.write_text(script + "\n")
    message_path.write_bytes(sample.content)
    for path in (script_path, message_path):
        os.chmod(path, 0o666)
    command = [
        str(SIEVE_TEST),
        "-c",
        str(workdir / "dovecot.conf"),
        "-C",
        "-f",
        sample.envelope_from,
        "-a",
        sample.envelope_to,
        "-r",
        sample.envelope_to,
        str(script_path),
        str(message_path),
    ]
    is_executed = tag.startswith("vacation")  # Pigeonhole judges vacation only when executing
    if is_executed:
        command.insert(1, "-e")
        for record in workdir.glob(".dovecot*"):
            record.unlink()  # the duplicate and vacation records of the previous run
    if os.geteuid() == 0:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "HOME": str(workdir)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)
    if done.returncode == 89 and "failed to compile" in done.stderr:
        return "compile-error", frozenset()
    if done.returncode not in (0, 1):
        pytest.fail(f"sieve-test failed ({done.returncode}): {done.stderr}")
    if "resolved with successful implicit keep" in done.stderr:
        return "run-error", frozenset({("store", "INBOX", "")})
    out: list[list[str]] = []
    if is_executed:
        output = done.stdout + done.stderr
        if "sent vacation response" in output:
            subject = re.search(r"^Subject: (.*(?:\n[ \t].*)*)", output, re.MULTILINE)
            decoded = str(email.header.make_header(email.header.decode_header(subject.group(1)))) if subject else ""
            out.append(["vacation", " ".join(decoded.split())])
        for mailbox in re.findall(r"stored mail into mailbox '([^']*)'", done.stderr):
            out.append(["store", mailbox, ""])
        return "ok", frozenset(tuple(item) for item in out)
    for line in done.stdout.splitlines():
        stripped = line.strip()
        if line.startswith(" * store message in folder: "):
            out.append(["store", line.split(": ", 1)[1], ""])
        elif line.startswith(" * redirect message to: "):
            out.append(["redirect", line.split(": ", 1)[1].strip("<>")])
        elif line.startswith(" * reject message with reason: "):
            out.append(["reject", line.split(": ", 1)[1].replace("??", "\r\n")])  # it prints CR LF as ??
        elif line.startswith(" * discard"):
            out.append(["discard"])
        elif line.startswith(" * track duplicate"):
            out.append(["track-duplicate"])
        elif line.startswith(" * send vacation message"):
            out.append(["vacation"])
        elif stripped.startswith("+ add IMAP flags: ") and out and out[-1][0] == "store":
            out[-1][2] = " ".join(sorted(stripped.split(": ", 1)[1].lower().split()))
        elif line.startswith(" * "):
            pytest.fail(f"unknown sieve-test action line: {line!r}")
    return "ok", _without_redundant_discard(frozenset(tuple(item) for item in out))


def _pochta(script: str, sample: Sample) -> tuple[str, Normal]:
    try:
        parsed = parse(script)
    except SieveError:
        return "compile-error", frozenset()
    env = Environment(
        now=dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC),
        user=sample.envelope_to,
        facts=_facts(sample.content),
        mailbox_exists=lambda name: name == "INBOX",
        include=lambda name, is_global: (GLOBAL if is_global else PERSONAL).get(name),
    )
    message = MessageView(
        content=sample.content,
        envelope_from=sample.envelope_from,
        envelope_to=sample.envelope_to,
        size=len(sample.content),
    )
    result = run(parsed, message, env)
    if result.errors:
        return "run-error", frozenset({("store", "INBOX", "")})
    out: set[tuple[str, ...]] = {("track-duplicate",)} if result.duplicate_ids else set()
    for action in result.actions:
        if isinstance(action, Keep | FileInto):
            flags = " ".join(sorted(flag.lower() for flag in action.flags))
            out.add(("store", action.mailbox, flags))
        elif isinstance(action, Redirect):
            out.add(("redirect", action.address))
        elif isinstance(action, Reject):
            out.add(("reject", action.reason))
        elif isinstance(action, Discard):
            out.add(("discard",))
        elif isinstance(action, Vacation):
            out.add(("vacation", " ".join(action.subject.split())))
    return "ok", _without_redundant_discard(frozenset(out))


def _facts(content: bytes) -> dict[str, str]:
    """What our spam and virus filters would say, from the headers Pigeonhole is told to read."""
    facts = {}
    for name, key in ((b"X-Spam-Score", "spamtest"), (b"X-Virus-Score", "virustest")):
        found = re.search(rb"^" + name + rb": *([0-9]+)", content, re.MULTILINE | re.IGNORECASE)
        if found:
            facts[key] = str(1 + int(found.group(1)))
    return facts


def _without_redundant_discard(actions: Normal) -> Normal:
    if any(action[0] not in ("discard", "vacation", "track-duplicate") for action in actions):
        return frozenset(action for action in actions if action[0] != "discard")
    return actions


ALL_SCRIPTS = {**SCRIPTS, **MORE_SCRIPTS}


@pytest.mark.parametrize("script_name", sorted(ALL_SCRIPTS))
def test_pochta_and_pigeonhole_agree(workdir: Path, script_name: str) -> None:
    script = ALL_SCRIPTS[script_name]
    mismatches = []
    for sample in [*MESSAGES, *_shared_messages()]:
        theirs = _pigeonhole(workdir, script, sample, script_name)
        ours = _pochta(script, sample)
        if theirs != ours:
            mismatches.append(f"{sample.name}: pigeonhole {theirs} != pochta {ours}")
    assert not mismatches, "\n".join(mismatches)


# Scripts that must compile, or fail to compile, in both: the parser's judgement, not the runtime's.
SYNTAX: dict[str, str] = {
    "comments": "# a\n/* b\n c */ keep; # c",
    "bracket-comment-in-list": 'if header :is /* x */ ["a", /* y */ "b"] "c" { keep; }',
    "tags-in-any-order": 'if header :comparator "i;octet" :contains "subject" "x" { keep; }',
    "quantifiers": "if size :over 1k { keep; } if size :under 2G { keep; }",
    "escapes": 'if header :is "subject" "\\"\\\\\\a" { keep; }',
    "multiline-with-comment": 'require "reject"; reject text: # why\nline\n.\n;',
    "empty-block": "if true { }",
    "empty-test-list": "if anyof () { }",
    "unknown-command": "frob;",
    "unknown-tag": 'if header :frob "a" "b" { }',
    "missing-semicolon": "keep",
    "missing-test": "if { }",
    "else-without-if": "else { }",
    "require-late": 'keep; require "fileinto";',
    "require-unknown": 'require "x-unknown";',
    "fileinto-without-require": 'fileinto "x";',
    "regex-without-require": 'if header :regex "a" "b" { }',
    "numeric-without-require": 'if header :comparator "i;ascii-numeric" :is "a" "1" { }',
    "numeric-contains": (
        'require "comparator-i;ascii-numeric"; if header :comparator "i;ascii-numeric" :contains "a" "1" { }'
    ),
    "unknown-comparator": 'if header :comparator "i;nope" :is "a" "b" { }',
    "two-match-types": 'if header :is :contains "a" "b" { }',
    "duplicate-tag": 'if header :is :is "a" "b" { }',
    "size-without-tag": "if size 10 { }",
    "relational-bad-operator": 'require "relational"; if header :value "xx" "a" "b" { }',
    "regex-invalid": 'require "regex"; if header :regex "a" "(" { }',
    "envelope-bad-part": 'require "envelope"; if envelope "cc" "x" { }',
    "header-bad-name": 'if header :is "a b" "x" { }',
    "last-without-index": 'require "index"; if header :last :is "a" "b" { }',
    "date-bad-part": 'require "date"; if currentdate "century" "21" { }',
    "date-bad-zone": 'require "date"; if currentdate :zone "CET" "year" "2026" { }',
    "set-bad-name": 'require "variables"; set "1a" "x";',
    "redirect-list": 'redirect ["a@example.com"];',
    "vacation-days-and-seconds": 'require ["vacation", "vacation-seconds"]; vacation :days 1 :seconds 1 "x";',
    "string-list-unclosed": 'if exists ["a", "b" { }',
    "unterminated-string": 'keep; if header :is "a',
    "unterminated-comment": "keep; /* never closed",
    "number-too-big": "if size :over 99999999999999999999 { }",
    "tag-after-positional": 'if header "a" :is "b" { }',
}


@pytest.mark.parametrize("script_name", sorted(SYNTAX))
def test_pochta_and_pigeonhole_agree_on_syntax(workdir: Path, script_name: str) -> None:
    script = SYNTAX[script_name]
    theirs, _ = _pigeonhole(workdir, script, MESSAGES[0], f"syntax-{script_name}")
    ours, _ = _pochta(script, MESSAGES[0])
    assert (theirs == "compile-error") == (ours == "compile-error"), (theirs, ours)
