"""Backups on the lab (issue 4 §6): playbooks/backup.yml on bak1 (the repository host) and two clients, db1 (real
PostgreSQL and MariaDB with sample data) and web1 (files), real restic 0.18 over sftp into chrooted accounts.

One module fixture resets the three hosts, runs `--check` on them fresh, then backup.yml twice (the second run
changes nothing); the tests then work on what it built, in file order, the destructive ones last (corrupted pack,
disaster). Run with PROVSEC_LAB_KEEP=1 on a shared lab; every play is limited to these hosts."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from labfixture import VENV_BIN, LabHandle

REPO_HOST, DB_HOST, FILE_HOST = "bak1", "db1", "web1"
HOSTS = [REPO_HOST, DB_HOST, FILE_HOST]
PROVSEC = "/opt/provsec/bin/provsec"
TEXTFILE = "/var/lib/prometheus/node-exporter/provsec_backup.prom"
DOCS = "/srv/docs"
RESTIC = "/usr/local/lib/provsec/restic"
# raw restic on a client, on its own repository through its sftp account (what an intruder on the client has)
OWN = f"{RESTIC} -r sftp:provsec-backup-repo:/repo --password-file /etc/provsec/backup/password"

# Sample data: tricky strings on purpose (a dump parser must not count "),(" inside a value as a row break).
DB_SETUP = r"""
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE DATABASE ioffice;
\c ioffice
CREATE TABLE van_ban (id serial PRIMARY KEY, so_ky_hieu text NOT NULL, trich_yeu text);
INSERT INTO van_ban (so_ky_hieu, trich_yeu)
  SELECT g || '/QĐ-UBND', 'Quyết định số ' || g || ' về việc (a),(b) ''trích'' \n' FROM generate_series(1, 4321) g;
CREATE TABLE "NguoiDung" (id int PRIMARY KEY, ten text);
INSERT INTO "NguoiDung" SELECT g, 'Người dùng ' || g FROM generate_series(1, 77) g;
CREATE TABLE nhat_ky_trong (id int);
-- an application role owns the data and a group role reads it: pg_dump names them, pg_dumpall --globals-only has them
CREATE ROLE ioffice_app LOGIN CONNECTION LIMIT 20;
CREATE ROLE "Văn thư" NOLOGIN;
GRANT "Văn thư" TO ioffice_app;
ALTER TABLE van_ban OWNER TO ioffice_app;
GRANT SELECT ON "NguoiDung" TO "Văn thư";
SQL
mariadb <<'SQL'
CREATE DATABASE portal CHARACTER SET utf8mb4;
USE portal;
CREATE TABLE bai_viet (id INT PRIMARY KEY, tieu_de VARCHAR(200), noi_dung TEXT);
INSERT INTO bai_viet SELECT seq, CONCAT('Tin số ', seq), CONCAT('Nội dung ),( ', seq, ' it''s \\ "x"')
  FROM seq_1_to_3210;
CREATE TABLE lien_he (id INT PRIMARY KEY);
SQL
"""

DB_SERVERS = """set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends postgresql mariadb-server >/dev/null
systemctl start postgresql mariadb
"""
COUNTS = """runuser -u postgres -- psql -d ioffice -Atc \
  'select (select count(*) from van_ban), (select count(*) from "NguoiDung"), (select count(*) from nhat_ky_trong)'
mariadb -N -B -e 'select (select count(*) from portal.bai_viet), (select count(*) from portal.lien_he)'
"""
EXPECTED_COUNTS = "4321|77|0\n3210\t0\n"  # the rows DB_SETUP inserted
ROLES = r"""runuser -u postgres -- psql -d ioffice -Atc "select r.rolname, r.rolcanlogin, r.rolconnlimit,
  pg_has_role('ioffice_app', 'Văn thư', 'MEMBER'), (select tableowner from pg_tables where tablename = 'van_ban'),
  has_table_privilege('Văn thư', 'public.\"NguoiDung\"', 'SELECT') from pg_roles r where r.rolname = 'ioffice_app'"
"""
EXPECTED_ROLES = "ioffice_app|t|20|t|ioffice_app|t\n"  # what DB_SETUP made

JOBS = {
    FILE_HOST: [{"name": "docs", "kind": "files", "class": "documents", "paths": [DOCS]}],
    DB_HOST: [
        {"name": "ioffice-db", "kind": "postgresql", "class": "databases", "database": "ioffice"},
        {"name": "portal-db", "kind": "mariadb", "class": "databases", "database": "portal"},
    ],
}


@dataclass
class Backup:
    lab: LabHandle
    vars_file: Path
    vault_args: list[str]
    second_run: dict[str, dict[str, int]]

    def play(self, hosts: list[str], *args: str) -> dict[str, dict[str, int]]:
        return self.lab.play_ok("backup.yml", hosts, *self.vault_args, "-e", f"@{self.vars_file}", *args)

    def provsec(self, host: str, args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.lab.root(host, f"{PROVSEC} backup {args}", timeout=timeout)

    def status(self, host: str) -> dict[str, dict[str, object]]:
        res = self.provsec(host, "status --json")
        return {row["job"]: row for row in json.loads(res.stdout)}

    def metric(self, host: str, name: str, job: str) -> float | None:
        text = self.lab.root(host, f"cat {TEXTFILE}").stdout
        match = re.search(rf'^{name}{{backup_job="{job}"}} (\S+)$', text, re.MULTILINE)
        return float(match.group(1)) if match else None


def sftp(lab: LabHandle, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """One sftp batch command as root on host, through the client's own backup account (its ssh alias)."""
    return lab.root(host, f"echo {shlex.quote(command)} | sftp -b - -F /etc/ssh/ssh_config.d/provsec-backup.conf "
                          "provsec-backup-repo")


def sha_tree(lab: LabHandle, host: str, root: str) -> str:
    return lab.root(host, f"cd {shlex.quote(root)} && find . -type f -print0 | sort -z | xargs -0 sha256sum").stdout


@pytest.fixture(scope="module")
def backup(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backup]:
    started = time.monotonic()
    for host in HOSTS:
        lab.reset_waiting(host)
    work = tmp_path_factory.mktemp("backup")
    vault_password = work / "vault-password"
    vault_password.write_text("lab vault password, test only\n")
    vault_password.chmod(0o600)
    vault_file = work / "backup-vault.yml"
    res = subprocess.run([str(VENV_BIN / "provsec"), "backup", "vault", "-i", str(lab.inventory_dir),
                          "--vault-password-file", str(vault_password), "--file", str(vault_file)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert vault_file.read_text().startswith("$ANSIBLE_VAULT;"), "the passwords are stored encrypted"
    vars_file = work / "lab-backup.yml"
    vars_file.write_text(yaml.safe_dump({
        "backup_vault_file": str(vault_file),
        "backup_clients": [DB_HOST, FILE_HOST],
        "lab_backup_jobs": JOBS,
        "backup_extra_jobs": "{{ lab_backup_jobs[inventory_hostname] | default([]) }}",
    }))
    handle = Backup(lab, vars_file, ["--vault-password-file", str(vault_password)], {})

    marks = [("reset", time.monotonic())]
    db = lab.root(DB_HOST, DB_SERVERS + DB_SETUP, timeout=900, interpreter="bash")
    assert db.returncode == 0, db.stdout[-2000:] + db.stderr[-2000:]
    marks.append(("databases", time.monotonic()))
    files = lab.root(FILE_HOST, f"""set -e; mkdir -p {DOCS}/công-văn/2026 {DOCS}/empty-dir
        head -c 3000000 /dev/urandom > {DOCS}/công-văn/2026/scan.pdf
        printf 'Kính gửi: Sở Thông tin và Truyền thông\\n' > '{DOCS}/công-văn/tờ trình số 12.txt'
        : > {DOCS}/empty; ln -s empty {DOCS}/link; seq 1 200000 > {DOCS}/numbers.txt""", interpreter="bash")
    assert files.returncode == 0, files.stderr

    # Check mode on fresh hosts: succeeds, installs nothing.
    res = lab.play("backup.yml", HOSTS, *handle.vault_args, "-e", f"@{vars_file}", "--check")
    assert res.returncode == 0, res.stdout[-4000:]
    assert lab.root(FILE_HOST, f"test -e {PROVSEC}").returncode == 1
    marks.append(("check mode", time.monotonic()))

    handle.play(HOSTS)
    marks.append(("first run", time.monotonic()))
    handle.second_run = handle.play(HOSTS)
    marks.append(("second run", time.monotonic()))
    steps = ", ".join(f"{name} {end - begin:.0f} s" for (_, begin), (name, end) in zip(
        [("start", started), *marks[:-1]], marks, strict=True))
    print(f"\nbackup lab fixture: {(time.monotonic() - started) / 60:.1f} min ({steps})")
    yield handle


def test_second_run_changes_nothing(backup: Backup) -> None:
    assert {h: c["changed"] for h, c in backup.second_run.items()} == dict.fromkeys(HOSTS, 0)


def test_offline_install_and_secrets_on_the_client(backup: Backup) -> None:
    lab = backup.lab
    version = lab.root(FILE_HOST, f"{RESTIC} version").stdout
    assert version.startswith("restic 0.18"), version
    # the password file from the vault: root only
    assert lab.root(FILE_HOST, "stat -c '%a %U' /etc/provsec/backup/password").stdout.split() == ["600", "root"]
    # pip never reached an index: the venv has exactly the wheels the control node built
    pip = lab.root(FILE_HOST, "/opt/provsec/bin/python -m pip list --path /opt/provsec/lib/python3*/site-packages "
                               "--format json 2>/dev/null || /opt/provsec/bin/python -m pip list --local --format json")
    names = {p["name"].lower().replace("_", "-") for p in json.loads(pip.stdout)}
    assert {"provsec", "resticpy", "prometheus-client"} <= names
    timers = lab.root(FILE_HOST, "systemctl is-enabled provsec-backup.timer provsec-backup-forget.timer "
                                 "provsec-backup-check.timer provsec-backup-drill.timer").stdout.split()
    assert timers == ["enabled"] * 4
    for name in ("provsec-backup", "provsec-backup-forget"):
        unit = lab.root(FILE_HOST, f"systemctl cat {name}.timer").stdout
        assert "Persistent=true" in unit and "RandomizedDelaySec=" in unit, unit
    service = lab.root(FILE_HOST, "systemctl cat provsec-backup-forget.service").stdout
    assert "backup --config /etc/provsec/backup.yml forget" in service, service


def test_round_trip_over_sftp_is_byte_for_byte(backup: Backup) -> None:
    lab = backup.lab
    res = backup.provsec(FILE_HOST, "run")
    assert res.returncode == 0, res.stdout + res.stderr
    status = backup.status(FILE_HOST)
    assert status["docs"]["state"] == "ok" and status["etc"]["state"] == "ok", status
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", str(status["docs"]["finished_at"]))
    res = backup.provsec(FILE_HOST, "restore docs --target /tmp/restore-docs")
    assert res.returncode == 0, res.stderr
    original = sha_tree(lab, FILE_HOST, DOCS)
    assert original.count("\n") == 4
    assert sha_tree(lab, FILE_HOST, f"/tmp/restore-docs{DOCS}") == original
    assert lab.root(FILE_HOST, f"readlink /tmp/restore-docs{DOCS}/link").stdout.strip() == "empty"
    drill = backup.provsec(FILE_HOST, "drill docs --json")
    assert drill.returncode == 0, drill.stdout + drill.stderr
    result = json.loads(drill.stdout)[0]
    assert result["state"] == "ok" and result["files_checked"] == 4, result
    assert backup.metric(FILE_HOST, "provsec_backup_drill_ok", "docs") == 1.0


def test_each_client_reaches_only_its_own_repository(backup: Backup) -> None:
    lab = backup.lab
    ssh = "ssh -F /etc/ssh/ssh_config.d/provsec-backup.conf"
    listing = sftp(lab, FILE_HOST, "ls -a /")
    assert listing.returncode == 0, listing.stderr
    assert "repo" in listing.stdout and "bk-db1" not in listing.stdout  # the chroot: nothing else exists
    # the real path of the repositories does not exist inside the chroot (outside it, it would list every client)
    other = sftp(lab, FILE_HOST, "ls /srv/provsec-backup")
    assert other.returncode != 0 and "bk-db1" not in other.stdout
    # web1's key as db1's account: refused; and no shell for its own account
    wrong = lab.root(FILE_HOST, f"{ssh} -o User=bk-db1 provsec-backup-repo true")
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr, wrong.stderr
    shell = lab.root(FILE_HOST, f"{ssh} provsec-backup-repo id")
    assert "uid=" not in shell.stdout
    # db1's repository, asked for by web1 through restic itself: not there for web1
    # (outside a chroot this would reach the repository and fail on the password, exit 12; here it is not there)
    peek = lab.root(FILE_HOST, OWN.replace(":/repo", ":/srv/provsec-backup/bk-db1/repo") + " snapshots", timeout=120)
    assert peek.returncode == 10, peek.stderr


def test_hardening_the_repository_host_afterwards_keeps_the_backups_working(backup: Backup) -> None:
    """harden.yml rewrites bak1's whole sshd_config and firewall after the backups were set up: the accounts'
    Match block (role backup's meta/sshd.yml) and their SSH port (meta/ports.yml) come through, so web1's next
    backup still lands in its own chroot."""
    lab = backup.lab
    lab.play_ok("harden.yml", [REPO_HOST], "--tags", "ssh,firewall", "-e", f"@{backup.vars_file}")
    web1 = lab.lab.profile().host(FILE_HOST).address
    effective = lab.root(REPO_HOST, f"sshd -T -C user=bk-{FILE_HOST},host={FILE_HOST},addr={web1}")
    lines = effective.stdout.splitlines()
    assert "chrootdirectory /srv/provsec-backup/%u" in lines and "forcecommand internal-sftp" in lines, \
        effective.stdout + effective.stderr
    assert "allowgroups provsec-backup" in lines
    before = json.loads(backup.provsec(FILE_HOST, "snapshots docs --json").stdout)
    res = backup.provsec(FILE_HOST, "run docs --json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)[0]["state"] == "ok", res.stdout
    after = json.loads(backup.provsec(FILE_HOST, "snapshots docs --json").stdout)
    assert len(after) == len(before) + 1
    assert "bk-db1" not in sftp(lab, FILE_HOST, "ls -a /").stdout


def test_database_dumps_and_drills(backup: Backup) -> None:
    res = backup.provsec(DB_HOST, "run", timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    status = backup.status(DB_HOST)
    # role backup added the roles job next to the PostgreSQL job
    assert {j: status[j]["state"] for j in ("ioffice-db", "portal-db", "postgresql-roles")} == dict.fromkeys(
        ("ioffice-db", "portal-db", "postgresql-roles"), "ok"), status
    drill = backup.provsec(DB_HOST, "drill ioffice-db portal-db postgresql-roles --json", timeout=900)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    results = {r["job"]: r for r in json.loads(drill.stdout)}
    assert results["ioffice-db"]["state"] == "ok" and results["ioffice-db"]["tables_checked"] == 3, results
    assert results["portal-db"]["state"] == "ok" and results["portal-db"]["tables_checked"] == 2, results
    # every role exists on db1: the roles drill proves the script applies and changes nothing
    assert results["postgresql-roles"]["state"] == "ok", results
    assert "creates the 0 others applies (rolled back)" in results["postgresql-roles"]["reason"], results
    # the scratch databases are gone
    left = backup.lab.root(DB_HOST, "runuser -u postgres -- psql -Atc \"select datname from pg_database\"; "
                                    "mariadb -N -e 'show databases'").stdout
    assert "provsec_drill" not in left


def test_failing_dump_is_failed_and_leaves_no_snapshot(backup: Backup) -> None:
    lab = backup.lab
    broken = lab.root(DB_HOST, """set -e
        sed -e 's/database: ioffice$/database: no_such_db/' -e 's/name: ioffice-db$/name: broken-db/' \
            /etc/provsec/backup.yml > /root/broken.yml""", interpreter="bash")
    assert broken.returncode == 0, broken.stderr
    res = lab.root(DB_HOST, f"{PROVSEC} backup --config /root/broken.yml run broken-db --json")
    assert res.returncode == 1, res.stdout + res.stderr
    record = json.loads(res.stdout)[0]
    assert record["state"] == "failed" and "exited" in record["reason"] and record["snapshot"] is None, record
    snaps = lab.root(DB_HOST, f"{PROVSEC} backup --config /root/broken.yml snapshots broken-db --json")
    assert json.loads(snaps.stdout) == []


def test_missing_path_is_never_ok(backup: Backup) -> None:
    lab = backup.lab
    conf = lab.root(FILE_HOST, """/usr/bin/python3 - <<'PY'
import yaml
conf = yaml.safe_load(open("/etc/provsec/backup.yml"))
[job] = [j for j in conf["jobs"] if j["name"] == "docs"]
job["paths"].append("/srv/no-such-dir")
yaml.safe_dump(conf, open("/root/missing.yml", "w"))
PY""", interpreter="bash")
    assert conf.returncode == 0, conf.stderr
    res = lab.root(FILE_HOST, f"{PROVSEC} backup --config /root/missing.yml run docs --json")
    assert res.returncode == 1
    record = json.loads(res.stdout)[0]
    assert record["state"] == "partial" and "/srv/no-such-dir" in record["reason"], record


def test_unreachable_repository_host_fails_and_last_success_stays(backup: Backup) -> None:
    lab = backup.lab
    before = backup.metric(FILE_HOST, "provsec_backup_last_success_timestamp_seconds", "docs")
    assert before and before > 0
    # the repository host stops answering: its address now leads to a neighbour that does not exist (ARP fails)
    block = lab.root(FILE_HOST, "ip route add 198.18.0.21/32 via 198.18.0.99")
    assert block.returncode == 0, block.stderr
    try:
        started = time.monotonic()
        res = backup.provsec(FILE_HOST, "run docs --json", timeout=300)
        took = time.monotonic() - started
    finally:
        lab.root(FILE_HOST, "ip route del 198.18.0.21/32 via 198.18.0.99")
    assert res.returncode == 1, res.stdout + res.stderr
    record = json.loads(res.stdout)[0]
    assert record["state"] == "failed", record
    assert took < 180, f"an unreachable repository must fail in bounded time, took {took:.0f} s"
    assert backup.metric(FILE_HOST, "provsec_backup_last_success_timestamp_seconds", "docs") == before
    text = lab.root(FILE_HOST, f"cat {TEXTFILE}").stdout
    assert 'provsec_backup_job_state{backup_job="docs",state="failed"} 1.0' in text


def test_kill_9_mid_backup_then_next_run_and_check_succeed(backup: Backup) -> None:
    lab = backup.lab
    prep = lab.root(FILE_HOST, f"head -c 400000000 /dev/urandom > {DOCS}/big.bin", timeout=300)
    assert prep.returncode == 0, prep.stderr
    lab.root(FILE_HOST, f"nohup {PROVSEC} backup run docs > /root/killed.log 2>&1 &")
    killed = lab.root(FILE_HOST, """for i in $(seq 1 100); do
          if pgrep -f '^/usr/local/lib/provsec/restic .*backup' >/dev/null; then
            sleep 2; pkill -9 -f '^/usr/local/lib/provsec/restic .*backup' && echo killed && exit 0; fi
          sleep 0.2; done; exit 1""",
                      interpreter="bash")
    assert killed.stdout.strip() == "killed", killed.stdout + killed.stderr
    time.sleep(2)
    locks = lab.root(REPO_HOST, "ls /srv/provsec-backup/bk-web1/repo/locks | wc -l").stdout.strip()
    assert locks != "0", "restic was killed before it took its lock: the test proves nothing"
    # run backs up beside the stale lock (a backup's lock is shared); forget needs the exclusive lock: it
    # removes the stale one (dead process) and succeeds
    res = backup.provsec(FILE_HOST, "run docs --json", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    forget = backup.provsec(FILE_HOST, "forget docs --json", timeout=600)
    assert forget.returncode == 0, forget.stdout + forget.stderr
    assert json.loads(forget.stdout)[0]["state"] == "ok", forget.stdout
    assert backup.metric(FILE_HOST, "provsec_backup_forget_ok", "docs") == 1.0
    check = backup.provsec(FILE_HOST, "check --json", timeout=600)
    assert check.returncode == 0 and json.loads(check.stdout)["state"] == "ok", check.stdout + check.stderr
    lab.root(FILE_HOST, f"rm -f {DOCS}/big.bin")
    res = backup.provsec(FILE_HOST, "run docs")  # the latest snapshot holds the documents as they are again
    assert res.returncode == 0, res.stdout + res.stderr


def test_second_site_copy_survives_the_client_deleting_its_backups(backup: Backup) -> None:
    lab = backup.lab
    res = backup.provsec(REPO_HOST, "copy --json", timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    copies = {r["copy"]: r for r in json.loads(res.stdout)}
    assert copies["web1"]["state"] == "ok" and copies["db1"]["state"] == "ok", copies
    before = copies["web1"]["snapshots"]
    assert before >= 2
    # the client cannot see the second site (its chroot holds only its own repository) ...
    listing = sftp(lab, FILE_HOST, "ls /srv")
    assert listing.returncode != 0
    # ... and a client taken over deletes every snapshot of its own repository:
    ids = "python3 -c 'import json,sys; print(\" \".join(s[\"id\"] for s in json.load(sys.stdin)))'"
    wipe = lab.root(FILE_HOST, f"{OWN} unlock && {OWN} forget --prune $({OWN} snapshots --json | {ids})",
                    timeout=300, interpreter="bash")
    assert wipe.returncode == 0, wipe.stdout[-1000:] + wipe.stderr[-1000:]
    res = backup.provsec(REPO_HOST, "copy --json", timeout=900)
    after = {r["copy"]: r for r in json.loads(res.stdout)}["web1"]
    assert after["snapshots"] == before, after
    # the second site still restores the documents, byte for byte
    restored = lab.root(REPO_HOST, "snap=$(/usr/local/lib/provsec/restic -r /srv/provsec-second-site/web1 "
                                   "--password-file /etc/provsec/backup-copy/web1.to snapshots --tag job=docs --json "
                                   "| python3 -c 'import json,sys; print(json.load(sys.stdin)[-1][\"id\"])') && "
                                   "/usr/local/lib/provsec/restic -r /srv/provsec-second-site/web1 --password-file "
                                   "/etc/provsec/backup-copy/web1.to restore $snap --target /tmp/second "
                                   f"--include {DOCS} >/dev/null && cd /tmp/second{DOCS} && find . -type f -print0 | "
                                   "sort -z | xargs -0 sha256sum", timeout=300, interpreter="bash")
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == sha_tree(lab, FILE_HOST, DOCS)
    text = lab.root(REPO_HOST, "cat /var/lib/prometheus/node-exporter/provsec_backup_copy.prom").stdout
    assert 'provsec_backup_copy_ok{copy="web1"} 1.0' in text


def test_corrupted_pack_fails_the_check_and_the_metric_says_so(backup: Backup) -> None:
    lab = backup.lab
    res = backup.provsec(FILE_HOST, "run docs")  # the repository was emptied by the test above
    assert res.returncode == 0, res.stdout + res.stderr
    corrupt = lab.root(REPO_HOST, """set -e
        pack=$(find /srv/provsec-backup/bk-web1/repo/data -type f -size +1k ! -name '*-restic-temp-*' | head -1)
        printf 'XXXX' | dd of="$pack" bs=1 seek=200 conv=notrunc status=none; echo "$pack" """, interpreter="bash")
    assert corrupt.returncode == 0 and corrupt.stdout.strip(), corrupt.stderr
    check = backup.provsec(FILE_HOST, "check --read-data-subset 100% --json", timeout=600)
    assert check.returncode == 1, check.stdout + check.stderr
    assert json.loads(check.stdout)["state"] == "failed"
    text = backup.lab.root(FILE_HOST, f"cat {TEXTFILE}").stdout
    assert re.search(r"^provsec_backup_check_ok(\{[^}]*\})? 0\.0$", text, re.MULTILINE), text


def test_disaster_db1_rebuilt_and_restored_from_vault_and_repository(backup: Backup) -> None:
    """db1 is destroyed and comes back as a fresh host with empty database servers; backup.yml (the inventory and
    the vault: nothing kept from the old db1) reconnects it to its repository, and its databases come back."""
    lab = backup.lab
    assert lab.root(DB_HOST, COUNTS, interpreter="bash").stdout == EXPECTED_COUNTS
    assert lab.root(DB_HOST, ROLES, interpreter="bash").stdout == EXPECTED_ROLES
    lab.reset_waiting(DB_HOST)
    assert lab.root(DB_HOST, "test -e /etc/provsec").returncode == 1, "the reset host must be fresh"
    res = lab.root(DB_HOST, DB_SERVERS, timeout=900, interpreter="bash")
    assert res.returncode == 0, res.stderr[-2000:]
    backup.play([DB_HOST])
    # the database alone does not load on the fresh server (its owner is a role the server lacks): the error says
    # what to restore first, and nothing is left behind
    res = backup.provsec(DB_HOST, "restore ioffice-db --to-database ioffice", timeout=900)
    assert res.returncode == 1 and "restore postgresql-roles --to-server" in res.stderr, res.stdout + res.stderr
    res = backup.provsec(DB_HOST, "restore postgresql-roles --to-server", timeout=900)
    assert res.returncode == 0 and "ioffice_app" in res.stdout, res.stdout + res.stderr
    for job, name in (("ioffice-db", "ioffice"), ("portal-db", "portal")):
        res = backup.provsec(DB_HOST, f"restore {job} --to-database {name}", timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
    assert lab.root(DB_HOST, COUNTS, interpreter="bash").stdout == EXPECTED_COUNTS
    assert lab.root(DB_HOST, ROLES, interpreter="bash").stdout == EXPECTED_ROLES
    # and the rebuilt host backs up again into the same repository
    res = backup.provsec(DB_HOST, "run", timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
