"""Import a large mbox with `pochta import` and report messages/s and the process's RSS over time.

    .venv/bin/python bench/import.py [COUNT=100000] [--keep]

Generates COUNT messages with /work/shared/peers/gen-mbox.py into /tmp (kept between runs for the same
COUNT), imports them into a fresh data directory (fsync on, as in production) with a real
`pochta import` process, samples its RSS from /proc every 0.2 s, then times `pochta export` of the
same mailbox back to an mbox. Target: RSS stays flat however large the mbox (the importer streams).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GEN_MBOX = Path("/work/shared/peers/gen-mbox.py")


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _pochta(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pochta", "--config", str(config), *args]


def _timed(config: Path, *args: str) -> tuple[float, list[tuple[float, int]], str]:
    """Run one pochta command; returns (seconds, [(t, rss KiB)], stdout)."""
    started = time.monotonic()
    process = subprocess.Popen(_pochta(config, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    while process.poll() is None:
        samples.append((time.monotonic() - started, _rss_kib(process.pid)))
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"pochta {' '.join(args)} failed:\n{stderr}")
    return time.monotonic() - started, [s for s in samples if s[1]], stdout


def _rss_profile(samples: list[tuple[float, int]]) -> str:
    if not samples:
        return "no samples"
    peak = max(rss for _, rss in samples)
    # RSS at 10 %, 50 % and 90 % of the run: flat means the import does not grow with the mbox
    points = [samples[min(len(samples) - 1, int(len(samples) * f))][1] for f in (0.1, 0.5, 0.9)]
    return f"peak {peak / 1024:.0f} MiB; at 10/50/90 % of the run {' / '.join(f'{p / 1024:.0f}' for p in points)} MiB"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
    keep = "--keep" in sys.argv
    source = Path(tempfile.gettempdir()) / f"pochta-bench-{count}.mbox"
    if not source.exists():
        print(f"generating {count} messages into {source} ...", flush=True)
        subprocess.run([sys.executable, str(GEN_MBOX), str(source), str(count), "7"], check=True)
    size = source.stat().st_size
    work = Path(tempfile.mkdtemp(prefix="pochta-bench-import-"))
    config = work / "pochta.toml"
    config.write_text(f'hostname = "bench.example.test"\ndata_dir = "{work / "data"}"\n')
    try:
        subprocess.run(_pochta(config, "domain", "add", "example.test"), check=True, capture_output=True)
        subprocess.run(
            _pochta(config, "user", "add", "bench@example.test", "--password-stdin"),
            input="bench-password\n",
            text=True,
            check=True,
            capture_output=True,
        )
        seconds, samples, out = _timed(config, "import", "bench@example.test", str(source))
        print(out.strip())
        print(
            f"import: {count} messages, {size / 2**20:.0f} MiB in {seconds:.1f} s ="
            f" {count / seconds:,.0f} msg/s, {size / 2**20 / seconds:.1f} MiB/s; RSS {_rss_profile(samples)}"
        )
        seconds, samples, out = _timed(
            config, "export", "bench@example.test", str(work / "out.mbox"), "--format", "mbox", "--mailbox", "INBOX"
        )
        print(
            f"export: {count} messages in {seconds:.1f} s = {count / seconds:,.0f} msg/s; RSS {_rss_profile(samples)}"
        )
        seconds, samples, out = _timed(config, "verify")
        print(f"verify: {seconds:.1f} s; RSS {_rss_profile(samples)}")
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
