"""What each Sieve command and test accepts: tagged arguments, positional arguments, extensions.

The parser checks every call against this table, so the runtime never sees a malformed call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ArgumentKind = Literal["flag", "string", "strings", "number"]

# Extensions a script may `require` (RFC 5228 §3.2). The comparators i;octet and i;ascii-casemap are
# always there (§2.7.3) but may still be required by name.
SUPPORTED_EXTENSIONS = frozenset(
    {
        "fileinto",
        "reject",
        "ereject",
        "envelope",
        "encoded-character",
        "imap4flags",
        "body",
        "variables",
        "relational",
        "subaddress",
        "copy",
        "vacation",
        "vacation-seconds",
        "date",
        "index",
        "mailbox",
        "regex",
        "editheader",
        "duplicate",
        "spamtest",
        "spamtestplus",
        "virustest",
        "environment",
        "include",
        "comparator-i;ascii-numeric",
        "special-use",
    }
)
IMPLICIT_EXTENSIONS = frozenset({"comparator-i;octet", "comparator-i;ascii-casemap"})
COMPARATORS = frozenset({"i;octet", "i;ascii-casemap", "i;ascii-numeric"})
RELATIONAL_OPERATORS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})  # RFC 5231 §4
DATE_PARTS = frozenset(  # RFC 5260 §4.2
    {
        "year",
        "month",
        "day",
        "date",
        "julian",
        "hour",
        "minute",
        "second",
        "time",
        "iso8601",
        "std11",
        "zone",
        "weekday",
    }
)


SYSTEM_FLAGS = frozenset({"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"})  # RFC 9051 §2.3.2
_KEYWORD = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')  # RFC 9051 §9 atom: no atom-specials


def is_valid_flag(flag: str) -> bool:
    """An IMAP flag a message may carry: a system flag (not \\Recent) or a keyword atom (RFC 5232 §3)."""
    return flag.lower() in SYSTEM_FLAGS if flag.startswith("\\") else bool(_KEYWORD.fullmatch(flag))


@dataclass(frozen=True, slots=True)
class Tag:
    kind: ArgumentKind
    extension: str | None = None
    group: str | None = None  # at most one tag of a group per call


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    is_test: bool
    extension: str | None = None
    tags: Mapping[str, Tag] = field(default_factory=dict)
    variants: tuple[tuple[ArgumentKind, ...], ...] = ((),)  # accepted positional argument lists
    tests: Literal["none", "one", "list"] = "none"
    block: bool = False
    required_groups: frozenset[str] = frozenset()


_COMPARATOR = {"comparator": Tag("string", None, "comparator")}
_MATCH = {
    "is": Tag("flag", None, "match"),
    "contains": Tag("flag", None, "match"),
    "matches": Tag("flag", None, "match"),
    "regex": Tag("flag", "regex", "match"),  # draft-ietf-sieve-regex
    "value": Tag("string", "relational", "match"),  # RFC 5231
    "count": Tag("string", "relational", "match"),
}
_ADDRESS_PART = {
    "all": Tag("flag", None, "address-part"),
    "localpart": Tag("flag", None, "address-part"),
    "domain": Tag("flag", None, "address-part"),
    "user": Tag("flag", "subaddress", "address-part"),  # RFC 5233
    "detail": Tag("flag", "subaddress", "address-part"),
}
_INDEX = {"index": Tag("number", "index", "index"), "last": Tag("flag", "index", "last")}  # RFC 5260 §6
_MATCHING = {**_COMPARATOR, **_MATCH}
_FLAGS = {"flags": Tag("strings", "imap4flags")}  # RFC 5232 §5
_MODIFIERS = {  # RFC 5229 §4.1; the group is the precedence
    "lower": Tag("flag", None, "40"),
    "upper": Tag("flag", None, "40"),
    "lowerfirst": Tag("flag", None, "30"),
    "upperfirst": Tag("flag", None, "30"),
    "quotewildcard": Tag("flag", None, "20"),
    "quoteregex": Tag("flag", "regex", "20"),
    "length": Tag("flag", None, "10"),
}

SIGNATURES: dict[str, Signature] = {
    # RFC 5228 control commands
    "require": Signature(is_test=False, variants=(("strings",),)),
    "if": Signature(is_test=False, tests="one", block=True),
    "elsif": Signature(is_test=False, tests="one", block=True),
    "else": Signature(is_test=False, block=True),
    "stop": Signature(is_test=False),
    # RFC 5228 actions and their extensions
    "keep": Signature(is_test=False, tags=_FLAGS),
    "discard": Signature(is_test=False),
    "redirect": Signature(is_test=False, tags={"copy": Tag("flag", "copy")}, variants=(("string",),)),
    "fileinto": Signature(
        is_test=False,
        extension="fileinto",
        tags={
            "copy": Tag("flag", "copy"),
            "create": Tag("flag", "mailbox"),
            "specialuse": Tag("string", "special-use"),  # RFC 8579 §4
            **_FLAGS,
        },
        variants=(("string",),),
    ),
    "reject": Signature(is_test=False, extension="reject", variants=(("string",),)),
    "ereject": Signature(is_test=False, extension="ereject", variants=(("string",),)),
    "vacation": Signature(  # RFC 5230 §4, RFC 6131
        is_test=False,
        extension="vacation",
        tags={
            "days": Tag("number", None, "period"),
            "seconds": Tag("number", "vacation-seconds", "period"),
            "subject": Tag("string"),
            "from": Tag("string"),
            "addresses": Tag("strings"),
            "mime": Tag("flag"),
            "handle": Tag("string"),
        },
        variants=(("string",),),
    ),
    # RFC 5232 imap4flags
    "setflag": Signature(is_test=False, extension="imap4flags", variants=(("strings",), ("string", "strings"))),
    "addflag": Signature(is_test=False, extension="imap4flags", variants=(("strings",), ("string", "strings"))),
    "removeflag": Signature(is_test=False, extension="imap4flags", variants=(("strings",), ("string", "strings"))),
    # RFC 5229 variables
    "set": Signature(is_test=False, extension="variables", tags=_MODIFIERS, variants=(("string", "string"),)),
    # RFC 5293 editheader
    "addheader": Signature(
        is_test=False, extension="editheader", tags={"last": Tag("flag")}, variants=(("string", "string"),)
    ),
    "deleteheader": Signature(
        is_test=False,
        extension="editheader",
        tags={**_MATCHING, "index": Tag("number", None, "index"), "last": Tag("flag", None, "last")},
        variants=(("string",), ("string", "strings")),
    ),
    # RFC 6609 include
    "include": Signature(
        is_test=False,
        extension="include",
        tags={
            "personal": Tag("flag", None, "location"),
            "global": Tag("flag", None, "location"),
            "once": Tag("flag"),
            "optional": Tag("flag"),
        },
        variants=(("string",),),
    ),
    "return": Signature(is_test=False, extension="include"),
    "global": Signature(is_test=False, extension="include", variants=(("strings",),)),
    # RFC 5228 tests
    "true": Signature(is_test=True),
    "false": Signature(is_test=True),
    "not": Signature(is_test=True, tests="one"),
    "allof": Signature(is_test=True, tests="list"),
    "anyof": Signature(is_test=True, tests="list"),
    "exists": Signature(is_test=True, variants=(("strings",),)),
    "size": Signature(
        is_test=True,
        tags={"over": Tag("flag", None, "size"), "under": Tag("flag", None, "size")},
        variants=(("number",),),
        required_groups=frozenset({"size"}),
    ),
    "header": Signature(is_test=True, tags={**_MATCHING, **_INDEX}, variants=(("strings", "strings"),)),
    "address": Signature(
        is_test=True, tags={**_MATCHING, **_ADDRESS_PART, **_INDEX}, variants=(("strings", "strings"),)
    ),
    "envelope": Signature(
        is_test=True, extension="envelope", tags={**_MATCHING, **_ADDRESS_PART}, variants=(("strings", "strings"),)
    ),
    "body": Signature(  # RFC 5173
        is_test=True,
        extension="body",
        tags={
            **_MATCHING,
            "raw": Tag("flag", None, "transform"),
            "content": Tag("strings", None, "transform"),
            "text": Tag("flag", None, "transform"),
        },
        variants=(("strings",),),
    ),
    "string": Signature(is_test=True, extension="variables", tags=_MATCHING, variants=(("strings", "strings"),)),
    "hasflag": Signature(
        is_test=True, extension="imap4flags", tags=_MATCHING, variants=(("strings",), ("strings", "strings"))
    ),
    "date": Signature(  # RFC 5260 §4
        is_test=True,
        extension="date",
        tags={**_MATCHING, **_INDEX, "zone": Tag("string", None, "zone"), "originalzone": Tag("flag", None, "zone")},
        variants=(("string", "string", "strings"),),
    ),
    "currentdate": Signature(
        is_test=True,
        extension="date",
        tags={**_MATCHING, "zone": Tag("string", None, "zone")},
        variants=(("string", "strings"),),
    ),
    "mailboxexists": Signature(is_test=True, extension="mailbox", variants=(("strings",),)),  # RFC 5490 §3.1
    "specialuse_exists": Signature(  # RFC 8579 §3
        is_test=True, extension="special-use", variants=(("strings",), ("string", "strings"))
    ),
    "duplicate": Signature(  # RFC 7352 §3
        is_test=True,
        extension="duplicate",
        tags={
            "handle": Tag("string"),
            "header": Tag("string", None, "id"),
            "uniqueid": Tag("string", None, "id"),
            "seconds": Tag("number"),
            "last": Tag("flag"),
        },
    ),
    "spamtest": Signature(  # RFC 5235
        is_test=True,
        extension="spamtest",
        tags={**_MATCHING, "percent": Tag("flag", "spamtestplus")},
        variants=(("string",),),
    ),
    "virustest": Signature(is_test=True, extension="virustest", tags=_MATCHING, variants=(("string",),)),
    "environment": Signature(  # RFC 5183
        is_test=True, extension="environment", tags=_MATCHING, variants=(("string", "strings"),)
    ),
}
# RFC 5429 §2.1 / RFC 5235 §3.2: ereject needs no separate reject; spamtestplus implies spamtest.
IMPLIES = {"spamtestplus": frozenset({"spamtest"}), "vacation-seconds": frozenset({"vacation"})}
