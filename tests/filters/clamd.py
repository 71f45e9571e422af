"""A real clamd for the tests: Debian's `clamav-daemon` binary, run as the current user in the foreground with
a private config, a unix socket and a TCP port on 127.0.0.1, and a signature database written here (EICAR
only: offline there is no signature download, and no Debian package ships ClamAV's signatures)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..e2e.servers import free_ports

# The EICAR anti-virus test file (https://www.eicar.org), in two halves so this source is not itself "infected".
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
BODY_SIGNATURE = "Pochta.Test.EICAR-Body"  # .ndb: the 68 octets anywhere in any scanned file
FILE_SIGNATURE = "Pochta.Test.EICAR-File"  # .hdb: the MD5 and size of exactly the EICAR file
STREAM_MAX_LENGTH = 2 * 2**20  # small, so the oversize tests need no large messages
_STARTUP = 60.0  # seconds; loading three signatures takes about one on a quiet machine


def find_clamd() -> str | None:
    return shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")


@dataclass
class ClamdProcess:
    process: subprocess.Popen[bytes]
    directory: Path
    port: int

    @property
    def socket_path(self) -> Path:
        return self.directory / "clamd.sock"

    @property
    def unix_address(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def tcp_address(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    @classmethod
    def start(cls, binary: str, directory: Path) -> ClamdProcess:
        _write_database(directory / "db")
        (directory / "tmp").mkdir(exist_ok=True)
        for _attempt in range(3):  # the free port may be taken by another test run before clamd binds it
            (port,) = free_ports(1)
            config = _write_config(directory, port)
            log = (directory / "clamd.out").open("ab")
            process = subprocess.Popen([binary, f"--config-file={config}"], stdout=log, stderr=subprocess.STDOUT)
            log.close()
            clamd = cls(process=process, directory=directory, port=port)
            if clamd._wait_ready():
                return clamd
            clamd.stop()
        raise RuntimeError(f"clamd did not start; see {directory / 'clamd.log'}:\n{clamd.log_text()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _STARTUP
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if self.command(b"zPING\0") == b"PONG\0":
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def command(self, request: bytes) -> bytes:
        """One request over the unix socket, the whole reply (for readiness checks and VERSION)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        return reply

    def log_text(self) -> str:
        parts = [
            path.read_text(errors="replace") for path in (self.directory / "clamd.log", self.directory / "clamd.out")
        ]
        return "\n".join(parts)[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _write_database(db: Path) -> None:
    db.mkdir(parents=True, exist_ok=True)
    # sigtool's formats (ClamAV "Creating signatures"): Name:TargetType:Offset:HexSignature and MD5:Size:Name
    (db / "pochta-test.ndb").write_text(f"{BODY_SIGNATURE}:0:*:{EICAR.hex()}\n")
    (db / "pochta-test.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{FILE_SIGNATURE}\n")


def _write_config(directory: Path, port: int) -> Path:
    path = directory / "clamd.conf"
    path.write_text(
        f"""\
DatabaseDirectory {directory / "db"}
LocalSocket {directory / "clamd.sock"}
LocalSocketMode 600
FixStaleSocket true
TCPSocket {port}
TCPAddr 127.0.0.1
LogFile {directory / "clamd.log"}
LogTime true
TemporaryDirectory {directory / "tmp"}
Foreground true
MaxThreads 4
StreamMaxLength {STREAM_MAX_LENGTH}
ScanMail true
ScanArchive true
Bytecode false
OfficialDatabaseOnly false
"""
    )
    return path
