"""A real `pochta serve` configured with `[antivirus]` and a real clamd: smtplib's EICAR is refused with the
signature's name and never stored, clean mail is delivered, and the log says what the check decided."""

from __future__ import annotations

import io
import smtplib
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from ..conftest import need
from ..filters.clamd import EICAR, ClamdProcess, find_clamd
from .servers import RunningServer, pochta_server
from .test_smtp_clients import stored_messages

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    binary = find_clamd()
    need(binary is not None, "clamd is not installed (apt-get install clamav-daemon)")
    assert binary is not None
    clamd = ClamdProcess.start(binary, tmp_path_factory.mktemp("clamd"))
    try:
        directory = tmp_path_factory.mktemp("antivirus-e2e")
        with pochta_server(
            directory, services=("smtp",), extra=f'[antivirus]\nclamd = "{clamd.tcp_address}"\n'
        ) as running:
            assert running.cli("domain", "add", "example.test").returncode == 0
            result = running.cli("user", "add", "alice@example.test", "--password-stdin", stdin="secret-pass\n")
            assert result.returncode == 0, result.stderr
            yield running
    finally:
        clamd.stop()


def _message(attachment: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "zoe@remote.test"
    message["To"] = "alice@example.test"
    message["Subject"] = "invoice"
    message.set_content("Please see the attached invoice.\n")
    message.add_attachment(attachment, maintype="application", subtype="zip", filename=filename)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_smtplib_eicar_in_a_zip_is_refused_and_clean_mail_delivered(server: RunningServer) -> None:
    infected = _message(_zip("invoice.exe", EICAR), "invoice.zip")
    clean = _message(_zip("invoice.txt", b"Total: 42 EUR\n"), "invoice.zip")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("zoe@remote.test", ["alice@example.test"], infected)
        assert refused.value.smtp_code == 554
        assert refused.value.smtp_error.startswith(b"5.7.1 message refused: virus found (Pochta.Test.EICAR-")
        assert stored_messages(server, "alice@example.test") == []
        assert client.sendmail("zoe@remote.test", ["alice@example.test"], clean) == {}
    (stored,) = stored_messages(server, "alice@example.test")
    assert stored.endswith(clean)
    _, log = server.stop()
    assert "check=clamav action=reject" in log and "reason='virus Pochta.Test.EICAR-" in log
    assert "check=clamav action=accept" in log
