"""Maildir and Maildir++ on disk (https://cr.yp.to/proto/maildir.html, Courier's Maildir++ folders).

A Maildir is a directory with ``cur/``, ``new/`` and ``tmp/``; a message is one file, its flags the
letters after ``:2,`` in its name (small letters are keywords, named in Dovecot's ``dovecot-keywords``).
Maildir++ keeps INBOX at the root and every other folder in ``.Name.Child`` beside it, names in IMAP's
modified UTF-7 with ``.`` as the separator (a ``.`` inside a name is written ``&AC4-``). The internal
date is the file's mtime, as Dovecot keeps it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pochta.archive.flags import maildir_flags, maildir_info
from pochta.proto.imap.utf7 import Utf7Error, decode_mailbox, encode_mailbox
from pochta.store.api import HIERARCHY_SEPARATOR, INBOX

KEYWORDS_FILE = "dovecot-keywords"
_DOT = "&AC4-"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYWORD_LINE = re.compile(r"(\d+) (\S+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Folder:
    name: str  # the mailbox name, "/" separated, relative to where the import goes
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class File:
    unique: str  # the name before ":" (stays when flags change)
    path: Path
    flags: frozenset[str]
    is_new: bool


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def folder_name(directory: str) -> str:
    """``.Lists.Pochta&AC4-dev`` → ``Lists/Pochta.dev``."""
    parts = []
    for part in directory.removeprefix(".").split("."):
        try:
            parts.append(".".join(decode_mailbox(piece) for piece in part.split(_DOT)))
        except Utf7Error:
            parts.append(part)  # not modified UTF-7 after all: keep the octets' name
    return HIERARCHY_SEPARATOR.join(parts)


def directory_name(mailbox: str) -> str:
    """``Lists/Pochta.dev`` → ``.Lists.Pochta&AC4-dev``."""
    return "." + ".".join(encode_mailbox(part).replace(".", _DOT) for part in mailbox.split(HIERARCHY_SEPARATOR))


def folders(root: Path) -> list[Folder]:
    """The root (INBOX) and its Maildir++ folders, in name order."""
    found = [Folder(name=INBOX, path=root)] if is_maildir(root) else []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") and entry.name not in (".", "..") and entry.is_dir():
            path = Path(entry.path)
            if is_maildir(path):
                found.append(Folder(name=folder_name(entry.name), path=path))
    return found


def read_keywords(folder: Path) -> dict[str, str]:
    """Dovecot's keyword letters: ``0 $Forwarded`` means ``a`` is $Forwarded."""
    try:
        text = (folder / KEYWORDS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    letters = {}
    for line in text.splitlines():
        match = _KEYWORD_LINE.fullmatch(line.strip())
        if match and int(match.group(1)) < len(_LETTERS):
            letters[_LETTERS[int(match.group(1))]] = match.group(2)
    return letters


def files(folder: Path, *, after: str = "") -> Iterator[File]:
    """Messages of one Maildir (new/ and cur/) in unique-name order, those after `after` only."""
    keywords = read_keywords(folder)
    entries: list[tuple[str, Path, str, bool]] = []
    for sub, is_new in (("new", True), ("cur", False)):
        try:
            scanned = list(os.scandir(folder / sub))
        except FileNotFoundError:
            continue
        for entry in scanned:
            if entry.name.startswith("."):
                continue
            unique, _, info = entry.name.partition(":")
            if unique > after:
                entries.append((unique, Path(entry.path), info, is_new))
    entries.sort(key=lambda item: item[0])
    for unique, path, info, is_new in entries:
        yield File(unique=unique, path=path, flags=maildir_flags(info, keywords), is_new=is_new)


def internal_date(path: Path) -> datetime:
    return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)


class Writer:
    """Writes messages into one Maildir: tmp/ then renamed into cur/, so a crash leaves no half message
    in view; a message whose unique name is there already is not written again (resumable)."""

    def __init__(self, folder: Path, *, fsync: bool = True) -> None:
        self.folder = folder
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.present = {name.partition(":")[0] for name in os.listdir(folder / "cur")}
        self.present |= {name.partition(":")[0] for name in os.listdir(folder / "new")}
        self._letters = {keyword: letter for letter, keyword in read_keywords(folder).items()}
        self.dropped_keywords: set[str] = set()

    def _letters_for(self, flags: frozenset[str]) -> dict[str, str]:
        added = False
        for flag in sorted(flags):
            if flag.startswith("\\") or flag == "$Forwarded" or flag in self._letters:
                continue
            if len(self._letters) >= len(_LETTERS):
                self.dropped_keywords.add(flag)
                continue
            self._letters[flag] = _LETTERS[len(self._letters)]
            added = True
        if added:
            lines = [f"{_LETTERS.index(letter)} {keyword}\n" for keyword, letter in self._letters.items()]
            tmp = self.folder / "tmp" / (KEYWORDS_FILE + ".new")
            tmp.write_text("".join(lines), encoding="utf-8")
            os.replace(tmp, self.folder / KEYWORDS_FILE)
        return self._letters

    def write_many(
        self, items: Sequence[tuple[str, Callable[[], BinaryIO], frozenset[str], datetime]]
    ) -> list[int | None]:
        """Copy blobs in as Maildir messages: (unique name, opener of the blob, flags, internal date) each.
        Returns the octets written per item (None: it is there already). All are written to tmp/, fsynced
        side by side (parallel fsyncs share journal commits), then renamed into cur/, then cur/ is fsynced:
        a crash leaves whole messages in cur/ or none."""
        sizes: list[int | None] = []
        staged: list[tuple[Path, Path]] = []
        for unique, source, flags, internal_date in items:
            if unique in self.present:
                sizes.append(None)
                continue
            info = maildir_info(flags, self._letters_for(flags))
            tmp = self.folder / "tmp" / unique
            written = 0
            with source() as reader, open(tmp, "wb") as writer:
                while chunk := reader.read(1024 * 1024):
                    writer.write(chunk)
                    written += len(chunk)
            stamp = internal_date.timestamp()
            os.utime(tmp, (stamp, stamp))
            staged.append((tmp, self.folder / "cur" / f"{unique}:{info}"))
            self.present.add(unique)
            sizes.append(written)
        if self._fsync and staged:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(_fsync_file, [tmp for tmp, _ in staged]))
        for tmp, final in staged:
            os.replace(tmp, final)
        if self._fsync and staged:
            _fsync_file(self.folder / "cur")
        return sizes

    def write(
        self, unique: str, source: Callable[[], BinaryIO], *, flags: frozenset[str], internal_date: datetime
    ) -> int | None:
        """One message (see `write_many`)."""
        return self.write_many([(unique, source, flags, internal_date)])[0]


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
