"""`provsec scan run` against plain nmap on the same targets (issue 6 §7): target ≤ 1.1 × nmap's wall time.

Both scan the same targets with the same port list and nmap options (`-n -sT -T4`), alternating, --rounds
times each; the figure is the ratio of the medians. provsec's time includes everything a user waits for:
starting Python, loading the inventory, the scope check, nmap through python-nmap, parsing the XML, the
atomic write of the stored scan and the drift report.

Targets: with --lab, every host of inventory/lab, scanned from the control node, which is in the lab's admin
subnet (the province lab is brought up when it is not, and down again at the end); without it, 127.0.0.1 with
--listeners ports opened by this script (the output says which: loopback figures are not the lab's). Never
anything else: the inventory's ranges are the scope, and loopback. Bounded: --rounds ≤ 20, each scan ≤ 600 s.
Run: `.venv/bin/python bench/scan.py [--lab] [--rounds 5] [--ports 1-1024]`. Exit 1 if the target is missed."""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from provsec.inventory.load import load_inventory
from provsec.lab import Lab

REPO = Path(__file__).resolve().parents[1]
PROVSEC = [str(REPO / ".venv" / "bin" / "python"), "-m", "provsec"]
TARGET_RATIO = 1.1
NMAP_ARGS = ["-n", "-sT", "-T4"]


def timed(argv: list[str], ok: tuple[int, ...]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.monotonic() - started
    if done.returncode not in ok:
        sys.exit(f"bench/scan: {' '.join(argv[:6])} … exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="store_true", help="scan the lab's hosts (the lab must be up)")
    parser.add_argument("--rounds", type=int, default=5, help="scans per tool (1-20, default 5)")
    parser.add_argument("--ports", default="1-1024", help="port list given to both (default 1-1024)")
    parser.add_argument("--listeners", type=int, default=10, help="loopback: listening ports opened (default 10)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds: 1 to 20")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scan-")))
        if args.lab:
            inventory = REPO / "inventory" / "lab"
            lab = Lab()
            if lab.state() is None:  # not up: up for this bench, down after it
                lab.up("province", "bookworm", inventory)
                stack.callback(lab.down)
            addresses = [str(h.ansible_host) for h in load_inventory(inventory).hosts]
            targets = []  # provsec: every inventory host (its default); nmap: their addresses
            where = f"the lab's {len(addresses)} hosts ({', '.join(addresses)})"
        else:
            inventory = REPO / "inventory" / "phuyen"  # any valid inventory: loopback is always in scope
            for _ in range(args.listeners):
                sock = stack.enter_context(socket.socket())
                sock.bind(("127.0.0.1", 0))
                sock.listen()
            addresses, targets = ["127.0.0.1"], ["127.0.0.1"]
            where = f"127.0.0.1 with {args.listeners} listeners (loopback, not the lab)"
        nmap = ["nmap", *NMAP_ARGS, "-p", args.ports, "-oX", str(tmp / "nmap.xml"), *addresses]
        provsec = [*PROVSEC, "scan", "run", "-i", str(inventory), "-p", args.ports, "-T", "4", "--store",
                   str(tmp / "store"), "--json", *(targets or addresses)]
        times: dict[str, list[float]] = {"nmap": [], "provsec": []}
        for _ in range(args.rounds):
            times["nmap"].append(timed(nmap, (0,)))
            times["provsec"].append(timed(provsec, (0, 1)))  # 1: drift against the baseline, still a full scan
    med = {tool: statistics.median(values) for tool, values in times.items()}
    ratio = med["provsec"] / med["nmap"]
    print(f"targets: {where}; ports {args.ports}; nmap {' '.join(NMAP_ARGS)}; {args.rounds} rounds, alternating")
    for tool in ("nmap", "provsec"):
        shown = ", ".join(f"{v:.2f}" for v in times[tool])
        print(f"  {tool:8} median {med[tool]:.2f} s  ({shown})")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"provsec scan run / plain nmap: {ratio:.2f}x (target ≤ {TARGET_RATIO}x: {verdict})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
