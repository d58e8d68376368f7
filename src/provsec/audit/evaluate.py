"""Judge each host's live state (the collector's evidence) against the control catalogue.

Per control and host: `pass`, `fail`, `not_applicable` (not required at the host's level, or cannot apply in a
container) or `excepted` (failing, with a current exception from the inventory). Every result carries the
expected value, the actual one and the evidence it was read from. Results are computed for every host before
anything is written, then written atomically (temp file + rename): bad input leaves no partial results.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from provsec.audit import nftables
from provsec.controls import Catalogue, Check, Control, parse_level, parse_timespan
from provsec.errors import InputError

STATUSES = ("pass", "fail", "not_applicable", "excepted")
EXCEPTION_KEYS = ("control", "reason", "expires", "approved_by")
CONTAINERS = {"systemd-nspawn", "lxc", "lxc-libvirt", "docker", "podman", "openvz", "rkt", "wsl", "proot",
              "pouch", "container-other"}
HOSTS_FILE = "_hosts.json"  # in the evidence directory; starts with "_": no inventory host has that name

Json = dict[str, Any]

try:
    LOCAL_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tzdata: Việt Nam keeps UTC+7 all year
    LOCAL_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")


def today_local(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Asia/Ho_Chi_Minh (exception expiry dates are dates there)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(LOCAL_TZ).date()


# --- model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlException:
    control: str
    reason: str
    expires: dt.date
    approved_by: str


@dataclass(frozen=True)
class HostVars:
    """What the inventory says about a host that the audit needs."""

    level: int
    exceptions: tuple[ControlException, ...] = ()
    admin_subnets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    id: str
    concern: str
    title: Mapping[str, str]
    status: str
    expected: object
    actual: object
    evidence: str
    reason: str
    cis: str = ""
    tcvn: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> Json:
        return {
            "id": self.id, "concern": self.concern, "title": dict(self.title), "status": self.status,
            "expected": self.expected, "actual": self.actual, "evidence": self.evidence, "reason": self.reason,
            "cis": self.cis, "tcvn": {k: list(v) for k, v in self.tcvn.items()},
        }


@dataclass(frozen=True)
class Outcome:
    """What one check found: passed or not, the live value, and where it was read."""

    ok: bool
    actual: object
    evidence: str
    reason: str = ""


# --- comparing values ----------------------------------------------------------------------------

INF = float("inf")
# Values that mean "never" / "no limit": never a pass for `le`, always one for `ge`.
_UNLIMITED: dict[tuple[str, str], Callable[[float], bool]] = {
    ("login_defs", "PASS_MAX_DAYS"): lambda v: v < 0,
    ("useradd_default", "INACTIVE"): lambda v: v < 0,
    ("pwquality", "maxrepeat"): lambda v: v == 0,  # no limit on repeated characters
    ("pwquality", "maxsequence"): lambda v: v == 0,  # no limit on monotonic sequences
    ("faillock", "deny"): lambda v: v == 0,
    ("faillock", "unlock_time"): lambda v: v == 0,
    ("journald", "MaxRetentionSec"): lambda v: v == 0,
    ("sshd", "clientaliveinterval"): lambda v: v == 0,  # no probes at all
    ("sshd", "clientalivecountmax"): lambda v: v == 0,  # OpenSSH ≥ 8.2: never drop the session
}
# What a setting is when nothing sets it (the tool's built-in default), for the keys the catalogue uses.
_DEFAULTS: dict[tuple[str, str], str] = {
    ("pwquality", "minlen"): "8", ("pwquality", "minclass"): "0", ("pwquality", "difok"): "1",
    ("pwquality", "maxrepeat"): "0", ("pwquality", "maxsequence"): "0", ("pwquality", "dictcheck"): "1",
    ("pwquality", "retry"): "1",
    ("faillock", "deny"): "3", ("faillock", "unlock_time"): "600", ("faillock", "fail_interval"): "900",
    ("journald", "Storage"): "auto", ("journald", "MaxRetentionSec"): "0", ("journald", "Compress"): "yes",
}
_PSEUDO_ALGORITHMS = re.compile(r"^(kex-strict-[cs]-v00@openssh\.com|ext-info-[cs])$")


def _number(value: object, check: Check) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if check.type == "journald":
        return parse_timespan(text)
    try:
        return float(int(text, 10)) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
    except ValueError:
        return None


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out.extend(w for w in re.split(r"[,\s]+", str(item)) if w)
    return out


def _same(actual: object, expected: object, check: Check) -> bool:
    a_num, e_num = _number(actual, check), _number(expected, check)
    if a_num is not None and e_num is not None:
        return a_num == e_num
    a_text, e_text = str(actual).strip(), str(expected).strip()
    if check.type == "sshd":
        return a_text.casefold() == e_text.casefold()
    return a_text == e_text


def compare(check: Check, actual: object, expected: object) -> tuple[bool, str]:  # noqa: PLR0911, PLR0912
    # one branch per op, in the order of the README's table
    """Does the live value satisfy `op` against the level's value? (ok, why not)."""
    op = check.op
    if op == "present":
        return actual is not None, "" if actual is not None else "not set"
    if op == "absent":
        return actual is None, "" if actual is None else f"set to {actual!r}"
    if actual is None:
        return False, "not set"
    if op in ("eq", "ne"):
        same = _same(actual, expected, check)
        return (same, f"{actual!r} is not {expected!r}") if op == "eq" else (not same, f"is {expected!r}")
    if op in ("le", "ge"):
        a_num, e_num = _number(actual, check), _number(expected, check)
        if a_num is None or e_num is None:
            return False, f"{actual!r} is not a number to compare with {expected!r}"
        unlimited = _UNLIMITED.get((check.type, check.key or ""))
        if unlimited is not None and unlimited(a_num):
            a_num = INF
            if op == "le":
                return False, f"{actual!r} means never / no limit"
        ok = a_num <= e_num if op == "le" else a_num >= e_num
        sign = "≤" if op == "le" else "≥"
        return ok, "" if ok else f"{actual!r} is not {sign} {expected!r}"
    if op == "in":
        options = expected if isinstance(expected, list) else [expected]
        ok = any(_same(actual, e, check) for e in options)
        return ok, "" if ok else f"{actual!r} is not one of {options!r}"
    items = _as_list(actual)
    if check.type == "sshd":
        items = [i.casefold() for i in items if not _PSEUDO_ALGORITHMS.match(i)]
    wanted = [str(e).casefold() if check.type == "sshd" else str(e) for e in _as_list(expected)]
    if op == "subset":
        extra = [i for i in items if i not in wanted]
        return not extra, f"not allowed: {', '.join(extra)}" if extra else ""
    if op == "superset":
        missing = [w for w in wanted if w not in items]
        return not missing, f"missing: {', '.join(missing)}" if missing else ""
    if op == "contains":
        return wanted[0] in items, f"{expected!r} not in the list"
    if op == "not_contains":
        return wanted[0] not in items, f"{expected!r} is in the list"
    raise InputError(f"unknown op {op!r}")  # the loader refuses it first


# --- reading each kind of evidence ---------------------------------------------------------------


class _NoEvidence(Exception):
    """The evidence for a check is missing or holds an error: the control fails with this message."""


def _section(evidence: Json, name: str) -> Json:
    section = evidence.get(name)
    if section is None:
        raise _NoEvidence(f"the evidence has no {name!r} section (collector not asked for it)")
    if isinstance(section, dict) and section.get("error"):
        raise _NoEvidence(str(section["error"]))
    if not isinstance(section, dict):
        raise _NoEvidence(f"the evidence's {name!r} section is not a mapping")
    return section


def _keyed(check: Check, expected: object, values: Mapping[str, Any], source: str, *,
           default: str | None = None, override: Mapping[str, Any] | None = None,
           override_source: str = "") -> Outcome:
    key = check.key or ""
    where = source
    if override is not None and key in override:
        actual, where = override[key], override_source
    elif key in values:
        actual = values[key]
    else:
        actual = None
    if actual is None and default is not None and check.op not in ("present", "absent"):
        shown = f"{key} not set in {source} (default {default})"
        actual = default
    elif actual is None:
        shown = f"{key} not set in {source}"
    elif actual == "" and check.op in ("present", "absent"):
        shown = f"{key} set in {where}"
    else:
        shown = f"{key} = {actual} ({where})"
    ok, why = compare(check, actual, expected)
    return Outcome(ok, actual, shown, why)


def _sshd(check: Check, expected: object, evidence: Json) -> Outcome:
    values = _section(evidence, "sshd").get("values", {})
    key = check.key or ""
    lines = values.get(key)
    if check.op in ("subset", "superset", "contains", "not_contains", "present", "absent"):
        actual: object = None if lines is None else _as_list(lines)
    else:
        actual = None if lines is None else " ".join(lines)
    shown = f"sshd -T: {key} {' '.join(lines)}" if lines else f"sshd -T: no {key}"
    ok, why = compare(check, actual, expected)
    return Outcome(ok, actual, shown, why)


def _sysctl(check: Check, expected: object, evidence: Json) -> Outcome:
    entry = _section(evidence, "sysctl").get(check.key or "")
    if not isinstance(entry, dict):
        raise _NoEvidence(f"no value collected for {check.key}")
    if entry.get("error"):
        raise _NoEvidence(f"sysctl {check.key}: {entry['error']}")
    actual = entry.get("value")
    ok, why = compare(check, actual, expected)
    return Outcome(ok, actual, f"sysctl {check.key} = {actual}", why)


def _pam_keyed(check: Check, expected: object, evidence: Json, module: str) -> Outcome:
    section = _section(evidence, check.type)
    pam = section.get("pam", {})
    pam_file = pam.get("file", "/etc/pam.d")
    if not pam.get("present"):
        detail = f" ({pam['error']})" if pam.get("error") else ""
        return Outcome(False, None, f"{module} is not in {pam_file}{detail}",
                       f"{module} is not in the PAM stack, so no {check.type} setting takes effect")
    files = ", ".join(section.get("files", [])) or f"no /etc/security/{check.type}.conf"
    origin = section.get("origin", {}).get(check.key or "", files)
    values = section.get("values", {})
    return _keyed(check, expected, values, origin if check.key in values else files,
                  default=_DEFAULTS.get((check.type, check.key or "")),
                  override=pam.get("args", {}), override_source=f"{module} argument in {pam_file}")


def _plain_keyed(check: Check, expected: object, evidence: Json, source: str) -> Outcome:
    section = _section(evidence, check.type)
    where = str(section.get("file") or section.get("source") or source)
    return _keyed(check, expected, section.get("values", {}), where,
                  default=_DEFAULTS.get((check.type, check.key or "")))


_ACTIVE = {"active", "reloading", "activating", "deactivating"}
_ENABLED = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"}


def _service(check: Check, expected: object, evidence: Json) -> Outcome:
    units = _section(evidence, "services").get("units", {})
    info = units.get(check.name)
    if not isinstance(info, dict):
        raise _NoEvidence(f"no state collected for {check.name}")
    unit = info.get("unit", check.name)
    if info.get("load_state") == "not-found":
        states = {"absent"}
        shown = f"systemctl: {unit}: no such unit"
    else:
        active = "active" if info.get("active_state") in _ACTIVE else "inactive"
        enabled = "enabled" if info.get("unit_file_state") in _ENABLED else "disabled"
        states = {active, enabled}
        shown = (f"systemctl: {unit}: {info.get('active_state')} ({info.get('sub_state')}), "
                 f"{info.get('unit_file_state') or 'no unit file state'}")
    wanted = [str(w) for w in (expected if isinstance(expected, list) else [expected])]
    implied = {"inactive": {"inactive", "absent"}, "disabled": {"disabled", "absent"}}
    missing = [w for w in wanted if not (implied.get(w, {w}) & states)]
    actual = sorted(states)
    return Outcome(not missing, actual, shown, f"not {', '.join(missing)}" if missing else "")


def _file(check: Check, evidence: Json) -> Outcome:
    info = _section(evidence, "files").get(check.path or "")
    if not isinstance(info, dict):
        raise _NoEvidence(f"no stat collected for {check.path}")
    if info.get("error"):
        raise _NoEvidence(str(info["error"]))
    if not info.get("exists"):
        return Outcome(False, None, f"{check.path} does not exist", f"{check.path} does not exist")
    actual = {"mode": info.get("mode"), "owner": info.get("owner"), "group": info.get("group")}
    problems = []
    mode, mode_max = int(str(info.get("mode", "7777")), 8), int(check.mode_max or "0", 8)
    if mode & ~mode_max:
        problems.append(f"mode {info.get('mode')} allows more than {check.mode_max}")
    if check.owner and info.get("owner") != check.owner:
        problems.append(f"owner {info.get('owner')} is not {check.owner}")
    if check.group and info.get("group") != check.group:
        problems.append(f"group {info.get('group')} is not {check.group}")
    shown = f"{check.path}: mode {info.get('mode')}, {info.get('owner')}:{info.get('group')}"
    return Outcome(not problems, actual, shown, "; ".join(problems))


def _file_regex(check: Check, evidence: Json) -> Outcome:
    entries = evidence.get("file_regex")
    if not isinstance(entries, list):
        raise _NoEvidence("the evidence has no 'file_regex' section (collector not asked for it)")
    entry = next((e for e in entries if isinstance(e, dict) and e.get("path") == check.path
                  and e.get("regex") == check.regex), None)
    if entry is None:
        raise _NoEvidence(f"no search of {check.path} collected for this pattern")
    files, matches, errors = entry.get("files", []), entry.get("matches", []), entry.get("errors", [])
    found = [f"{m.get('file')}:{m.get('line_number')}: {m.get('line', '').strip()}" for m in matches]
    if check.op == "present":
        if found:
            return Outcome(True, found, "; ".join(found))
        where = ", ".join(files) if files else f"no file matches {check.path}"
        why = "; ".join(errors) if errors else f"no line matches {check.regex}"
        return Outcome(False, [], f"searched: {where}", why)
    if found:
        return Outcome(False, found, "; ".join(found), "a line matches what must be absent")
    if errors:
        return Outcome(False, [], "; ".join(errors), "cannot read every file, so absence is not proven")
    where = ", ".join(files) if files else f"no file matches {check.path}"
    return Outcome(True, [], f"no match in: {where}")


def _packages(check: Check, evidence: Json) -> Outcome:
    packages = _section(evidence, "packages").get("packages", {})
    installed = []
    for name in check.names:
        info = packages.get(name)
        if not isinstance(info, dict):
            raise _NoEvidence(f"no dpkg state collected for {name}")
        if info.get("installed"):
            installed.append(f"{name} {info.get('version', '')}".strip())
    if installed:
        return Outcome(False, installed, f"dpkg: installed: {', '.join(installed)}", "installed")
    return Outcome(True, [], f"dpkg: not installed: {', '.join(check.names)}")


def _executables(check: Check, evidence: Json) -> Outcome:
    """Every command of the list that is installed must run a file no more open than mode_max (and owned by
    owner); none installed passes."""
    found = _section(evidence, "executables").get("executables", {})
    mode_max = int(check.mode_max or "0", 8)
    shown, problems, actual = [], [], {}
    for name in check.names:
        info = found.get(name)
        if not isinstance(info, dict):
            raise _NoEvidence(f"no file collected for the command {name}")
        if not info.get("exists"):
            continue
        path, mode = str(info.get("path")), str(info.get("mode", "7777"))
        actual[name] = {"path": path, "mode": mode, "owner": info.get("owner")}
        shown.append(f"{name} → {path} {mode} {info.get('owner')}:{info.get('group')}")
        if int(mode, 8) & ~mode_max:
            problems.append(f"{path} mode {mode} allows more than {check.mode_max}")
        if check.owner and info.get("owner") != check.owner:
            problems.append(f"{path} owner {info.get('owner')} is not {check.owner}")
    if not shown:
        return Outcome(True, {}, f"none installed: {', '.join(check.names)}")
    return Outcome(not problems, actual, "; ".join(shown), "; ".join(problems))


def _nft(check: Check, evidence: Json, host: HostVars) -> Outcome:
    ruleset = _section(evidence, "nft").get("ruleset")
    try:
        if check.kind == "input_policy_drop":
            ok, text = nftables.input_policy_drop(ruleset)
        else:
            ports = {22}
            sshd = evidence.get("sshd", {})
            if isinstance(sshd, dict) and isinstance(sshd.get("values"), dict):
                listed = {int(p) for p in sshd["values"].get("port", []) if str(p).isdigit()}
                ports = listed or ports
            ok, text = nftables.ssh_only_from(ruleset, list(host.admin_subnets), ports)
    except (TypeError, ValueError) as exc:
        raise _NoEvidence(f"nft ruleset: {exc}") from None
    return Outcome(ok, ok, f"nft: {text}", "" if ok else text)


def _chrony(check: Check, expected: object, evidence: Json) -> Outcome:
    sources = _section(evidence, "chrony").get("sources", [])
    listed = [f"{s.get('kind')} {s.get('address')}" for s in sources if isinstance(s, dict)]
    shown = f"chrony sources: {', '.join(listed)}" if listed else "chrony: no server/pool/peer configured"
    if check.op == "ge":
        ok, why = compare(check, len(listed), expected)
    else:
        ok, why = bool(listed), "" if listed else "no time source configured"
    return Outcome(ok, listed, shown, why)


def _auditd(check: Check, expected: object, evidence: Json) -> Outcome:
    section = _section(evidence, "auditd")
    keys = section.get("keys", [])
    present = check.key in keys
    actual: object = check.key if present else None
    ok, why = compare(check, actual, expected)
    count = len(section.get("rules", []))
    return Outcome(ok, present, f"auditctl -l: {count} rules; key {check.key} {'present' if present else 'absent'}",
                   why)


_READERS: dict[str, Callable[[Check, object, Json, HostVars], Outcome]] = {
    "sshd": lambda c, e, ev, h: _sshd(c, e, ev),
    "sysctl": lambda c, e, ev, h: _sysctl(c, e, ev),
    "pwquality": lambda c, e, ev, h: _pam_keyed(c, e, ev, "pam_pwquality.so"),
    "faillock": lambda c, e, ev, h: _pam_keyed(c, e, ev, "pam_faillock.so"),
    "login_defs": lambda c, e, ev, h: _plain_keyed(c, e, ev, "/etc/login.defs"),
    "useradd_default": lambda c, e, ev, h: _plain_keyed(c, e, ev, "useradd -D"),
    "journald": lambda c, e, ev, h: _plain_keyed(c, e, ev, "journald.conf"),
    "service": lambda c, e, ev, h: _service(c, e, ev),
    "file": lambda c, e, ev, h: _file(c, ev),
    "file_regex": lambda c, e, ev, h: _file_regex(c, ev),
    "package_absent": lambda c, e, ev, h: _packages(c, ev),
    "executables": lambda c, e, ev, h: _executables(c, ev),
    "nft": lambda c, e, ev, h: _nft(c, ev, h),
    "chrony": lambda c, e, ev, h: _chrony(c, e, ev),
    "auditd_rules": lambda c, e, ev, h: _auditd(c, e, ev),
}


def check_control(control: Control, expected: object, evidence: Json, host: HostVars) -> Outcome:
    """Evaluate one control against the evidence (no level or container or exception logic)."""
    reader = _READERS.get(control.check.type)
    if reader is None:
        raise InputError(f"{control.id}: unknown check type {control.check.type!r}")  # the loader refuses it first
    try:
        return reader(control.check, expected, evidence, host)
    except _NoEvidence as exc:
        return Outcome(False, None, str(exc), f"no evidence: {exc}")


def _expected_text(control: Control, expected: object) -> object:
    check = control.check
    names = ", ".join(check.names)
    owner_group = "".join(f", {k} {v}" for k, v in (("owner", check.owner), ("group", check.group)) if v)
    by_type: dict[str, Callable[[], object]] = {
        "file": lambda: f"mode ≤ {check.mode_max}{owner_group}",
        "file_regex": lambda: f"{'a' if check.op == 'present' else 'no'} line of {check.path} matching {check.regex}",
        "package_absent": lambda: f"not installed: {names}",
        "executables": lambda: f"{names}: not installed, or mode ≤ {check.mode_max}{owner_group}",
        "nft": lambda: check.kind,
    }
    if check.type in by_type:
        return by_type[check.type]()
    if check.op in ("present", "absent") and expected is True:
        return f"{check.key} {check.op}" if check.key else check.op
    return {"op": check.op, "value": expected}


def is_container(evidence: Json) -> tuple[bool, str]:
    virt = evidence.get("virtualization", {})
    if not isinstance(virt, dict):
        return False, ""
    kind = str(virt.get("container") or "none")
    return kind != "none", kind


def evaluate_host(catalogue: Catalogue, host: HostVars, evidence: Json, today: dt.date) -> list[Result]:
    """Every control's result for one host."""
    container, kind = is_container(evidence)
    level = catalogue.catalogue_level(host.level)
    by_control: dict[str, list[ControlException]] = {}
    for exc in host.exceptions:
        by_control.setdefault(exc.control, []).append(exc)
    results = []
    for control in catalogue.controls:
        expected = catalogue.value(control.id, host.level)
        shown_expected = _expected_text(control, expected)
        if expected is None:
            results.append(_result(control, "not_applicable", None, None, "",
                                   f"not required at cấp độ {host.level} (catalogue level {level})"))
            continue
        if container and control.container_reason:
            results.append(_result(control, "not_applicable", shown_expected, None,
                                   f"systemd-detect-virt --container: {kind}",
                                   f"not applicable in a container ({kind}): {control.container_reason}"))
            continue
        outcome = check_control(control, expected, evidence, host)
        status, reason = ("pass", "") if outcome.ok else ("fail", outcome.reason)
        if not outcome.ok and by_control.get(control.id):
            current = sorted((e for e in by_control[control.id] if today <= e.expires), key=lambda e: e.expires)
            if current:
                exc = current[-1]
                status = "excepted"
                reason = (f"exception until {exc.expires.isoformat()} approved by {exc.approved_by}: "
                          f"{exc.reason} (fails: {outcome.reason})")
            else:
                last = max(by_control[control.id], key=lambda e: e.expires)
                reason = (f"exception expired on {last.expires.isoformat()} ({last.reason}, approved by "
                          f"{last.approved_by}); {outcome.reason}")
        results.append(_result(control, status, shown_expected, outcome.actual, outcome.evidence, reason))
    return results


def _result(  # noqa: PLR0917 - every field of a Result, in its order
    control: Control, status: str, expected: object, actual: object, evidence: str, reason: str
) -> Result:
    return Result(id=control.id, concern=control.concern, title={"vi": control.title.vi, "en": control.title.en},
                  status=status, expected=expected, actual=actual, evidence=evidence, reason=reason,
                  cis=control.cis, tcvn=dict(control.tcvn))


# --- inputs --------------------------------------------------------------------------------------


def parse_exceptions(raw: object, where: str, catalogue: Catalogue) -> tuple[ControlException, ...]:
    """provsec_control_exceptions: a list of {control, reason, expires: YYYY-MM-DD, approved_by}."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{where}: provsec_control_exceptions must be a list of "
                         "{control, reason, expires: YYYY-MM-DD, approved_by}")
    out = []
    for index, item in enumerate(raw):
        at = f"{where}: provsec_control_exceptions[{index}]"
        if not isinstance(item, dict) or set(item) != set(EXCEPTION_KEYS):
            raise InputError(f"{at}: needs exactly the keys {', '.join(EXCEPTION_KEYS)}"
                             + (f" (has {', '.join(sorted(map(str, item)))})" if isinstance(item, dict) else ""))
        control = item["control"]
        if not isinstance(control, str) or control not in catalogue:
            try:
                catalogue.get(str(control))
            except InputError as exc:
                raise InputError(f"{at}: control: {exc}") from None
        for key in ("reason", "approved_by"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise InputError(f"{at}: {key}: must be non-empty text")
        expires = item["expires"]
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires.strip())
            except ValueError:
                raise InputError(f"{at}: expires: {expires!r} is not a date YYYY-MM-DD") from None
        if not isinstance(expires, dt.date):
            raise InputError(f"{at}: expires: {expires!r} is not a date YYYY-MM-DD")
        out.append(ControlException(str(control), item["reason"].strip(), expires, item["approved_by"].strip()))
    return tuple(out)


def load_hosts_vars(path: Path, catalogue: Catalogue) -> tuple[dict[str, HostVars], list[str]]:
    """The hosts file audit.yml writes: {"hosts": {HOST: {level, exceptions, admin_subnets}}, "failed_hosts": […]}.

    JSON or YAML. Returns the hosts' vars and the hosts whose collection failed."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: hosts file not found (give --hosts-vars, written by playbooks/audit.yml)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the hosts file: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), dict):
        raise InputError(f"{path}: must be a mapping with `hosts:` (HOST: {{level, exceptions, admin_subnets}})")
    hosts: dict[str, HostVars] = {}
    for name, raw in doc["hosts"].items():
        where = f"{path}: {name}"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: must be a mapping with level, exceptions, admin_subnets")
        try:
            level = parse_level(raw.get("level"))
        except InputError as exc:
            raise InputError(f"{where}: level: {exc}") from None
        subnets = raw.get("admin_subnets") or []
        if not isinstance(subnets, list) or not all(isinstance(s, str) for s in subnets):
            raise InputError(f"{where}: admin_subnets: must be a list of networks (text)")
        hosts[str(name)] = HostVars(level, parse_exceptions(raw.get("exceptions"), where, catalogue),
                                    tuple(subnets))
    failed = doc.get("failed_hosts") or []
    if not isinstance(failed, list):
        raise InputError(f"{path}: failed_hosts: must be a list of host names")
    return hosts, [str(h) for h in failed]


def load_evidence(path: Path) -> Json:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the evidence: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: the evidence is not JSON ({exc}); run the collector again") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("collector"), dict) or "collected_at" not in doc:
        raise InputError(f"{path}: not collector evidence (no \"collector\" and \"collected_at\")")
    return doc


# --- the whole fleet ------------------------------------------------------------------------------


@dataclass
class AuditRun:
    """Every host's results, ready to write."""

    reports: dict[str, Json]
    summary: Json

    @property
    def missing(self) -> dict[str, str]:
        missing: dict[str, str] = self.summary["hosts_without_evidence"]
        return missing


def evaluate_fleet(catalogue: Catalogue, evidence_dir: Path, hosts_vars: Path | None,
                   now: dt.datetime | None = None) -> AuditRun:
    now = now or dt.datetime.now(dt.UTC)
    today = today_local(now)
    if not evidence_dir.is_dir():
        raise InputError(f"{evidence_dir}: evidence directory not found")
    files = {p.stem: p for p in sorted(evidence_dir.glob("*.json")) if not p.name.startswith("_")}
    vars_path = hosts_vars or evidence_dir / HOSTS_FILE
    hosts, failed = load_hosts_vars(vars_path, catalogue)
    missing: dict[str, str] = {h: "collection failed or host unreachable (see the ansible-playbook output)"
                               for h in failed}
    for name in hosts:
        if name not in files:
            missing[name] = f"no evidence file {evidence_dir / (name + '.json')}"
    reports: dict[str, Json] = {}
    for name in sorted(hosts):
        if name not in files:
            continue
        evidence = load_evidence(files[name])
        host = hosts[name]
        results = evaluate_host(catalogue, host, evidence, today)
        counts = {s: sum(1 for r in results if r.status == s) for s in STATUSES}
        container, kind = is_container(evidence)
        reports[name] = {
            "host": name,
            "level": host.level,
            "catalogue_level": catalogue.catalogue_level(host.level),
            "collected_at": evidence.get("collected_at"),
            "evaluated_at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hostname": evidence.get("hostname"),
            "os": evidence.get("os", {}),
            "virtualization": evidence.get("virtualization", {}),
            "container": kind if container else None,
            "counts": counts,
            "results": [r.as_json() for r in results],
        }
    by_control: dict[str, Json] = {}
    for control in catalogue.controls:
        row: Json = {"title": {"vi": control.title.vi, "en": control.title.en}, "concern": control.concern}
        row.update({s: 0 for s in STATUSES})
        row["failing_hosts"] = []
        by_control[control.id] = row
    for name, report in reports.items():
        for result in report["results"]:
            row = by_control[result["id"]]
            row[result["status"]] += 1
            if result["status"] == "fail":
                row["failing_hosts"].append(name)
    totals = {s: sum(r["counts"][s] for r in reports.values()) for s in STATUSES}
    summary: Json = {
        "generated_at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "catalogue": str(catalogue.directory),
        "controls": len(catalogue.controls),
        "hosts": {n: {k: r[k] for k in ("level", "catalogue_level", "collected_at", "container", "counts")}
                  for n, r in reports.items()},
        "hosts_without_evidence": missing,
        "totals": totals,
        "by_control": by_control,
    }
    return AuditRun(reports, summary)


def _atomic_write_json(path: Path, doc: Json) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_results(run: AuditRun, results_dir: Path) -> list[Path]:
    """RESULTS/<host>.json per host, then RESULTS/summary.json, each written atomically."""
    if "summary" in run.reports:
        raise InputError("a host named 'summary' would overwrite summary.json: rename it in the inventory")
    results_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, report in run.reports.items():
        path = results_dir / f"{name}.json"
        _atomic_write_json(path, report)
        written.append(path)
    summary = results_dir / "summary.json"
    _atomic_write_json(summary, run.summary)
    written.append(summary)
    return written
