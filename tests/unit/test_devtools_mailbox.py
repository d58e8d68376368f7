"""The demo's local mailbox (provsec.devtools.mailbox run as a program): it writes what a client needs, takes a
message only over STARTTLS with its login, stores it as a file, and ends on SIGTERM."""

from __future__ import annotations

import email
import email.policy
import smtplib
import ssl
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest


def test_the_mailbox_stores_a_mail_sent_over_starttls_with_its_login(tmp_path: Path) -> None:
    folder = tmp_path / "mailbox"
    (folder / "mail").mkdir(parents=True)
    (folder / "mail" / "0001.eml").write_bytes(b"Subject: from an earlier run\n\n")  # a mailbox started again
    proc = subprocess.Popen([sys.executable, "-m", "provsec.devtools.mailbox", "--host", "127.0.0.1", "--dir",
                             str(folder), "--lifetime", "120"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("mailbox: smtp://127.0.0.1:")
        port = int((folder / "port").read_text())
        login, password = (folder / "login").read_text(), (folder / "password").read_text()
        assert (folder / "password").stat().st_mode & 0o777 == 0o600
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "canhbao@stttt.test", "an@stttt.test", "Cảnh báo thử"
        msg.set_content("Nội dung")
        context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            with pytest.raises(smtplib.SMTPException):
                smtp.login(login, password)  # no login before STARTTLS
            smtp.starttls(context=context)
            smtp.login(login, password)
            smtp.send_message(msg)
        earlier, stored = sorted((folder / "mail").iterdir())
        assert earlier.read_bytes() == b"Subject: from an earlier run\n\n", "the earlier mail is kept"
        assert stored.name == "0002.eml" and stored.stat().st_mode & 0o777 == 0o600
        got = email.message_from_bytes(stored.read_bytes(), policy=email.policy.default)
        assert got["Subject"] == "Cảnh báo thử" and got["To"] == "an@stttt.test"
    finally:
        proc.terminate()
        started = time.monotonic()
        rc = proc.wait(timeout=10)
    assert rc == 0 and time.monotonic() - started < 5
