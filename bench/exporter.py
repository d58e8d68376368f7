"""The security-event exporter against mtail on the same auth.log (issue 5 §7), and the journal source's speed.

For each tool in turn (same machine, same run, one at a time so neither steals the other's CPU): an empty
auth.log, the tool started on it, then --lines realistic auth.log lines (a deterministic mix: failed
passwords, invalid users, accepted keys, sudo commands, cron and logind sessions, disconnects) appended in
blocks as fast as the disk takes them. The clock runs from the first append until the tool's line counter
reaches --lines; lines/s = lines / that time. mtail runs the program in bench/mtail/auth.mtail (the same
events); both tools' event counts are printed and compared with what the writer wrote. For the exporter:
peak RSS (VmHWM), and the time of 20 scrapes of /metrics after the load.
Journal: --journal-entries entries written into a journal directory by systemd-journal-remote, then
`provsec exporter --source journal:DIR --from-start` reads them; entries/s the same way.

Targets: exporter lines/s ≥ 2 × mtail's, peak RSS ≤ 40 MB, scrape < 50 ms, zero lines lost (counts equal).
Exit 1 if one is missed. Bounded: --time-limit for each wait. No root needed except for nothing; no network
but 127.0.0.1. Run: `.venv/bin/python bench/exporter.py [--lines 1000000] [--journal-entries 200000]`."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
MTAIL_PROGRAM = ROOT / "bench" / "mtail"
JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
EVENTS = ("ssh_failed", "ssh_invalid_user", "ssh_accepted", "sudo_command")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate(count: int, seed: int = 1) -> tuple[list[bytes], dict[str, int]]:
    """Blocks of 10 000 lines and the number of each event in them."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    expected = dict.fromkeys(EVENTS, 0)
    blocks: list[bytes] = []
    lines: list[bytes] = []
    for n in range(count):
        stamp = b"2026-11-%02dT%02d:%02d:%02d.%06d+07:00 web1 " % (1 + n // 86400 % 28, n // 3600 % 24,
                                                                  n // 60 % 60, n % 60, n % 1000000)
        pid = 1000 + n % 30000
        ip = b"198.18.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
        r = rng.random()
        if r < 0.30:
            user = rng.choice((b"root", b"admin", b"oracle", b"test", b"ubuntu"))
            invalid = b"invalid user " if user != b"root" else b""
            line = b"sshd[%d]: Failed password for %s%s from %s port %d ssh2" % (pid, invalid, user, ip,
                                                                                  rng.randrange(1024, 65535))
            expected["ssh_failed"] += 1
        elif r < 0.40:
            line = b"sshd[%d]: Invalid user %s from %s port %d" % (pid, rng.choice((b"admin", b"pi", b"git")), ip,
                                                                   rng.randrange(1024, 65535))
            expected["ssh_invalid_user"] += 1
        elif r < 0.55:
            line = b"sshd[%d]: Connection closed by authenticating user root %s port %d [preauth]" % (
                pid, ip, rng.randrange(1024, 65535))
        elif r < 0.58:
            line = b"sshd[%d]: Accepted publickey for provsec from 198.18.0.2 port %d ssh2: ED25519 SHA256:%s" % (
                pid, rng.randrange(1024, 65535), b"q" * 43)
            expected["ssh_accepted"] += 1
        elif r < 0.63:
            line = b"sudo: provsec : TTY=pts/0 ; PWD=/home/provsec ; USER=root ; COMMAND=/usr/bin/systemctl status"
            expected["sudo_command"] += 1
        elif r < 0.88:
            line = b"CRON[%d]: pam_unix(cron:session): session %s for user root%s" % (
                pid, rng.choice((b"opened", b"closed")), b"(uid=0) by (uid=0)" if r < 0.8 else b"")
        elif r < 0.95:
            line = b"systemd-logind[412]: New session %d of user provsec." % n
        else:
            line = b"sshd[%d]: Received disconnect from %s port %d:11: Bye Bye [preauth]" % (
                pid, ip, rng.randrange(1024, 65535))
        lines.append(stamp + line + b"\n")
        if len(lines) == 10000:
            blocks.append(b"".join(lines))
            lines = []
    if lines:
        blocks.append(b"".join(lines))
    return blocks, expected


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items())
                                        if k in ("event", "source"))
            out[key] = out.get(key, 0.0) + sample.value
    return out


def wait_answer(port: int, proc: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: the tool exited with status {proc.returncode}")
        try:
            scrape(port)
        except OSError:
            time.sleep(0.05)
        else:
            return
    sys.exit("bench: the tool did not answer")


def peak_rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def run_tool(name: str, argv: list[str], port: int, log: Path, *, blocks: list[bytes], total: int, line_key: str,
             event_key: str, limit: float) -> dict[str, object]:
    log.write_bytes(b"")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answer(port, proc, 30)
        time.sleep(1.0)  # both tools poll for changes; let them settle on the empty file
        start = time.monotonic()
        with log.open("ab", buffering=0) as handle:
            for block in blocks:
                handle.write(block)
        written = time.monotonic() - start
        deadline = start + limit
        seen = 0.0
        while time.monotonic() < deadline:
            seen = scrape(port).get(line_key, 0.0)
            if seen >= total:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        metrics = scrape(port)
        result: dict[str, object] = {
            "tool": name, "lines": metrics.get(line_key, 0.0), "seconds": elapsed, "write_s": written,
            "lines_per_s": total / elapsed if seen >= total else 0.0,
            "events": {e: int(metrics.get(f"{event_key}|event={e}", 0.0)) for e in EVENTS},
        }
        durations = []
        for _ in range(20):
            t0 = time.perf_counter()
            scrape(port)
            durations.append((time.perf_counter() - t0) * 1000)
        result["scrape_ms"] = (statistics.median(durations), max(durations))
        result["rss_mb"] = peak_rss_mb(proc.pid)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def journal_bench(work: Path, entries: int, limit: float) -> tuple[float, float, float]:
    directory = work / "journal"
    directory.mkdir()
    clock = int(time.time() * 1e6)
    batch = []
    for n in range(entries):
        clock += 1
        message = (b"Failed password for invalid user u%d from 198.18.0.%d port 22 ssh2" % (n, n % 250)
                   if n % 2 else b"Connection closed by 198.18.0.9 port 22 [preauth]")
        batch.append(b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\nSYSLOG_IDENTIFIER=sshd\n"
                     b"MESSAGE=%s\n\n" % (clock, clock, b"0123456789abcdef0123456789abcdef", message))
    subprocess.run([str(JOURNAL_REMOTE), f"--output={directory}/remote.journal", "-"], input=b"".join(batch),
                   capture_output=True, timeout=limit, check=True)
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "provsec", "exporter", "--listen", f"127.0.0.1:{port}",
                             "--state-dir", str(work / "jstate"), "--source", f"journal:{directory}", "--from-start"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answer(port, proc, 30)
        seen = 0.0
        while time.monotonic() - start < limit:
            seen = scrape(port).get("provsec_exporter_lines_total|source=journal", 0.0)
            if seen >= entries:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        failed = scrape(port).get("provsec_auth_events_total|event=ssh_failed", 0.0)
        return seen / elapsed, seen, failed
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--journal-entries", type=int, default=200_000)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds each tool may take")
    args = parser.parse_args()
    if not 1000 <= args.lines <= 10_000_000 or not 0 <= args.journal_entries <= 2_000_000:
        sys.exit("bench: --lines between 1000 and 10000000, --journal-entries up to 2000000")
    mtail = shutil.which("mtail")
    if mtail is None:
        sys.exit("bench: mtail not found: run scripts/bootstrap (Debian package mtail)")
    blocks, expected = generate(args.lines)
    print(f"bench/exporter: {args.lines} lines ({sum(map(len, blocks)) / 1e6:.0f} MB), events written: {expected}; "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="provsec-bench-exporter-") as tmp:
        work = Path(tmp)
        log = work / "auth.log"
        port = free_port()
        ours = run_tool("provsec exporter", [sys.executable, "-m", "provsec", "exporter", "--listen",
                        f"127.0.0.1:{port}", "--state-dir", str(work / "state"), "--source", f"file:{log}"],
                        port, log, blocks=blocks, total=args.lines,
                        line_key=f"provsec_exporter_lines_total|source=file:{log}",
                        event_key="provsec_auth_events_total", limit=args.time_limit)
        log.unlink()
        port = free_port()
        theirs = run_tool("mtail", [mtail, "--progs", str(MTAIL_PROGRAM), "--logs", str(log), "--address",
                                    "127.0.0.1", "--port", str(port), "--logtostderr"],
                          port, log, blocks=blocks, total=args.lines, line_key="auth_lines_total",
                          event_key="auth_events_total", limit=args.time_limit)
        journal = journal_bench(work, args.journal_entries, args.time_limit) if args.journal_entries else None

    print(f"{'tool':<18}{'lines read':>12}{'seconds':>9}{'lines/s':>11}{'peak RSS MB':>13}"
          f"{'scrape ms (median/max)':>24}")
    for row in (ours, theirs):
        ms = row["scrape_ms"]
        rss = row["rss_mb"]
        assert isinstance(ms, tuple) and isinstance(rss, tuple)
        print(f"{row['tool']:<18}{row['lines']:>12.0f}{row['seconds']:>9.2f}{row['lines_per_s']:>11,.0f}"
              f"{rss[0]:>13.1f}{ms[0]:>14.1f} / {ms[1]:.1f}")
    print(f"events  written {expected}\n        provsec {ours['events']}\n        mtail   {theirs['events']}")
    ratio = float(ours["lines_per_s"]) / max(float(theirs["lines_per_s"]), 1.0)  # type: ignore[arg-type]
    rss_peak = ours["rss_mb"][0]  # type: ignore[index]
    scrape_max = ours["scrape_ms"][1]  # type: ignore[index]
    checks = [
        (f"lines/s {ratio:.2f}x mtail's (target ≥ 2x)", ratio >= 2.0),
        (f"peak RSS {rss_peak:.1f} MB (target ≤ 40)", rss_peak <= 40.0),
        (f"scrape max {scrape_max:.1f} ms (target < 50)", scrape_max < 50.0),
        ("zero lines lost: provsec's lines and events equal the writer's",
         ours["lines"] == args.lines and ours["events"] == expected),
        ("mtail's counts equal the writer's (the comparison is like for like)",
         theirs["lines"] == args.lines and theirs["events"] == expected),
    ]
    if journal is not None:
        rate, seen, failed = journal
        print(f"journal source: {seen:.0f} of {args.journal_entries} entries at {rate:,.0f} entries/s "
              f"(ssh_failed {failed:.0f}, expected {args.journal_entries // 2})")
        checks.append(("journal: every entry read, events equal",
                       seen == args.journal_entries and failed == args.journal_entries // 2))
    for text, ok in checks:
        print(f"  {'meets' if ok else 'MISSES'}: {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
