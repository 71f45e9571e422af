"""Sieve source text into a checked :class:`Script` (RFC 5228 §8.2 grammar, §3.2 require).

Every call is checked against :mod:`pochta.filters.sieve.grammar` here, as are the extensions it
needs, so a script that parses runs without syntax surprises. Errors carry the line and column of
the token at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import regex

from pochta.filters.sieve import grammar, matching
from pochta.filters.sieve.errors import SieveError
from pochta.filters.sieve.lexer import Kind, Token, tokens
from pochta.filters.sieve.message import mailbox_address
from pochta.mail.address import AddressError

MAX_NESTING = 64  # blocks and tests inside each other; deeper is an error, never a RecursionError

Value = str | int | bool | tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One checked command or test: tagged arguments by name (without ':'; a flag is True), positional
    arguments (str, int or a tuple of strings), nested tests and, for if/elsif/else, the block."""

    name: str
    tags: Mapping[str, Value]
    args: tuple[Value, ...]
    tests: tuple[Node, ...] = ()
    block: tuple[Node, ...] = ()
    line: int
    column: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """A parsed script: its commands, the extensions it requires, and warnings ("line L:C: ...") about
    things that are not errors but never do what the author meant (ManageSieve's OK (WARNINGS))."""

    commands: tuple[Node, ...]
    extensions: frozenset[str]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Argument:
    kind: str  # an ArgumentKind, or "tag" for a tagged argument
    value: Value
    token: Token


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
_SPECIAL_USE = re.compile(r"\\[A-Za-z][A-Za-z0-9]*")  # RFC 6154 §2
_ZONE = re.compile(r"[+-][0-9]{4}")
_ENCODED = re.compile(r"\$\{(hex|unicode):([^${}]*)\}", re.IGNORECASE)
_HEX_RUN = re.compile(r"[ \t\r\n]*(?:[0-9A-Fa-f]+[ \t\r\n]*)*")


def parse(source: str, *, extensions: frozenset[str] | None = None) -> Script:
    """Parse and check ``source``; ``extensions`` limits what ``require`` may ask for (default: all)."""
    parser = _Parser(source, grammar.SUPPORTED_EXTENSIONS if extensions is None else extensions)
    return parser.script()


class _Parser:
    def __init__(self, source: str, enabled: frozenset[str]) -> None:
        self._tokens: Iterator[Token] = tokens(source)
        self._token = next(self._tokens)
        self._enabled = enabled | grammar.IMPLICIT_EXTENSIONS
        self._required: set[str] = set()
        self._warnings: list[str] = []
        self._depth = 0

    # --- tokens -----------------------------------------------------------------------------------

    def _next(self) -> Token:
        token = self._token
        if token.kind is not Kind.END:
            self._token = next(self._tokens)
        return token

    def _is(self, kind: Kind, text: str | None = None) -> bool:
        return self._token.kind is kind and (text is None or self._token.text == text)

    def _expect(self, text: str, what: str) -> Token:
        if not self._is(Kind.SPECIAL, text):
            raise self._error(self._token, f"expected {what}, found {_describe(self._token)}")
        return self._next()

    def _warn(self, token: Token, message: str) -> None:
        self._warnings.append(str(SieveError(token.line, token.column, message)))

    @staticmethod
    def _error(token: Token, message: str) -> SieveError:
        return SieveError(token.line, token.column, message)

    # --- grammar ----------------------------------------------------------------------------------

    def script(self) -> Script:
        commands = self._commands(top=True)
        if not self._is(Kind.END):
            raise self._error(self._token, f"unexpected {_describe(self._token)}")
        return Script(commands=commands, extensions=frozenset(self._required), warnings=tuple(self._warnings))

    def _commands(self, *, top: bool) -> tuple[Node, ...]:
        out: list[Node] = []
        while self._is(Kind.IDENTIFIER):
            token = self._token
            node = self._call(is_test=False)
            if node.name == "require":
                if not top or any(previous.name != "require" for previous in out):
                    raise self._error(token, "require must come before any other command")
            elif node.name in ("elsif", "else") and (not out or out[-1].name not in ("if", "elsif")):
                raise self._error(token, f"{node.name} without a preceding if")
            out.append(node)
        return tuple(out)

    def _call(self, *, is_test: bool) -> Node:
        token = self._next()
        if token.kind is not Kind.IDENTIFIER:
            raise self._error(token, f"expected a {'test' if is_test else 'command'}, found {_describe(token)}")
        signature = grammar.SIGNATURES.get(token.text)
        what = "test" if is_test else "command"
        if signature is None or signature.is_test != is_test:
            raise self._error(token, f"unknown {what} '{token.text}'")
        if signature.extension is not None:
            self._need(signature.extension, token, f"{what} '{token.text}'")
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise self._error(token, f"nested more than {MAX_NESTING} deep")
        arguments = self._arguments()
        tests: tuple[Node, ...] = ()
        if self._is(Kind.SPECIAL, "("):
            open_token = self._next()
            if signature.tests != "list":
                raise self._error(open_token, f"{what} '{token.text}' takes no test list")
            found = [self._call(is_test=True)]
            while self._is(Kind.SPECIAL, ","):
                self._next()
                found.append(self._call(is_test=True))
            self._expect(")", "',' or ')' in the test list")
            tests = tuple(found)
        elif self._is(Kind.IDENTIFIER) and signature.tests == "one":
            tests = (self._call(is_test=True),)
        elif signature.tests != "none":
            wanted = "a test" if signature.tests == "one" else "a test list in parentheses"
            raise self._error(self._token, f"{what} '{token.text}' needs {wanted}")
        block: tuple[Node, ...] = ()
        if not is_test:
            if signature.block:
                self._expect("{", "'{'")
                block = self._commands(top=False)
                self._expect("}", "'}' or a command")
            else:
                self._expect(";", "';'")
        self._depth -= 1
        tags, args = self._match(token, signature, arguments)
        node = Node(
            name=token.text, tags=tags, args=args, tests=tests, block=block, line=token.line, column=token.column
        )
        self._check(node, token)
        return node

    def _arguments(self) -> list[_Argument]:
        out: list[_Argument] = []
        while True:
            token = self._token
            if token.kind is Kind.TAG:
                out.append(_Argument("tag", self._next().text, token))
            elif token.kind is Kind.NUMBER:
                out.append(_Argument("number", self._next().number, token))
            elif token.kind is Kind.STRING:
                out.append(_Argument("string", self._string(self._next()), token))
            elif self._is(Kind.SPECIAL, "["):
                self._next()
                values = [self._string(self._expect_string())]
                while self._is(Kind.SPECIAL, ","):
                    self._next()
                    values.append(self._string(self._expect_string()))
                self._expect("]", "',' or ']' in the string list")
                out.append(_Argument("strings", tuple(values), token))
            else:
                return out

    def _expect_string(self) -> Token:
        if not self._is(Kind.STRING):
            raise self._error(self._token, f"expected a string, found {_describe(self._token)}")
        return self._next()

    def _string(self, token: Token) -> str:
        if "encoded-character" in self._required and "${" in token.text:
            return _decode_encoded(token)
        return token.text

    # --- checks -----------------------------------------------------------------------------------

    def _need(self, extension: str, token: Token, what: str) -> None:
        if extension not in self._required and not (
            extension in grammar.IMPLICIT_EXTENSIONS
            or any(extension in grammar.IMPLIES.get(r, ()) for r in self._required)
        ):
            raise self._error(token, f'{what} needs require "{extension}"')

    def _match(
        self, name: Token, signature: grammar.Signature, arguments: list[_Argument]
    ) -> tuple[dict[str, Value], tuple[Value, ...]]:
        tags: dict[str, Value] = {}
        groups: dict[str, str] = {}
        index = 0
        while index < len(arguments) and arguments[index].kind == "tag":
            argument = arguments[index]
            tag_name = str(argument.value)
            spec = signature.tags.get(tag_name)
            if spec is None:
                raise self._error(argument.token, f"'{name.text}' has no tagged argument :{tag_name}")
            if spec.extension is not None:
                self._need(spec.extension, argument.token, f":{tag_name}")
            if tag_name in tags:
                raise self._error(argument.token, f":{tag_name} given twice")
            if spec.group is not None:
                if spec.group in groups:
                    raise self._error(argument.token, f":{tag_name} cannot be combined with :{groups[spec.group]}")
                groups[spec.group] = tag_name
            index += 1
            if spec.kind == "flag":
                tags[tag_name] = True
                continue
            if index >= len(arguments):
                raise self._error(argument.token, f":{tag_name} needs a {_kind_name(spec.kind)} argument")
            tags[tag_name] = self._convert(arguments[index], spec.kind, f":{tag_name}")
            index += 1
        rest = arguments[index:]
        for argument in rest:
            if argument.kind == "tag":
                raise self._error(argument.token, f"tagged argument :{argument.value} must come before the others")
        for group in signature.required_groups:
            if group not in groups:
                choices = " or ".join(f":{t}" for t, spec in signature.tags.items() if spec.group == group)
                raise self._error(name, f"'{name.text}' needs {choices}")
        for variant in signature.variants:
            if len(variant) == len(rest) and all(
                _fits(arg.kind, kind) for arg, kind in zip(rest, variant, strict=True)
            ):
                return tags, tuple(
                    self._convert(arg, kind, "argument") for arg, kind in zip(rest, variant, strict=True)
                )
        expected = " or ".join(", ".join(_kind_name(k) for k in v) or "no arguments" for v in signature.variants)
        at = rest[0].token if rest else self._token
        raise self._error(at if rest else name, f"'{name.text}' takes {expected}")

    def _convert(self, argument: _Argument, kind: grammar.ArgumentKind, what: str) -> Value:
        if not _fits(argument.kind, kind):
            raise self._error(argument.token, f"{what} needs a {_kind_name(kind)}, found a {_kind_name(argument.kind)}")
        if kind == "strings" and isinstance(argument.value, str):
            return (argument.value,)
        return argument.value

    def _literal(self, value: str) -> bool:
        """Whether a string is known at parse time (no variable to expand in it)."""
        return not ("variables" in self._required and "${" in value)

    def _check(self, node: Node, token: Token) -> None:
        """Rules the signature table cannot say: literal values that must be valid."""
        self._check_tags(node, token)
        self._check_arguments(node, token)

    def _check_tags(self, node: Node, token: Token) -> None:
        literal = self._literal
        comparator = node.tags.get("comparator")
        if isinstance(comparator, str):
            if comparator not in grammar.COMPARATORS:
                raise self._error(token, f'unknown comparator "{comparator}"')
            self._need(f"comparator-{comparator}", token, f'comparator "{comparator}"')
            if comparator == "i;ascii-numeric" and any(t in node.tags for t in ("contains", "matches", "regex")):
                raise self._error(token, "comparator i;ascii-numeric supports only :is, :value and :count")
        for relational in ("value", "count"):
            operator = node.tags.get(relational)
            if isinstance(operator, str) and operator.lower() not in grammar.RELATIONAL_OPERATORS:
                raise self._error(token, f'unknown relational operator "{operator}"')
        if "last" in node.tags and "index" not in node.tags and node.name not in ("duplicate", "addheader"):
            raise self._error(token, ":last needs :index")
        if node.tags.get("index") == 0:
            raise self._error(token, ":index counts from 1")
        if "regex" in node.tags:
            keys = node.args[-1]
            for key in keys if isinstance(keys, tuple) else (str(keys),):
                if literal(key):
                    _compile_regex(key, token)
        zone = node.tags.get("zone")
        if isinstance(zone, str) and literal(zone) and not _ZONE.fullmatch(zone):
            self._warn(token, f'zone "{zone}" is not +hhmm or -hhmm: the default zone is used')

    def _check_arguments(self, node: Node, token: Token) -> None:
        literal = self._literal
        name = node.name
        if name == "require":
            for extension in _strings(node.args[0]):
                if extension not in self._enabled:
                    raise self._error(token, f'unsupported extension "{extension}"')
                self._required.add(extension)
        elif name in ("header", "exists", "address") or (name == "date" and node.args):
            for field_name in _strings(node.args[0]):
                if literal(field_name) and not _FIELD_NAME.fullmatch(field_name):
                    self._warn(token, f'invalid header name "{field_name}": it never matches')
        elif name == "envelope":
            for part in _strings(node.args[0]):
                if literal(part) and part.lower() not in ("from", "to"):
                    raise self._error(token, f'unknown envelope part "{part}"')
        elif name in ("addheader", "deleteheader"):
            field_name = str(node.args[0])
            if literal(field_name) and not _FIELD_NAME.fullmatch(field_name):
                raise self._error(token, f'invalid header name "{field_name}"')
        elif name in ("set", "global") or (
            name in ("setflag", "addflag", "removeflag", "hasflag") and len(node.args) == 2
        ):
            names = _strings(node.args[0])
            if name == "hasflag" or name in ("setflag", "addflag", "removeflag"):
                self._need("variables", token, f"the variable list of '{name}'")
            for variable in names:
                if not _VARIABLE_NAME.fullmatch(variable) or (name != "global" and variable.isdigit()):
                    raise self._error(token, f'invalid variable name "{variable}"')
        elif name == "redirect" or (name == "vacation" and isinstance(node.tags.get("from"), str)):
            address = str(node.args[0] if name == "redirect" else node.tags["from"])
            if literal(address):
                try:
                    mailbox_address(address)
                except AddressError as error:
                    what = (
                        "redirect to an invalid address" if name == "redirect" else "vacation :from is not an address"
                    )
                    raise self._error(token, f'{what} "{address}": {error}') from None
        elif name == "include":
            script_name = str(node.args[0])
            if literal(script_name) and (not script_name or "/" in script_name or script_name.startswith(".")):
                raise self._error(token, f'invalid script name "{script_name}"')
        uses = node.args[-1] if name == "specialuse_exists" else node.tags.get("specialuse")
        for use in _strings(uses) if isinstance(uses, str | tuple) else ():
            if literal(use) and not _SPECIAL_USE.fullmatch(use):
                raise self._error(token, f'invalid special-use flag "{use}"')
        flags = node.args[-1] if name in ("setflag", "addflag", "removeflag") else node.tags.get("flags")
        for item in _strings(flags) if isinstance(flags, str | tuple) else ():
            for flag in item.split() if literal(item) else ():
                if not grammar.is_valid_flag(flag):
                    self._warn(token, f'"{flag}" is not an IMAP flag: it is ignored')
        if name in ("date", "currentdate"):
            part = str(node.args[-2])
            if literal(part) and part.lower() not in grammar.DATE_PARTS:
                self._warn(token, f'unknown date part "{part}": the test is always false')


def _strings(value: Value) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (str(value),)


def _fits(found: str, wanted: str) -> bool:
    return found == wanted or (found == "string" and wanted == "strings")


def _kind_name(kind: str) -> str:
    return {"strings": "string list", "flag": "nothing", "tag": "tagged argument"}.get(kind, kind)


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "end of script"
    if token.kind is Kind.STRING:
        return "a string"
    if token.kind is Kind.TAG:
        return f":{token.text}"
    return f"'{token.text}'"


def _compile_regex(pattern: str, token: Token) -> None:
    try:
        matching.compile_regex(pattern, False)
    except (regex.error, OverflowError, RecursionError) as error:
        raise SieveError(token.line, token.column, f'invalid regular expression "{pattern}": {error}') from None


def _decode_encoded(token: Token) -> str:
    """RFC 5228 §2.4.2.4 encoded-character: ${hex:41 42} and ${unicode:263a}; a malformed one stays as written."""

    def replace(match: re.Match[str]) -> str:
        body = match.group(2)
        if not _HEX_RUN.fullmatch(body):
            return match.group(0)
        numbers = body.split()
        if match.group(1).lower() == "hex":
            if any(len(n.lstrip("0")) > 2 for n in numbers):
                return match.group(0)
            return bytes(int(n, 16) for n in numbers).decode("utf-8", "replace")
        out = []
        for number in numbers:
            code = int(number, 16) if len(number.lstrip("0")) <= 8 else 0x110000
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise SieveError(token.line, token.column, f"invalid unicode character {number} in ${{unicode:}}")
            out.append(chr(code))
        return "".join(out)

    return _ENCODED.sub(replace, token.text)
