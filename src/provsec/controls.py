"""The control catalogue: playbooks/controls/<concern>.yml, one file per concern (format: its README.md).

Roles read a control's value for the host's level (the `provsec_control` filter); the audit reads how
each control is checked and compares the live state against that value. Loading checks every file and
raises one InputError listing every problem as `FILE: ID: KEY: problem`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError

# --- the closed vocabulary -----------------------------------------------------------------------

CONTROL_KEYS = ("id", "concern", "title", "cis", "tcvn", "levels", "check", "container")
TCVN_BASE = "TCVN 11930:2017"
MIN_LEVEL, MAX_LEVEL = 1, 5
REQUIRED_LEVELS = (2, 3)

VALUE_OPS = ("eq", "ne", "le", "ge", "in", "subset", "superset", "contains", "not_contains")
FLAG_OPS = ("present", "absent")
OPS = VALUE_OPS + FLAG_OPS

SERVICE_STATES = ("active", "inactive", "enabled", "disabled", "absent")
NFT_KINDS = ("input_policy_drop", "ssh_only_from")
RULE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class CheckType:
    """What a check type needs: its fields (required, optional) and the ops it takes (empty: none)."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    ops: tuple[str, ...]
    key_pattern: str = ""


_SCALAR_OPS = ("eq", "ne", "le", "ge", "in")
CHECK_TYPES: dict[str, CheckType] = {
    "sshd": CheckType(("key", "op"), (), OPS, r"^[a-z0-9]+$"),
    "sysctl": CheckType(("key", "op"), (), _SCALAR_OPS, r"^[a-z0-9_][a-z0-9_./-]*$"),
    "login_defs": CheckType(("key", "op"), (), _SCALAR_OPS + FLAG_OPS, r"^[A-Z][A-Z0-9_]*$"),
    "pwquality": CheckType(("key", "op"), (), _SCALAR_OPS + FLAG_OPS, r"^[a-z][a-z_]*$"),
    "faillock": CheckType(("key", "op"), (), _SCALAR_OPS + FLAG_OPS, r"^[a-z][a-z_]*$"),
    "useradd_default": CheckType(("key", "op"), (), _SCALAR_OPS, r"^[A-Z][A-Z0-9_]*$"),
    "journald": CheckType(("key", "op"), (), _SCALAR_OPS + FLAG_OPS, r"^[A-Z][A-Za-z]*$"),
    "file": CheckType(("path", "mode_max"), ("owner", "group"), ()),
    "file_regex": CheckType(("path", "regex", "op"), (), FLAG_OPS),
    "package_absent": CheckType(("name",), (), ()),
    "executables": CheckType(("name", "mode_max"), ("owner",), ()),
    "service": CheckType(("name", "op"), (), ("eq", "superset")),
    "nft": CheckType(("kind",), (), ()),
    "chrony": CheckType(("op",), (), ("present", "ge")),
    "auditd_rules": CheckType(("key", "op"), (), FLAG_OPS, r"^[A-Za-z0-9_-]+$"),
}
# The WAN catalogue (playbooks/controls/wan/, provsec.wan.policy) judges devices' stored configuration, not a
# server's live state: its own vocabulary, so that neither catalogue loads the other's checks by mistake.
WAN_CHECK_TYPES: dict[str, CheckType] = {
    "router": CheckType(("rule",), (), ()),
}
# Check types that state what must hold themselves: their level value is `true` (or null).
FLAG_TYPES = ("file", "package_absent", "executables", "nft", "router")

ID_RE = re.compile(r"^PS-[A-Z0-9]+-[0-9]{2}$")
CONCERN_RE = re.compile(r"^[a-z][a-z0-9]*$")
CIS_RE = re.compile(r"^([0-9]+(\.[0-9]+)*)?$")
TCVN_EDITION_RE = re.compile(r"^TCVN [0-9]+(-[0-9]+)?(:[0-9]{4})?$")
MODE_RE = re.compile(r"^0[0-7]{3,4}$")
ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
UNIT_RE = re.compile(r"^[A-Za-z0-9@_.:-]+$")
COMMAND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    vi: str
    en: str


@dataclass(frozen=True)
class Check:
    """How the audit checks a control. Only the fields of its type are set (see CHECK_TYPES)."""

    type: str
    op: str | None = None
    key: str | None = None
    path: str | None = None
    regex: str | None = None
    names: tuple[str, ...] = ()
    kind: str | None = None
    rule: str | None = None
    mode_max: str | None = None
    owner: str | None = None
    group: str | None = None

    @property
    def name(self) -> str:
        """The single name of a service check (package checks may have several: `names`)."""
        return self.names[0] if self.names else ""


@dataclass(frozen=True)
class Control:
    id: str
    concern: str
    title: Title
    cis: str
    tcvn: Mapping[str, tuple[str, ...]]
    levels: Mapping[int, object]
    check: Check
    container_reason: str | None  # None: the control applies inside a container too
    source: Path = field(compare=False)

    @property
    def applies_in_container(self) -> bool:
        return self.container_reason is None


@dataclass(frozen=True)
class Catalogue:
    directory: Path
    controls: tuple[Control, ...]

    @cached_property
    def _by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels the catalogue gives values for (at least 2 and 3)."""
        return tuple(sorted({lvl for c in self.controls for lvl in c.levels}))

    def get(self, control_id: str) -> Control:
        try:
            return self._by_id[control_id]
        except KeyError:
            close = difflib.get_close_matches(control_id, list(self._by_id), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(
                f"{self.directory}: no control {control_id!r} in the catalogue{hint}"
            ) from None

    def __contains__(self, control_id: object) -> bool:
        return control_id in self._by_id

    def catalogue_level(self, level: object) -> int:
        """The catalogue level that holds the values for a host of security level `level` (1–5).

        The catalogue is a baseline for cấp độ 2 and 3: a cấp độ 1 host is held to cấp độ 2, and a cấp độ 4
        or 5 host to the highest level the catalogue defines (3), until stricter values are added."""
        lvl = parse_level(level)
        defined = [d for d in self.levels if d <= lvl]
        return max(defined) if defined else min(self.levels)

    def value(self, control_id: str, level: object) -> object:
        """The value control `control_id` requires at security level `level`; None: not required there."""
        control = self.get(control_id)
        lvl = self.catalogue_level(level)
        if lvl in control.levels:
            return control.levels[lvl]
        lower = [d for d in control.levels if d <= lvl]
        return control.levels[max(lower)] if lower else control.levels[min(control.levels)]

    def checks_request(self) -> dict[str, Any]:
        """What the collector must gather to check every control (the `provsec audit checks` document)."""
        return checks_request(self.controls)


def parse_level(level: object) -> int:
    """A security level (cấp độ) as an integer 1–5; strings of digits are accepted (Ansible templating)."""
    if isinstance(level, bool):
        raise InputError(f"security level {level!r} is not an integer from {MIN_LEVEL} to {MAX_LEVEL}")
    if isinstance(level, str) and level.strip().isdigit():
        level = int(level.strip())
    if not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise InputError(
            f"security level {level!r} is not an integer from {MIN_LEVEL} to {MAX_LEVEL} "
            "(cấp độ, Nghị định 85/2016/NĐ-CP)"
        )
    return level


def checks_request(controls: tuple[Control, ...] | list[Control]) -> dict[str, Any]:
    """The collector's input: which facts to read (deduplicated), never the expected values."""
    request: dict[str, Any] = {"version": 1}
    sysctl: set[str] = set()
    files: set[str] = set()
    regexes: dict[tuple[str, str], None] = {}
    packages: set[str] = set()
    services: set[str] = set()
    executables: set[str] = set()
    flags = {
        "sshd": "sshd", "login_defs": "login_defs", "pwquality": "pwquality", "faillock": "faillock",
        "useradd_default": "useradd_default", "journald": "journald", "chrony": "chrony", "nft": "nft",
        "auditd_rules": "auditd",
    }
    for control in controls:
        check = control.check
        if check.type in flags:
            request[flags[check.type]] = True
        if check.type == "nft":
            request["sshd"] = True  # ssh_only_from needs the port sshd listens on
        if check.type == "sysctl" and check.key:
            sysctl.add(check.key)
        elif check.type == "file" and check.path:
            files.add(check.path)
        elif check.type == "file_regex" and check.path and check.regex:
            regexes[(check.path, check.regex)] = None
        elif check.type == "package_absent":
            packages.update(check.names)
        elif check.type == "service":
            services.update(check.names)
        elif check.type == "executables":
            executables.update(check.names)
    request["sysctl"] = sorted(sysctl)
    request["files"] = sorted(files)
    request["file_regex"] = [{"path": p, "regex": r} for p, r in regexes]
    request["packages"] = sorted(packages)
    request["services"] = sorted(services)
    request["executables"] = sorted(executables)
    return request


# --- loading -------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r}: give each key once", key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_catalogue(directory: str | Path, check_types: Mapping[str, CheckType] = CHECK_TYPES) -> Catalogue:
    """Read and check every `*.yml` in `directory`; raise InputError listing every problem.

    `check_types` is the vocabulary of checks: the servers' (CHECK_TYPES) or the WAN devices' (WAN_CHECK_TYPES)."""
    path = Path(directory)
    if not path.is_dir():
        raise InputError(f"{path}: control catalogue directory not found")
    files = sorted(path.glob("*.yml"))
    if not files:
        raise InputError(f"{path}: no control files (*.yml) in the catalogue directory")
    problems: list[str] = []
    controls: list[Control] = []
    first_seen: dict[str, Path] = {}
    for file in files:
        for control in _load_file(file, problems, check_types):
            if control.id in first_seen:
                problems.append(
                    f"{file}: {control.id}: id: duplicate id (first given in {first_seen[control.id]})"
                )
                continue
            first_seen[control.id] = file
            controls.append(control)
    if problems:
        count = len(problems)
        raise InputError(
            f"{path}: not a valid control catalogue ({count} problem{'s' if count != 1 else ''}):\n"
            + "\n".join(problems)
        )
    return Catalogue(path, tuple(controls))


def _load_file(file: Path, problems: list[str], check_types: Mapping[str, CheckType]) -> list[Control]:
    try:
        doc = yaml.load(file.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{file}: cannot read: {exc}")
        return []
    except yaml.YAMLError as exc:
        problems.append(f"{file}: not valid YAML: {' '.join(str(exc).split())}")
        return []
    if not isinstance(doc, dict) or set(doc) != {"controls"} or not isinstance(doc["controls"], list):
        problems.append(f"{file}: must be a mapping with one key, `controls:`, holding a list of controls")
        return []
    concern = file.stem
    if not CONCERN_RE.match(concern):
        problems.append(f"{file}: file name must be the concern: lower-case letters and digits")
        return []
    controls = []
    for index, raw in enumerate(doc["controls"]):
        control = _Control(file, concern, index, raw, problems, check_types=check_types).build()
        if control is not None:
            controls.append(control)
    return controls


class _Control:
    """Checks one control entry, appending `FILE: ID: KEY: problem` lines to `problems`."""

    def __init__(self, file: Path, concern: str, index: int, raw: object, problems: list[str], *,
                 check_types: Mapping[str, CheckType] = CHECK_TYPES) -> None:
        self.file, self.concern, self.raw, self.problems = file, concern, raw, problems
        self.check_types = check_types
        self.where = f"controls[{index}]"
        self.ok = True

    def problem(self, key: str, text: str) -> None:
        self.ok = False
        self.problems.append(f"{self.file}: {self.where}: {key}: {text}")

    def build(self) -> Control | None:
        raw = self.raw
        if not isinstance(raw, dict):
            self.problem("-", "a control is a mapping with keys " + ", ".join(CONTROL_KEYS))
            return None
        if isinstance(raw.get("id"), str):
            self.where = raw["id"]
        for key in raw:
            if key not in CONTROL_KEYS:
                close = difflib.get_close_matches(str(key), CONTROL_KEYS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(str(key), f"unknown key{hint}; a control has exactly: {', '.join(CONTROL_KEYS)}")
        for key in CONTROL_KEYS:
            if key not in raw:
                self.problem(key, "missing")
        if not self.ok:
            return None
        control_id = self._id(raw["id"])
        concern = self._concern(raw["concern"])
        title = self._title(raw["title"])
        cis = self._cis(raw["cis"])
        tcvn = self._tcvn(raw["tcvn"])
        check = self._check(raw["check"])
        levels = self._levels(raw["levels"], check)
        container = self._container(raw["container"])
        if not self.ok or check is None or title is None:
            return None
        return Control(control_id, concern, title, cis, tcvn, levels, check, container, self.file)

    # each key

    def _id(self, value: object) -> str:
        prefix = f"PS-{self.concern.upper()}-"
        if not isinstance(value, str) or not ID_RE.match(value) or not value.startswith(prefix):
            self.problem("id", f"{value!r} is not {prefix}NN (two digits; the concern is the file name)")
            return ""
        return value

    def _concern(self, value: object) -> str:
        if value != self.concern:
            self.problem("concern", f"{value!r} must be {self.concern!r}, the file's name")
        return self.concern

    def _title(self, value: object) -> Title | None:
        if (
            not isinstance(value, dict) or set(value) != {"vi", "en"}
            or not all(isinstance(v, str) and v.strip() for v in value.values())
        ):
            self.problem("title", "must be {vi: \"…\", en: \"…\"}, both non-empty text")
            return None
        return Title(vi=value["vi"].strip(), en=value["en"].strip())

    def _cis(self, value: object) -> str:
        if not isinstance(value, str) or not CIS_RE.match(value):
            self.problem("cis", f"{value!r} must be a quoted section number like \"5.1.20\", or \"\" if none")
            return ""
        return value

    def _tcvn(self, value: object) -> dict[str, tuple[str, ...]]:
        rule = (f'a mapping of edition to a list of requirement ids, e.g. {{"{TCVN_BASE}": ["…"], '
                '"TCVN 14423": []}')
        if not isinstance(value, dict) or TCVN_BASE not in value:
            self.problem("tcvn", f"must be {rule}, with {TCVN_BASE!r}")
            return {}
        result: dict[str, tuple[str, ...]] = {}
        for edition, ids in value.items():
            if not isinstance(edition, str) or not TCVN_EDITION_RE.match(edition):
                self.problem("tcvn", f"edition {edition!r} must read like {TCVN_BASE!r}")
            elif not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
                self.problem(f"tcvn.{edition}", "must be a list of requirement ids (text), [] if none")
            else:
                result[edition] = tuple(ids)
        return result

    def _container(self, value: object) -> str | None:
        if value == "applies":
            return None
        if (
            isinstance(value, dict) and set(value) == {"not_applicable"}
            and isinstance(value["not_applicable"], str) and value["not_applicable"].strip()
        ):
            return str(value["not_applicable"]).strip()
        self.problem("container", 'must be `applies` or {not_applicable: "why it cannot apply in a container"}')
        return None

    def _check(self, value: object) -> Check | None:
        if not isinstance(value, dict) or "type" not in value:
            self.problem("check", "must be a mapping with `type:` (one of: " + ", ".join(self.check_types) + ")")
            return None
        kind = value["type"]
        spec = self.check_types.get(kind) if isinstance(kind, str) else None
        if spec is None:
            close = difflib.get_close_matches(str(kind), list(self.check_types), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem("check.type", f"unknown check type {kind!r}{hint}; types: {', '.join(self.check_types)}")
            return None
        allowed = {"type", *spec.required, *spec.optional}
        for key in value:
            if key not in allowed:
                why = " (this type takes no op: the check itself says what must hold)" if key == "op" else ""
                self.problem(f"check.{key}", f"not a field of a {kind} check{why}; fields: "
                             + ", ".join(sorted(allowed - {"type"})))
        for key in spec.required:
            if key not in value:
                self.problem(f"check.{key}", f"missing (a {kind} check needs: {', '.join(spec.required)})")
        if not self.ok:
            return None
        fields: dict[str, Any] = {"type": kind}
        if "op" in value:
            if value["op"] not in spec.ops:
                self.problem("check.op", f"{value['op']!r} is not an op of a {kind} check; ops: {', '.join(spec.ops)}")
            fields["op"] = value["op"]
        if "key" in value:
            if not isinstance(value["key"], str) or not re.match(spec.key_pattern, value["key"]):
                self.problem("check.key", f"{value['key']!r} is not a {kind} key (pattern {spec.key_pattern})")
            fields["key"] = value["key"]
        self._check_fields(kind, value, fields)
        return Check(**fields) if self.ok else None

    def _check_fields(self, kind: str, value: dict[str, Any], fields: dict[str, Any]) -> None:  # noqa: PLR0912
        if "path" in value:
            path = value["path"]
            if not isinstance(path, str) or not path.startswith("/") or (kind == "file" and "*" in path):
                self.problem("check.path", f"{path!r} must be an absolute path"
                             + (" (no wildcard)" if kind == "file" else " (a glob such as /etc/x.d/*.conf)"))
            fields["path"] = path
        if "regex" in value:
            try:
                re.compile(value["regex"], re.MULTILINE)
            except (re.error, TypeError) as exc:
                self.problem("check.regex", f"{value['regex']!r} is not a regular expression: {exc}")
            fields["regex"] = value["regex"]
        if "mode_max" in value:
            if not isinstance(value["mode_max"], str) or not MODE_RE.match(value["mode_max"]):
                self.problem("check.mode_max", f"{value['mode_max']!r} must be a quoted octal mode like \"0640\"")
            fields["mode_max"] = value["mode_max"]
        for key in ("owner", "group"):
            if key in value:
                if not isinstance(value[key], str) or not ACCOUNT_RE.match(value[key]):
                    self.problem(f"check.{key}", f"{value[key]!r} is not a user or group name")
                fields[key] = value[key]
        if "name" in value:
            names = value["name"] if isinstance(value["name"], list) else [value["name"]]
            pattern = {"package_absent": PACKAGE_RE, "executables": COMMAND_RE}.get(kind, UNIT_RE)
            if not names or not all(isinstance(n, str) and pattern.match(n) for n in names) or (
                kind == "service" and len(names) != 1
            ):
                what = {"package_absent": "a package name or a list of them",
                        "executables": "a command name or a list of them"}.get(kind, "one unit name")
                self.problem("check.name", f"{value['name']!r} must be {what}")
            fields["names"] = tuple(str(n) for n in names)
        if "rule" in value:
            if not isinstance(value["rule"], str) or not RULE_RE.match(value["rule"]):
                self.problem("check.rule", f"{value['rule']!r} is not a rule name (lower case, digits, _)")
            fields["rule"] = value["rule"]
        if "kind" in value:
            if value["kind"] not in NFT_KINDS:
                self.problem("check.kind", f"{value['kind']!r} is not an nft check; kinds: {', '.join(NFT_KINDS)}")
            fields["kind"] = value["kind"]

    def _levels(self, value: object, check: Check | None) -> dict[int, object]:
        if not isinstance(value, dict) or not all(isinstance(k, int) and not isinstance(k, bool) for k in value):
            self.problem("levels", "must map integer levels to values, e.g. {2: \"no\", 3: \"no\"}")
            return {}
        levels: dict[int, object] = dict(value)
        for lvl in levels:
            if not MIN_LEVEL <= lvl <= MAX_LEVEL:
                self.problem("levels", f"level {lvl} is not a cấp độ from {MIN_LEVEL} to {MAX_LEVEL}")
        for lvl in REQUIRED_LEVELS:
            if lvl not in levels:
                self.problem("levels", f"no value for cấp độ {lvl} (give null when it is not required there)")
        if all(v is None for v in levels.values()):
            self.problem("levels", "null at every level: the control is never required")
        if check is None:
            return levels
        for lvl, val in levels.items():
            if val is not None:
                why = _value_problem(check, val)
                if why:
                    self.problem(f"levels.{lvl}", why)
        return levels


def _value_problem(check: Check, value: object) -> str:  # noqa: PLR0911 - one answer per kind of value
    """Why `value` cannot be a level value of `check`; "" when it can."""
    scalar = (str, int, float)
    op = check.op
    if (not check.op and check.type in FLAG_TYPES) or op in FLAG_OPS:
        return "" if value is True else "this check states what must hold itself: the value is true (or null)"
    if check.type == "service":
        states = value if isinstance(value, list) else [value]
        want_list = op == "superset"
        if want_list != isinstance(value, list) or not states or not all(s in SERVICE_STATES for s in states):
            shape = "a list of states" if want_list else "one state"
            return f"{value!r} must be {shape} from: {', '.join(SERVICE_STATES)}"
        return ""
    if isinstance(value, bool):
        return f"{value!r}: write the value as the tool prints it, e.g. \"yes\"/\"no\" (quoted)"
    if op in ("le", "ge"):
        if isinstance(value, int | float):
            return ""
        if check.type == "journald" and isinstance(value, str) and parse_timespan(value) is not None:
            return ""
        return f"{value!r} must be a number for {op}" + (" or a time span like \"3month\"" if check.type ==
                                                          "journald" else "")
    if op in ("in", "subset", "superset"):
        if isinstance(value, list) and value and all(isinstance(v, scalar) for v in value):
            return ""
        return f"{value!r} must be a non-empty list for {op}"
    if isinstance(value, scalar):
        return ""
    return f"{value!r} must be one value (text or number) for {op}"


# systemd time spans (systemd.time(7)): what journald's MaxRetentionSec= and friends accept
_TIMESPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "M": 2629800, "month": 2629800, "months": 2629800,
    "y": 31557600, "year": 31557600, "years": 31557600,
}
_TIMESPAN_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)")


def parse_timespan(text: str) -> float | None:
    """Seconds in a systemd time span ("3month", "1w 2d", "90d", "300"); None if it is not one."""
    text = text.strip()
    if not text:
        return None
    total, pos = 0.0, 0
    for match in _TIMESPAN_RE.finditer(text):
        if text[pos:match.start()].strip():
            return None
        number, unit = match.groups()
        factor = _TIMESPAN_UNITS.get(unit or "s") if unit != "M" else _TIMESPAN_UNITS["M"]
        if factor is None:
            factor = _TIMESPAN_UNITS.get(unit.lower())
        if factor is None:
            return None
        total += float(number) * factor
        pos = match.end()
    return total if not text[pos:].strip() and pos else None
