"""Running a parsed script on one message: control flow, variables, actions and the implicit keep."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pochta.filters.sieve import matching, vacation
from pochta.filters.sieve.errors import SieveError
from pochta.filters.sieve.message import Headers, mailbox_address
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
from pochta.filters.sieve.parser import Node, Script, Value, parse
from pochta.filters.sieve.values import TEST_VALUES, join_flags, split_flags, usable_flags
from pochta.mail import mime
from pochta.mail.address import AddressError

MAX_INCLUDE_DEPTH = 10  # RFC 6609 §3.2 leaves it to us; recursion is an error
MAX_VARIABLE_LENGTH = 64 * 1024  # longer values are cut (RFC 5229 §6 allows a limit)
MAX_MATCH_VARIABLES = 10  # RFC 5229 §3.2: ${0}..${9} at least
DUPLICATE_SECONDS = 7 * 86400  # RFC 7352 §3.4: the default period is the implementation's
VACATION_DAYS = 7  # RFC 5230 §4.1
PROTECTED_HEADERS = frozenset({"received", "auto-submitted"})  # RFC 5293 §6: never edited
_VARIABLE = re.compile(r"\$\{([0-9]+|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_WILDCARDS = re.compile(r"([*?\\])")


class _Stop(Exception):
    """stop, or return from the main script."""


class _Return(Exception):
    """return from an included script (RFC 6609 §3.3)."""


@dataclass(slots=True)
class Frame:
    """One script being run: the main one or an included one, each with its own variables."""

    script: Script
    name: str
    variables: dict[str, str] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    match: list[str] = field(default_factory=list)

    @property
    def uses_variables(self) -> bool:
        return "variables" in self.script.extensions


def run(script: Script, message: MessageView, env: Environment) -> Result:
    """Run ``script`` on ``message``. A run-time error keeps the message (implicit keep) and is reported
    in ``Result.errors``; it never raises for anything the script or the message does."""
    runner = Runner(message, env)
    try:
        runner.run_script(Frame(script=script, name=""))
    except _Stop:
        pass
    except SieveError as error:
        return Result(actions=(Keep(),), implicit_keep=True, errors=(str(error),))
    except RecursionError:  # deep blocks inside deep includes: bounded, but reported, not raised
        return Result(actions=(Keep(),), implicit_keep=True, errors=("script nested too deeply",))
    return runner.result()


class Runner:
    def __init__(self, message: MessageView, env: Environment) -> None:
        self.message = message
        self.env = env
        self.root = mime.parse(message.content)  # once: the header block's end here, the parts for body
        self.headers = Headers(message.content[: self.root.body_start])
        self.actions: list[Action] = []
        self.is_keep_cancelled = False
        self.flags: list[str] = []  # the imap4flags internal variable (RFC 5232 §3)
        self.globals: dict[str, str] = {}
        self.included: set[tuple[str, bool]] = set()
        self.depth = 0
        self.has_vacation = False
        self.has_reject = False
        self.redirects = 0
        self.duplicates: list[DuplicateId] = []
        self.body_cache: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    # --- results ----------------------------------------------------------------------------------

    def result(self) -> Result:
        actions = _merged(self.actions)
        implicit = not self.is_keep_cancelled
        if implicit:
            actions = _merged([*actions, Keep(flags=tuple(self.flags))])
        delivers = any(isinstance(a, Keep | FileInto | Redirect | Reject) for a in actions)
        actions = [a for a in actions if not isinstance(a, Discard) or not delivers]
        return Result(
            actions=tuple(actions),
            implicit_keep=implicit,
            implicit_keep_flags=tuple(self.flags) if implicit else (),
            edited_header=self.headers.block() if self.headers.is_edited else None,
            duplicate_ids=tuple(self.duplicates),
        )

    def _add(self, node: Node, action: Action) -> None:
        if len(self.actions) >= self.env.max_actions:
            raise _error(node, f"more than {self.env.max_actions} actions")
        if self.has_reject and not isinstance(action, Discard):
            raise _error(node, f"{node.name} cannot follow reject")  # RFC 5429 §2.1
        self.actions.append(action)

    # --- control ----------------------------------------------------------------------------------

    def run_script(self, frame: Frame) -> None:
        self._block(frame, frame.script.commands)

    def _block(self, frame: Frame, commands: Sequence[Node]) -> None:
        is_chain_done = True
        for node in commands:
            name = node.name
            if name == "if":
                is_chain_done = False
            if name in ("if", "elsif", "else"):
                if is_chain_done:
                    continue
                if name == "else" or self._test(frame, node.tests[0]):
                    is_chain_done = True
                    self._block(frame, node.block)
                continue
            is_chain_done = True
            self._command(frame, node)

    def _command(self, frame: Frame, node: Node) -> None:
        handler = _COMMANDS.get(node.name)
        if handler is not None:
            handler(self, frame, node)

    # --- strings ----------------------------------------------------------------------------------

    def expand(self, frame: Frame, text: str) -> str:
        """RFC 5229 §3: ${name} and ${N} replaced, once, left to right; unknown names are empty."""
        if not frame.uses_variables or "${" not in text:
            return text

        def value(match: re.Match[str]) -> str:
            name = match.group(1).lower()
            if name.isdigit():
                index = int(name)
                return frame.match[index] if index < len(frame.match) else ""
            if "." in name:
                namespace, _, rest = name.partition(".")
                if namespace == "global" and "include" in frame.script.extensions:
                    return self.globals.get(rest, "")
                return match.group(0)  # an unknown namespace stays as written
            return self.variables_of(frame, name).get(name, "")

        return _VARIABLE.sub(value, text)

    def variables_of(self, frame: Frame, name: str) -> dict[str, str]:
        return self.globals if name in frame.globals else frame.variables

    def string(self, frame: Frame, value: Value) -> str:
        return self.expand(frame, value if isinstance(value, str) else str(value))

    def strings(self, frame: Frame, value: Value) -> list[str]:
        items = value if isinstance(value, tuple) else (str(value),)
        return [self.expand(frame, item) for item in items]

    def set_variable(self, frame: Frame, name: str, value: str) -> None:
        name = name.lower()
        if name.startswith("global."):
            self.globals[name[7:]] = value[:MAX_VARIABLE_LENGTH]
        else:
            self.variables_of(frame, name)[name] = value[:MAX_VARIABLE_LENGTH]

    # --- tests ------------------------------------------------------------------------------------

    def _test(self, frame: Frame, node: Node) -> bool:
        name = node.name
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self._test(frame, node.tests[0])
        if name == "allof":
            return all(self._test(frame, test) for test in node.tests)
        if name == "anyof":
            return any(self._test(frame, test) for test in node.tests)
        if name == "size":
            limit = _number(node.args[0])
            return self.message.size > limit if "over" in node.tags else self.message.size < limit
        if name == "exists":
            return all(self.headers.has(header) for header in self.strings(frame, node.args[0]))
        if name == "mailboxexists":
            return all(self.env.mailbox_exists(box) for box in self.strings(frame, node.args[0]))
        if name == "specialuse_exists":  # RFC 8579 §3
            box = self.string(frame, node.args[0]) if len(node.args) == 2 else None
            uses = self.strings(frame, node.args[-1])
            for use in uses:
                _check_special_use(node, use)
            return all(self.env.special_use_exists(box, use) for use in uses)
        if name == "duplicate":
            return self._duplicate(frame, node)
        values = TEST_VALUES[name](self, frame, node)
        if values is None:
            return False
        return self.matches(frame, node, values, self.strings(frame, node.args[-1]))

    def matches(self, frame: Frame, node: Node, values: Sequence[str], keys: Sequence[str]) -> bool:
        how = _match_type(node)
        try:
            is_match, captures = matching.match(values, keys, how)
        except SieveError as error:
            raise _error(node, error.message) from None
        if is_match and captures is not None and frame.uses_variables:
            frame.match = captures[:MAX_MATCH_VARIABLES]
        return is_match

    def header_fields(self, frame: Frame, node: Node, names: Sequence[str]) -> list[bytes]:
        """The raw values of the named fields, names in the order given; with :index only the n-th of
        them all, counted from the end with :last (RFC 5260 §6, as Dovecot counts over several names)."""
        out = [value for name in names for value in self.headers.raw(name)]
        index = node.tags.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            if index > len(out):
                return []
            return [out[-index] if "last" in node.tags else out[index - 1]]
        return out

    def _duplicate(self, frame: Frame, node: Node) -> bool:
        """RFC 7352 §3: the id is the Message-ID, another header or :uniqueid, per :handle."""
        if "uniqueid" in node.tags:
            unique = self.string(frame, node.tags["uniqueid"])
        else:
            header = self.string(frame, node.tags["header"]) if "header" in node.tags else "message-id"
            values = self.headers.values(header)
            if not values:
                return False  # RFC 7352 §3.1: no id, no duplicate
            unique = values[0].strip()
        handle = self.string(frame, node.tags["handle"]) if "handle" in node.tags else ""
        identity = hashlib.sha256(f"{handle}\0{unique}".encode()).hexdigest()
        seconds = node.tags.get("seconds", DUPLICATE_SECONDS)
        assert isinstance(seconds, int)
        is_duplicate = self.env.is_duplicate(identity, seconds)
        mark = DuplicateId(id=identity, seconds=seconds, is_last="last" in node.tags)
        if mark not in self.duplicates:
            self.duplicates.append(mark)
        return is_duplicate

    # --- include (RFC 6609) -----------------------------------------------------------------------

    def include(self, frame: Frame, node: Node) -> None:
        name = self.string(frame, node.args[0])
        is_global = "global" in node.tags
        key = (name, is_global)
        if "once" in node.tags and key in self.included:
            return
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise _error(node, f"include nested more than {MAX_INCLUDE_DEPTH} deep")
        source = self.env.include(name, is_global)
        if source is None:
            if "optional" in node.tags:
                return
            raise _error(node, f'included script "{name}" does not exist')
        try:
            script = parse(source, extensions=self.env.extensions)
        except SieveError as error:
            raise _error(node, f'included script "{name}": {error}') from None
        self.included.add(key)
        self.depth += 1
        try:
            self.run_script(Frame(script=script, name=name))
        except _Return:
            pass
        finally:
            self.depth -= 1


_SPECIAL_USE = re.compile(r"\\[A-Za-z][A-Za-z0-9]*")  # RFC 6154 §2: a backslash and an atom


def _check_special_use(node: Node, use: str) -> None:
    if not _SPECIAL_USE.fullmatch(use):
        raise _error(node, f'invalid special-use flag "{use}"')


def _number(value: Value) -> int:
    assert isinstance(value, int)
    return value


def _error(node: Node, message: str) -> SieveError:
    return SieveError(node.line, node.column, message)


def _match_type(node: Node) -> matching.MatchType:
    comparator = node.tags.get("comparator", "i;ascii-casemap")
    assert isinstance(comparator, str)
    for kind in ("is", "contains", "matches", "regex"):
        if kind in node.tags:
            return matching.MatchType(kind, "", comparator)
    for kind in ("value", "count"):
        operator = node.tags.get(kind)
        if isinstance(operator, str):
            return matching.MatchType(kind, operator.lower(), comparator)
    return matching.MatchType("is", "", comparator)


def _merged(actions: Sequence[Action]) -> list[Action]:
    """RFC 5228 §2.10.3: the same fileinto/keep or redirect twice happens once (flags are joined)."""
    out: list[Action] = []
    for action in actions:
        target = _target(action)
        if target is None:
            if isinstance(action, Discard) and any(isinstance(a, Discard) for a in out):
                continue
            out.append(action)
            continue
        for position, earlier in enumerate(out):
            if _target(earlier) == target:
                out[position] = _join(earlier, action)
                break
        else:
            out.append(action)
    return out


def _target(action: Action) -> tuple[str, str] | None:
    if isinstance(action, Keep):
        return ("store", _mailbox_key(action.mailbox))
    if isinstance(action, FileInto):
        return ("store", _mailbox_key(action.mailbox))
    if isinstance(action, Redirect):
        return ("redirect", action.address.lower())
    return None


def _mailbox_key(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name


def _join(earlier: Action, later: Action) -> Action:
    flags = join_flags(getattr(earlier, "flags", ()), getattr(later, "flags", ()))
    if isinstance(earlier, Keep):
        return Keep(flags=flags, mailbox=earlier.mailbox)
    if isinstance(earlier, FileInto):
        create = earlier.create or (isinstance(later, FileInto) and later.create)
        is_copy = earlier.copy and (not isinstance(later, FileInto) or later.copy)
        special_use = earlier.special_use or (later.special_use if isinstance(later, FileInto) else None)
        return FileInto(mailbox=earlier.mailbox, flags=flags, create=create, copy=is_copy, special_use=special_use)
    if isinstance(earlier, Redirect) and isinstance(later, Redirect):
        return Redirect(address=earlier.address, copy=earlier.copy and later.copy)
    return earlier


# --- commands --------------------------------------------------------------------------------------


def _stop(runner: Runner, frame: Frame, node: Node) -> None:
    raise _Stop


def _return(runner: Runner, frame: Frame, node: Node) -> None:
    raise _Return if runner.depth else _Stop


def _flags_of(runner: Runner, frame: Frame, node: Node) -> tuple[str, ...]:
    if "flags" in node.tags:
        return tuple(usable_flags(runner.strings(frame, node.tags["flags"])))
    return tuple(runner.flags)


def _keep(runner: Runner, frame: Frame, node: Node) -> None:
    runner._add(node, Keep(flags=_flags_of(runner, frame, node)))
    runner.is_keep_cancelled = True


def _discard(runner: Runner, frame: Frame, node: Node) -> None:
    runner._add(node, Discard())
    runner.is_keep_cancelled = True


def _fileinto(runner: Runner, frame: Frame, node: Node) -> None:
    mailbox = runner.string(frame, node.args[0])
    if not mailbox or any(ord(char) < 0x20 for char in mailbox):
        raise _error(node, f'invalid mailbox name "{mailbox}"')
    is_copy = "copy" in node.tags
    flags = _flags_of(runner, frame, node)
    special_use = runner.string(frame, node.tags["specialuse"]) if "specialuse" in node.tags else None
    if special_use is not None:
        _check_special_use(node, special_use)
    runner._add(
        node,
        FileInto(mailbox=mailbox, flags=flags, create="create" in node.tags, copy=is_copy, special_use=special_use),
    )
    if not is_copy:
        runner.is_keep_cancelled = True


def _redirect(runner: Runner, frame: Frame, node: Node) -> None:
    text = runner.string(frame, node.args[0])
    try:
        address = mailbox_address(text)
    except AddressError as error:
        raise _error(node, f'redirect to an invalid address "{text}": {error}') from None
    runner.redirects += 1
    if runner.redirects > runner.env.max_redirects:
        raise _error(node, f"more than {runner.env.max_redirects} redirects")
    is_copy = "copy" in node.tags
    runner._add(node, Redirect(address=address, copy=is_copy))
    if not is_copy:
        runner.is_keep_cancelled = True


def _reject(runner: Runner, frame: Frame, node: Node) -> None:
    """RFC 5429 §2.1-2.2: one reject, never with keep, fileinto, redirect or vacation."""
    if runner.has_reject:
        raise _error(node, "only one reject per script")
    if any(isinstance(action, Keep | FileInto | Redirect | Vacation) for action in runner.actions):
        raise _error(node, f"{node.name} cannot be combined with delivering or replying actions")
    runner._add(node, Reject(reason=runner.string(frame, node.args[0]), is_extended=node.name == "ereject"))
    runner.has_reject = True
    runner.is_keep_cancelled = True


def _vacation(runner: Runner, frame: Frame, node: Node) -> None:
    if runner.has_vacation:
        raise _error(node, "only one vacation per script")  # RFC 5230 §4.7
    runner.has_vacation = True
    if runner.has_reject:
        raise _error(node, "vacation cannot follow reject")
    tags = node.tags
    reason = runner.string(frame, node.args[0])
    subject = runner.string(frame, tags["subject"]) if "subject" in tags else None
    from_ = runner.string(frame, tags["from"]) if "from" in tags else None
    from_address = None
    if from_ is not None:
        try:
            from_address = mailbox_address(from_)  # RFC 5230 §4.4: a valid address, a display name allowed
        except AddressError as error:
            raise _error(node, f'vacation :from is not an address "{from_}": {error}') from None
    listed = tuple(runner.strings(frame, tags["addresses"])) if "addresses" in tags else ()
    is_mime = "mime" in tags
    # RFC 6131 §2: ":seconds 0" answers every message; RFC 5230 §4.1: at least a day otherwise
    seconds = (
        _number(tags["seconds"]) if "seconds" in tags else max(1, _number(tags.get("days", VACATION_DAYS))) * 86400
    )
    handle = (
        runner.string(frame, tags["handle"])
        if "handle" in tags
        else vacation.default_handle(reason=reason, subject=subject, from_=from_, is_mime=is_mime)
    )
    env, message = runner.env, runner.message
    own = {env.user, *env.my_addresses, *listed}
    if from_address:
        own.add(from_address)
    sender = message.envelope_from
    if vacation.skip_reason(runner.headers, sender=sender, recipient=message.envelope_to, own=own) is not None:
        return
    if env.vacation_seen(sender, handle, seconds):
        return
    message_ids = runner.headers.values("message-id")
    references = runner.headers.values("references")
    in_reply_to = message_ids[0].strip() if message_ids else ""
    runner._add(
        node,
        Vacation(
            to=sender,
            subject=subject if subject is not None else vacation.default_subject(runner.headers),
            body=reason,
            from_=from_ or env.user,
            handle=handle,
            seconds=seconds,
            mime=is_mime,
            addresses=listed,
            in_reply_to=in_reply_to,
            references=" ".join(part for part in (references[0].strip() if references else "", in_reply_to) if part),
        ),
    )


def _flag_command(runner: Runner, frame: Frame, node: Node) -> None:
    """setflag/addflag/removeflag (RFC 5232 §4) on the internal variable or a named one."""
    new = usable_flags(runner.strings(frame, node.args[-1]))
    if len(node.args) == 2:
        name = runner.string(frame, node.args[0]).lower()
        current = split_flags([runner.variables_of(frame, name).get(name, "")])
    else:
        current = list(runner.flags)
    if node.name == "setflag":
        result = new
    elif node.name == "addflag":
        result = list(join_flags(current, new))
    else:
        removed = {flag.lower() for flag in new}
        result = [flag for flag in current if flag.lower() not in removed]
    if len(node.args) == 2:
        runner.set_variable(frame, runner.string(frame, node.args[0]), " ".join(result))
    else:
        runner.flags = result


def _set(runner: Runner, frame: Frame, node: Node) -> None:
    """RFC 5229 §4: set with modifiers, applied from the highest precedence down."""
    value = runner.string(frame, node.args[1])
    tags = node.tags
    if "lower" in tags:
        value = value.lower()
    if "upper" in tags:
        value = value.upper()
    if "lowerfirst" in tags:
        value = value[:1].lower() + value[1:]
    if "upperfirst" in tags:
        value = value[:1].upper() + value[1:]
    if "quotewildcard" in tags:
        value = _WILDCARDS.sub(r"\\\1", value)
    if "quoteregex" in tags:
        value = re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", value)
    if "length" in tags:
        value = str(len(value))
    runner.set_variable(frame, str(node.args[0]), value)


def _global(runner: Runner, frame: Frame, node: Node) -> None:
    for name in runner.strings(frame, node.args[0]):
        frame.globals.add(name.lower())


def _addheader(runner: Runner, frame: Frame, node: Node) -> None:
    name = runner.string(frame, node.args[0])
    if name.lower() in PROTECTED_HEADERS:
        return
    if not re.fullmatch(r"[!-9;-~]+", name):
        raise _error(node, f'invalid header name "{name}"')
    runner.headers.add(name, runner.string(frame, node.args[1]), is_last="last" in node.tags)


def _deleteheader(runner: Runner, frame: Frame, node: Node) -> None:
    name = runner.string(frame, node.args[0])
    if name.lower() in PROTECTED_HEADERS:
        return
    patterns = runner.strings(frame, node.args[1]) if len(node.args) == 2 else None
    index = node.tags.get("index", 0)
    assert isinstance(index, int)

    def keep(value: str) -> bool:
        return patterns is not None and not runner.matches(frame, node, [value], patterns)

    runner.headers.delete(name, index=index, is_last="last" in node.tags, keep=keep)


def _include(runner: Runner, frame: Frame, node: Node) -> None:
    runner.include(frame, node)


_COMMANDS: dict[str, Callable[[Runner, Frame, Node], None]] = {
    "stop": _stop,
    "return": _return,
    "keep": _keep,
    "discard": _discard,
    "fileinto": _fileinto,
    "redirect": _redirect,
    "reject": _reject,
    "ereject": _reject,
    "vacation": _vacation,
    "setflag": _flag_command,
    "addflag": _flag_command,
    "removeflag": _flag_command,
    "set": _set,
    "global": _global,
    "addheader": _addheader,
    "deleteheader": _deleteheader,
    "include": _include,
}
