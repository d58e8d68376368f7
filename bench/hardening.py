"""What harden.yml costs and what it earns, on fresh province lab hosts.

Prints, each next to its target or baseline measured in this same run:
- first run and idempotent re-run on one host (wall time, changed count) against 60 s and 25 s;
- all six province hosts in parallel against 3x the one-host first run (and the forks used);
- Lynis (Debian's package, default profile) hardening index and warnings on the host before and after;
- two floors under those figures, measured here too: the packages the first run installed or upgraded, put in by
  one raw `apt-get install` on a fresh host (dpkg's own time, which no playbook can go under), and what one
  Ansible module run costs on this machine (a play of PINGS pings), which prices each task of the re-run;
- what the targets leave room for: the first run needs at least that apt floor plus the re-run (the same checks with
  nothing to change); the CPU time the whole machine (controller and lab hosts) spent during each run, which bounds
  the parallel run from below: six hosts cannot finish before their CPU work fits on this machine's cores.
Run as root: `sudo .venv/bin/python bench/hardening.py`. Needs the province lab (it brings it up, resets the
hosts it uses, and leaves the lab up).
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from provsec.lab import Lab

REPO = Path(__file__).resolve().parents[1]
ONE = "db1"
TARGET_FIRST_S, TARGET_AGAIN_S, TARGET_PARALLEL_X = 60.0, 25.0, 3.0
PINGS = 40


def playbook(*args: str) -> tuple[float, str, int]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    res = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(REPO / "inventory/lab"), *args],
                         cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=1800)
    return time.monotonic() - started, res.stdout, res.returncode


SLOWEST = re.compile(r"^(\S.*?) -+ (\d+\.\d+)s$", flags=re.MULTILINE)  # long names get only 1-2 dashes


def failures(output: str) -> list[str]:
    """Each failed task of a run: its TASK header and the first line of its error."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.rstrip(" *")
        elif line.startswith("fatal: ") or (line.startswith("failed: ") and "=>" in line):
            found.append(f"{task}: {line[:300]}")
        elif line.strip() == "...ignoring" and found:
            found.pop()  # ignore_errors: the play went on, nothing failed
    return found


def slowest(output: str, count: int = 8) -> list[tuple[str, float]]:
    """The slowest tasks of a run, from the summary of ansible.cfg's profile_tasks callback."""
    tasks = [(m.group(1).strip(), float(m.group(2))) for m in SLOWEST.finditer(output)]
    return sorted(tasks, key=lambda t: -t[1])[:count]


def counted(output: str, host: str, counter: str) -> int:
    """One counter of the host's line in the play recap (-1 when there is none). "ok" counts every task that ran,
    changed and local ones included."""
    found = re.search(rf"^{re.escape(host)}\s+:.*\b{counter}=(\d+)", output, flags=re.MULTILINE)
    return int(found.group(1)) if found else -1


@dataclass
class LynisRun:
    version: str
    index: str
    warnings: list[str]  # "TEST-ID: text"
    points: dict[str, tuple[int, int]]  # test id -> (points earned, points possible)


POINTS = re.compile(r"Hardening: assigned (?:maximum number of hardening points for this item \((\d+)\)"
                    r"|partial number of hardening points \((\d+) of (\d+)\))")


def lynis_points(log: str) -> dict[str, tuple[int, int]]:
    """Hardening points per Lynis test, from /var/log/lynis.log (each test's section starts with its id)."""
    points: dict[str, tuple[int, int]] = {}
    test = ""
    for line in log.splitlines():
        started = re.search(r"Performing test ID (\S+)", line)
        if started:
            test = started.group(1)
            continue
        got = POINTS.search(line)
        if got and test:
            earned, possible = ((int(got.group(1)),) * 2 if got.group(1)
                                else (int(got.group(2)), int(got.group(3))))
            old = points.get(test, (0, 0))
            points[test] = (old[0] + earned, old[1] + possible)
    return points


def lynis(lab: Lab, host: str) -> LynisRun:
    install = lab.ssh(host, "test -x /usr/sbin/lynis || sudo -n DEBIAN_FRONTEND=noninteractive "
                            "apt-get install -y -qq lynis >/dev/null", timeout=600)
    if install.returncode != 0:
        raise SystemExit(f"{host}: cannot install lynis: {install.stderr}")
    lab.ssh(host, "sudo -n lynis audit system --quick --no-colors --quiet >/dev/null 2>&1", timeout=900)
    report = lab.ssh(host, "sudo -n cat /var/log/lynis-report.dat").stdout
    log = lab.ssh(host, "sudo -n cat /var/log/lynis.log").stdout
    version = re.search(r"^lynis_version=(.*)$", report, flags=re.MULTILINE)
    index = re.search(r"^hardening_index=(\d+)$", report, flags=re.MULTILINE)
    warnings = [f"{m.group(1)}: {m.group(2)}"
                for m in re.finditer(r"^warning\[\]=([^|]*)\|([^|]*)", report, flags=re.MULTILINE)]
    return LynisRun(version.group(1) if version else "?", index.group(1) if index else "?", warnings,
                    lynis_points(log))


def installed(lab: Lab, host: str) -> dict[str, str]:
    """Package name -> version of what dpkg has installed on the host."""
    res = lab.ssh(host, "dpkg-query -W -f '${db:Status-Status} ${Package} ${Version}\\n'")
    if res.returncode != 0:
        raise SystemExit(f"{host}: cannot list the installed packages: {res.stderr}")
    return {f[1]: f[2] for f in (line.split() for line in res.stdout.splitlines())
            if len(f) == 3 and f[0] == "installed"}


def apt_floor(lab: Lab, host: str, packages: list[str]) -> tuple[float, int]:
    """Seconds one raw apt-get install of these packages takes on the (fresh) host, and its exit code."""
    lab.ssh(host, "sudo -n apt-get update -qq", timeout=600)
    started = time.monotonic()
    res = lab.ssh(host, "sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                  + " ".join(packages) + " >/dev/null", timeout=1800)
    return time.monotonic() - started, res.returncode


def busy_cpu() -> float:
    """CPU-seconds this machine has spent busy since boot, on all cores and in every process (the controller and
    the lab hosts alike): user, nice, system, irq and softirq of /proc/stat's first line; idle, iowait and steal are
    not work done here."""
    fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def measured(*args: str) -> tuple[float, str, int, float]:
    """playbook(), and the CPU-seconds the machine spent busy while it ran."""
    cpu = busy_cpu()
    secs, out, rc = playbook(*args)
    return secs, out, rc, busy_cpu() - cpu


def module_cost(host: str) -> float:
    """Seconds one Ansible module run (ping, with become, pipelining) takes here, from a play of PINGS of them."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="provsec-pings-") as play:
        play.write(f"- hosts: {host}\n  become: true\n  gather_facts: false\n  tasks:\n"
                   f"    - {{name: ping, ansible.builtin.ping: , loop: '{{{{ range({PINGS}) | list }}}}'}}\n")
        play.flush()
        secs, _out, rc = playbook(play.name)
    if rc != 0:
        raise SystemExit(f"{host}: the ping play failed")
    return secs / PINGS


def forks() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    return cfg.get("defaults", "forks", fallback="5")


def main() -> int:
    lab = Lab(log=lambda _m: None)
    lab.up("province", "bookworm", REPO / "inventory" / "lab")
    hosts = lab.profile().host_names
    for host in hosts:
        lab.reset(host)
    before = lynis(lab, ONE)
    packages_before = installed(lab, ONE)
    first, out1, rc1, cpu1 = measured("playbooks/harden.yml", "-l", ONE)
    packages_after = installed(lab, ONE)
    put_in = sorted(p for p, v in packages_after.items() if packages_before.get(p) != v)
    again, out2, rc2 = playbook("playbooks/harden.yml", "-l", ONE)
    # AIDE's first database is built in the background after the run: let it finish (bounded) before Lynis looks
    deadline = time.monotonic() + 900
    while lab.ssh(ONE, "systemctl is-active --quiet provsec-aide-init").returncode == 0 and time.monotonic() < deadline:
        time.sleep(5)
    after = lynis(lab, ONE)
    lab.reset(ONE)
    floor, floor_rc = apt_floor(lab, ONE, put_in)
    per_module = module_cost(ONE)
    for host in hosts:
        lab.reset(host)
    parallel, out3, rc3, cpu6 = measured("playbooks/harden.yml", "-e", "harden_serial=100%")
    cores = os.cpu_count() or 1
    print(f"harden.yml on the province lab (Debian bookworm, {cores} cores)")
    print(f"  one host, first run : {first:6.1f} s  changed={counted(out1, ONE, 'changed'):<3} "
          f"target {TARGET_FIRST_S:.0f} s"
          f"{'' if rc1 == 0 else '  FAILED'}")
    print(f"  one host, re-run    : {again:6.1f} s  changed={counted(out2, ONE, 'changed'):<3} "
          f"target {TARGET_AGAIN_S:.0f} s"
          f"{'' if rc2 == 0 else '  FAILED'}")
    print(f"    floor of the first run: one raw apt-get install of the {len(put_in)} packages it installed or "
          f"upgraded, on a fresh {ONE}: {floor:.1f} s{'' if floor_rc == 0 else '  FAILED'}")
    print(f"    room under the target: the first run needs at least the apt floor plus the re-run, "
          f"{floor:.1f} + {again:.1f} = {floor + again:.1f} s (target {TARGET_FIRST_S:.0f} s)")
    print(f"    price of a task: one module run costs {per_module:.2f} s here ({PINGS} pings with become); "
          f"the re-run ran {counted(out2, ONE, 'ok')} tasks (its ok count, local ones included)")
    for label, output in (("first run", out1), ("re-run", out2), ("parallel run", out3)):
        for failure in failures(output):
            print(f"    failed in the {label}: {failure}")
    for label, output in (("first run", out1), ("re-run", out2)):
        print(f"    slowest tasks, {label}: " + "; ".join(f"{name} {secs:.0f} s" for name, secs in slowest(output)))
    print(f"  {len(hosts)} hosts, parallel  : {parallel:6.1f} s  = {parallel / first:.1f}x one host "
          f"(target {TARGET_PARALLEL_X:.0f}x), forks={forks()}{'' if rc3 == 0 else '  FAILED'}")
    print(f"    CPU: the one-host first run kept the machine busy {cpu1:.0f} CPU-s ({cpu1 / first:.2f} of "
          f"{cores} cores on average); six of them on {cores} cores need at least 6 x {cpu1:.0f} / {cores} = "
          f"{6 * cpu1 / cores:.0f} s = {6 * cpu1 / cores / first:.1f}x one host")
    print(f"    CPU: the parallel run used {cpu6:.0f} CPU-s ({cpu6 / cpu1:.1f}x the one-host run), "
          f"{cpu6 / parallel:.2f} of {cores} cores on average")
    print(f"  Lynis {before.version} on {ONE}: hardening index {before.index} before -> {after.index} after; "
          f"warnings {len(before.warnings)} -> {len(after.warnings)} (target: >= 85, 0 warnings)")
    for warning in after.warnings:
        print(f"    warning after: {warning}")
    print("  Lynis tests that gained points (test: before -> after, of possible):")
    for test in sorted(after.points):
        b, a = before.points.get(test, (0, 0)), after.points[test]
        if a[0] > b[0]:
            print(f"    {test:10} {b[0]:3} -> {a[0]:3} of {a[1]}")
    missing = {t: p for t, p in after.points.items() if p[0] < p[1]}
    print("  Lynis tests still short of their points: "
          + ", ".join(f"{t} {p[0]}/{p[1]}" for t, p in sorted(missing.items())))
    return 0 if rc1 == rc2 == rc3 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
