"""The accounts, kernel, banner and services roles on real lab hosts (db1, web1 only), from a fresh and a legacy
state: check mode is harmless, a first run hardens, a second run changes nothing, the admin is never locked out
by password ageing or failed passwords, the break-glass account works at the console only, the kernel role
applies net.* and records kernel.* as not applicable inside the container, legacy services are gone.

Run with PROVSEC_LAB_KEEP=1 on a shared lab; every play is limited to db1 and web1."""

from __future__ import annotations

import base64
import json
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle

HOSTS = ("db1", "web1")
LEGACY = "db1"  # gets legacy services, a world-writable file and directory before the first run
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "roles_accounts_kernel_banner_services.yml"
UNIX_PROFILE = "/usr/share/pam-configs/unix"


@dataclass
class Hardened:
    """The lab after the roles ran, with what the tests need to know about that run."""

    lab: LabHandle
    breakglass_password: str
    extra_vars: Path
    first_run_s: float
    unix_profile: str  # Debian's pam_unix profile (libpam-runtime's /usr/share/pam-configs/unix) on a fresh web1


def ok_run(lab: LabHandle, *args: str) -> dict[str, dict[str, int]]:
    """The roles' playbook on HOSTS, which must succeed; the recap."""
    return lab.play_ok(PLAYBOOK, HOSTS, *args)


def crypt_hash(password: str) -> str:
    res = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True,
                         check=True)
    return res.stdout.strip()


@pytest.fixture(scope="module")
def hardened(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    for host in HOSTS:
        lab.reset_waiting(host)
    unix_profile = lab.root("web1", f"base64 -w0 {UNIX_PROFILE}").stdout.strip()
    assert "nullok" in base64.b64decode(unix_profile).decode(), "Debian's unix profile has no nullok to remove"
    password = f"Kc-{secrets.token_urlsafe(12)}-7a!"
    extra = tmp_path_factory.mktemp("breakglass") / "vault.json"
    extra.write_text(json.dumps({"vault_accounts_breakglass_password_hash": crypt_hash(password)}))
    extra.chmod(0o600)

    # --check --diff on fresh hosts: succeeds and writes nothing.
    before = {h: lab.root(h, "sha1sum /etc/pam.d/common-auth /etc/login.defs /etc/issue.net").stdout for h in HOSTS}
    ok_run(lab, "--check", "--diff", "-e", f"@{extra}")
    for host in HOSTS:
        assert lab.root(host, "sha1sum /etc/pam.d/common-auth /etc/login.defs /etc/issue.net").stdout == before[host]
        assert lab.root(host, "getent passwd breakglass").returncode == 2, f"{host}: check mode created an account"

    # A legacy server: telnet through inetd, rpcbind, a world-writable file and directory.
    prep = lab.root(LEGACY, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q inetutils-telnetd openbsd-inetd "
                            "rpcbind >/dev/null && install -m 0666 /dev/null /etc/legacy-app.conf "
                            "&& install -d -m 0777 /srv/dropbox")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    assert lab.root(LEGACY, "systemctl is-active rpcbind").stdout.strip() == "active"

    started = time.monotonic()
    ok_run(lab, "-e", f"@{extra}")
    first = time.monotonic() - started
    print(f"\nfirst run on {', '.join(HOSTS)}: {first:.1f} s")
    yield Hardened(lab, password, extra, first, unix_profile)


def test_a_second_run_changes_nothing(hardened: Hardened) -> None:
    started = time.monotonic()
    counts = ok_run(hardened.lab, "-e", f"@{hardened.extra_vars}")
    print(f"\nsecond run: {time.monotonic() - started:.1f} s (first {hardened.first_run_s:.1f} s)")
    assert {h: c["changed"] for h, c in counts.items()} == dict.fromkeys(HOSTS, 0)
    # and a check run now has nothing to report either
    counts = ok_run(hardened.lab, "--check", "--diff", "-e", f"@{hardened.extra_vars}")
    assert {h: c["changed"] for h, c in counts.items()} == dict.fromkeys(HOSTS, 0)


def test_the_admin_is_never_locked_out_by_ageing_or_failed_passwords(hardened: Hardened) -> None:
    lab = hardened.lab
    host = "web1"
    assert lab.root(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null").returncode == 0
    # Password ageing: the last change far beyond any maximum age.
    assert lab.root(host, "chage -d 2000-01-01 labadmin").returncode == 0
    ageing = lab.root(host, "chage -l labadmin").stdout
    assert re.search(r"Password expires\s*:\s*never", ageing), ageing
    # Ten failed passwords for the admin, through PAM's login service (common-auth, where pam_faillock sits).
    for _ in range(10):
        assert lab.root(host, "echo wrong-password | pamtester login labadmin authenticate").returncode != 0
    # A user who is not an admin is locked after 5 failures: pam_faillock is really there.
    user_pw = f"Uu-{secrets.token_urlsafe(12)}-9b!"
    assert lab.root(host, f"useradd -m provsec-probe && echo {shlex.quote('provsec-probe:' + user_pw)} | chpasswd"
                    ).returncode == 0
    try:
        for _ in range(5):
            lab.root(host, "echo wrong-password | pamtester login provsec-probe authenticate")
        locked = lab.root(host, f"echo {shlex.quote(user_pw)} | pamtester login provsec-probe authenticate")
        assert locked.returncode != 0, "the right password got in after 5 failures: faillock does not lock"
        assert "provsec-probe" in lab.root(host, "faillock --user provsec-probe").stdout
    finally:
        lab.root(host, "faillock --user provsec-probe --reset; userdel -r provsec-probe")
    # The admin: a new SSH login with its key, and sudo without a password, still work.
    login = lab.ssh(host, "sudo -n true && echo sudo-ok")
    assert login.returncode == 0 and login.stdout.strip() == "sudo-ok", login.stdout + login.stderr
    assert "labadmin" not in lab.root(host, "faillock --user labadmin | tail -n +3").stdout


def test_su_is_refused_to_users_outside_the_su_group(hardened: Hardened) -> None:
    refused = hardened.lab.root("web1", "echo x | runuser -u nobody -- su -s /bin/true labadmin")
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr + refused.stdout


def test_the_break_glass_account_works_at_the_console_only(hardened: Hardened) -> None:
    lab, password = hardened.lab, hardened.breakglass_password
    host = "web1"
    shadow = lab.root(host, "getent shadow breakglass | cut -d: -f2 | cut -c1-3").stdout.strip()
    assert shadow == "$6$", f"no usable password hash: {shadow!r}"
    groups = lab.root(host, "id -nG breakglass").stdout.split()
    assert "ssh-users" not in groups and "sudo" not in groups, groups
    assert re.search(r"Password expires\s*:\s*never", lab.root(host, "chage -l breakglass").stdout)
    # At the console (PAM service login): its password authenticates and the account is allowed.
    console = lab.root(host, f"echo {shlex.quote(password)} | pamtester login breakglass authenticate acct_mgmt")
    assert console.returncode == 0, console.stdout + console.stderr
    # Its own password gives it sudo.
    with_password = f"printf '%s\\n' {shlex.quote(password)} | sudo -S -k -p '' true"
    become = lab.root(host, f"runuser -u breakglass -- sh -c {shlex.quote(with_password)}")
    assert become.returncode == 0, become.stdout + become.stderr
    # Over SSH it is refused by sshd's PAM account stack, even holding a key the host accepts.
    assert lab.root(host, "pamtester sshd breakglass acct_mgmt").returncode != 0
    assert lab.root(host, "install -d -o breakglass -m 700 ~breakglass/.ssh && install -o breakglass -m 600 "
                          "~labadmin/.ssh/authorized_keys ~breakglass/.ssh/authorized_keys").returncode == 0
    try:
        argv = lab.lab.ssh_argv(host)
        argv[-1] = argv[-1].replace("labadmin@", "breakglass@")
        ssh = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30, check=False)
        assert ssh.returncode == 255, f"break-glass logged in over SSH: rc {ssh.returncode} {ssh.stderr}"
    finally:
        lab.root(host, "rm -rf ~breakglass/.ssh")


def test_kernel_net_settings_apply_live_and_kernel_settings_are_recorded_not_applicable(hardened: Hardened) -> None:
    lab = hardened.lab
    for host in HOSTS:
        conf = lab.root(host, "cat /etc/sysctl.d/60-provsec-hardening.conf").stdout
        assert "kernel.randomize_va_space = 2" in conf and "fs.suid_dumpable = 0" in conf
        live = lab.root(host, "sysctl -n net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.send_redirects "
                              "net.ipv4.conf.all.log_martians net.ipv4.tcp_syncookies").stdout.split()
        assert live == ["0", "0", "1", "1"], f"{host}: {live}"
        record = json.loads(lab.root(host, "cat /var/lib/provsec/not-applicable/kernel.json").stdout)
        assert record["container"] is True
        na = {entry["setting"]: entry for entry in record["not_applicable"]}
        entry = na["sysctl kernel.randomize_va_space"]
        assert entry["control"] == "PS-KERNEL-01" and "read-only inside this container" in entry["reason"]
        assert not any(s.startswith("sysctl net.ipv4.conf.all.") for s in na), sorted(na)
        assert any(s.startswith("kernel modules") for s in na)
        assert "install cramfs /bin/false" in lab.root(host, "cat /etc/modprobe.d/60-provsec-disabled.conf").stdout
        assert "* hard core 0" in re.sub(r"\s+", " ", lab.root(host, "cat /etc/security/limits.d/*.conf").stdout)
    # net.* also come back at boot: systemd-sysctl applies the file inside the container too.
    host = "db1"
    assert lab.root(host, "sysctl -qw net.ipv4.conf.all.accept_redirects=1 && "
                          "systemctl restart systemd-sysctl").returncode == 0
    assert lab.root(host, "sysctl -n net.ipv4.conf.all.accept_redirects").stdout.strip() == "0"


def test_legacy_services_are_removed_and_world_writable_files_fixed(hardened: Hardened) -> None:
    lab = hardened.lab
    status = lab.root(LEGACY, "dpkg-query --show --showformat='${Package} ${db:Status-Status}\\n' "
                              "inetutils-telnetd openbsd-inetd 2>/dev/null").stdout
    assert " installed" not in status, status
    assert lab.root(LEGACY, "systemctl is-active rpcbind.service rpcbind.socket").stdout.split() == ["inactive"] * 2
    assert lab.root(LEGACY, "systemctl is-enabled rpcbind.service").stdout.strip() == "masked"
    assert lab.root(LEGACY, "stat -c %a /etc/legacy-app.conf /srv/dropbox").stdout.split() == ["664", "1777"]
    leftover = lab.root(LEGACY, "find / -xdev -type f -perm -0002 -print -quit").stdout.strip()
    assert leftover == "", leftover


def test_the_notice_and_the_account_settings_are_in_place(hardened: Hardened) -> None:
    lab = hardened.lab
    host = "db1"
    notice = lab.root(host, "cat /etc/issue.net").stdout
    assert "CẢNH BÁO" in notice and "03/2022/QĐ-UBND" in notice and "authorized" in notice
    assert not re.search(r"(?i)debian|gnu/linux|\\[mrsv]", notice)
    assert lab.root(host, "cat /etc/issue").stdout == notice
    assert lab.root(host, "stat -c %a /etc/update-motd.d/10-uname").stdout.strip() == "644"
    defs = dict(line.split()[:2] for line in lab.root(host, "grep -E '^(PASS_MAX_DAYS|PASS_MIN_DAYS|UMASK|"
                                                           "ENCRYPT_METHOD)\\s' /etc/login.defs").stdout.splitlines())
    assert defs == {"PASS_MAX_DAYS": "60", "PASS_MIN_DAYS": "1", "UMASK": "027", "ENCRYPT_METHOD": "YESCRYPT"}
    assert "INACTIVE=45" in lab.root(host, "useradd -D").stdout
    # a login shell gets a read-only idle timeout
    shell = lab.ssh(host, "bash -lc 'echo $TMOUT; TMOUT=0 2>&1; echo $TMOUT'")
    assert shell.stdout.split()[:1] == ["900"] and "readonly" in shell.stdout + shell.stderr
    # pwquality refuses a short password and one with too few classes, even from root
    assert lab.root(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null").returncode == 0
    assert lab.root(host, "useradd -m provsec-pwq").returncode == 0
    try:
        for weak in ("Sh0rt!pass", "alllowercaseletters1234"):
            res = lab.root(host, f"printf '%s\\n' {weak} {weak} {weak} {weak} {weak} {weak} | "
                                 "pamtester passwd provsec-pwq chauthtok")
            assert res.returncode != 0, f"{weak!r} accepted"
        strong = "Gq7#vN2@xL9!pR4s"
        res = lab.root(host, f"printf '%s\\n' '{strong}' '{strong}' | pamtester passwd provsec-pwq chauthtok")
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        lab.root(host, "userdel -r provsec-pwq")


def test_an_upgrade_of_libpam_runtime_brings_no_empty_password_login_back(hardened: Hardened) -> None:
    """Seen in CI: libpam-runtime's upgrade rewrote its unix profile with nullok and ran pam-auth-update --package."""
    lab, host = hardened.lab, "web1"
    upgrade = lab.root(host, f"echo {hardened.unix_profile} | base64 -d > {UNIX_PROFILE} "
                             "&& DEBIAN_FRONTEND=noninteractive pam-auth-update --package")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    auth = lab.root(host, "grep -v '^#' /etc/pam.d/common-auth").stdout
    assert re.search(r"\bpam_unix\.so\b", auth), auth
    assert "nullok" not in auth, auth
    # A user with an empty password: PAM lets it in where pam_unix has nullok, and not through common-auth.
    assert lab.root(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null").returncode == 0
    assert lab.root(host, "useradd -m provsec-empty && passwd -d provsec-empty && printf '%s\\n' "
                          "'auth required pam_unix.so nullok' > /etc/pam.d/provsec-nullok-probe && printf '%s\\n' "
                          "'@include common-auth' > /etc/pam.d/provsec-common-probe").returncode == 0
    try:
        with_nullok = lab.root(host, "echo | pamtester provsec-nullok-probe provsec-empty authenticate")
        assert with_nullok.returncode == 0, with_nullok.stdout + with_nullok.stderr
        common = lab.root(host, "echo | pamtester provsec-common-probe provsec-empty authenticate")
        assert common.returncode != 0, "an empty password logs in through common-auth"
    finally:
        lab.root(host, "faillock --user provsec-empty --reset; userdel -r provsec-empty; "
                       "rm -f /etc/pam.d/provsec-nullok-probe /etc/pam.d/provsec-common-probe")
    # provsec-unix is Debian's profile of this release line for line, less nullok (and its own name and conflict)
    ours = lab.root(host, "cat /usr/share/pam-configs/provsec-unix").stdout.splitlines()
    debian = base64.b64decode(hardened.unix_profile).decode().replace(" nullok", "").splitlines()
    assert "Conflicts: unix" in ours
    assert [x for x in ours if not x.startswith(("Name:", "Conflicts:"))] == [x for x in debian
                                                                              if not x.startswith("Name:")]
    # and the next run finds nothing to put right
    counts = ok_run(lab, "-e", f"@{hardened.extra_vars}")
    assert {h: c["changed"] for h, c in counts.items()} == dict.fromkeys(HOSTS, 0)
