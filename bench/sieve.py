"""Sieve throughput: parse and run a typical user script (lists, spam, vacation, flags) on a message.

Run by hand:  .venv/bin/python bench/sieve.py [--runs 5000] [--size 20000]
Prints parses/s and runs/s (pure CPU, one core). For a peer, it also times Pigeonhole's sieve-test
on the same script and message when it is installed: that is one process per message (compile and
run), the cost Dovecot's LDA would pay without its compiled-binary cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pochta.filters.sieve import Environment, MessageView, parse, run

SCRIPT = r"""require ["fileinto", "imap4flags", "variables", "vacation", "envelope", "subaddress", "body",
          "relational", "comparator-i;ascii-numeric", "spamtest", "regex", "date"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; stop; }
if header :matches "List-Id" "*<*.*>*" { fileinto "lists/${2}"; stop; }
if envelope :detail :matches "to" "*" { if string :is "${1}" "" { } else { fileinto "tags/${1}"; } }
if address :domain :is "from" ["example.org", "example.net"] { addflag "$Work"; }
if header :regex "subject" "^\[(urgent|alert)\]" { addflag "\\Flagged"; }
if body :text :contains ["invoice", "payment"] { fileinto "Finance"; }
if date :value "ge" :originalzone "date" "hour" "18" { addflag "$Late"; }
vacation :days 7 :subject "Away" "I am away until Monday.";
"""


def _message(size: int) -> bytes:
    header = (
        "From: Alice <alice@example.org>\r\nTo: bob+news@example.com\r\nSubject: [urgent] quarterly numbers\r\n"
        "Date: Fri, 27 Nov 2026 19:00:00 +0100\r\nMessage-ID: <b@example.org>\r\n\r\n"
    )
    line = "Please find the quarterly numbers and the payment schedule below.\r\n"
    return (header + line * (size // len(line) + 1)).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--size", type=int, default=20000)
    args = parser.parse_args()
    content = _message(args.size)
    message = MessageView(
        content=content, envelope_from="alice@example.org", envelope_to="bob+news@example.com", size=len(content)
    )
    env = Environment(now=dt.datetime.now(dt.UTC), user="bob@example.com", facts={"spamtest": "2"})

    start = time.perf_counter()
    for _ in range(args.runs):
        script = parse(SCRIPT)
    parsed = args.runs / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(args.runs):
        result = run(script, message, env)
    ran = args.runs / (time.perf_counter() - start)
    print(f"pochta: {parsed:,.0f} parses/s, {ran:,.0f} runs/s ({len(content)} byte message)")
    print(f"        actions: {[type(action).__name__ for action in result.actions]}")

    sieve_test = shutil.which("sieve-test")
    if sieve_test is None:
        print("pigeonhole: sieve-test not installed (apt-get install dovecot-sieve)")
        return
    with tempfile.TemporaryDirectory(prefix="pochta-bench-") as name:
        base = Path(name)
        os.chmod(base, 0o777)
        (base / "mail").mkdir()
        os.chmod(base / "mail", 0o777)
        (base / "dovecot.conf").write_text(
            f"mail_location = maildir:{base}/mail\nplugin {{\n  sieve_extensions = +spamtest\n}}\n"
        )
        (base / "s.sieve").write_text(SCRIPT)
        (base / "m.eml").write_bytes(content)
        for path in base.iterdir():
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        command = [sieve_test, "-c", str(base / "dovecot.conf"), "-a", "bob+news@example.com"]
        command += ["-f", "alice@example.org", str(base / "s.sieve"), str(base / "m.eml")]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        runs = max(1, args.runs // 50)
        start = time.perf_counter()
        for _ in range(runs):
            subprocess.run(command, capture_output=True, check=True, env={"HOME": str(base), "PATH": "/usr/bin:/bin"})
        print(f"pigeonhole sieve-test: {runs / (time.perf_counter() - start):,.0f} runs/s (process per run)")


if __name__ == "__main__":
    main()
