"""What provsec.backup costs over raw restic, on generated mixed data (issue 4 §7).

Generates --size-mb of data in a temp directory (office documents of varied sizes, mostly incompressible like
PDF/DOCX; a few plain-text documents; a few SQL dumps; duplicated files), then measures in the same run, with
the same restic binary (the cached 0.18 by default) and the same repository settings (local repository,
password file, cache directory; one repository each):
- first backup     provsec `run_jobs` (backup, snapshot check, state + metrics; the hash manifest only with
                   restic < 0.17; no retention: that is `provsec backup forget`) against `restic backup` with the
                   same arguments;
- 1 % incremental  the same after changing ~1 % of the data (files rewritten, a dump appended to, new files);
- restore          provsec `restore` of the latest snapshot against `restic restore latest`;
- drill            provsec `drill` against the same verification done by hand: with restic ≥ 0.17 the drill is
                   `restic restore --verify` (restic re-reads every restored file against the snapshot's content
                   hashes), so the raw side is `restic restore latest --verify`; with an older restic the drill
                   restores and checks every file against the manifest in the snapshot, and the raw side is
                   `restic restore` followed by `sha256sum --strict -c` of a reference made before the timing;
- retention        provsec `forget_jobs` (policy keep_last 1 of the two snapshots, one prune, state + metrics)
                   against `restic forget` with the same policy and tags followed by `restic prune`.
Each operation is measured in --rounds rounds (default 3), each round on fresh repositories for both sides, the
side that goes first alternating from round to round (page cache and write-back favour neither); the data
changes by another ~1 % before each round's incremental. Prints one row per operation: the median seconds of
each side, the overhead of the medians and the target — wrapper overhead ≤ max(3 %, 0.3 s) over raw restic;
drill ≤ 1.3x the raw restore + hand verification — and every round's pair. Exit 1 if a target is missed or a
run/drill is not ok. Every step is bounded (--time-limit for the whole bench; restic calls get their own
timeouts) and the temp directory is removed at the end (--keep to look at it).

Run: `.venv/bin/python bench/backup.py [--size-mb 1024] [--rounds 3] [--restic PATH] [--workdir DIR]`. No root, no lab.
Figures are wall times on a possibly busy machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

import yaml

from provsec.backup import restic
from provsec.backup.jobs import BackupConfig, load_config
from provsec.backup.runner import drill, forget_jobs, restore, run_jobs

DEFAULT_RESTIC = Path(os.environ.get("PROVSEC_RESTIC_CACHE", "/var/cache/provsec/restic")) / "restic"
OVERHEAD_PCT, OVERHEAD_FLOOR_S, DRILL_RATIO = 3.0, 0.3, 1.3
JOB = "bench"
MB = 1 << 20
T = TypeVar("T")

# Text that compresses about as well as Vietnamese office text and SQL does (restic compresses with zstd).
WORDS = (b"so thong tin truyen thong uy ban nhan dan tinh phu yen cong van quyet dinh bao cao ke hoach "
         b"du lieu may chu sao luu ngay thang nam ho ten dia chi so dien thoai 0 1 2 3 4 5 6 7 8 9").split()
TEXT_TABLE = bytes((b"abcdeghiklmnopqrstuvxy      0123"[i % 32]) for i in range(256))


# --------------------------------------------------------------------------------------------- data set


@dataclass
class DataSet:
    root: Path
    files: int = 0
    bytes: int = 0


def _text(rng: random.Random, size: int) -> bytes:
    """Unique, compressible text: random bytes mapped onto letters, spaces and digits, in lines."""
    raw = rng.randbytes(size).translate(TEXT_TABLE)
    return b"\n".join(raw[i : i + 99] for i in range(0, len(raw), 100))[:size]


def _dump(rng: random.Random, size: int) -> bytes:
    """A SQL dump's shape: one INSERT per row, a numeric id, text columns, a date."""
    body = _text(rng, size).replace(b"\n", b" ")
    rows, out, length, i = [], 0, 0, 0
    while length < size:
        chunk = body[out : out + 70] or body[:70]
        out += 70
        row = b"INSERT INTO cong_van VALUES (%d, '%s', '2026-%02d-%02d', %d);\n" % (
            i, chunk, 1 + i % 12, 1 + i % 28, rng.randrange(1 << 20))
        rows.append(row)
        length += len(row)
        i += 1
    head = b"-- provsec bench dump\nBEGIN;\nCREATE TABLE cong_van (id bigint, trich_yeu text, ngay date, so int);\n"
    return head + b"".join(rows) + b"COMMIT;\n"


def _write(data: DataSet, path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    data.files += 1
    data.bytes += len(content)


def generate(root: Path, size_mb: int, seed: int = 20261001) -> DataSet:
    """~45 % binary documents (4 KiB-8 MiB, log-uniform), 10 % text documents, 30 % in 4 SQL dumps,
    15 % duplicates of documents under another folder (restic stores them once)."""
    rng = random.Random(seed)  # noqa: S311 reproducible data, not secrets
    data = DataSet(root)
    total = size_mb * MB
    docs: list[Path] = []
    largest = min(8 * MB, total // 40)  # a small data set still has many files
    budget = total * 0.45
    n = 0
    while budget > 0:
        size = min(int(2 ** rng.uniform(12, 23)), largest, int(budget) + 1)
        path = root / "van-ban" / f"{n // 200:03d}" / f"tai-lieu-{n:05d}.{rng.choice(['pdf', 'docx', 'xlsx'])}"
        _write(data, path, rng.randbytes(size))
        docs.append(path)
        budget -= size
        n += 1
    budget = total * 0.10
    while budget > 0:
        size = min(int(2 ** rng.uniform(10, 19)), int(budget) + 1)
        _write(data, root / "van-ban-txt" / f"ghi-chu-{n:05d}.txt", _text(rng, size))
        budget -= size
        n += 1
    for i, name in enumerate(("ioffice", "portal", "hrm", "mot-cua")):
        _write(data, root / "dumps" / f"{name}.sql", _dump(rng, int(total * 0.30 / 4) + i))
    budget = total * 0.15
    for src in rng.sample(docs, len(docs)):
        if budget <= 0:
            break
        if src.stat().st_size > budget:
            continue
        dst = root / "ban-sao" / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        data.files += 1
        data.bytes += dst.stat().st_size
        budget -= dst.stat().st_size
    return data


def change_one_percent(data: DataSet, seed: int = 7) -> int:
    """Rewrite documents (~0.4 %), append to one dump (~0.3 %), add new documents (~0.3 %); bytes changed."""
    rng = random.Random(seed)  # noqa: S311 reproducible data, not secrets
    docs = sorted((data.root / "van-ban").rglob("*.*"))
    changed, goal = 0, data.bytes * 0.004
    for path in rng.sample(docs, len(docs)):
        size = path.stat().st_size
        if changed + size > goal:
            continue
        path.write_bytes(rng.randbytes(size))
        changed += size
    extra = int(data.bytes * 0.003)
    with (data.root / "dumps" / "ioffice.sql").open("ab") as handle:
        handle.write(_dump(rng, extra))
    changed += extra
    goal = changed + data.bytes * 0.003
    n = 0
    while changed < goal:
        size = min(int(2 ** rng.uniform(12, 20)), int(goal - changed) + 1)
        _write(data, data.root / "van-ban-moi" / f"moi-{n:04d}.pdf", rng.randbytes(size))
        changed += size
        n += 1
    return changed


def reference_sums(root: Path, out: Path, timeout: float) -> None:
    """The reference a sysadmin verifies a raw restore with: `sha256sum` of every file, relative paths."""
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    listing = "\0".join(files) + "\0"
    done = subprocess.run(["xargs", "-0", "sha256sum", "--"], input=listing.encode(), cwd=root,
                          capture_output=True, check=True, timeout=timeout)
    out.write_bytes(done.stdout)


# ------------------------------------------------------------------------------------------- raw restic


class Raw:
    """restic run by hand: the same binary, repository, password file and cache as provsec's job."""

    def __init__(self, binary: str, repo: Path, password_file: Path, cache: Path, timeout: float) -> None:
        self.base = [binary, "--repo", str(repo), "--password-file", str(password_file)]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        self.env["RESTIC_CACHE_DIR"] = str(cache)
        self.timeout = timeout

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True,
                              timeout=self.timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"restic {args[0]} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return done.stdout


def hand_drill(raw: Raw, target: Path, src: Path, sums: Path | None) -> None:
    """The drill's verification done by hand: `restic restore latest --verify` (sums None: restic ≥ 0.17, whose
    verification is the drill's reference), else `restic restore` then `sha256sum --strict -c` of sums; the
    restored tree removed after (provsec's drill cleans up too)."""
    if sums is None:
        raw("restore", "latest", "--target", str(target), "--verify")
    else:
        raw("--json", "restore", "latest", "--target", str(target))
        subprocess.run(["sha256sum", "--quiet", "--strict", "-c", str(sums)], cwd=target / str(src).lstrip("/"),
                       check=True, timeout=raw.timeout)
    shutil.rmtree(target)


# ----------------------------------------------------------------------------------------------- timing


def timed(operation: Callable[[], T]) -> tuple[float, T]:
    os.sync()  # the previous step's writes are not this step's cost
    started = time.monotonic()
    value = operation()
    return time.monotonic() - started, value


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    except OSError:
        pass
    return found


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Stop the whole bench after seconds: kill every process it started (restic, sha256sum), then raise."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        for pid in reversed(_children(os.getpid())):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise TimeoutError(f"bench/backup: time limit of {seconds} s reached")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------------------------- bench


def write_config(work: Path, binary: str, src: Path, password: Path, timeout: float) -> Path:
    config = {
        "repository": str(work / "repo-provsec"),
        "password_file": str(password),
        "restic_binary": binary,
        "env": {"RESTIC_CACHE_DIR": str(work / "cache")},
        "state_dir": str(work / "state"),
        "textfile_dir": str(work / "textfile"),
        "group_by": ["host", "tags"],
        # keep_last 1: the retention row forgets one of the two snapshots and prunes, on both sides
        "retention": {"documents": {"keep_last": 1}},
        "jobs": [{"name": JOB, "kind": "files", "class": "documents", "paths": [str(src)], "timeout": timeout}],
    }
    path = work / "backup.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def provsec_run(config: BackupConfig) -> None:
    records = run_jobs(config, config.select([JOB]))
    result = records[0].result
    if result.state != "ok":
        raise RuntimeError(f"provsec backup run: {result.state}: {result.reason}")


@dataclass
class Row:
    name: str
    provsec: list[float]
    raw: list[float]
    raw_label: str = "restic"

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.provsec), statistics.median(self.raw)

    def verdict(self) -> tuple[str, str, bool]:
        p, r = self.medians()
        if self.name.startswith("drill"):
            ratio = p / r
            ok = ratio <= DRILL_RATIO
            return f"{ratio:5.2f}x", f"<= {DRILL_RATIO}x", ok
        extra = p - r
        pct = 100 * extra / r
        ok = extra <= max(OVERHEAD_PCT / 100 * r, OVERHEAD_FLOOR_S)
        return f"{pct:+6.1f} % {extra:+6.2f} s", f"<= max({OVERHEAD_PCT:.0f} %, {OVERHEAD_FLOOR_S} s)", ok


def pair(first_is_raw: bool, provsec_op: Callable[[], object], raw_op: Callable[[], object]) -> tuple[float, float]:
    """(provsec seconds, raw seconds), the two run in the order the round says."""
    if first_is_raw:
        r, _ = timed(raw_op)
        p, _ = timed(provsec_op)
    else:
        p, _ = timed(provsec_op)
        r, _ = timed(raw_op)
    return p, r


Sample = tuple[str, float, float, str]  # operation, provsec s, raw s, what raw is


def one_round(work: Path, data: DataSet, binary: str, password: Path, *, timeout: float, index: int) -> list[Sample]:
    """One round on fresh repositories: first backup, ~1 % change, incremental, restore, drill, retention;
    (operation, provsec s, raw s, what raw is) per operation. Odd rounds run raw restic first."""
    src = data.root
    here = work / f"round-{index}"
    here.mkdir()
    config = load_config(write_config(here, binary, src, password, timeout))
    restic.init(config.repository)
    raw = Raw(binary, here / "repo-raw", password, here / "cache", timeout)
    raw("init")
    raw_first = index % 2 == 1
    tags = ["--tag", "provsec", "--tag", f"job={JOB}", "--tag", "class=documents"]
    out: list[Sample] = []

    p, r = pair(raw_first, lambda: provsec_run(config), lambda: raw("--json", "backup", str(src), *tags))
    out.append(("first backup", p, r, "restic"))
    changed = change_one_percent(data, seed=7 + index)
    p, r = pair(raw_first, lambda: provsec_run(config), lambda: raw("--json", "backup", str(src), *tags))
    out.append((f"incremental ({100 * changed / data.bytes:.1f} %)", p, r, "restic"))

    job = config.job(JOB)
    p, r = pair(raw_first, lambda: restore(config, job, None, here / "restore-provsec", []),
                lambda: raw("--json", "restore", "latest", "--target", str(here / "restore-raw")))
    out.append(("restore", p, r, "restic"))
    shutil.rmtree(here / "restore-provsec")
    shutil.rmtree(here / "restore-raw")

    by_restic = restic.verifies_restores(config.repository)  # the drill's reference: restic's, or the manifest
    sums = here / "reference.sha256"
    if not by_restic:
        reference_sums(src, sums, timeout)  # the hand reference, made before and outside the timing
    checked: list[int] = []

    def provsec_drill() -> None:
        result = drill(config, job, scratch=here / "scratch")
        if result.state != "ok":
            raise RuntimeError(f"provsec backup drill: {result.state}: {result.reason}")
        checked.append(result.files_checked)

    p, r = pair(raw_first, provsec_drill, lambda: hand_drill(raw, here / "drill-raw", src, None if by_restic else sums))
    out.append((f"drill ({checked[0]} files)", p, r, "restore --verify" if by_restic else "restore + sha256sum -c"))

    # retention: policy keep_last 1, so one of the two snapshots goes and one prune runs, on both sides
    def provsec_forget() -> None:
        [res] = forget_jobs(config, config.select([JOB]))
        if res.state != "ok" or res.forgotten != 1:
            raise RuntimeError(f"provsec backup forget: {res.state}: {res.reason}")

    def raw_forget() -> None:
        raw("--json", "forget", "--tag", f"provsec,job={JOB},class=documents", "--group-by", "host,tags",
            "--keep-last", "1")
        raw("--json", "prune")

    p, r = pair(raw_first, provsec_forget, raw_forget)
    out.append(("retention (forget 1)", p, r, "restic forget + prune"))
    shutil.rmtree(here)
    return out


def bench(work: Path, size_mb: int, binary: str, timeout: float, rounds: int) -> list[Row]:
    src = work / "du-lieu"
    t0 = time.monotonic()
    data = generate(src, size_mb)
    print(f"  generated {data.bytes / MB:.0f} MiB in {data.files} files in {time.monotonic() - t0:.1f} s",
          flush=True)
    password = work / "password"
    password.write_text("bench-" + os.urandom(16).hex() + "\n")
    password.chmod(0o600)
    probe = Raw(binary, work / "repo-floor", password, work / "cache-floor", timeout)
    probe("init")
    floor = min(timed(lambda: probe("cat", "config"))[0] for _ in range(3))
    print(f"  floor of any restic call (open the repository, derive the key): {floor:.2f} s per call", flush=True)
    rows: dict[int, Row] = {}
    for index in range(rounds):
        for position, (name, p, r, label) in enumerate(one_round(work, data, binary, password,
                                                                      timeout=timeout, index=index)):
            row = rows.setdefault(position, Row(name, [], [], label))
            row.provsec.append(p)
            row.raw.append(r)
        print(f"  round {index + 1} of {rounds} done ({'raw' if index % 2 else 'provsec'} first)", flush=True)
    return [rows[i] for i in sorted(rows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="data to generate (default 1024)")
    parser.add_argument("--restic", default=str(DEFAULT_RESTIC), help=f"restic binary (default {DEFAULT_RESTIC})")
    parser.add_argument("--workdir", help="where the temp directory goes (default: $TMPDIR or /tmp)")
    parser.add_argument("--time-limit", type=int, help="seconds for the whole bench (default 300 + 2 s/MB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per operation, order alternating (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    if args.size_mb < 10:
        parser.error("--size-mb: at least 10 (1 % of it must be measurable)")
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds: 1 to 9")
    limit = args.time_limit or 300 + 2 * args.size_mb * args.rounds
    version = restic.version(restic.Repository("-", Path("-"), restic_binary=args.restic))
    work = Path(tempfile.mkdtemp(prefix="provsec-bench-backup-", dir=args.workdir))
    print(f"bench/backup: {args.size_mb} MiB of mixed data, restic {version} ({args.restic}), "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, limit {limit} s", flush=True)
    try:
        with time_limit(limit):
            rows = bench(work, args.size_mb, args.restic, float(limit), args.rounds)
    finally:
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"  medians of {args.rounds} round(s):")
    print(f"  {'operation':<24} {'provsec s':>9} {'raw s':>7}  {'raw is':<22} {'overhead':<18} {'target':<22} verdict")
    failed = False
    for row in rows:
        value, target, ok = row.verdict()
        failed = failed or not ok
        p, r = row.medians()
        print(f"  {row.name:<24} {p:9.2f} {r:7.2f}  {row.raw_label:<22} {value:<18} {target:<22} "
              f"{'meets' if ok else 'MISSES'}")
    print("  every round (provsec s / raw s):")
    for row in rows:
        print(f"    {row.name:<24} " + "   ".join(f"{p:.2f} / {r:.2f}" for p, r in zip(row.provsec, row.raw,
                                                                                    strict=True)))
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
