"""The handle lab tests use: hosts, their inventory, ssh as the admin, playbooks, resets."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provsec.errors import ProvsecError
from provsec.lab import Lab

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
RECAP = re.compile(r"^(\S+)\s+:\s+(ok=.*)$", re.MULTILINE)
TASK_TIMEOUT_S = 600  # the longest lab task (a first run's security updates) takes about 3 minutes


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of ansible-playbook's output as {host: {"ok": n, "changed": n, ...}}."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)} for host, fields in RECAP.findall(output)}


@dataclass
class LabHandle:
    """What a lab test uses: the hosts, their inventory, ssh as the admin, playbooks, resets."""

    lab: Lab
    inventory_dir: Path
    hosts: list[str]

    def ssh(self, host: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.lab.ssh(host, command, timeout=timeout)

    def root(self, host: str, command: str, timeout: float = 300,
             interpreter: str = "sh") -> subprocess.CompletedProcess[str]:
        """command as root on host: `sudo -n <interpreter> -c command` through a new SSH login as the admin."""
        return self.ssh(host, f"sudo -n {interpreter} -c " + shlex.quote(command), timeout=timeout)

    def playbook(self, name: str, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return self.ansible("ansible-playbook", str(REPO / "playbooks" / name), *args, timeout=timeout)

    def play(self, playbook: Path | str, hosts: Sequence[str], *args: str,
             timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        """ansible-playbook limited to hosts; playbook is a path, or a name under playbooks/ when a str."""
        path = playbook if isinstance(playbook, Path) else REPO / "playbooks" / playbook
        return self.ansible("ansible-playbook", str(path), "-l", ",".join(hosts), *args, timeout=timeout)

    def play_ok(self, playbook: Path | str, hosts: Sequence[str], *args: str,
                timeout: float = 1200) -> dict[str, dict[str, int]]:
        """play() that must succeed (rc 0, the output's tail otherwise) with a recap of exactly hosts; the recap."""
        res = self.play(playbook, hosts, *args, timeout=timeout)
        unreachable = "\n".join(line for line in res.stdout.splitlines() if "UNREACHABLE" in line)
        output = unreachable + "\n" + res.stdout[-6000:] + res.stderr[-2000:]
        assert res.returncode == 0, f"{' '.join(args)} failed (rc {res.returncode}):\n{output}"
        counts = recap(res.stdout)
        assert sorted(counts) == sorted(hosts), counts
        return counts

    def audit(self, hosts: Sequence[str], results_dir: Path, *args: str,
              unchanged: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
        """audit.yml on hosts into results_dir (rc 0; with unchanged, no change on any); results by control id."""
        res = self.playbook("audit.yml", "-l", ",".join(hosts), "-e", f"provsec_audit_dir={results_dir}", *args)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        if unchanged:
            counts = recap(res.stdout)
            for host in hosts:
                assert counts.get(host, {}).get("changed") == 0, res.stdout[-2000:]
        by_host = {}
        for host in hosts:
            doc = json.loads((results_dir / "results" / f"{host}.json").read_text())
            by_host[host] = {r["id"]: r for r in doc["results"]}
        return by_host

    def ansible(self, tool: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        # a task that hangs (apt waiting on the proxy forever, seen in CI) fails named after TASK_TIMEOUT_S, and
        # the play goes on to its recap, instead of the whole play running into the test's timeout
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_TASK_TIMEOUT=str(TASK_TIMEOUT_S))
        try:
            return subprocess.run(
                [str(VENV_BIN / tool), "-i", str(self.inventory_dir), *args],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:  # where it stalled, not subprocess's traceback
            out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else (exc.output or "")
            pytest.fail(f"{tool} {' '.join(args)} ran past {timeout:.0f} s; the end of its output:\n{out[-4000:]}",
                        pytrace=False)

    def reset(self, host: str) -> None:
        self.lab.reset(host)

    def reset_waiting(self, host: str) -> None:
        """reset(host), waiting (5 minutes at most) while another lab command holds the lab's lock."""
        for _ in range(60):
            try:
                self.reset(host)
            except ProvsecError as exc:
                if "holds" not in str(exc):
                    raise
                time.sleep(5)
            else:
                return
        pytest.fail(f"{host}: the lab stayed locked for 5 minutes")


# A TCP server that answers "ok" to every connection, for argv[3] seconds at most
LISTENER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8); s.settimeout(1)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    try:
        c.sendall(b"ok")
    except OSError:  # a port scanner resets the connection as soon as it is made
        pass
    c.close()
"""


def netns(lab: LabHandle, host: str) -> str:
    return lab.lab.profile().host(host).netns


def address(lab: LabHandle, host: str) -> str:
    return lab.lab.profile().host(host).address


@contextmanager
def listener(lab: LabHandle, host: str, port: int, lifetime: float = 300) -> Iterator[None]:
    """A TCP server in host's network namespace on its address, answering "ok", for lifetime seconds at most.

    Leaving the block with the server already gone (its lifetime was shorter than the work inside) fails: what
    the block observed may then have been a closed port, not the listener."""
    proc = subprocess.Popen(["ip", "netns", "exec", netns(lab, host), "python3", "-c", LISTENER,
                             address(lab, host), str(port), str(lifetime)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        yield
        if proc.poll() is not None:
            error = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"the listener on {host}:{port} ended (rc {proc.returncode}) before the block did "
                        f"(lifetime {lifetime:.0f} s): {error[-2000:]}")
    finally:
        proc.kill()
        proc.wait(timeout=10)
