"""SSH to a WAN edge and read what its configuration commands print: the only wan module importing paramiko.

Authentication is by key only (the key file given; no agent, no ~/.ssh lookup, no password). The server's
host key must be in the known_hosts file given, under the address (`[address]:port` when the port is not 22):
an unknown or changed key is refused before any credential is sent, and never added. Only the key types that
known_hosts holds for the device are offered in the negotiation, so a device with an RSA and an Ed25519 key
is checked against the one the file knows.

Two modes (devices.Profile.mode):
- exec (Linux): one exec request per command; a non-zero exit status is an error with the command's stderr.
- shell (Cisco IOS, RouterOS): an interactive CLI on a pty: wait for the prompt, send each command, answer a
  paging marker (`--More--`) with a space, read up to the next prompt; a line of the profile's error
  patterns (`% Invalid input detected`, `bad command name`, `syntax error`) is an error naming the device and
  the command; a session that closes before the prompt comes back is a cut-off output.

Every read is bounded by a deadline (Limits.command_timeout per command) and a byte count (Limits.max_bytes)."""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from provsec.errors import InputError, ProvsecError
from provsec.wan.devices import Profile

_LOG_CHANNEL = "provsec.wan.paramiko"
logging.getLogger(_LOG_CHANNEL).addHandler(logging.NullHandler())
logging.getLogger(_LOG_CHANNEL).propagate = False

_ERASE = re.compile(r"\x08+ *\x08*")  # a pager's marker erased with backspaces (and spaces over it)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_RSA = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


class DeviceError(ProvsecError):
    """The device could not be reached, refused the login, or a command failed: nothing is stored."""

    exit_code = 3


class HostKeyError(InputError):
    """The device's host key is not the one known_hosts holds for it (or known_hosts has none)."""


@dataclass(frozen=True)
class Endpoint:
    name: str  # the inventory host
    address: str
    port: int
    user: str


@dataclass(frozen=True)
class Credentials:
    key_file: Path  # private key of the backup account (not passphrase-protected: the timer runs unattended)
    known_hosts: Path


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10.0
    command_timeout: float = 60.0  # per command, from sending it to its prompt (or exit status)
    max_bytes: int = 8 * 1024 * 1024  # per command's output


def _known_key(endpoint: Endpoint, known_hosts: Path) -> dict[str, paramiko.PKey]:
    keys = paramiko.HostKeys()
    try:
        keys.load(str(known_hosts))
    except FileNotFoundError:
        raise InputError(f"--known-hosts {known_hosts}: not found") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise InputError(f"--known-hosts {known_hosts}: cannot read ({exc})") from None
    lookup = endpoint.address if endpoint.port == 22 else f"[{endpoint.address}]:{endpoint.port}"
    entry = keys.lookup(lookup)
    if not entry:
        raise HostKeyError(
            f"{endpoint.name}: no host key for {lookup} in {known_hosts}: check the device's key fingerprint on "
            f"its console, then add its line (ssh-keyscan -p {endpoint.port} {endpoint.address}, compared "
            "with the fingerprint); keys are never added automatically")
    return {name: entry[name] for name in entry.keys()}  # noqa: SIM118 - SubDict iterates differently


def _read_key(path: Path) -> paramiko.PKey:
    if hasattr(paramiko.PKey, "from_path"):  # paramiko >= 3.2 tells the key type itself
        key: paramiko.PKey = paramiko.PKey.from_path(path)
        return key
    # paramiko 2.12 (Debian 12's python3-paramiko, what the hosts' venv sees): try each type in turn
    last: Exception = paramiko.SSHException("no key type matched")
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(str(path))
        except paramiko.PasswordRequiredException:
            raise
        except paramiko.SSHException as exc:
            last = exc
    raise last


def _load_key(path: Path) -> paramiko.PKey:
    try:
        return _read_key(path)
    except FileNotFoundError:
        raise InputError(f"--key-file {path}: not found") from None
    except paramiko.PasswordRequiredException:
        raise InputError(f"--key-file {path}: protected by a passphrase; the backup runs unattended and needs "
                         "a key without one, readable by root only") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise InputError(f"--key-file {path}: not a private key paramiko can read ({exc})") from None


def _check_host_key(where: str, key: paramiko.PKey, known: dict[str, paramiko.PKey], known_hosts: Path) -> None:
    expected = known.get(key.get_name())
    if expected is None or expected != key:
        raise HostKeyError(
            f"{where}: HOST KEY MISMATCH: the device offered {key.get_name()} {key.fingerprint}, which is not "
            f"the key {known_hosts} holds for it; refusing to log in. If the device was replaced or re-keyed, "
            "verify the new fingerprint on its console and replace its line in known_hosts; otherwise treat it "
            "as an attack on the WAN")


def _connect(endpoint: Endpoint, creds: Credentials, limits: Limits) -> paramiko.Transport:
    known = _known_key(endpoint, creds.known_hosts)
    pkey = _load_key(creds.key_file)
    where = f"{endpoint.name} ({endpoint.address}:{endpoint.port})"
    try:
        sock = socket.create_connection((endpoint.address, endpoint.port), timeout=limits.connect_timeout)
    except OSError as exc:
        raise DeviceError(f"{where}: cannot connect ({exc.strerror or exc})") from None
    transport = paramiko.Transport(sock)
    transport.set_log_channel(_LOG_CHANNEL)
    transport.banner_timeout = limits.connect_timeout
    transport.handshake_timeout = limits.connect_timeout
    transport.auth_timeout = limits.connect_timeout
    offered = [t for name in known for t in (_RSA if name == "ssh-rsa" else (name,))]
    options = transport.get_security_options()
    supported = [t for t in offered if t in options.key_types]
    if supported:
        options.key_types = supported
    try:
        transport.start_client(timeout=limits.connect_timeout)
        _check_host_key(where, transport.get_remote_server_key(), known, creds.known_hosts)
        transport.auth_publickey(endpoint.user, pkey)
    except HostKeyError:
        transport.close()
        raise
    except paramiko.AuthenticationException:
        transport.close()
        raise DeviceError(f"{where}: the device refused the key of {creds.key_file} for user "
                          f"{endpoint.user!r}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        reason = str(exc) or f"{type(exc).__name__}: the device closed the connection"
        raise DeviceError(f"{where}: SSH failed ({reason})") from None
    return transport


def fetch(endpoint: Endpoint, profile: Profile, creds: Credentials, limits: Limits | None = None
          ) -> list[tuple[str, str]]:
    """(command, output) for each of the profile's configuration commands. Raises DeviceError, HostKeyError."""
    limits = limits or Limits()
    login = Endpoint(endpoint.name, endpoint.address, endpoint.port, endpoint.user + profile.username_suffix)
    transport = _connect(login, creds, limits)
    try:
        if profile.mode == "exec":
            return [(cmd, _exec(transport, endpoint.name, cmd, limits)) for cmd in profile.commands]
        return _shell(transport, endpoint.name, profile, limits)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        reason = str(exc) or f"{type(exc).__name__}: the device closed the connection"
        raise DeviceError(f"{endpoint.name}: SSH session failed ({reason}); nothing stored") from None
    finally:
        transport.close()


def _close(chan: paramiko.Channel) -> None:
    """Close a channel whose work is done: a device that already hung up (after `exit`) is no error."""
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        chan.close()


def _clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def _decode(data: bytes) -> str:
    return _clean(data.decode("utf-8", errors="replace"))


def _exec(transport: paramiko.Transport, device: str, command: str, limits: Limits) -> str:
    chan = transport.open_session(timeout=limits.connect_timeout)
    try:
        chan.exec_command(command)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + limits.command_timeout
        while True:
            got = False
            if chan.recv_ready():
                out += chan.recv(65536)
                got = True
            if chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                got = True
            if len(out) + len(err) > limits.max_bytes:
                raise DeviceError(f"{device}: `{command}` printed more than {limits.max_bytes} bytes; "
                                  "nothing stored")
            if not got:
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise DeviceError(f"{device}: `{command}` did not finish within "
                                      f"{limits.command_timeout:.0f} s; nothing stored")
                time.sleep(0.005)
        status = chan.recv_exit_status()
    finally:
        _close(chan)
    if status != 0:
        tail = " | ".join(_decode(bytes(err or out)).strip().splitlines()[-3:]) or "no output"
        hint = ""
        if command.startswith("sudo -n") and "password" in tail:
            hint = " (the backup account needs a sudoers rule, see src/provsec/wan/README.md)"
        raise DeviceError(f"{device}: `{command}` exited {status}: {tail}{hint}; nothing stored")
    return _decode(bytes(out))


def _last_line(text: str) -> str:
    return text.rsplit("\n", 1)[-1]


class _Shell:
    def __init__(self, chan: paramiko.Channel, device: str, profile: Profile, limits: Limits) -> None:
        self.chan, self.device, self.profile, self.limits = chan, device, profile, limits

    def read_to_prompt(self, what: str) -> str:
        """What the device prints up to its prompt, pages joined; raises DeviceError on close or timeout."""
        buf = ""
        received = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        deadline = time.monotonic() + self.limits.command_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceError(f"{self.device}: {what}: no prompt within {self.limits.command_timeout:.0f} s "
                                  f"({received} bytes read); nothing stored")
            self.chan.settimeout(min(remaining, 0.5))
            try:
                data = self.chan.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise DeviceError(f"{self.device}: {what}: the session closed before the prompt came back "
                                  f"({received} bytes read): output cut off; nothing stored")
            received += len(data)
            if received > self.limits.max_bytes:
                raise DeviceError(f"{self.device}: {what}: more than {self.limits.max_bytes} bytes; nothing "
                                  "stored")
            buf += _clean(decoder.decode(data))
            paging = self.profile.paging
            if paging is not None and paging.search(_last_line(buf)):
                buf = paging.sub("", buf)
                self.chan.sendall(b" ")
                continue
            if self.profile.prompt.match(_last_line(buf)):
                return _ERASE.sub("", buf.rsplit("\n", 1)[0] if "\n" in buf else "")

    def run(self, command: str) -> str:
        self.chan.sendall(command.encode() + b"\n")
        text = self.read_to_prompt(f"`{command}`")
        lines = text.split("\n")
        if lines and lines[0].strip().endswith(command):  # the CLI's echo of the command
            lines = lines[1:]
        for line in lines:
            if any(p.search(line) for p in self.profile.errors):
                raise DeviceError(f"{self.device}: `{command}`: the device answered {line.strip()!r}; nothing "
                                  "stored")
        return "\n".join(lines)


def _shell(transport: paramiko.Transport, device: str, profile: Profile, limits: Limits) -> list[tuple[str, str]]:
    chan = transport.open_session(timeout=limits.connect_timeout)
    try:
        chan.get_pty(term="vt100", width=511, height=0)
        chan.invoke_shell()
        shell = _Shell(chan, device, profile, limits)
        shell.read_to_prompt("login")
        for command in profile.setup:
            shell.run(command)
        outputs = [(command, shell.run(command)) for command in profile.commands]
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            chan.sendall(b"exit\n")
        return outputs
    finally:
        _close(chan)
