"""Sieve mail filtering (RFC 5228) with the extensions people use: parse a script, run it on a message.

Pure code: no I/O and no logging; the caller (delivery, ManageSieve) does those. Use::

    script = parse(source)                      # SieveError(line, column, message) on a bad script
    result = run(script, MessageView(...), Environment(...))
    for action in result.actions: ...           # Keep, FileInto, Redirect, Reject, Vacation, Discard

**Parsing.** :func:`parse` checks the grammar (RFC 5228 §8), every command's and test's arguments and
the ``require``\\s (an extension used without being required is an error, as is an unknown one).
``extensions`` narrows what may be required (default :data:`SUPPORTED_EXTENSIONS`, which is also the
ManageSieve SIEVE capability). Literal values are checked too: comparators, relational operators,
regular expressions, envelope parts, variable names, redirect addresses, special-use flags. What
parses but can never match (an invalid header name in a test, an unknown date part, a malformed zone)
is a warning in ``Script.warnings``, not an error, as in Dovecot.

**Running.** :func:`run` never raises for anything a script or message does. A run-time error
(bad redirect address, failed include, too many actions, reject with delivery) gives
``Result(actions=(Keep(),), implicit_keep=True, errors=("line L:C: ...",))``: mail is never lost.
Otherwise ``Result.actions`` is the complete list, the implicit keep included as a :class:`Keep`
carrying the imap4flags flags. Duplicate fileinto/keep of one mailbox and redirects to one address
are merged (RFC 5228 §2.10.3); ``fileinto "INBOX"`` and ``keep`` are the same. :class:`Discard`
appears only when nothing else delivers the message. ``Result.edited_header`` (editheader) is the new
header block for every stored or redirected copy; ``Result.duplicate_ids`` (duplicate, RFC 7352) are
the :class:`DuplicateId` records the caller keeps once the message is delivered
(``Environment.is_duplicate`` only asks).

**Extensions.** fileinto, reject, ereject (RFC 5429), envelope, encoded-character, imap4flags
(RFC 5232), body (RFC 5173; text/html is reduced to its text for ``:text``), variables (RFC 5229),
relational (RFC 5231), subaddress (RFC 5233, separator ``+``), copy (RFC 3894), vacation and
vacation-seconds (RFC 5230, 6131), date and index (RFC 5260), mailbox (RFC 5490), regex (POSIX
extended syntax, as Python's ``re`` reads it), editheader (RFC 5293; Received and Auto-Submitted are
protected: edits to them are ignored), duplicate (RFC 7352), spamtest, spamtestplus and virustest
(RFC 5235, from ``Environment.facts``: ``spamtest`` "0".."10", optional ``spamtest.percent``,
``virustest`` "0".."5"; missing means "0", not tested), environment (RFC 5183), include (RFC 6609),
special-use (RFC 8579), and the comparators i;octet, i;ascii-casemap, i;ascii-numeric.

**Vacation.** The runtime decides from the message and environment (RFC 5230 §4.5-4.6, RFC 3834 §2)
and gives no :class:`Vacation` action when: the envelope sender is null; ``Auto-Submitted`` is
present and not ``no``; a ``List-*`` field (RFC 2369/2919) is present; ``Precedence`` is bulk, list
or junk; the sender is a robot (MAILER-DAEMON, listserv, majordomo, postmaster, noreply, owner-*,
*-request, *-owner, *-bounces); the sender is the user (account, aliases, ``:addresses``, ``:from``);
none of the user's addresses (those, plus the envelope recipient with and without +detail) is in
To/Cc/Bcc/Resent-To/Resent-Cc/Resent-Bcc; or ``Environment.vacation_seen`` says this sender got
this handle's reply within the period (``:days``, at least 1, default 7; or ``:seconds``, 0 = always).
The caller sends the reply (:func:`compose_reply` writes it) with a null envelope sender and records
(sender, handle, seconds).
"""

from __future__ import annotations

from pochta.filters.sieve.errors import SieveError
from pochta.filters.sieve.grammar import SUPPORTED_EXTENSIONS
from pochta.filters.sieve.model import (
    Action,
    Discard,
    DuplicateId,
    Environment,
    FileInto,
    Keep,
    MessageView,
    Redirect,
    Reject,
    Result,
    Vacation,
)
from pochta.filters.sieve.parser import Node, Script, parse
from pochta.filters.sieve.runtime import run
from pochta.filters.sieve.vacation import compose_reply

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Action",
    "Discard",
    "DuplicateId",
    "Environment",
    "FileInto",
    "Keep",
    "MessageView",
    "Node",
    "Redirect",
    "Reject",
    "Result",
    "Script",
    "SieveError",
    "Vacation",
    "compose_reply",
    "parse",
    "run",
]
