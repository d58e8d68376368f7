"""Security events from auth log lines: the closed set of events and the parser.

Every source (a log file, the journal) hands the parser what syslog calls the tag (`sshd`, `sudo`, …) and the
message; log files are first split into those two by one regular expression run over a whole block of lines
(the work per line stays in C; only lines from the programs below reach Python). Lines are bytes: an invalid
UTF-8 sequence or a binary byte never stops the parser, and names are decoded with replacement.

The events (label `event` of `provsec_auth_events_total`) — a closed set, documented in exporters/METRICS.md:

    ssh_failed          sshd: "Failed <method> for [invalid user] <user> from <ip>"   (one per failed attempt)
    ssh_invalid_user    sshd: "Invalid user <user> from <ip>"                        (one per connection)
    ssh_accepted        sshd: "Accepted <method> for <user> from <ip>"
    sudo_command        sudo: "<user> : TTY=… ; COMMAND=…"                           (a command was run)
    sudo_auth_failure   sudo: "pam_unix(sudo:auth): authentication failure; … user=<user>" (one per attempt)
    sudo_denied         sudo: "<user> : user NOT in sudoers …" / "command not allowed"
    su                  su:   "(to <target>) <user> on <tty>"
    su_failure          su:   "FAILED SU (to <target>) <user> on <tty>"
    user_added          useradd: "new user: name=<user>, …"
    user_deleted        userdel: "delete user '<user>'"
    user_modified       usermod: "change user '<user>' …" (not the password), "lock/unlock user '<user>' password"
    group_changed       "new group: name=…", "group '…' removed", groupmod, "add/delete '<user>' to/from group",
                        gpasswd "user <user> added/removed by …"  (shadow-file duplicates are not counted)
    password_changed    "pam_unix(<prog>:chauthtok): password changed for <user>", usermod "change user '<user>'
                        password"
    fail2ban_ban        fail2ban.actions: "[<jail>] Ban <ip>"

rsyslog's "message repeated N times: [ … ]" counts its inner message N times. The `method` label is one of
METHODS for SSH events and "" for the others; `user` is the account when it is one of the host's known admin
accounts, else "other" (a guessed user name must never become a label value)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provsec.exporters.counts import Counts

EVENTS = (
    "ssh_failed", "ssh_invalid_user", "ssh_accepted",
    "sudo_command", "sudo_auth_failure", "sudo_denied",
    "su", "su_failure",
    "user_added", "user_deleted", "user_modified", "group_changed", "password_changed",
    "fail2ban_ban",
)
METHODS = ("password", "publickey", "keyboard-interactive", "hostbased", "none", "other")
SSH_FAILURE_EVENTS = frozenset({"ssh_failed", "ssh_invalid_user"})
OTHER_USER = "other"

# One pass over a block of lines: "<time> <host> <tag>[pid]: <message>", <time> in RFC 3339 (rsyslog on Debian)
# or "Mmm dd hh:mm:ss" (traditional format). sshd's three frequent messages are taken apart in the same pass (a
# brute-force attack is millions of them); `lastindex` says which branch matched: 4 failed, 7 accepted, 9 invalid
# user, 10 other sshd, 12 the other programs (tag, message). sshd lines that are none of these (disconnects,
# sessions) and lines of other programs do not match at all and never reach Python. fail2ban's own log has
# another layout and its own expression.
# The programs read: the syslog tags of a file's lines, the journal's SYSLOG_IDENTIFIER matches (sources.py).
SSHD_PROGRAMS = ("sshd", "sshd-session", "sshd-auth")  # OpenSSH ≥ 9.8 (Debian 13) logs as sshd-session
ACCOUNT_PROGRAMS = ("sudo", "su", "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "gpasswd",
                    "passwd", "chpasswd", "newusers")
FAIL2BAN_PROGRAMS = ("fail2ban.actions", "fail2ban-server")
PROGRAMS = SSHD_PROGRAMS + ACCOUNT_PROGRAMS + FAIL2BAN_PROGRAMS
# sshd's three frequent messages, groups 1-4 failed, 5-7 accepted, 8-9 invalid user, 10 "message repeated".
_SSHD = (rb"(?:Failed (\S+) for (invalid user )?(.*) from (\S+) port \d+"
         rb"|Accepted (\S+) for (.*) from (\S+) port \d+"
         rb"|Invalid user (.*) from (\S+?)(?: port \d+)?[ \t]*$"
         rb"|(message repeated .*))")
SSHD_MESSAGE = re.compile(_SSHD)


def _alternatives(names: tuple[str, ...]) -> bytes:
    return b"|".join(re.escape(name.encode()) for name in names)


SYSLOG_LINE = re.compile(
    rb"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"(?:(?:" + _alternatives(SSHD_PROGRAMS) + rb")\[\d+\]: " + _SSHD
    + rb"|(" + _alternatives(ACCOUNT_PROGRAMS) + rb")(?:\[\d+\])?: (.*))",
    re.MULTILINE,
)
# fail2ban's log file ("2026-11-26 09:00:00,123 fail2ban.actions [812]: NOTICE  [sshd] Ban 198.18.1.9") or its
# syslog/journal form. "Restore Ban" (fail2ban restarted) is not a new ban.
FAIL2BAN_LINE = re.compile(rb"fail2ban\.actions[ \t]*(?:\[\d+\])?:[ \t]+\w+[ \t]+\[[^\]\n]+\] Ban ([^\s]+)")
FAIL2BAN_MESSAGE = re.compile(rb"^(?:fail2ban\.actions\s*(?:\[\d+\])?:\s+)?\w+\s+\[[^\]\n]+\] Ban ([^\s]+)")

_REPEATED = re.compile(rb"message repeated (\d+) times: \[ ?(.*)\]\s*$")
_SUDO_USER = re.compile(rb"^\s*(\S+) : ")
_PAM_AUTH_FAILURE = re.compile(rb"pam_unix\([^:)]*:auth\): authentication failure;.*\buser=(\S*)")
_PASSWORD_CHANGED = re.compile(rb"pam_unix\([^:)]*:chauthtok\): password changed for (\S+)")
_SU_OK = re.compile(rb"^\(to \S+\) (\S+) on ")
_SU_FAILED = re.compile(rb"^FAILED SU \(to \S+\) (\S+) on ")
_NEW_USER = re.compile(rb"^new user: name=([^,]+),")
_DELETE_USER = re.compile(rb"^delete user '([^']+)'")
_CHANGE_USER = re.compile(rb"^change user '([^']+)' (\S+)")
_LOCK_USER = re.compile(rb"^(?:lock|unlock) user '([^']+)' password")
_GROUP_MEMBER = re.compile(rb"^(?:add|delete) '([^']+)' (?:to|from) group '")
_GROUP_NEW = re.compile(rb"^new group: name=")
_GROUP_REMOVED = re.compile(rb"^(?:group '[^']+' removed\s*$|removed group '[^']+' owned by ')")
_GROUP_CHANGED = re.compile(rb"^group changed in /etc/group ")
_GPASSWD = re.compile(rb"^user (\S+) (?:added|removed) by \S+ (?:to|from) group ")



_METHOD_NAMES = {name.encode(): name for name in METHODS}


def ssh_method(raw: bytes) -> str:
    name = _METHOD_NAMES.get(raw)
    if name is not None:
        return name
    return "keyboard-interactive" if raw.startswith(b"keyboard-interactive") else "other"


class Parser:
    """Turns (tag, message) pairs and blocks of syslog lines into events, counted in `counts`."""

    def __init__(self, counts: Counts, admins: Collection[str] = ()) -> None:
        self.counts = counts
        self.emit = counts.emit
        self.admins = {name.encode("utf-8", "surrogateescape"): name for name in admins}

    def user(self, raw: bytes) -> str:
        return self.admins.get(raw.strip(), OTHER_USER)

    def block(self, data: bytes) -> None:
        """Every complete line of `data` (a block of a syslog-format file)."""
        batch = _SshdBatch()
        message = self.message
        for match in SYSLOG_LINE.finditer(data):
            branch = match.lastindex
            if branch == 12:
                message(match.group(11), match.group(12))
            elif branch == 10:
                message(b"sshd", match.group(10))
            else:
                batch.take(match, 1)
        batch.count(self)
        if b"fail2ban.actions" in data:
            bans = sum(1 for _ in FAIL2BAN_LINE.finditer(data))
            if bans:
                self.emit("fail2ban_ban", "", "", bans)

    def message(self, tag: bytes, text: bytes, count: int = 1) -> None:
        """One message of program `tag` (syslog tag / journal SYSLOG_IDENTIFIER, without the pid)."""
        if text.startswith(b"message repeated "):
            repeated = _REPEATED.match(text)
            if repeated is not None:
                self.message(tag, repeated.group(2), count * int(repeated.group(1)))
                return
        if tag.startswith(b"sshd"):
            self._sshd(text, count)
        elif tag == b"sudo":
            self._sudo(text, count)
        elif tag == b"su":
            self._su(text, count)
        elif tag.startswith(b"fail2ban"):
            if FAIL2BAN_MESSAGE.match(text) is not None:
                self.emit("fail2ban_ban", "", "", count)
        else:
            self._accounts(text, count)

    def _sshd(self, text: bytes, count: int) -> None:
        match = SSHD_MESSAGE.match(text)
        if match is not None and match.lastindex != 10:
            batch = _SshdBatch()
            batch.take(match, count)
            batch.count(self)

    def _sudo(self, text: bytes, count: int) -> None:
        if text.startswith(b"pam_unix("):
            failure = _PAM_AUTH_FAILURE.match(text)
            if failure is not None:
                self.emit("sudo_auth_failure", "", self.user(failure.group(1)), count)
            return
        who = _SUDO_USER.match(text)
        if who is None:
            return
        if b"user NOT in sudoers" in text or b"command not allowed" in text or b"NOT authorized" in text:
            self.emit("sudo_denied", "", self.user(who.group(1)), count)
        elif b"incorrect password attempt" in text:
            return  # the attempts were counted one by one from pam_unix's lines
        elif b" ; COMMAND=" in text:
            self.emit("sudo_command", "", self.user(who.group(1)), count)

    def _su(self, text: bytes, count: int) -> None:
        ok = _SU_OK.match(text)
        if ok is not None:
            self.emit("su", "", self.user(ok.group(1)), count)
            return
        failed = _SU_FAILED.match(text)
        if failed is not None:
            self.emit("su_failure", "", self.user(failed.group(1)), count)

    def _accounts(self, text: bytes, count: int) -> None:
        if text.startswith(b"pam_unix("):
            changed = _PASSWORD_CHANGED.match(text)
            if changed is not None:
                self.emit("password_changed", "", self.user(changed.group(1)), count)
            return
        if (match := _NEW_USER.match(text)) is not None:
            self.emit("user_added", "", self.user(match.group(1)), count)
            return
        if (match := _DELETE_USER.match(text)) is not None:
            self.emit("user_deleted", "", self.user(match.group(1)), count)
            return
        if (match := _CHANGE_USER.match(text)) is not None:
            event = "password_changed" if match.group(2) == b"password" else "user_modified"
            self.emit(event, "", self.user(match.group(1)), count)
            return
        if (match := _LOCK_USER.match(text)) is not None:
            self.emit("user_modified", "", self.user(match.group(1)), count)
            return
        if (match := _GROUP_MEMBER.match(text) or _GPASSWD.match(text)) is not None:
            self.emit("group_changed", "", self.user(match.group(1)), count)
            return
        if _GROUP_NEW.match(text) or _GROUP_REMOVED.match(text) or _GROUP_CHANGED.match(text):
            self.emit("group_changed", "", OTHER_USER, count)


class _SshdBatch:
    """sshd's frequent events of a block, collected from SSHD_MESSAGE's groups (the same inside SYSLOG_LINE) and
    counted with Counter (in C): only their distinct values reach Python code. A brute-force attack is millions of
    these lines."""

    def __init__(self) -> None:
        self.failed: list[tuple[bytes | None, ...]] = []  # (method, "invalid user " or None, user)
        self.accepted: list[tuple[bytes | None, ...]] = []  # (method, user)
        self.invalid = 0
        self.sources: list[bytes] = []

    def take(self, match: re.Match[bytes], count: int) -> None:
        branch = match.lastindex
        if branch == 4:
            self.failed += [match.group(1, 2, 3)] * count
            self.sources += [match.group(4)] * count
        elif branch == 9:
            self.invalid += count
            self.sources += [match.group(9)] * count
        elif branch == 7:
            self.accepted += [match.group(5, 6)] * count

    def count(self, parser: Parser) -> None:
        events = parser.counts.events
        for (method, invalid_user, user), n in Counter(self.failed).items():
            key = ("ssh_failed", ssh_method(method or b""), OTHER_USER if invalid_user else parser.user(user or b""))
            events[key] = events.get(key, 0) + n
        for (method, user), n in Counter(self.accepted).items():
            key = ("ssh_accepted", ssh_method(method or b""), parser.user(user or b""))
            events[key] = events.get(key, 0) + n
        if self.invalid:
            key = ("ssh_invalid_user", "none", OTHER_USER)
            events[key] = events.get(key, 0) + self.invalid
        if self.sources:
            now = parser.counts.clock()
            for address, n in Counter(self.sources).items():
                parser.counts.top.add(address, n, now)
