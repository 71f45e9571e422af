"""Every message of the shared MIME robustness corpus parses, with exact and well-ordered ranges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pochta.mail import mime
from pochta.mail.mime import Part

from . import imapsyntax

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mime"
# Files beside the messages: licences, provenance, upstream commit ids and attachments.
_NOT_MESSAGES = {"LICENSE", "LICENSE.txt", "MIT-LICENSE", "COPYING", "COMMIT", "README.md", "PROVENANCE.md"}
# PROVENANCE.md says 360, but its per-folder counts (stalwart 110, ruby-mail 104) exceed the files
# present (107 .eml, 103 .eml plus one empty file): 48 + 107 + 23 + 103 + 75.
EXPECTED_COUNT = 356


def _messages() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return [
        path
        for path in sorted(CORPUS.rglob("*"))
        if path.is_file()
        and path.suffix != ".json"
        and path.name not in _NOT_MESSAGES
        and not path.name.startswith(".")
        and "LICENSES" not in path.parts
        and "files" not in path.parts  # zbateson's attachment files
        and path.stat().st_size > 0  # ruby-mail's sample_output_multipart is an empty output file
    ]


MESSAGES = _messages()


def _require_corpus() -> None:
    if not MESSAGES:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MIME corpus missing at {CORPUS}")
        pytest.skip(f"MIME corpus missing at {CORPUS}: it ships in the shared data folder")


def test_corpus_count():
    _require_corpus()
    assert len(MESSAGES) == EXPECTED_COUNT


def _check_ranges(part: Part, lower: int, upper: int) -> None:
    assert lower <= part.start <= part.body_start <= part.end <= upper
    previous_end = part.body_start
    for child in part.children:
        _check_ranges(child, previous_end, part.end)
        previous_end = child.end
    if part.message is not None:
        assert (part.message.start, part.message.end) == (part.body_start, part.end)
        _check_ranges(part.message, part.body_start, part.end)


@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: str(path.relative_to(CORPUS)))
def test_corpus_message(path: Path):
    data = path.read_bytes()
    parsed = mime.parse_message(data)
    root = parsed.root
    assert (root.start, root.end) == (0, len(data))
    _check_ranges(root, 0, len(data))
    for part in root.walk():
        header = data[part.start : part.body_start]
        assert header == data[slice(*part.header)]
        assert not header or header.endswith(b"\n") or part.body_start == part.end
    for item in (parsed.envelope, parsed.bodystructure, parsed.body):
        assert isinstance(imapsyntax.read(item), list)
    assert len(imapsyntax.read(parsed.envelope)) == 10  # type: ignore[arg-type]
    assert mime.ParsedMessage.loads(parsed.dumps()) == parsed
    assert mime.loads(mime.dumps(root)) == root


def test_corpus_matches_stalwart_offsets_for_well_formed_messages():
    """Stalwart's expected parses (``.json``, ``.crlf.json``) agree on every part's body range,
    except for its deliberately malformed messages, where parsers legitimately differ."""
    _require_corpus()
    import json

    checked = 0
    differing: list[str] = []
    for path in MESSAGES:
        if "stalwart-mail-parser" not in path.parts or "malformed" in path.parts:
            continue
        data = path.read_bytes()
        if b"\r\n" in data and data.count(b"\n") != data.count(b"\r\n"):
            continue  # mixed line ends: the expected parses are of an all-LF or all-CRLF copy
        ours: list[tuple[int, int]] = []

        def flatten(part: Part, into: list[tuple[int, int]]) -> None:
            into.append((part.body_start, part.end))
            for child in part.children:
                flatten(child, into)

        flatten(mime.parse(data), ours)
        expected = [  # the LF and the CRLF variant of the expected parse; mixed files match either
            [(part["offset_body"], part["offset_end"]) for part in json.loads(variant.read_text())["parts"]]
            for variant in (path.with_suffix(".json"), path.with_suffix(".crlf.json"))
        ]
        if ours not in expected:
            differing.append("/".join(path.parts[-2:]))
        checked += 1
    assert checked > 70
    # Known policy differences on broken input. thirdparty/005 ends in "invalid--1--": Stalwart takes a
    # delimiter in mid-line, RFC 2046 §5.1.1 (and Dovecot) only at the start of a line. 011 and 015
    # have header blocks that end at a delimiter without a blank line; Stalwart ends them differently
    # (for 015 it gives up on the encapsulated messages and makes one part of them).
    assert differing == ["thirdparty/005.eml", "thirdparty/011.eml", "thirdparty/015.eml"]
