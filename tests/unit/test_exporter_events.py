"""The auth-log parser of the security-event exporter: each message form of Debian 12/13's sshd, sudo, su, shadow
tools, PAM and fail2ban gives exactly the event written next to it here (by hand, from the programs' log
formats), and the lines around it give none."""

from __future__ import annotations

import pytest

from provsec.exporters.counts import Counts, TopSources
from provsec.exporters.events import EVENTS, Parser

T = b"2026-11-26T09:00:00.123456+07:00 web1 "
OLD = b"Nov  6 09:00:00 web1 "

# (line, expected events as (event, method, user) -> count)
CASES: list[tuple[bytes, dict[tuple[str, str, str], int]]] = [
    (T + b"sshd[812]: Failed password for invalid user oracle from 198.18.5.7 port 50122 ssh2",
     {("ssh_failed", "password", "other"): 1}),
    (T + b"sshd[812]: Failed password for root from 198.18.5.7 port 50122 ssh2",
     {("ssh_failed", "password", "other"): 1}),
    (T + b"sshd[812]: Failed publickey for provsec from 198.18.0.2 port 40000 ssh2: ED25519 SHA256:abc",
     {("ssh_failed", "publickey", "provsec"): 1}),
    (T + b"sshd[812]: Failed none for invalid user  from 198.18.5.7 port 1 ssh2",
     {("ssh_failed", "none", "other"): 1}),
    (T + b"sshd-session[90]: Failed keyboard-interactive/pam for provsec from 198.18.0.2 port 2 ssh2",
     {("ssh_failed", "keyboard-interactive", "provsec"): 1}),
    (T + b"sshd[812]: Invalid user oracle from 198.18.5.7 port 50122",
     {("ssh_invalid_user", "none", "other"): 1}),
    (T + b"sshd[812]: Invalid user a user with spaces from 198.18.5.7 port 50122",
     {("ssh_invalid_user", "none", "other"): 1}),
    (OLD + b"sshd[9]: Accepted publickey for provsec from 198.18.0.2 port 5000 ssh2: ED25519 SHA256:x",
     {("ssh_accepted", "publickey", "provsec"): 1}),
    (T + b"sshd[9]: Accepted password for alice from 198.18.0.2 port 5000 ssh2",
     {("ssh_accepted", "password", "other"): 1}),
    (T + b"sshd[9]: Accepted gssapi-with-mic for provsec from 198.18.0.2 port 5000 ssh2",
     {("ssh_accepted", "other", "provsec"): 1}),
    (T + b"sshd[812]: message repeated 4 times: [ Failed password for root from 198.18.5.7 port 50122 ssh2]",
     {("ssh_failed", "password", "other"): 4}),
    (T + b"sudo: provsec : TTY=pts/0 ; PWD=/home/provsec ; USER=root ; COMMAND=/usr/bin/id",
     {("sudo_command", "", "provsec"): 1}),
    (T + b"sudo:    alice : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c true",
     {("sudo_command", "", "other"): 1}),
    (T + b"sudo: pam_unix(sudo:auth): authentication failure; logname=provsec uid=1000 euid=0 tty=/dev/pts/0 "
     b"ruser=provsec rhost=  user=provsec", {("sudo_auth_failure", "", "provsec"): 1}),
    (T + b"sudo: provsec : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id",
     {}),
    (T + b"sudo:    alice : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/id",
     {("sudo_denied", "", "other"): 1}),
    (T + b"su[77]: (to root) provsec on pts/0", {("su", "", "provsec"): 1}),
    (T + b"su[77]: FAILED SU (to root) alice on pts/1", {("su_failure", "", "other"): 1}),
    (T + b"su[77]: pam_unix(su:auth): authentication failure; logname=alice uid=1001 euid=0 tty=/dev/pts/1 "
     b"ruser=alice rhost=  user=root", {}),
    (T + b"useradd[300]: new user: name=mallory, UID=1002, GID=1002, home=/home/mallory, shell=/bin/bash, "
     b"from=/dev/pts/0", {("user_added", "", "other"): 1}),
    (T + b"useradd[300]: new group: name=mallory, GID=1002", {("group_changed", "", "other"): 1}),
    (T + b"useradd[300]: add 'mallory' to group 'sudo'", {("group_changed", "", "other"): 1}),
    (T + b"useradd[300]: add 'mallory' to shadow group 'sudo'", {}),
    (T + b"usermod[301]: add 'provsec' to group 'adm'", {("group_changed", "", "provsec"): 1}),
    (T + b"usermod[301]: change user 'mallory' shell from '/bin/sh' to '/bin/bash'",
     {("user_modified", "", "other"): 1}),
    (T + b"usermod[301]: change user 'provsec' password", {("password_changed", "", "provsec"): 1}),
    (T + b"usermod[301]: lock user 'mallory' password", {("user_modified", "", "other"): 1}),
    (T + b"userdel[302]: delete user 'mallory'", {("user_deleted", "", "other"): 1}),
    (T + b"userdel[302]: removed group 'mallory' owned by 'mallory'", {("group_changed", "", "other"): 1}),
    (T + b"userdel[302]: removed shadow group 'mallory' owned by 'mallory'", {}),
    (T + b"groupadd[303]: group added to /etc/group: name=ops, GID=1003", {}),
    (T + b"groupadd[303]: group added to /etc/gshadow: name=ops", {}),
    (T + b"groupadd[303]: new group: name=ops, GID=1003", {("group_changed", "", "other"): 1}),
    (T + b"groupdel[304]: group 'ops' removed from /etc/group", {}),
    (T + b"groupdel[304]: group 'ops' removed", {("group_changed", "", "other"): 1}),
    (T + b"groupmod[305]: group changed in /etc/group (group ops/1003, new name: ops2)",
     {("group_changed", "", "other"): 1}),
    (T + b"gpasswd[306]: user mallory added by root to group sudo", {("group_changed", "", "other"): 1}),
    (T + b"passwd[307]: pam_unix(passwd:chauthtok): password changed for provsec",
     {("password_changed", "", "provsec"): 1}),
    (T + b"chpasswd[308]: pam_unix(chpasswd:chauthtok): password changed for alice",
     {("password_changed", "", "other"): 1}),
    (b"2026-11-26 09:00:00,123 fail2ban.actions        [640]: NOTICE  [sshd] Ban 198.18.5.7",
     {("fail2ban_ban", "", ""): 1}),
    (b"2026-11-26 09:00:00,123 fail2ban.actions        [640]: NOTICE  [sshd] Restore Ban 198.18.5.7", {}),
    (b"2026-11-26 09:00:00,123 fail2ban.actions        [640]: NOTICE  [sshd] Unban 198.18.5.7", {}),
    # Lines from other programs and other sshd lines: no event.
    (T + b"CRON[400]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", {}),
    (T + b"sshd[812]: Connection closed by invalid user oracle 198.18.5.7 port 50122 [preauth]", {}),
    (T + b"sshd[812]: pam_unix(sshd:session): session opened for user provsec(uid=1000) by (uid=0)", {}),
    (T + b"systemd-logind[300]: New session 4 of user provsec.", {}),
    (T + b"kernel: Failed password for root from 198.18.5.7 port 1 ssh2", {}),  # not sshd: forged
    (b"Failed password for root from 198.18.5.7 port 1 ssh2", {}),  # no syslog prefix
    (T + b"sshd[1]: Failed password for \xff\xfe\x00bin from 198.18.5.7 port 2 ssh2",
     {("ssh_failed", "password", "other"): 1}),  # not UTF-8, a NUL: still one event
    (b"\x00\x01\x02\xff binary garbage \xc3\x28", {}),
]


def parse_lines(data: bytes, admins: tuple[str, ...] = ("provsec",)) -> Counts:
    counts = Counts()
    Parser(counts, admins).block(data)
    return counts


@pytest.mark.parametrize(("line", "expected"), CASES, ids=range(len(CASES)))
def test_each_message_form(line: bytes, expected: dict[tuple[str, str, str], int]) -> None:
    assert parse_lines(line + b"\n").events == expected


def test_a_block_of_all_lines_sums_the_cases() -> None:
    block = b"".join(line + b"\n" for line, _ in CASES)
    total: dict[tuple[str, str, str], int] = {}
    for _, expected in CASES:
        for key, value in expected.items():
            total[key] = total.get(key, 0) + value
    assert parse_lines(block).events == total


def test_every_event_of_the_closed_set_is_produced_by_some_case() -> None:
    produced = {key[0] for _, expected in CASES for key in expected}
    assert produced == set(EVENTS)


def test_journal_messages_use_the_identifier_not_a_prefix() -> None:
    counts = Counts()
    parser = Parser(counts, ["provsec"])
    parser.message(b"sshd-session", b"Accepted publickey for provsec from 198.18.0.2 port 5000 ssh2")
    parser.message(b"fail2ban.actions", b"NOTICE  [sshd] Ban 198.18.5.7")
    parser.message(b"useradd", b"new user: name=x, UID=1, GID=1, home=/, shell=/bin/sh, from=none")
    parser.message(b"bash", b"Accepted publickey for provsec from 198.18.0.2 port 5000 ssh2")
    parser.message(b"sshd", b"Failed password for root from 198.18.5.7 port 1 ssh2")
    parser.message(b"sshd", b"Invalid user x from 198.18.5.7 port 2")
    assert counts.events == {("ssh_accepted", "publickey", "provsec"): 1, ("fail2ban_ban", "", ""): 1,
                             ("user_added", "", "other"): 1, ("ssh_failed", "password", "other"): 1,
                             ("ssh_invalid_user", "none", "other"): 1}
    assert counts.top.largest(counts.clock()) == [("198.18.5.7", 2)]


def test_failed_sources_feed_the_top_k_and_names_are_never_labels() -> None:
    block = b"".join(T + b"sshd[1]: Failed password for invalid user u%d from 198.18.5.%d port 1 ssh2\n"
                     % (i, i % 3) for i in range(30))
    counts = parse_lines(block + T + b"sshd[1]: Invalid user z from host.example port 2\n")
    assert counts.events == {("ssh_failed", "password", "other"): 30, ("ssh_invalid_user", "none", "other"): 1}
    assert counts.top.largest(counts.clock()) == [("198.18.5.0", 10), ("198.18.5.1", 10), ("198.18.5.2", 10)]


def test_top_sources_are_bounded_expire_and_count_what_they_drop() -> None:
    top = TopSources(top=2, capacity=4, ttl=100.0)
    for address, count, now in [(b"198.18.0.1", 5, 0.0), (b"198.18.0.2", 3, 1.0), (b"198.18.0.3", 1, 2.0),
                                (b"198.18.0.4", 2, 3.0), (b"198.18.0.5", 4, 4.0)]:
        top.add(address, count, now)
    # Full at the fifth: half the table (the two with fewest failures, .3 and .4) made room, counted as dropped.
    assert top.dropped == 2
    assert sorted(top.entries) == [b"198.18.0.1", b"198.18.0.2", b"198.18.0.5"]
    assert top.largest(5.0) == [("198.18.0.1", 5), ("198.18.0.5", 4)]
    # 198.18.0.1 last failed at 0: gone after the TTL; .2 and .5 last failed at 1 and 4.
    assert top.largest(100.5) == [("198.18.0.5", 4), ("198.18.0.2", 3)]
    top.add(b"2001:db8::1", 1, 101.0)
    top.add(b"not-an-address", 1, 101.0)
    top.add(b"198.18.0.256", 1, 101.0)
    top.add(b"198.018.0.1", 1, 101.0)
    assert sorted(top.entries) == [b"198.18.0.2", b"198.18.0.5", b"2001:db8::1"]
    # A failure after the TTL starts the count again.
    top.add(b"198.18.0.2", 1, 250.0)
    assert top.largest(250.0) == [("198.18.0.2", 1)]
