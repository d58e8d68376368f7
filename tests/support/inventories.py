"""Inventories for tests: the example province (inventory/phuyen) as it is, or copied for a test to change."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "phuyen"


def example_without_baseline(where: Path) -> Path:
    """A copy of the example inventory at `where` without its scan baseline (each scan test writes its own)."""
    shutil.copytree(EXAMPLE, where)
    (where / "scan_baseline.yml").unlink()
    return where
