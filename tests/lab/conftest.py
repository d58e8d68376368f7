"""One lab per test session, shared by every lab test; hosts are reset through their overlays.

The profile comes from PROVSEC_LAB_PROFILE (default: province), the release from PROVSEC_LAB_RELEASE.
PROVSEC_LAB_KEEP=1 leaves the lab up at the end (for work on a lab shared between several runs).
Lab tests need root: without it they fail (they are never skipped)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle

from provsec.lab import Lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces, nspawn): run `sudo make test`", pytrace=False)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    require_root()
    profile = os.environ.get("PROVSEC_LAB_PROFILE", "province")
    release = os.environ.get("PROVSEC_LAB_RELEASE", "bookworm")
    the_lab = Lab()
    inventory_dir = REPO / "inventory" / "lab"
    the_lab.up(profile, release, inventory_dir)
    handle = LabHandle(the_lab, inventory_dir, the_lab.profile().host_names)
    yield handle
    if os.environ.get("PROVSEC_LAB_KEEP") != "1":
        the_lab.down()
