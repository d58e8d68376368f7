"""A real SSH server for unit tests (paramiko in server mode, on 127.0.0.1, a free port) that replays a recorded
session of a network device: interactive CLI (prompt, echo, ` --More-- ` pager, errors, a session cut off) or
exec requests (output, stderr, exit status). Keys are generated per run; nothing secret is written in a test.

Recording format (tests/unit/data/wan/*.txt): `#` comment lines first (where the recording comes from), then
directives on lines of their own:

    @@ user NAME           the login name the device expects (with RouterOS's +cte suffix, if any)
    @@ banner              the lines up to the next directive are sent on login (interactive CLI)
    @@ prompt "TEXT"       the prompt, a JSON string (trailing spaces count)
    @@ command TEXT        the lines up to the next `@@ command` are the answer to TEXT; inside them:
      @@ more              the device pauses with ` --More-- ` until it reads a space, then erases the marker
      @@ hangup            the device closes the session here (a cut-off output)
      @@ exit N            exec: the exit status (default 0)
      @@ stderr TEXT       exec: a line on stderr

In the answers, `{{secret:NAME}}` becomes a random value made for the run (the same all run long: see
`Replay.secrets`) and `{{count}}` a new random number at every use (counters that move between fetches).
An unknown command gets the recording's `@@ command *` answer, or `unknown command` (exec: exit 127)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED

ERASE = "\b" * 10 + " " * 10 + "\b" * 10


@dataclass
class Answer:
    items: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): line, more, hangup, stderr
    exit_status: int = 0


def _inner(answer: Answer, word: str, rest: str) -> bool:
    """A directive inside a command's answer; False when it is none."""
    if word in ("more", "hangup"):
        answer.items.append((word, ""))
    elif word == "exit":
        answer.exit_status = int(rest)
    elif word == "stderr":
        answer.items.append(("stderr", rest))
    else:
        return False
    return True


@dataclass
class Recording:
    user: str
    banner: str
    prompt: str
    answers: dict[str, Answer]

    @classmethod
    def parse(cls, text: str) -> Recording:
        user, prompt, banner_lines = "", "", []
        answers: dict[str, Answer] = {}
        current: Answer | None = None
        in_banner = False
        for line in text.splitlines():
            if line.startswith("@@ "):
                word, _, rest = line[3:].partition(" ")
                if word == "user":
                    user = rest.strip()
                elif word == "banner":
                    in_banner, current = True, None
                elif word == "prompt":
                    prompt, in_banner = json.loads(rest), False
                elif word == "command":
                    current, in_banner = Answer(), False
                    answers[rest] = current
                elif current is None or not _inner(current, word, rest):
                    raise ValueError(f"recording: unknown directive {line!r}")
            elif in_banner:
                banner_lines.append(line)
            elif current is not None:
                current.items.append(("line", line))
            elif line and not line.startswith("#"):
                raise ValueError(f"recording: text outside a directive: {line!r}")
        return cls(user, "\r\n".join(banner_lines) + "\r\n" if banner_lines else "", prompt, answers)


class _Interface(paramiko.ServerInterface):
    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.requests: dict[int, str | None] = {}  # channel id -> exec command, None for a shell
        self.changed = threading.Condition()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == self.replay.recording.user and key == self.replay.client_key
        self.replay.logins.append(username)
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: object) -> bool:  # any terminal will do
        return True

    def _request(self, channel: paramiko.Channel, command: str | None) -> bool:
        with self.changed:
            self.requests[channel.get_id()] = command
            self.changed.notify_all()
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return self._request(channel, None)

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        return self._request(channel, command.decode())

    def wait(self, channel: paramiko.Channel) -> tuple[bool, str | None]:
        """(True, exec command or None for a shell) once the channel's request came; (False, None) after 10 s."""
        with self.changed:
            ok = self.changed.wait_for(lambda: channel.get_id() in self.requests, 10)
            return ok, self.requests.get(channel.get_id())


class Replay:
    """The server: `with Replay.start(recording_text, secrets) as r:` then connect to r.port."""

    def __init__(self, recording: Recording, values: dict[str, str]) -> None:
        self.recording = recording
        self.secrets = values
        self.host_key = paramiko.ECDSAKey.generate()
        self.client_key = paramiko.ECDSAKey.generate()
        self.commands: list[str] = []  # every command received, in order
        self.logins: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)  # so that the accept loop sees the stop
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    @contextmanager
    def start(cls, text: str, values: dict[str, str] | None = None) -> Iterator[Replay]:
        replay = cls(Recording.parse(text), values or {})
        accept = threading.Thread(target=replay._accept, daemon=True)
        accept.start()
        try:
            yield replay
        finally:
            replay._stop.set()
            replay.sock.close()
            accept.join(5)
            for t in replay._threads:
                t.join(5)

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        key = key or self.host_key
        return f"[127.0.0.1]:{self.port} {key.get_name()} {key.get_base64()}\n"

    def write_client_key(self, path: Path) -> Path:
        self.client_key.write_private_key_file(str(path))
        return path

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _render(self, text: str) -> str:
        text = re.sub(r"\{\{count\}\}", lambda _m: str(secrets.randbelow(10**9)), text)
        return re.sub(r"\{\{secret:(\w+)\}\}", lambda m: self.secrets[m.group(1)], text)

    def _answer(self, command: str) -> Answer | None:
        return self.recording.answers.get(command, self.recording.answers.get("*"))

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        iface = _Interface(self)
        try:
            transport.start_server(server=iface)
            while transport.is_active() and not self._stop.is_set():
                chan = transport.accept(0.2)
                if chan is None:
                    continue
                ok, command = iface.wait(chan)
                if not ok:
                    return
                if command is None:
                    self._shell(chan)
                    return
                self._exec(chan, command)
                chan.close()
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()

    def _exec(self, chan: paramiko.Channel, command: str) -> None:
        self.commands.append(command)
        answer = self._answer(command)
        if answer is None:
            chan.sendall_stderr(f"sh: 1: {command.split(maxsplit=1)[0]}: not found\n".encode())
            chan.send_exit_status(127)
            return
        for kind, text in answer.items:
            if kind == "line":
                chan.sendall(self._render(text).encode() + b"\n")
            elif kind == "stderr":
                chan.sendall_stderr(self._render(text).encode() + b"\n")
            elif kind == "hangup":
                return
        chan.send_exit_status(answer.exit_status)
        chan.shutdown_write()

    def _read_line(self, chan: paramiko.Channel) -> str | None:
        line = b""
        while not line.endswith((b"\n", b"\r")):
            data = chan.recv(1)
            if not data:
                return None
            line += data
        return line.decode().strip()

    def _shell(self, chan: paramiko.Channel) -> None:
        rec = self.recording
        chan.sendall((rec.banner + rec.prompt).encode())
        while True:
            command = self._read_line(chan)
            if command is None or command in ("exit", "quit"):
                return
            if not command:
                chan.sendall(("\r\n" + rec.prompt).encode())
                continue
            self.commands.append(command)
            chan.sendall(command.encode() + b"\r\n")  # the CLI's echo
            answer = self._answer(command)
            if answer is None:
                chan.sendall(b"unknown command\r\n" + rec.prompt.encode())
                continue
            for kind, text in answer.items:
                if kind == "line":
                    chan.sendall(self._render(text).encode() + b"\r\n")
                elif kind == "more":
                    chan.sendall(b" --More-- ")
                    if chan.recv(1) != b" ":
                        return
                    chan.sendall(ERASE.encode())
                elif kind == "hangup":
                    return
            chan.sendall(rec.prompt.encode())
