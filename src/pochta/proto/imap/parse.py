"""The IMAP command grammar (RFC 9051 §9, RFC 3501 §9 and the extensions): one assembled command → a value.

``split_command`` reads the tag and command name; ``parse_arguments`` the rest. FETCH items live in
:mod:`.fetchparse`, SEARCH keys in :mod:`.search`.
"""

from __future__ import annotations

import binascii
import datetime
from collections.abc import Callable
from dataclasses import dataclass

from . import commands as c
from .fetchparse import parse_fetch
from .search import parse_criteria
from .tokens import MAX_NUMBER64, ParseError, Reader
from .utf7 import Utf7Error, decode_mailbox

SEARCH_CHARSETS = ("US-ASCII", "UTF-8")  # RFC 9051 §6.4.4: US-ASCII and UTF-8 are required
_NOT_SELECTING = frozenset({c.ListSelection.RECURSIVEMATCH, c.ListSelection.REMOTE})  # RFC 5258 §3.1
_SYSTEM_FLAGS = {flag.upper(): flag for flag in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}


class BadCharset(Exception):
    """SEARCH CHARSET not supported: RFC 9051 §6.4.4 wants a tagged NO [BADCHARSET], not BAD."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What the client ENABLE-d, as far as it changes the grammar."""

    is_utf8: bool = False  # UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2: mailbox names are UTF-8, not modified UTF-7
    is_qresync: bool = False  # QRESYNC (RFC 7162 §3.2.3): SELECT (QRESYNC ...) and FETCH (VANISHED) allowed


def split_command(reader: Reader) -> tuple[str, str]:
    """``tag SP command-name``; ``UID`` and the command after it make one name (``"UID FETCH"``)."""
    tag = reader.tag()
    reader.space()
    name = reader.atom("a command name").upper()
    if name == "UID":
        reader.space()
        name = "UID " + reader.atom("a command after UID").upper()
    return tag, name


def parse_arguments(name: str, reader: Reader, options: Options) -> c.CommandType:
    """The arguments of command ``name`` up to the end of the command."""
    parser = _PARSERS.get(name)
    if parser is None:
        raise ParseError(f"unknown command {name[:30]}")
    command = parser(reader, options)
    reader.end()
    return command


# ---- shared pieces --------------------------------------------------------------------------------


def mailbox(reader: Reader, options: Options, *, is_new: bool = False) -> str:
    """RFC 9051 §9 mailbox: an astring, decoded (RFC 3501 §5.1.3 / RFC 6855 §3); INBOX in any case is INBOX.

    A name being made (``is_new``: CREATE, the new name of RENAME) must be valid modified UTF-7; any other
    name that is not is taken as written, so it names no mailbox (NO, not BAD, like Dovecot)."""
    name = decode_name(reader.astring("a mailbox name"), options, is_strict=is_new)
    return "INBOX" if name.upper() == "INBOX" else name  # RFC 9051 §5.1


def decode_name(raw: bytes, options: Options, *, is_strict: bool = False) -> str:
    if options.is_utf8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("mailbox name is not UTF-8") from None
    if any(octet >= 0x80 for octet in raw):
        raise ParseError("8-bit mailbox name: ENABLE UTF8=ACCEPT first")  # RFC 6855 §3
    try:
        return decode_mailbox(raw.decode("ascii"))
    except Utf7Error as exc:
        if not is_strict:
            return raw.decode("ascii")
        raise ParseError(str(exc)) from None


def flag(reader: Reader) -> str:
    """RFC 9051 §9 flag: a system flag (case normalised), ``\\extension`` or a keyword atom."""
    if reader.accept(b"\\"):
        name = "\\" + reader.atom("a flag name")
        return _SYSTEM_FLAGS.get(name.upper(), name)
    return reader.atom("a flag")


def flag_list(reader: Reader) -> tuple[str, ...]:
    reader.expect(b"(", "a flag list")
    flags: list[str] = []
    while not reader.accept(b")"):
        if flags:
            reader.space()
        flags.append(flag(reader))
    return tuple(flags)


def append_options(reader: Reader) -> tuple[tuple[str, ...], datetime.datetime | None]:
    """``[SP flag-list] [SP date-time] SP`` before an APPEND literal (RFC 9051 §6.3.12, RFC 3502)."""
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    reader.space()
    if reader.peek() == b"(":
        flags = flag_list(reader)
        reader.space()
    if reader.peek() == b'"':
        date = reader.date_time()
        reader.space()
    reader.end()
    return flags, date


def _utf8(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"{what} is not UTF-8") from None


# ---- commands -------------------------------------------------------------------------------------


def _no_arguments(factory: Callable[[], c.CommandType]) -> Callable[[Reader, Options], c.CommandType]:
    return lambda _reader, _options: factory()


def _id(reader: Reader, _options: Options) -> c.Id:
    reader.space()  # RFC 2971 §3.3: "(" string SP nstring *(SP string SP nstring) ")" / nil
    if reader.accept(b"NIL"):
        return c.Id(params=None)
    reader.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not reader.accept(b")"):
        if params:
            reader.space()
        key = _utf8(reader.string(), "ID field")
        reader.space()
        value = reader.nstring()
        params.append((key, None if value is None else _utf8(value, "ID value")))
    return c.Id(params=tuple(params))


def _authenticate(reader: Reader, _options: Options) -> c.Authenticate:
    reader.space()
    mechanism = reader.atom("a SASL mechanism").upper()
    if reader.is_at_end():
        return c.Authenticate(mechanism=mechanism)
    reader.space()
    if reader.accept(b"="):  # RFC 4959 §3: "=" is an empty initial response
        return c.Authenticate(mechanism=mechanism, initial_response=b"")
    return c.Authenticate(mechanism=mechanism, initial_response=decode_base64(reader.atom("base64")))


def decode_base64(text: str | bytes) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ParseError("invalid base64") from None  # RFC 9051 §6.2.2: BAD


def _login(reader: Reader, _options: Options) -> c.Login:
    reader.space()
    user = _utf8(reader.astring("a user name"), "user name")
    reader.space()
    return c.Login(user=user, password=_utf8(reader.astring("a password"), "password"))


def _enable(reader: Reader, _options: Options) -> c.Enable:
    capabilities: list[str] = []
    while not reader.is_at_end() or not capabilities:  # RFC 5161 §3.1: 1*(SP capability)
        reader.space()
        capabilities.append(reader.atom("a capability").upper())
    return c.Enable(capabilities=tuple(capabilities))


def _select(reader: Reader, options: Options, *, is_read_only: bool) -> c.Select:
    reader.space()
    name = mailbox(reader, options)
    is_condstore = False
    qresync: c.QresyncParams | None = None
    if not reader.is_at_end():
        reader.space()  # RFC 4466 §2.1 select-params, RFC 7162 §3.1.8 / §3.2.5
        reader.expect(b"(")
        while not reader.accept(b")"):
            if is_condstore or qresync:
                reader.space()
            param = reader.atom("a SELECT parameter").upper()
            if param == "CONDSTORE":
                is_condstore = True
            elif param == "QRESYNC":
                if not options.is_qresync:
                    raise ParseError("QRESYNC parameter without ENABLE QRESYNC")  # RFC 7162 §3.2.5
                reader.space()
                qresync = _qresync(reader)
            else:
                raise ParseError(f"unknown SELECT parameter {param[:30]}")
    return c.Select(mailbox=name, is_read_only=is_read_only, is_condstore=is_condstore, qresync=qresync)


def _qresync(reader: Reader) -> c.QresyncParams:
    # RFC 7162 §7: "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
    reader.expect(b"(")
    uidvalidity = reader.nz_number()
    reader.space()
    modseq = reader.nz_number(limit=MAX_NUMBER64)
    known_uids = sequence_numbers = sequence_uids = None
    if reader.accept(b" "):
        if reader.peek() != b"(":
            known_uids = reader.sequence_set()
            reader.accept(b" ")
        if reader.accept(b"("):
            sequence_numbers = reader.sequence_set()
            reader.space()
            sequence_uids = reader.sequence_set()
            reader.expect(b")")
    reader.expect(b")")
    return c.QresyncParams(
        uidvalidity=uidvalidity,
        modseq=modseq,
        known_uids=known_uids,
        known_sequence_numbers=sequence_numbers,
        known_sequence_uids=sequence_uids,
    )


def _create(reader: Reader, options: Options) -> c.Create:
    reader.space()
    name = mailbox(reader, options, is_new=True)
    special_use: tuple[str, ...] = ()
    if not reader.is_at_end():
        reader.space()  # RFC 6154 §3: CREATE mailbox (USE (\Drafts))
        reader.expect(b"(")
        reader.expect(b"USE", "USE")
        reader.space()
        special_use = flag_list(reader)
        reader.expect(b")")
    return c.Create(mailbox=name, special_use=special_use)


def _one_mailbox(factory: Callable[[str], c.CommandType]) -> Callable[[Reader, Options], c.CommandType]:
    def parse(reader: Reader, options: Options) -> c.CommandType:
        reader.space()
        return factory(mailbox(reader, options))

    return parse


def _rename(reader: Reader, options: Options) -> c.Rename:
    reader.space()
    old = mailbox(reader, options)
    reader.space()
    return c.Rename(mailbox=old, new_name=mailbox(reader, options, is_new=True))


def _list(reader: Reader, options: Options) -> c.List:
    reader.space()
    selection: set[c.ListSelection] = set()
    is_extended = False
    if reader.peek() == b"(":  # RFC 5258 §3: list-select-opts
        is_extended = True
        for option in reader.list_of("atom"):
            try:
                selection.add(c.ListSelection(option.decode().upper()))
            except ValueError:
                raise ParseError(f"unknown LIST selection option {option[:30]!r}") from None
        if c.ListSelection.RECURSIVEMATCH in selection and not selection - _NOT_SELECTING:
            raise ParseError("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3.1
        reader.space()
    reference = decode_name(reader.astring("a reference name"), options)
    reader.space()
    if reader.peek() == b"(":  # RFC 5258 §3: several patterns
        is_extended = True
        reader.expect(b"(")
        raw_patterns = [reader.list_mailbox()]
        while not reader.accept(b")"):
            reader.space()
            raw_patterns.append(reader.list_mailbox())
    else:
        raw_patterns = [reader.list_mailbox()]
    patterns = tuple(decode_name(pattern, options) for pattern in raw_patterns)
    returns: set[c.ListReturn] = set()
    status_items: tuple[c.StatusItem, ...] = ()
    if not reader.is_at_end():
        is_extended = True
        reader.space()
        reader.expect(b"RETURN", "RETURN")
        reader.space()
        reader.expect(b"(")
        while not reader.accept(b")"):
            if returns:
                reader.space()
            return_option = reader.atom("a LIST return option").upper()
            try:
                returns.add(c.ListReturn(return_option))
            except ValueError:
                raise ParseError(f"unknown LIST return option {return_option[:30]}") from None
            if return_option == "STATUS":  # RFC 5819 §2
                reader.space()
                status_items = _status_items(reader)
    return c.List(
        reference=reference,
        patterns=patterns,
        selection=frozenset(selection),
        returns=frozenset(returns),
        status_items=status_items,
        is_extended=is_extended,
    )


def _lsub(reader: Reader, options: Options) -> c.Lsub:
    reader.space()
    reference = decode_name(reader.astring("a reference name"), options)
    reader.space()
    return c.Lsub(reference=reference, pattern=decode_name(reader.list_mailbox(), options))


def _status_items(reader: Reader) -> tuple[c.StatusItem, ...]:
    items: list[c.StatusItem] = []
    for item in reader.list_of("atom"):
        try:
            items.append(c.StatusItem(item.decode().upper()))
        except ValueError:
            raise ParseError(f"unknown STATUS item {item[:30]!r}") from None
    if not items:
        raise ParseError("STATUS needs at least one item")  # RFC 9051 §9: status-att *(SP status-att)
    return tuple(items)


def _status(reader: Reader, options: Options) -> c.Status:
    reader.space()
    name = mailbox(reader, options)
    reader.space()
    return c.Status(mailbox=name, items=_status_items(reader))


def _get_quota(reader: Reader, _options: Options) -> c.GetQuota:
    reader.space()
    return c.GetQuota(root=_utf8(reader.astring("a quota root"), "quota root"))


def _set_quota(reader: Reader, _options: Options) -> c.SetQuota:
    reader.space()  # RFC 9208 §6: "SETQUOTA" SP quota-root SP setquota-list
    root = _utf8(reader.astring("a quota root"), "quota root")
    reader.space()
    reader.expect(b"(", "a resource list")
    limits: list[tuple[str, int]] = []
    while not reader.accept(b")"):
        if limits:
            reader.space()
        name = reader.atom("a resource name").upper()
        reader.space()
        limits.append((name, reader.number(limit=MAX_NUMBER64)))
    return c.SetQuota(root=root, limits=tuple(limits))


def _uid_expunge(reader: Reader, _options: Options) -> c.Expunge:
    reader.space()
    return c.Expunge(uids=reader.sequence_set())


def _search(reader: Reader, _options: Options, *, is_uid: bool) -> c.Search:
    reader.space()
    returns: frozenset[c.SearchReturn] | None = None
    if reader.accept(b"RETURN "):  # RFC 4731 §3.1
        options: set[c.SearchReturn] = set()
        for option in reader.list_of("atom"):
            try:
                options.add(c.SearchReturn(option.decode().upper()))
            except ValueError:
                raise ParseError(f"unknown SEARCH return option {option[:30]!r}") from None
        returns = frozenset(options or {c.SearchReturn.ALL})  # RFC 4731 §3.1: RETURN () is RETURN (ALL)
        reader.space()
    charset: str | None = None
    if reader.accept(b"CHARSET "):
        charset = reader.astring("a charset").decode("ascii", "replace").upper()
        if charset not in SEARCH_CHARSETS:
            raise BadCharset(charset)
        reader.space()
    return c.Search(criteria=parse_criteria(reader), charset=charset, returns=returns, is_uid=is_uid)


def _store(reader: Reader, _options: Options, *, is_uid: bool) -> c.Store:
    reader.space()
    sequence_set = reader.sequence_set()
    reader.space()
    unchanged_since: int | None = None
    if reader.accept(b"("):  # RFC 7162 §3.1.3 store-modifier
        reader.expect(b"UNCHANGEDSINCE", "UNCHANGEDSINCE")
        reader.space()
        unchanged_since = reader.number(limit=MAX_NUMBER64)
        reader.expect(b")")
        reader.space()
    mode = (
        c.StoreMode.ADD if reader.accept(b"+") else c.StoreMode.REMOVE if reader.accept(b"-") else c.StoreMode.REPLACE
    )
    reader.expect(b"FLAGS", "FLAGS")
    is_silent = reader.accept(b".SILENT")
    reader.space()
    if reader.peek() == b"(":
        flags = flag_list(reader)
    else:  # RFC 9051 §9 store-att-flags: flag-list / (flag *(SP flag))
        flags_found = [flag(reader)]
        while reader.accept(b" "):
            flags_found.append(flag(reader))
        flags = tuple(flags_found)
    return c.Store(
        sequence_set=sequence_set,
        mode=mode,
        flags=flags,
        is_silent=is_silent,
        unchanged_since=unchanged_since,
        is_uid=is_uid,
    )


def _copy(reader: Reader, options: Options, *, is_move: bool, is_uid: bool) -> c.Copy:
    reader.space()
    sequence_set = reader.sequence_set()
    reader.space()
    return c.Copy(sequence_set=sequence_set, mailbox=mailbox(reader, options), is_move=is_move, is_uid=is_uid)


_Parser = Callable[[Reader, Options], c.CommandType]
_PARSERS: dict[str, _Parser] = {
    "CAPABILITY": _no_arguments(c.Capability),
    "NOOP": _no_arguments(c.Noop),
    "LOGOUT": _no_arguments(c.Logout),
    "ID": _id,
    "STARTTLS": _no_arguments(c.StartTls),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": lambda reader, options: _select(reader, options, is_read_only=False),
    "EXAMINE": lambda reader, options: _select(reader, options, is_read_only=True),
    "CREATE": _create,
    "DELETE": _one_mailbox(lambda name: c.Delete(mailbox=name)),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(lambda name: c.Subscribe(mailbox=name)),
    "UNSUBSCRIBE": _one_mailbox(lambda name: c.Unsubscribe(mailbox=name)),
    "LIST": _list,
    "LSUB": _lsub,
    "NAMESPACE": _no_arguments(c.Namespace),
    "STATUS": _status,
    "IDLE": _no_arguments(c.Idle),
    "GETQUOTA": _get_quota,
    "GETQUOTAROOT": _one_mailbox(lambda name: c.GetQuotaRoot(mailbox=name)),
    "SETQUOTA": _set_quota,
    "CHECK": _no_arguments(c.Check),
    "CLOSE": _no_arguments(c.Close),
    "UNSELECT": _no_arguments(c.Unselect),
    "EXPUNGE": _no_arguments(c.Expunge),
    "UID EXPUNGE": _uid_expunge,
    "SEARCH": lambda reader, options: _search(reader, options, is_uid=False),
    "UID SEARCH": lambda reader, options: _search(reader, options, is_uid=True),
    "FETCH": lambda reader, options: parse_fetch(reader, is_uid=False, is_qresync=options.is_qresync),
    "UID FETCH": lambda reader, options: parse_fetch(reader, is_uid=True, is_qresync=options.is_qresync),
    "STORE": lambda reader, options: _store(reader, options, is_uid=False),
    "UID STORE": lambda reader, options: _store(reader, options, is_uid=True),
    "COPY": lambda reader, options: _copy(reader, options, is_move=False, is_uid=False),
    "UID COPY": lambda reader, options: _copy(reader, options, is_move=False, is_uid=True),
    "MOVE": lambda reader, options: _copy(reader, options, is_move=True, is_uid=False),
    "UID MOVE": lambda reader, options: _copy(reader, options, is_move=True, is_uid=True),
}
COMMAND_NAMES = frozenset(_PARSERS) | {"APPEND"}
