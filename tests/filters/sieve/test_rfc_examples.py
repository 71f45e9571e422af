"""The example scripts of the Sieve RFCs, run on messages that make their comments true."""

from __future__ import annotations

import datetime as dt

from pochta.filters.sieve import Discard, FileInto, Keep, Redirect, Reject, Result, Vacation
from tests.filters.sieve.sample import message, outcome


def _boxes(result: Result) -> list[str]:
    assert result.errors == ()
    return [action.mailbox for action in result.actions if isinstance(action, FileInto)]


RFC5228_SECTION_9 = """
#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"""


def test_rfc5228_section_9() -> None:
    cases = {
        "Sender: owner-ietf-mta-filters@imc.org\nTo: me@example.com\n": [FileInto(mailbox="filter")],
        "From: boss@example.com\nTo: me@example.com\n": [Keep()],
        "From: x@spam.example\nTo: a@example.net\nCc: me@example.com\nSubject: Make MONEY fast\n": [
            FileInto(mailbox="spam")
        ],
        "From: x@spam.example\nTo: you@example.net\n": [FileInto(mailbox="spam")],
        "From: friend@example.net\nTo: group@example.net\nCc: me@example.com\n": [FileInto(mailbox="personal")],
    }
    for headers, actions in cases.items():
        assert list(outcome(RFC5228_SECTION_9, message(headers + "\nbody\n")).actions) == actions, headers


def test_rfc5228_comparator_and_envelope_examples() -> None:
    # RFC 5228 §2.7.3 and §5.4
    mail = message("Subject: MAKE MONEY FAST\n\nx\n", envelope_from="tim@example.com")
    assert outcome(
        'if header :contains :comparator "i;octet" "Subject" "MAKE MONEY FAST" { discard; }', mail
    ).actions == (Discard(),)
    script = 'require "envelope"; if envelope :all :is "from" "tim@example.com" { discard; }'
    assert outcome(script, mail).actions == (Discard(),)
    assert outcome('redirect "bart@example.com";').actions == (Redirect(address="bart@example.com"),)


def test_rfc5229_examples() -> None:
    # RFC 5229 §3.1 and §3.2
    script = """require ["fileinto", "variables"];
if header :matches "List-ID" "*<*@*" {
    fileinto "INBOX.lists.${2}"; stop;
}
# Imagine the header
# Subject: [acme-users] [fwd] version 1.0 is out
if header :matches "Subject" "[*] *" {
    # ${1} will hold "acme-users",
    # ${2} will hold "[fwd] version 1.0 is out"
    fileinto "INBOX.lists.${1}"; stop;
}
# Imagine the header
# To: coyote@ACME.Example.COM
if address :matches ["To", "Cc"] ["coyote@**.com",
        "wile@**.com"] {
    # ${0} is the matching address
    # ${1} always holds ""
    # ${2} holds the domain name ("ACME.Example")
    fileinto "INBOX.business.${2}"; stop;
} else {
    # Control wouldn't reach this block if any match was
    # successful, so no match variables are set at this
    # point.
}
if anyof (true, address :domain :matches "To" "*.com") {
    # The second test is never evaluated, so there are
    # still no match variables set.
    stop;
}
"""
    lists = message("List-ID: Coyote Announcements <announce@lists.example.com>\n\nx\n")
    assert _boxes(outcome(script, lists)) == ["INBOX.lists.announce"]
    subject = message("Subject: [acme-users] [fwd] version 1.0 is out\n\nx\n")
    assert _boxes(outcome(script, subject)) == ["INBOX.lists.acme-users"]
    business = message("To: coyote@ACME.Example.COM\n\nx\n")
    assert _boxes(outcome(script, business)) == ["INBOX.business.ACME.Example"]
    assert outcome(script, message("To: someone@example.org\n\nx\n")).actions == (Keep(),)

    vacation = """require ["variables", "vacation"];
set "honorific"  "Mr";
set "first_name" "Wile";
set "last_name"  "Coyote";
set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
vacation :subject "Gone fishing" "${vacation}";
"""
    replies = [a for a in outcome(vacation).actions if isinstance(a, Vacation)]
    assert [reply.body for reply in replies] == [
        "Dear Mr Coyote,\r\nI'm out, please leave a message after the meep.\r\n"
    ]


def test_rfc5230_examples() -> None:
    # RFC 5230 §4 and §4.8
    script = """require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}
"""
    replies = [a for a in outcome(script).actions if isinstance(a, Vacation)]
    assert [reply.body for reply in replies] == ["I'm out -- call me at +1 304 555 0123"]
    script = """require "vacation";
vacation :days 23 :addresses ["tjs@example.edu",
                              "ts4z@landru.example.edu"]
"I'm away until October 19.  If it's an emergency, call 911, I guess." ;
"""
    to_alias = message("From: a@example.org\nTo: ts4z@landru.example.edu\nSubject: hi\n\nx\n")
    replies = [a for a in outcome(script, to_alias).actions if isinstance(a, Vacation)]
    assert [(reply.seconds, reply.subject) for reply in replies] == [(23 * 86400, "Auto: hi")]
    script = """require ["vacation"];
if header :contains "subject" "lunch" {
    vacation :handle "ran-away" "I'm out and can't meet for lunch";
} else {
    vacation :handle "ran-away" "I'm out";
}
"""
    replies = [a for a in outcome(script).actions if isinstance(a, Vacation)]
    assert [(reply.handle, reply.body) for reply in replies] == [("ran-away", "I'm out and can't meet for lunch")]
    script = """require "vacation";
vacation :mime text:
Content-Type: multipart/alternative; boundary=foo

--foo

I'm at the beach relaxing.  Mmmm, surf...

--foo
Content-Type: text/html; charset=us-ascii

<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0//EN"
 "http://www.w3.org/TR/REC-html40/strict.dtd">
<HTML><HEAD><TITLE>How to relax</TITLE>
<BASE HREF="http://home.example.com/pictures/"></HEAD>
<BODY><P>I'm at the <A HREF="beach.gif">beach</A> relaxing.
Mmmm, <A HREF="ocean.gif">surf</A>...
</BODY></HTML>

--foo--
.
;
"""
    replies = [a for a in outcome(script).actions if isinstance(a, Vacation)]
    assert len(replies) == 1 and replies[0].mime and replies[0].body.startswith("Content-Type: multipart/alternative")


def test_rfc5231_example() -> None:
    # RFC 5231 §6
    script = """require ["relational", "comparator-i;ascii-numeric", "fileinto"];

if header :value "lt" :comparator "i;ascii-numeric"
          ["x-priority"] ["3"]
{
   fileinto "Priority";
}

elsif address :count "gt" :comparator "i;ascii-numeric"
          ["to"] ["5"]
{
   # everything with more than 5 recipients in the "to" field
   # is considered SPAM
   fileinto "SPAM";
}

elsif address :value "gt" :comparator "i;ascii-casemap"
          ["from"] ["M"]
{
   fileinto "From N-Z";
} else {
   fileinto "From A-M";
}

if allof ( address :count "eq" :comparator "i;ascii-numeric"
                   ["to", "cc"] ["1"] ,
           address :all :comparator "i;ascii-casemap"
                   ["to", "cc"] ["me@foo.example.com"] )
{
   fileinto "Only me";
}
"""
    text = (
        "Received: ...\nReceived: ...\nSubject: example\nTo: foo@example.com, baz@example.com\n"
        "CC: qux@example.com\n\nx\n"
    )
    # RFC 5231 §6: "the message will be filed into the mailbox "From A-M"" (no From: "M" is greater than "")
    assert _boxes(outcome(script, message(text))) == ["From A-M"]
    only_me = "From: Zed <zed@example.net>\nTo: me@foo.example.com\nX-Priority: 1\n\nx\n"
    assert _boxes(outcome(script, message(only_me))) == ["Priority", "Only me"]
    many = "From: nobody@example.net\nTo: a@x, b@x, c@x, d@x, e@x, f@x\n\nx\n"
    assert _boxes(outcome(script, message(many))) == ["SPAM"]


def test_rfc5232_examples() -> None:
    # RFC 5232 §7
    script = """require ["imap4flags", "fileinto", "variables"];
if size :over 1K {
    addflag "MyFlags" "Big";
    if header :is "From" "boss@company.example.com" {
        addflag "MyFlags" "\\\\Flagged";
    }
    fileinto :flags "${MyFlags}" "GrabBag";
} else {
    fileinto "INBOX.From Boss";
}
"""
    big = message("From: boss@company.example.com\n\n" + "x" * 2000 + "\n")
    assert outcome(script, big).actions == (FileInto(mailbox="GrabBag", flags=("Big", "\\Flagged")),)
    assert _boxes(outcome(script)) == ["INBOX.From Boss"]
    script = """require ["imap4flags", "fileinto"];
if header :contains "from" "boss@frobnitzm.example.edu" {
    setflag "\\\\Flagged";
    fileinto "INBOX.From Boss";
}
"""
    boss = message("From: boss@frobnitzm.example.edu\n\nx\n")
    assert outcome(script, boss).actions == (FileInto(mailbox="INBOX.From Boss", flags=("\\Flagged",)),)


def test_rfc5233_example() -> None:
    # RFC 5233 §5
    script = """require ["envelope", "subaddress", "fileinto"];

# In this example the same user account receives mail for both
# "ken@example.com" and "postmaster@example.com"

# File all messages to postmaster into a single mailbox,
# ignoring the :detail part.
if envelope :user "to" "postmaster" {
    fileinto "inbox.postmaster";
    stop;
}

# File mailing list messages (subscribed as "ken+mta-filters").
if envelope :detail "to" "mta-filters" {
    fileinto "inbox.ietf-mta-filters";
}

# Redirect all mail sent to "ken+foo".
if envelope :detail "to" "foo" {
    redirect "ken@example.net";
}
"""
    assert _boxes(outcome(script, message(envelope_to="postmaster+x@example.com"))) == ["inbox.postmaster"]
    assert _boxes(outcome(script, message(envelope_to="ken+mta-filters@example.com"))) == ["inbox.ietf-mta-filters"]
    assert outcome(script, message(envelope_to="ken+foo@example.com")).actions == (Redirect(address="ken@example.net"),)


def test_rfc5173_examples() -> None:
    # RFC 5173 §7
    script = """require "body";

# Save any message with any text MIME part that contains the
# words "missile" or "coordinates" in the "secrets" folder.

if body :content "text" :contains ["missile", "coordinates"] {
        fileinto "secrets";
}

# Save any message with an audio/mp3 MIME part in
# the "jukebox" folder.

if body :content "audio/mp3" :contains "" {
        fileinto "jukebox";
}
""".replace('require "body";', 'require ["body", "fileinto"];')
    text = (
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nthe coordinates are attached\n"
        "--b\nContent-Type: audio/mp3\nContent-Transfer-Encoding: base64\n\nSUQz\n--b--\n"
    )
    assert _boxes(outcome(script, message(text))) == ["secrets", "jukebox"]
    raw = 'require "body"; if body :raw :contains "MAKE MONEY FAST" { discard; }'
    assert outcome(raw, message("Subject: x\n\nMAKE MONEY FAST\n")).actions == (Discard(),)


def test_rfc5260_examples() -> None:
    # RFC 5260 §4.1, §5.1 and §7
    script = """require ["date", "relational", "fileinto"];
if allof(header :is "from" "boss@example.com",
         date :value "ge" :originalzone "date" "hour" "09",
         date :value "lt" :originalzone "date" "hour" "17")
{ fileinto "urgent"; }
"""
    during = message("From: boss@example.com\nDate: Mon, 12 Jan 2026 10:00:00 -0800\n\nx\n")
    assert _boxes(outcome(script, during)) == ["urgent"]
    after = message("From: boss@example.com\nDate: Mon, 12 Jan 2026 18:00:00 -0800\n\nx\n")
    assert _boxes(outcome(script, after)) == []

    script = """require ["date", "relational", "vacation"];
if allof(currentdate :value "ge" "date" "2007-06-30",
         currentdate :value "le" "date" "2007-07-07")
{ vacation :days 7  "I'm away during the first week in July."; }
"""
    july = dt.datetime(2007, 7, 2, 12, tzinfo=dt.UTC)
    assert any(isinstance(a, Vacation) for a in outcome(script, now=july).actions)
    assert not any(isinstance(a, Vacation) for a in outcome(script).actions)

    script = """require ["date", "variables", "fileinto"];
if currentdate :matches "month" "*" { set "month" "${1}"; }
if currentdate :matches "year"  "*" { set "year" "${1}"; }
fileinto "${month}-${year}";
"""
    assert _boxes(outcome(script)) == ["11-2026"]

    script = """require ["variables", "date", "editheader"];
if currentdate :matches "std11" "*" {addheader "Processing-date" "${0}";}
"""
    edited = outcome(script).edited_header
    assert edited is not None and edited.startswith(b"Processing-date: Fri, 27 Nov 2026 10:00:00 +0000\r\n")

    script = """require ["date", "relational", "index"];
if date :value "gt" :index 2 :zone "-0500" "received"
        "iso8601" "2007-02-26T09:00:00-05:00"
{ redirect "aftertheevent@example.com"; }
"""
    received = message(
        "Received: from a by b; Mon, 26 Feb 2007 16:00:00 +0000\n"
        "Received: from c by d; Mon, 26 Feb 2007 14:30:00 +0000\n\nx\n"
    )
    assert outcome(script, received).actions == (Redirect(address="aftertheevent@example.com"),)


def test_rfc5293_examples() -> None:
    # RFC 5293 §9 (adapted to one script)
    script = """require ["editheader", "variables"];
if header :contains "X-Virus-Status" "infected" {
    deleteheader "X-Virus-Status";
    addheader :last "X-Virus-Status" "cleaned";
}
if header :matches "Subject" "*" {
    deleteheader "Subject";
    addheader "Subject" "[SPAM] ${1}";
}
"""
    mail = message("Subject: cheap\nX-Virus-Status: infected\nFrom: a@b.example\n\nx\n")
    assert outcome(script, mail).edited_header == (
        b"Subject: [SPAM] cheap\r\nFrom: a@b.example\r\nX-Virus-Status: cleaned\r\n\r\n"
    )


def test_rfc5429_examples() -> None:
    # RFC 5429 §2.1.1 and §2.2.1
    script = """require ["reject"];

if header :contains "from" "coyote@desert.example.org" {
    reject text:
I am not taking mail from you, and I don't
want your birdseed, either!
.
;
}
"""
    mail = message("From: coyote@desert.example.org\n\nx\n")
    reasons = [a.reason for a in outcome(script, mail).actions if isinstance(a, Reject)]
    assert reasons == ["I am not taking mail from you, and I don't\r\nwant your birdseed, either!\r\n"]
    script = """require ["ereject"];

if address :is "from" "someone@example.com" {
    ereject "I no longer accept mail from this address";
}
"""
    mail = message("From: someone@example.com\n\nx\n")
    assert outcome(script, mail).actions == (
        Reject(reason="I no longer accept mail from this address", is_extended=True),
    )


def test_rfc5490_examples() -> None:
    # RFC 5490 §3.1 and §3.2
    script = """require ["fileinto", "reject", "mailbox"];
if mailboxexists "Partners" {
   fileinto "Partners";
} else {
   reject "This message was not accepted by the Mailstore";
}
"""
    assert _boxes(outcome(script, mailbox_exists={"Partners"}.__contains__)) == ["Partners"]
    assert outcome(script).actions == (Reject(reason="This message was not accepted by the Mailstore"),)
    script = 'require ["fileinto", "mailbox"]; fileinto :create "INBOX.folder";'
    assert outcome(script).actions == (FileInto(mailbox="INBOX.folder", create=True),)


def test_rfc7352_examples() -> None:
    # RFC 7352 §3 and §4
    script = """require ["duplicate", "fileinto", "mailbox"];

if duplicate {
  fileinto :create "Trash/Duplicate";
}
"""
    assert _boxes(outcome(script, is_duplicate=lambda _id, _seconds: True)) == ["Trash/Duplicate"]
    assert outcome(script).actions == (Keep(),)
    script = """require ["duplicate", "variables", "imap4flags"];

if header :matches "subject" "ALERT: *" {
  if duplicate :seconds 60 :uniqueid "${1}" {
    setflag "\\\\seen";
  }
}
"""
    seen: list[tuple[str, int]] = []
    mail = message("Subject: ALERT: disk full\n\nx\n")
    result = outcome(
        script, mail, is_duplicate=lambda identity, seconds: bool(seen.append((identity, seconds))) or True
    )
    assert result.actions == (Keep(flags=("\\seen",)),)
    assert [seconds for _, seconds in seen] == [60]


def test_rfc5235_examples() -> None:
    # RFC 5235 §3.2 and §3.3 (the "i;ascii-numeric" examples)
    script = """require ["spamtest", "fileinto", "relational",
                            "comparator-i;ascii-numeric"];

if spamtest :value "eq" :comparator "i;ascii-numeric" "0"
{
    fileinto "INBOX.unclassified";
}
elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3"
{
    fileinto "INBOX.spam-trap";
}
"""
    assert _boxes(outcome(script)) == ["INBOX.unclassified"]
    assert _boxes(outcome(script, facts={"spamtest": "5"})) == ["INBOX.spam-trap"]
    assert _boxes(outcome(script, facts={"spamtest": "1"})) == []
    script = """require ["spamtestplus", "fileinto", "relational",
                            "comparator-i;ascii-numeric"];

if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0"
{
    fileinto "INBOX.unclassified";
}
elsif spamtest :percent :value "ge" :comparator "i;ascii-numeric" "60"
{
    fileinto "INBOX.spam-trap";
}
"""
    assert _boxes(outcome(script, facts={"spamtest": "9"})) == ["INBOX.spam-trap"]
    script = """require ["virustest", "fileinto", "relational",
                            "comparator-i;ascii-numeric"];

if virustest :value "eq" :comparator "i;ascii-numeric" "0"
{
    fileinto "INBOX.unclassified";
}
if virustest :value "eq" :comparator "i;ascii-numeric" "4"
{
    fileinto "INBOX.quarantine";
}
elsif virustest :value "eq" :comparator "i;ascii-numeric" "5"
{
    discard;
}
"""
    assert _boxes(outcome(script, facts={"virustest": "4"})) == ["INBOX.quarantine"]
    assert outcome(script, facts={"virustest": "5"}).actions == (Discard(),)


def test_rfc5183_example() -> None:
    # RFC 5183 §6 (adapted: file mail that arrived at the MDA of this domain)
    script = """require ["environment", "fileinto"];
if allof (environment :is "location" "MDA", environment :matches "host" "*.example.com") {
    fileinto "local";
}
"""
    assert _boxes(outcome(script)) == ["local"]


def test_rfc3894_example() -> None:
    # RFC 3894 §4
    script = """require ["copy", "fileinto"];
if header :contains "subject" "lunch" {
    redirect :copy "sysadmin@example.com";
    fileinto :copy "incoming";
}
"""
    assert outcome(script).actions == (
        Redirect(address="sysadmin@example.com", copy=True),
        FileInto(mailbox="incoming", copy=True),
        Keep(),
    )
