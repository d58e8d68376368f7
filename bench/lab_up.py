"""How long `provsec lab up` takes, cold and warm, and what a lab host costs in memory.

Prints each figure next to what it is compared with, measured in this same run:
- warm `up` of the minimal profile against the 20 s target and against the cold `up` (base built anew);
- warm `up` of the province profile (6 hosts, two networks);
- memory per idle host (PSS and RSS summed over the host's processes).
Run as root: `sudo .venv/bin/python bench/lab_up.py [--no-cold]`. Leaves no lab behind.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from provsec.lab import Lab
from provsec.lab.base import CACHE_ROOT, cache_key
from provsec.lab.hosts import nspawn_pids

REPO = Path(__file__).resolve().parents[1]
TARGET_WARM_MINIMAL_S = 20.0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def _memory_kib(pid: int) -> tuple[int, int]:
    pss = rss = 0
    for p in _descendants(pid)[1:]:  # the host's processes, not nspawn itself
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


def timed_up(lab: Lab, profile: str, release: str) -> float:
    started = time.monotonic()
    lab.up(profile, release, REPO / "inventory" / "lab")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold run (it rebuilds the base)")
    parser.add_argument("--release", default="bookworm")
    args = parser.parse_args()
    lab = Lab(log=lambda _m: None)
    lab.down()
    cold = None
    if not args.no_cold:
        shutil.rmtree(CACHE_ROOT / "base" / cache_key(args.release), ignore_errors=True)
        cold = timed_up(lab, "minimal", args.release)
        lab.down()
    warm_min = timed_up(lab, "minimal", args.release)
    lab.down()
    warm_prov = timed_up(lab, "province", args.release)
    time.sleep(10)  # let the hosts settle before measuring memory
    mem = {name: _memory_kib(pid) for pid, name in nspawn_pids().items()}
    lab.down()

    print(f"lab up, release {args.release}, {Path('/proc/cpuinfo').read_text().count('processor')} cores")
    verdict = "meets" if warm_min <= TARGET_WARM_MINIMAL_S else "MISSES"
    print(f"  minimal, warm cache : {warm_min:6.1f} s   target {TARGET_WARM_MINIMAL_S:.0f} s ({verdict})")
    if cold is not None:
        print(f"  minimal, cold cache : {cold:6.1f} s   baseline: warm is {cold / warm_min:.0f}x faster")
    print(f"  province, warm cache: {warm_prov:6.1f} s   ({len(mem)} hosts booted in parallel)")
    for name, (pss, rss) in sorted(mem.items()):
        print(f"  memory {name:<11}: PSS {pss / 1024:5.1f} MiB   RSS {rss / 1024:5.1f} MiB")
    if mem:
        avg = sum(p for p, _ in mem.values()) / len(mem) / 1024
        print(f"  memory per host     : {avg:5.1f} MiB PSS on average")
    return 0 if warm_min <= TARGET_WARM_MINIMAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
