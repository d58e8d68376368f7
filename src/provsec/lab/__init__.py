"""The lab: real Debian hosts (systemd-nspawn + network namespaces) for tests and the demo."""

from provsec.lab.core import Lab, LabState

__all__ = ["Lab", "LabState"]
