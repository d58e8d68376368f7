"""Backups that can be trusted: restic (through the one wrapper, restic.py), jobs from the inventory,
manifests for drills, state records and node_exporter textfile metrics. See README.md in this directory."""
