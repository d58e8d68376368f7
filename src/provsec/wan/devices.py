"""Device profiles: how to fetch a WAN edge's running configuration, and how to clean it before it is stored.

A profile is data: the commands, the prompt, the paging marker, the error lines, and the lines that change
without anyone changing the configuration (timestamps, counters, route expiry), which are dropped or
normalised so that two fetches of an unchanged device are byte-for-byte equal and make no commit.

Secrets are never stored: every secret value (IOS `enable secret`, `username … secret|password`,
`snmp-server community`, keys; RouterOS `password=`, `secret=`, keys) is replaced by a keyed fingerprint,
`<secret:hmac-sha256:16 hex digits>`, HMAC-SHA256 of the value with a key read from a root-only (0600) file.
A changed secret still shows as a changed line in the diff, but the value cannot be read from the store, and
without the key it cannot be guessed from a list of candidates either. The same secret gives the same
fingerprint on every device (the key is one per control node): reuse of a secret is visible, by design.

Linux: `nft list ruleset` needs root; the backup account runs it through `sudo -n` (no password prompt: a
missing sudoers rule fails at once with a clear error). The one sudoers line it needs, in
/etc/sudoers.d/provsec-wan (mode 0440, checked with `visudo -cf`):

    provsec-wan ALL=(root) NOPASSWD: /usr/sbin/nft list ruleset, /usr/sbin/sshd -T

`ip route` and `sysctl` are read as the account itself."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provsec.errors import InputError

PROFILES_NAMES = ("linux", "cisco_ios", "routeros")
DEFAULT_PROFILE = "linux"
SUDOERS_LINE = "provsec-wan ALL=(root) NOPASSWD: /usr/sbin/nft list ruleset, /usr/sbin/sshd -T"
FINGERPRINT_HEX = 16  # 64 bits: enough to see a change, far too few to be a stored hash of the secret
MIN_KEY_BYTES = 16

# The net.* keys that make a Linux host a router or keep it from being one (and what the harden role sets).
LINUX_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.all.log_martians",
    "net.ipv4.tcp_syncookies",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.all.accept_ra",
)


class MalformedOutput(InputError):
    """A device's answer is not a whole configuration (truncated, cut off, or not what the command prints)."""

    exit_code = 3


@dataclass(frozen=True)
class Profile:
    name: str
    mode: Literal["exec", "shell"]  # exec: one exec request per command; shell: an interactive CLI
    commands: tuple[str, ...]  # their outputs, in order, are the configuration
    setup: tuple[str, ...] = ()  # shell: sent first (paging off); output checked for errors, then dropped
    username_suffix: str = ""  # appended to the login name (RouterOS console login options)
    prompt: re.Pattern[str] = re.compile(r"$^")  # shell: the last line when the CLI waits for a command
    paging: re.Pattern[str] | None = None  # shell: a pause marker at the end of what was read; answered by a space
    errors: tuple[re.Pattern[str], ...] = ()  # a line matching one: the command failed
    volatile: tuple[re.Pattern[str], ...] = ()  # whole lines dropped
    normalise: tuple[tuple[re.Pattern[str], str], ...] = ()  # substitutions on every line
    secrets: tuple[re.Pattern[str], ...] = ()  # group "value" is replaced by its fingerprint
    check: Callable[[str, str], str | None] = field(default=lambda _command, _text: None)  # why output is bad
    stable: Callable[[str, str], str] = field(default=lambda _command, text: text)  # drops runtime state


def _ios_check(command: str, text: str) -> str | None:
    if command != "show running-config":
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "empty output"
    if lines[-1] != "end":
        return f"it does not end with the line `end` (last line: {lines[-1][:60]!r}): cut off or not a configuration"
    return None


_ROS_HEADER = re.compile(r"^# \S+ \S+ by RouterOS \S+")


def _routeros_check(command: str, text: str) -> str | None:
    if not command.startswith("/export"):
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not _ROS_HEADER.match(lines[0]):
        return "it does not start with the `# <date> <time> by RouterOS <version>` header of an export"
    if lines[-1].rstrip().endswith("\\"):
        return "its last line ends with `\\` (a continued line): cut off"
    return None


# IOS: `secret 9 $9$…`, `password 7 0822…`, `key 7 …`: an optional encryption type digit, then the value.
_T = r"(?:[0-9] )?"

CISCO_IOS = Profile(
    name="cisco_ios",
    mode="shell",
    setup=("terminal length 0",),
    commands=("show running-config",),
    prompt=re.compile(r"^[A-Za-z0-9][\w.-]*(?:\([\w.-]+\))?[>#] ?$"),
    paging=re.compile(r" ?--More-- ?$"),
    errors=(
        re.compile(r"^% ?Invalid input detected"),
        re.compile(r"^% ?(?:Incomplete|Ambiguous|Unknown) command"),
        re.compile(r"^% ?Authorization failed"),
        re.compile(r"^% ?Bad (?:secret|passwords)"),
    ),
    volatile=(
        re.compile(r"^Building configuration\.\.\.\s*$"),
        re.compile(r"^Current configuration ?: ?\d+ bytes\s*$"),
        re.compile(r"^! Last configuration change at "),
        re.compile(r"^! NVRAM config last updated at "),
        re.compile(r"^! No configuration change since last restart"),
        re.compile(r"^ntp clock-period \d+\s*$"),
    ),
    secrets=(
        re.compile(rf"^enable (?:secret|password) (?:level \d+ )?{_T}(?P<value>\S+)"),
        re.compile(rf"^username \S+ (?:.* )?(?:secret|password) {_T}(?P<value>\S+)"),
        re.compile(r"^snmp-server community (?P<value>\S+)"),
        re.compile(rf"^\s*(?:key-string|authentication-key|password) {_T}(?P<value>\S+)"),
        re.compile(rf"^\s*key {_T}(?P<value>(?![0-9]+$)\S+)$"),  # not `key 1` (a key chain's key id)
        re.compile(rf"^(?:tacacs|radius)-server (?:.* )?key {_T}(?P<value>\S+)"),
        re.compile(rf"^crypto isakmp key {_T}(?P<value>\S+)"),
        re.compile(rf"^\s*neighbor \S+ password {_T}(?P<value>\S+)"),
        re.compile(rf"^\s*(?:ip ospf )?message-digest-key \d+ md5 {_T}(?P<value>\S+)"),
        re.compile(rf"^\s*pre-shared-key (?:.* )?key {_T}(?P<value>\S+)"),
    ),
    check=_ios_check,
)

# RouterOS documents console login options after a `+` in the login name: c (colours off), t (terminal
# auto-detection off), e (dumb terminal): plain text, no escape sequences, no pager.
ROUTEROS = Profile(
    name="routeros",
    mode="shell",
    username_suffix="+cte",
    commands=("/export",),
    prompt=re.compile(r"^\[[^\]\s]+@[^\]]+\] [^>]*> ?$"),
    paging=re.compile(r" ?--More-- ?$"),
    errors=(
        re.compile(r"^\s*bad command name "),
        re.compile(r"^\s*syntax error"),
        re.compile(r"^\s*expected end of command"),
        re.compile(r"^\s*failure: "),
        re.compile(r"^\s*not enough permissions"),
    ),
    volatile=(
        re.compile(r"^# \S+ \S+ by RouterOS "),
        re.compile(r"^# software id = "),
    ),
    secrets=(
        re.compile(r"(?:^|\s)(?:[\w-]*-)?(?:password|secret|passphrase|pre-shared-key|private-key|key)="
                   r"(?P<value>\"(?:[^\"\\]|\\.)*\"|\S+)"),
    ),
    check=_routeros_check,
)

# Tables that a daemon fills at run time: fail2ban's nftables actions ban addresses in `f2b-table`.
RUNTIME_TABLES = ("f2b-table",)
_TABLE = re.compile(r"^table (\S+) (\S+) \{\s*$")
_SET = re.compile(r"^(\s+)(?:set|map) \S+ \{\s*$")


def _nft_stable(command: str, text: str) -> str:
    """`nft list ruleset` without runtime state: a fail2ban table becomes one line, and the elements of sets
    that the ruleset itself fills (flags dynamic or timeout) are dropped; their declarations stay."""
    if not command.endswith("nft list ruleset"):
        return text
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        table = _TABLE.match(line)
        if table and table.group(2) in RUNTIME_TABLES:
            out.append(f"table {table.group(1)} {table.group(2)} {{ }}  # fail2ban's bans: run-time state, not stored")
            while i < len(lines) and lines[i] != "}":
                i += 1
            i += 1
            continue
        block = _SET.match(line)
        if block:
            end = lines.index(f"{block.group(1)}}}", i) if f"{block.group(1)}}}" in lines[i:] else len(lines) - 1
            body = lines[i:end + 1]
            if any(re.match(r"\s*(flags .*\b(dynamic|timeout)\b|timeout )", b) for b in body):
                kept, inside = [], False
                for b in body:
                    if re.match(r"\s*elements = \{", b):
                        inside = not b.rstrip().endswith("}")
                        continue
                    if inside:
                        inside = not b.rstrip().endswith("}")
                        continue
                    kept.append(b)
                body = kept
            out += body
            i = end + 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


LINUX = Profile(
    name="linux",
    mode="exec",
    commands=(
        "sudo -n nft list ruleset",
        "ip -4 route show table all",
        "ip -6 route show table all",
        # /usr/sbin is not in a plain account's PATH; -e: a key the kernel lacks (IPv6 off) is no failure
        "/usr/sbin/sysctl -e " + " ".join(LINUX_SYSCTLS),
        # evidence for `provsec wan audit` (PS-WAN-*): listeners, sshd's effective settings, NTP and syslog.
        # A file that is absent is evidence too (no NTP configured), so cat's complaint is not a failure.
        "ss -ltun",
        "sudo -n sshd -T",
        "cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf 2>/dev/null || true",
        "cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null || true",
    ),
    normalise=(
        (re.compile(r"\bcounter packets \d+ bytes \d+"), "counter packets 0 bytes 0"),
        # a named counter object's body (role wan_edge's per-zone-pair drop counters)
        (re.compile(r"^(\s+)packets \d+ bytes \d+$"), r"\1packets 0 bytes 0"),
        (re.compile(r"\bquota (over )?(\d+ \w+) used \d+ \w+"), r"quota \1\2"),
        (re.compile(r" expires \d+(?:\.\d+)?(?:ms|sec|s|m|h|d)\w*"), ""),  # nft set elements, RA/DHCP routes
        (re.compile(r" linkdown\b"), ""),  # link state, not configuration
    ),
    stable=_nft_stable,
)

PROFILES = {p.name: p for p in (LINUX, CISCO_IOS, ROUTEROS)}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(f"device profile {name!r}: unknown; profiles are {', '.join(PROFILES)}") from None


# --- secrets -------------------------------------------------------------------------------------------------


def load_fingerprint_key(path: Path) -> bytes:
    """The HMAC key: a file readable by its owner only (0600 or 0400), at least 16 bytes."""
    how = (f"create it with: install -m 0600 /dev/null {path} && head -c 32 /dev/urandom | base64 > {path}")
    try:
        st = path.stat()
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise InputError(f"--fingerprint-key {path}: not found; {how}") from None
    except OSError as exc:
        raise InputError(f"--fingerprint-key {path}: cannot read ({exc.strerror or exc})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"--fingerprint-key {path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read it; "
                         f"chmod 0600 {path}")
    if len(data) < MIN_KEY_BYTES:
        raise InputError(f"--fingerprint-key {path}: shorter than {MIN_KEY_BYTES} bytes; {how}")
    return data


def fingerprint(key: bytes, value: str) -> str:
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]
    return f"<secret:hmac-sha256:{digest}>"


def _hide(line: str, patterns: tuple[re.Pattern[str], ...], key: bytes) -> str:
    for pattern in patterns:
        pieces, last = [], 0
        for m in pattern.finditer(line):
            start, end = m.span("value")
            pieces += [line[last:start], fingerprint(key, m.group("value"))]
            last = end
        if pieces:
            line = "".join(pieces) + line[last:]
    return line


# --- cleaning ------------------------------------------------------------------------------------------------


def clean(prof: Profile, outputs: list[tuple[str, str]], key: bytes) -> str:
    """The text to store: each command's output, volatile lines dropped, counters normalised, secrets
    fingerprinted. Several commands are joined under `### <command>` headers (Linux); one is stored as is."""
    parts = []
    for command, output in outputs:
        lines = []
        for raw in prof.stable(command, output).splitlines():
            if any(v.search(raw) for v in prof.volatile):
                continue
            line = raw
            for pattern, repl in prof.normalise:
                line = pattern.sub(repl, line)
            lines.append(_hide(line.rstrip(), prof.secrets, key))
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        body = "\n".join(lines)
        parts.append(f"### {command}\n{body}" if len(outputs) > 1 else body)
    return "\n\n".join(parts) + "\n"


def check_output(prof: Profile, device: str, command: str, text: str) -> None:
    """Raise MalformedOutput when the command's output is not a whole configuration."""
    problem = prof.check(command, text)
    if problem is not None:
        raise MalformedOutput(f"{device}: `{command}`: the output is not a whole configuration: {problem}; "
                              "nothing stored")
