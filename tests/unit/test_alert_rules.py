"""The alerting rules in exporters/rules/: valid for Prometheus (`promtool check rules`), their unit tests pass
(`promtool test rules`), and they follow the conventions of exporters/METRICS.md ("Alert rule conventions"):
names, severity labels, annotations in Vietnamese and English, a test where each alert fires and one where
it stays silent. promtool comes from Debian's prometheus package (scripts/bootstrap); no server runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "exporters" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning"}
ANNOTATIONS = {"summary", "description", "runbook", "summary_en", "description_en", "runbook_en"}
VIETNAMESE = re.compile(r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]", re.IGNORECASE)


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run scripts/bootstrap (it installs Debian's prometheus package)")
    return path


def _run(*args: str) -> None:
    done = subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def _alerts(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES, f"no rule files in {RULES}"
    assert TEST_FILES, f"no promtool tests in {RULES / 'tests'}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    _run("check", "rules", str(path))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    _run("test", "rules", str(path))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_alerts_follow_the_conventions(path: Path) -> None:
    area = "".join(part.capitalize() for part in path.stem.split("_"))  # wan_links.yml → WanLinks
    problems = []
    for rule in _alerts(path):
        name = rule["alert"]
        if not re.fullmatch(rf"Provsec{area}[A-Z][A-Za-z]*", name):
            problems.append(f"{name}: name is not Provsec{area}<What>")
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
        notes = rule.get("annotations", {})
        missing = sorted(k for k in ANNOTATIONS if not str(notes.get(k, "")).strip())
        if missing:
            problems.append(f"{name}: annotations missing or empty: {', '.join(missing)}")
        for key in ("summary", "description", "runbook"):
            if key in notes and not VIETNAMESE.search(notes[key]):
                problems.append(f"{name}: {key} has no Vietnamese letter: is it in Vietnamese?")
    assert not problems, f"{path}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_is_tested_firing_and_silent(path: Path) -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for test_file in TEST_FILES:
        data = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        if not any((test_file.parent / f).resolve() == path.resolve() for f in data.get("rule_files", [])):
            continue
        for case in data.get("tests", []):
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts(path)}
    # An always-firing alert (the Watchdog, `vector(1)`) has no healthy state to test: its absence is the alarm.
    always = {rule["alert"] for rule in _alerts(path) if str(rule["expr"]).strip() == "vector(1)"}
    assert not names - fires, f"{path.name}: no promtool test where these fire: {sorted(names - fires)}"
    assert not names - silent - always, (
        f"{path.name}: no promtool test where these stay silent: {sorted(names - silent - always)}")
