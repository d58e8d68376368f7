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
SYSLOG_LINE = re.compile(
    rb"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"(?:sshd(?:-session|-auth)?\[\d+\]: (?:"
    rb"Failed (\S+) for (invalid user )?(.*) from (\S+) port \d+"
    rb"|Accepted (\S+) for (.*) from (\S+) port \d+"
    rb"|Invalid user (.*) from (\S+?)(?: port \d+)?[ \t]*$"
    rb"|(message repeated .*))"
    rb"|(sudo|su|useradd|userdel|usermod|groupadd|groupdel|groupmod|gpasswd|passwd|chpasswd|newusers)"
    rb"(?:\[\d+\])?: (.*))",
    re.MULTILINE,
)
# fail2ban's log file ("2026-11-26 09:00:00,123 fail2ban.actions [812]: NOTICE  [sshd] Ban 198.18.1.9") or its
# syslog/journal form. "Restore Ban" (fail2ban restarted) is not a new ban.
FAIL2BAN_LINE = re.compile(rb"fail2ban\.actions[ \t]*(?:\[\d+\])?:[ \t]+\w+[ \t]+\[[^\]\n]+\] Ban ([^\s]+)")
FAIL2BAN_MESSAGE = re.compile(rb"^(?:fail2ban\.actions\s*(?:\[\d+\])?:\s+)?\w+\s+\[[^\]\n]+\] Ban ([^\s]+)")

_SSH_FAILED = re.compile(rb"Failed (\S+) for (invalid user )?(.*) from (\S+) port \d+")
_SSH_ACCEPTED = re.compile(rb"Accepted (\S+) for (.*) from (\S+) port \d+")
_SSH_INVALID = re.compile(rb"Invalid user (.*) from (\S+)(?: port \d+)?\s*$")
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
    """Turns (tag, message) pairs and blocks of syslog lines into events passed to `emit`."""

    def __init__(self, counts: Counts, admins: Collection[str] = ()) -> None:
        self.counts = counts
        self.emit = counts.emit
        self.admins = {name.encode("utf-8", "surrogateescape"): name for name in admins}

    def user(self, raw: bytes) -> str:
        return self.admins.get(raw.strip(), OTHER_USER)

    def block(self, data: bytes) -> None:
        """Every complete line of `data` (a block of a syslog-format file). The frequent sshd events are
        collected in lists and counted with Counter (in C); only their distinct values reach Python code."""
        failed: list[tuple[bytes | None, ...]] = []  # (method, "invalid user " or None, user)
        accepted: list[tuple[bytes | None, ...]] = []  # (method, user)
        invalid = 0
        sources: list[bytes] = []
        message = self.message
        for match in SYSLOG_LINE.finditer(data):
            branch = match.lastindex
            if branch == 4:
                failed.append(match.group(1, 2, 3))
                sources.append(match.group(4))
            elif branch == 9:
                invalid += 1
                sources.append(match.group(9))
            elif branch == 7:
                accepted.append(match.group(5, 6))
            elif branch == 10:
                message(b"sshd", match.group(10))
            elif branch == 12:
                message(match.group(11), match.group(12))
        self._count_sshd(failed, accepted, invalid, sources)
        if b"fail2ban.actions" in data:
            bans = sum(1 for _ in FAIL2BAN_LINE.finditer(data))
            if bans:
                self.emit("fail2ban_ban", "", "", None, bans)

    def _count_sshd(self, failed: list[tuple[bytes | None, ...]], accepted: list[tuple[bytes | None, ...]],
                    invalid: int, sources: list[bytes]) -> None:
        events = self.counts.events
        for (method, invalid_user, user), count in Counter(failed).items():
            key = ("ssh_failed", ssh_method(method or b""), OTHER_USER if invalid_user else self.user(user or b""))
            events[key] = events.get(key, 0) + count
        for (method, user), count in Counter(accepted).items():
            key = ("ssh_accepted", ssh_method(method or b""), self.user(user or b""))
            events[key] = events.get(key, 0) + count
        if invalid:
            key = ("ssh_invalid_user", "none", OTHER_USER)
            events[key] = events.get(key, 0) + invalid
        if sources:
            now = self.counts.clock()
            add = self.counts.top.add
            for address, count in Counter(sources).items():
                add(address, count, now)

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
                self.emit("fail2ban_ban", "", "", None, count)
        else:
            self._accounts(text, count)

    def _sshd(self, text: bytes, count: int) -> None:
        if text.startswith(b"Failed "):
            failed = _SSH_FAILED.match(text)
            if failed is not None:
                user = OTHER_USER if failed.group(2) else self.user(failed.group(3))
                self.emit("ssh_failed", ssh_method(failed.group(1)), user, failed.group(4), count)
        elif text.startswith(b"Accepted "):
            accepted = _SSH_ACCEPTED.match(text)
            if accepted is not None:
                self.emit("ssh_accepted", ssh_method(accepted.group(1)), self.user(accepted.group(2)),
                          accepted.group(3), count)
        elif text.startswith(b"Invalid user "):
            invalid = _SSH_INVALID.match(text)
            if invalid is not None:
                self.emit("ssh_invalid_user", "none", OTHER_USER, invalid.group(2), count)

    def _sudo(self, text: bytes, count: int) -> None:
        if text.startswith(b"pam_unix("):
            failure = _PAM_AUTH_FAILURE.match(text)
            if failure is not None:
                self.emit("sudo_auth_failure", "", self.user(failure.group(1)), None, count)
            return
        who = _SUDO_USER.match(text)
        if who is None:
            return
        if b"user NOT in sudoers" in text or b"command not allowed" in text or b"NOT authorized" in text:
            self.emit("sudo_denied", "", self.user(who.group(1)), None, count)
        elif b"incorrect password attempt" in text:
            return  # the attempts were counted one by one from pam_unix's lines
        elif b" ; COMMAND=" in text:
            self.emit("sudo_command", "", self.user(who.group(1)), None, count)

    def _su(self, text: bytes, count: int) -> None:
        ok = _SU_OK.match(text)
        if ok is not None:
            self.emit("su", "", self.user(ok.group(1)), None, count)
            return
        failed = _SU_FAILED.match(text)
        if failed is not None:
            self.emit("su_failure", "", self.user(failed.group(1)), None, count)

    def _accounts(self, text: bytes, count: int) -> None:
        if text.startswith(b"pam_unix("):
            changed = _PASSWORD_CHANGED.match(text)
            if changed is not None:
                self.emit("password_changed", "", self.user(changed.group(1)), None, count)
            return
        if (match := _NEW_USER.match(text)) is not None:
            self.emit("user_added", "", self.user(match.group(1)), None, count)
            return
        if (match := _DELETE_USER.match(text)) is not None:
            self.emit("user_deleted", "", self.user(match.group(1)), None, count)
            return
        if (match := _CHANGE_USER.match(text)) is not None:
            event = "password_changed" if match.group(2) == b"password" else "user_modified"
            self.emit(event, "", self.user(match.group(1)), None, count)
            return
        if (match := _LOCK_USER.match(text)) is not None:
            self.emit("user_modified", "", self.user(match.group(1)), None, count)
            return
        if (match := _GROUP_MEMBER.match(text) or _GPASSWD.match(text)) is not None:
            self.emit("group_changed", "", self.user(match.group(1)), None, count)
            return
        if _GROUP_NEW.match(text) or _GROUP_REMOVED.match(text) or _GROUP_CHANGED.match(text):
            self.emit("group_changed", "", OTHER_USER, None, count)
