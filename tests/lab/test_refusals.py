"""`provsec lab up` refuses, with one clear line, to run where it cannot run safely."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labfixture import REPO, VENV_BIN

PROVSEC = str(VENV_BIN / "provsec")


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=REPO, env=env)


def test_refuses_without_root() -> None:
    res = _run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PROVSEC, "lab", "up"])
    assert res.returncode == 2
    assert "needs root" in res.stderr
    assert "Traceback" not in res.stderr


def test_refuses_when_tools_are_missing(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # an empty PATH: no nspawn, no debootstrap
    res = _run([str(VENV_BIN / "python"), "-m", "provsec", "lab", "up"], env=env)
    assert res.returncode == 2
    assert "apt-get install" in res.stderr
    assert "systemd-container" in res.stderr and "debootstrap" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.fixture
def foreign_netns() -> Iterator[str]:
    """A namespace (not the lab's: no 'ps-' prefix) whose routes overlap the lab's subnet."""
    name = "provsec-overlap-test"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["link", "add", "ovl0", "type", "veth", "peer", "name", "ovl1"],
                    ["addr", "add", "198.18.0.77/24", "dev", "ovl0"], ["link", "set", "ovl0", "up"]):
            subprocess.run(["ip", "-n", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_refuses_when_the_lab_subnet_is_already_routed(foreign_netns: str) -> None:
    res = _run(["ip", "netns", "exec", foreign_netns, PROVSEC, "lab", "up", "--profile", "minimal"])
    assert res.returncode == 2
    assert "198.18.0.0/24 on ovl0 overlaps the lab subnet" in res.stderr
    assert "Traceback" not in res.stderr
