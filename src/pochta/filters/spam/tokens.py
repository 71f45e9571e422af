"""A message as the spam classifier sees it: a set of string features, plus the facts the rules need.

One pass over the MIME tree (mail.mime, offsets only) decodes every text part (quoted-printable, base64,
charset), strips HTML to text and collects its links, and reads a chosen set of headers. Features are
plain strings with a prefix saying where they came from (``s:`` subject word, ``u:`` URL host, ...), so a
word in the subject and the same word in the body count apart. Body words also give word pairs
(``a b``), which is where most of the accuracy comes from (measured in bench/spam_accuracy.py).

Every header field gives its name and its words (Received included: relays are good evidence), except
fields added after the SMTP transaction (Delivered-To, Return-Path, Status, X-Keywords and the like: a
stored copy must give what the MX saw), other filters' verdicts (X-Spam-*, Authentication-Results) and
dates. A DKIM, ARC or DomainKeys signature gives its name and signing domain only.

Beside the words, :func:`grams` gives the raw octets' 4-grams (headers and body as they are, the same
fields left out, line ends as LF) of the first :data:`WINDOW` octets, for the linear model (linear.py).
A 4-gram is its four octets read as a little-endian 32-bit number: exact (no hashing, no collisions) and
the same in every process and on every machine. They come as a sorted array without repeats (numpy: built
and looked up in C, where a Python set of 1,700 ints per message cost more than everything else about them).
"""

from __future__ import annotations

import binascii
import html
import itertools
import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pochta.mail import mime
from pochta.mail.headers import (
    FIELD,
    decode_charset,
    decode_text,
    decode_words,
    parse_content_type,
    split_value,
    unfold,
)

from .keys import Keys, Spans, string_keys, unique, word_keys

MAX_TEXT = 64 * 1024  # characters of decoded text tokenised per message: bounds the cost of huge messages
MAX_PARTS = 50  # parts looked at
MAX_PART_OCTETS = 256 * 1024  # encoded octets of one text part decoded
# Octets of the header block whose fields give word features (the corpus's largest block is 15 KB). The
# MX takes blocks up to 1 MiB, whose words cost about 0.9 s of CPU: a cheap way to burn a core. Fields
# beyond still fill `headers` for the rules.
MAX_HEADER = 64 * 1024
WINDOW = 3000  # octets of the message (from the top) whose 4-grams are features; chosen by cross-validation

# Prefixes of the headers whose words are read specially; other fields' words get "H<name>:".
_WORD_HEADERS = {
    "subject": "s:",
    "from": "f:",
    "reply-to": "r:",
    "to": "t:",
    "cc": "t:",
    "sender": "r:",
    "x-mailer": "m:",
    "user-agent": "m:",
    "content-type": "c:",
    "list-id": "l:",
    "precedence": "p:",
    "x-priority": "p:",
    "x-msmail-priority": "p:",
    "importance": "p:",
    "organization": "o:",
    "message-id": "i:",
}
_SKIPPED_HEADERS = (
    # Added after the SMTP transaction, by delivery, the mail store or the reader: never on a message as
    # the MX scores it, but on every stored or imported copy we train on, where they would tell the
    # collector's folders apart (in the SpamAssassin corpus X-Keywords is on 34% of the spam, 0.5% of the
    # ham) instead of spam from ham.
    "delivered-to",
    "return-path",
    "x-original-to",
    "delivery-date",
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-mozilla-",
    "x-evolution",
    "x-gnus-",
    "lines",
    "content-length",
    # Other filters' opinions (another filter's verdict would teach ours to copy it), ours included: our
    # Authentication-Results and X-Spam-* are on the stored copy, not on the one scored.
    "x-spam",
    "authentication-results",
    # Different for every message.
    "date",
    "x-original-date",
)
# Signatures are random by design (base64 of a hash, new for every message): their words would be
# tokens seen once and never again, and their octets would fill the 4-gram window of a message signed
# a few times (DKIM, ARC: 2-4 KB of a modern message's top). Only the signing domain is a feature.
_SIGNATURES = frozenset(
    {"dkim-signature", "x-google-dkim-signature", "domainkey-signature", "arc-seal", "arc-message-signature"}
)
_SIGNING_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)")
_TEXT_FIELD = re.compile(r"^([^\x00-\x20\x7f:]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.MULTILINE)
_FOLD = re.compile(r"\r?\n(?=[ \t])")

# Body words are found in the text's UTF-8 (keys.word_keys), where every separator is one ASCII octet
# once the non-ASCII whitespace (what else str.isspace() knows) is made a space.
_WIDE_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_HEADER_WORD = re.compile(r"[^\s\"'<>()\[\],;:]{1,60}")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>|<!--.*?-->", re.DOTALL)
_HREF = re.compile(r"""href\s*=\s*["']?([^"'\s>]+)""")  # in lowercased HTML
_STYLE_SCRIPT = re.compile(r"<(style|script)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
# Searched in lowercased text: a pattern with IGNORECASE cannot use the fast search for its literal
# prefix, and measured 3-4 times slower (82 against 25 µs for the text of a 10 KiB message).
_URL = re.compile(r"(?:https?|ftp)://([^/\s\"'<>?#:]+)")
_ANCHOR = re.compile(r"<a\s[^>]*?href\s*=\s*[\"']?([^\"'\s>]+)[^>]*>(.*?)</a\s*>", re.DOTALL | re.IGNORECASE)
_HOST_IN_TEXT = re.compile(r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})", re.IGNORECASE)
# The octets of those fields, for the 4-gram window: names starting with a skipped one, the signatures'.
_SKIPPED_FIELD = re.compile(
    b"^(?:(?:%s)[^:\\n]*|(?:%s)[ \\t]*):[^\\n]*\\n(?:[ \\t][^\\n]*\\n)*"
    % tuple("|".join(map(re.escape, names)).encode() for names in (_SKIPPED_HEADERS, sorted(_SIGNATURES))),
    re.IGNORECASE | re.MULTILINE,
)
_SPACES = re.compile(r"\s+")
_MBOX_FROM = re.compile(b"From (?![ \t]*:)")  # not "From :", a From field in obsolete syntax

Grams = npt.NDArray[np.uint32]  # distinct octet 4-grams, in ascending order


_8, _16, _24 = np.uint32(8), np.uint32(16), np.uint32(24)  # shifts that keep the type


def no_grams() -> Grams:
    return np.empty(0, dtype=np.uint32)


@dataclass(slots=True)
class Words:
    """The words of a message's text, as offsets into its UTF-8, and the keys of the words and of each
    pair of neighbours (keys.word_keys); their strings, for training and --explain, only when asked for."""

    octets: bytes = b""
    spans: Spans = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    keys: Keys = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    def strings(self) -> list[str]:
        octets = self.octets
        words = [octets[start:end].decode("utf-8", "surrogatepass") for start, end in self.spans.tolist()]
        return words + list(map(" ".join, itertools.pairwise(words)))

    def __len__(self) -> int:
        return len(self.spans)


@dataclass(slots=True)
class Features:
    """What one message gave: classifier features and the facts for the rules.

    The word features are the header fields' tokens (:attr:`head`, a hundred or so, as strings), the
    other named tokens (MIME structure, links, tags: a few dozen) and the text's words and word pairs
    (:class:`Words`). Header tokens have prefixes of their own (the linear model scores them as a block
    of their own). Scoring needs only :attr:`keys`; :attr:`tokens` makes the strings of all of them, for
    training, --explain and a user's model."""

    head: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)
    words: Words = field(default_factory=Words)
    headers: dict[str, str] = field(default_factory=dict)  # first value of each field, lowercase name, decoded
    hosts: set[str] = field(default_factory=set)  # hosts of the URLs in the body
    text_parts: int = 0
    html_parts: int = 0
    link_mismatches: int = 0  # anchors whose visible text names another host than the link
    text: str = ""  # the decoded text (for GTUBE and the like), at most MAX_TEXT characters
    grams: Grams = field(default_factory=no_grams)  # octet 4-grams of the first WINDOW octets (see grams())
    _keys: Keys | None = None
    _body_count: int = 0
    _tokens: set[str] | None = None

    @property
    def keys(self) -> Keys:
        """The keys (keys.py) of all word features without repeats: those not from the header fields, then
        those from them (:attr:`body_count` tells where), each part in ascending order."""
        if self._keys is None:
            body = unique(np.concatenate((string_keys(self.named), self.words.keys)))
            self._keys = np.concatenate((body, unique(string_keys(self.head))))
            self._body_count = len(body)
        return self._keys

    @property
    def body_count(self) -> int:
        """How many of :attr:`keys` are not from the header fields."""
        self.keys  # noqa: B018 (computes it)
        return self._body_count

    @property
    def tokens(self) -> set[str]:
        """All word features as strings."""
        if self._tokens is None:
            self._tokens = self.head.union(self.named, self.words.strings())
        return self._tokens


def features(data: mime.Buffer) -> Features:
    """The features of one whole message (header and body octets)."""
    root = mime.parse(data)
    out = Features()
    tokens = out.named
    _header_features(bytes(data[root.start : root.body_start]), out)
    texts: list[str] = []
    budget = MAX_TEXT
    for count, part in enumerate(root.walk()):
        if count >= MAX_PARTS:
            tokens.add("x:many-parts")
            break
        if part.is_multipart or part.message is not None:
            tokens.add("ct:" + part.content_type)
            continue
        if part is not root:
            _part_header_features(bytes(data[part.start : part.body_start]), tokens)
        tokens.add("ct:" + part.content_type)
        if not part.content_type.startswith("text/") or budget <= 0:
            continue
        text = _decoded_text(data, part)[:budget]
        if part.content_type == "text/html":
            out.html_parts += 1
            text = _html_text(text, out)
        else:
            out.text_parts += 1
        budget -= len(text)
        texts.append(text)
    out.text = "\n".join(texts)
    _text_features(out.text, out)
    out.grams = grams(data, root.body_start)
    return out


def grams(data: mime.Buffer, body_start: int) -> Grams:
    """The 4-grams of the first WINDOW octets of a message whose body starts at `body_start`, without the
    fields the word features skip too (our own X-Spam-* on a stored copy would give away the verdict)."""
    head = bytes(data[: min(body_start, 16 * WINDOW)]).replace(b"\r\n", b"\n")
    if _MBOX_FROM.match(head):  # an mbox separator line (a file from an mbox), not part of the message
        head = head[head.find(b"\n") + 1 :]
    window = _SKIPPED_FIELD.sub(b"", head)[:WINDOW]
    if len(window) < WINDOW:
        body = bytes(data[body_start : body_start + 2 * WINDOW]).replace(b"\r\n", b"\n")
        window += body[: WINDOW - len(window)]
    if len(window) < 4:
        return no_grams()
    octets = np.frombuffer(window, dtype=np.uint8).astype(np.uint32)
    found: Grams = octets[:-3] | octets[1:-2] << _8 | octets[2:-1] << _16 | octets[3:] << _24
    return unique(found)


def _header_features(block: bytes, out: Features) -> None:
    tokens = out.head
    seen: dict[str, str] = out.headers
    # Latin-1 keeps every octet; RFC 2047 words and UTF-8 values (RFC 6532) are decoded per field.
    read = 0  # octets of the fields so far (give or take the spaces before their colons)
    for written, raw in _TEXT_FIELD.findall(block.decode("latin-1")):
        name = written.lower()
        read += len(written) + len(raw) + 2
        if read > MAX_HEADER:  # past the limit: only the first value of a field not seen yet, for the rules
            tokens.add("x:huge-header")
            if name not in seen:
                seen[name] = _field_value(raw)
            continue
        value = _field_value(raw)
        seen.setdefault(name, value)
        if name.startswith(_SKIPPED_HEADERS):
            continue
        tokens.add("h:" + name)
        prefix = _WORD_HEADERS.get(name) or "H" + name[:12] + ":"
        if name in _SIGNATURES:
            signer = _SIGNING_DOMAIN.search(value)
            if signer is not None:
                tokens.add(prefix + "d=" + signer.group(1).lower())
            continue
        if name == "message-id":
            tokens.add("i:" + value.rpartition("@")[2].strip("> ").lower())
            continue
        words = _HEADER_WORD.findall(value.lower())
        tokens.update(map(prefix.__add__, words))
        if name == "subject":
            tokens.update([f"s:{a} {b}" for a, b in itertools.pairwise(words)])
            if value and sum(map(str.isupper, value)) * 2 > len(value):
                tokens.add("s:*shouting*")
        elif prefix in ("f:", "r:"):
            address = value.rpartition("<")[2].rstrip("> ").lower()
            domain = address.rpartition("@")[2]
            if domain:
                tokens.add(prefix + "@" + domain)


def _field_value(raw: str) -> str:
    """A header field's value (as Latin-1 text) unfolded and decoded."""
    value = (_FOLD.sub("", raw) if "\n" in raw else raw).strip()
    if "=?" in value:
        return decode_words(value)
    if not value.isascii():
        return decode_text(value.encode("latin-1"))
    return value


def _part_header_features(block: bytes, tokens: set[str]) -> None:
    for match in FIELD.finditer(block):
        name = match.group(1).lower()
        if name == b"content-transfer-encoding":
            tokens.add("cte:" + split_value(unfold(match.group(2)))[0].lower().decode("ascii", "replace"))
        elif name == b"content-disposition":
            value = decode_words(unfold(match.group(2))).lower()
            tokens.add("cd:" + value.split(";", 1)[0].strip())
            dot = value.rfind(".")
            if "filename" in value and dot > 0:
                tokens.add("fx:" + value[dot + 1 :].strip("\" '")[:10])


def _decoded_text(data: mime.Buffer, part: mime.Part) -> str:
    header = bytes(data[part.start : part.body_start])
    body = bytes(data[part.body_start : min(part.end, part.body_start + MAX_PART_OCTETS)])
    encoding = b""
    charset = "us-ascii"
    for match in FIELD.finditer(header):
        name = match.group(1).lower()
        if name == b"content-transfer-encoding":
            encoding = split_value(unfold(match.group(2)))[0].lower()
        elif name == b"content-type":
            parsed = parse_content_type(unfold(match.group(2)))
            if parsed is not None:
                charset = next(
                    (value.decode("ascii", "replace") for key, value in parsed.params if key.lower() == b"charset"),
                    charset,
                )
    if encoding == b"base64":
        try:
            body = binascii.a2b_base64(body)
        except (binascii.Error, ValueError):
            body = b""
    elif encoding == b"quoted-printable":
        body = binascii.a2b_qp(body)
    if charset.lower() in ("us-ascii", "ascii", "utf-8", "utf8"):
        return body.decode("utf-8", "replace")
    return decode_charset(body, charset.strip("\"'"))


def _html_text(source: str, out: Features) -> str:
    """HTML reduced to its visible text; links and anchors are noted on the way."""
    tokens = out.named
    for href, label in _ANCHOR.findall(source):
        link = _URL.match(href.lower())
        shown = _HOST_IN_TEXT.search(_TAG.sub("", label))
        if link and shown and not _same_site(link.group(1), shown.group(1).lower()):
            out.link_mismatches += 1
    for href in _HREF.findall(source.lower()):
        host = _URL.match(href)
        if host is not None:
            out.hosts.add(host.group(1))
    # One pass for both: split() gives the text between tags and each tag's three groups.
    pieces = _TAG.split(_STYLE_SCRIPT.sub(" ", source))
    tokens.update({"tag:" + name.lower() for name in pieces[2::4] if name})
    return html.unescape(" ".join(pieces[::4]))


def _same_site(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _text_features(text: str, out: Features) -> None:
    tokens = out.named
    lowered = text.lower()
    out.hosts.update(_URL.findall(lowered))
    for host in out.hosts:
        labels = host.split(".")
        tokens.add("u:" + host)
        if len(labels) > 2:
            tokens.add("u:" + ".".join(labels[-2:]))
    out.words = _body_words(lowered)
    if not len(out.words):
        tokens.add("x:no-words")


def _body_words(lowered: str) -> Words:
    """The words of a lowercased text (keys.py says what a word is)."""
    if not lowered.isascii():
        lowered = _WIDE_SPACE.sub(" ", lowered)
    octets = lowered.encode("utf-8", "surrogatepass")
    keys, spans = word_keys(octets)
    return Words(octets, spans, keys)
