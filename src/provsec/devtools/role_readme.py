"""Keep each role README's variable table in step with the role's meta/argument_specs.yml.

Every Ansible role under playbooks/roles describes its variables once, in meta/argument_specs.yml (type,
description, choices); defaults/main.yml holds their default values. The README carries a table generated
from both, between the marker comments BEGIN_MARKER and END_MARKER. `scripts/role-readme` rewrites the
tables; `scripts/role-readme --check` (run by `make lint`) exits 1 when one is stale.

A role whose defaults/main.yml sets a variable that argument_specs does not describe is an error: the
settings panel and its description must not drift apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError, ProvsecError

BEGIN_MARKER = "<!-- BEGIN VARIABLES -->"
END_MARKER = "<!-- END VARIABLES -->"
NOTICE = "<!-- generated from meta/argument_specs.yml and defaults/main.yml by scripts/role-readme; do not edit -->"

# Relative to the repository root, where make runs; scripts/role-readme passes an absolute path.
DEFAULT_ROLES_DIR = Path("playbooks/roles")


@dataclass(frozen=True)
class Variable:
    """One role variable as the README shows it."""

    name: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class EntryPoint:
    """A role entry point (tasks/<name>.yml) and the variables it takes."""

    name: str
    variables: tuple[Variable, ...]


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc


# Ansible documentation markup (as ansible-doc understands it) and its Markdown equivalent.
_MARKUP: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:C|O|V|RV|E|M)\(([^()]*)\)"), r"`\1`"),
    (re.compile(r"\bB\(([^()]*)\)"), r"**\1**"),
    (re.compile(r"\bI\(([^()]*)\)"), r"*\1*"),
    (re.compile(r"\bL\(([^(),]*),\s*([^()]*)\)"), r"[\1](\2)"),
    (re.compile(r"\bU\(([^()]*)\)"), r"<\1>"),
)


def _markdown(text: str) -> str:
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _render_default(value: Any) -> str:
    if isinstance(value, str):
        return _code(value) if value else '`""`'
    if isinstance(value, bool):
        return _code("true" if value else "false")
    return _code(json.dumps(value, ensure_ascii=False))


def _render_type(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and "elements" in spec:
        kind = f"list of {spec['elements']}"
    elif kind == "dict" and "options" in spec:
        kind = "dict (see argument_specs)"
    return kind


def _render_description(spec: dict[str, Any]) -> str:
    raw = spec.get("description", "")
    text = " ".join(str(part) for part in raw) if isinstance(raw, list) else str(raw)
    if "choices" in spec:
        choices = ", ".join(_code(str(choice)) for choice in spec["choices"])
        text = f"{text} One of: {choices}."
    if spec.get("no_log"):
        text = f"{text} Secret (no_log)."
    return _cell(_markdown(text))


def _load_defaults(role_dir: Path) -> dict[str, Any]:
    path = role_dir / "defaults" / "main.yml"
    if not path.is_file():
        return {}
    loaded = _load_yaml(path)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: must be a mapping of variable names to values")
    return loaded


def _variable(name: str, spec: Any, defaults: dict[str, Any], *, where: str) -> Variable:
    if not isinstance(spec, dict):
        raise InputError(f"{where}: {name} must be a mapping (type, description, ...)")
    if not spec.get("description"):
        raise InputError(f"{where}: {name} has no description")
    if name in defaults:
        default = _render_default(defaults[name])
    elif "default" in spec:
        default = _render_default(spec["default"])
    else:
        default = "required" if spec.get("required") else ""
    return Variable(name=name, type=_render_type(spec), default=default, description=_render_description(spec))


def load_role(role_dir: Path) -> tuple[EntryPoint, ...]:
    """Read a role's argument_specs and defaults; raise InputError naming the file on any problem."""
    spec_path = role_dir / "meta" / "argument_specs.yml"
    if not spec_path.is_file():
        raise InputError(f"{spec_path}: missing; every role describes its variables there")
    doc = _load_yaml(spec_path)
    specs = doc.get("argument_specs") if isinstance(doc, dict) else None
    if not isinstance(specs, dict) or not specs:
        raise InputError(f"{spec_path}: no 'argument_specs' mapping of entry points")
    defaults = _load_defaults(role_dir)

    entry_points: list[EntryPoint] = []
    for entry_name, entry in specs.items():
        options = (entry.get("options") if isinstance(entry, dict) else None) or {}
        if not isinstance(options, dict):
            raise InputError(f"{spec_path}: argument_specs.{entry_name}.options must be a mapping")
        where = f"{spec_path}: argument_specs.{entry_name}.options"
        variables = tuple(_variable(str(name), spec, defaults, where=where) for name, spec in options.items())
        entry_points.append(EntryPoint(name=str(entry_name), variables=variables))

    described = {v.name for entry in entry_points for v in entry.variables}
    undescribed = sorted(str(name) for name in defaults if name not in described)
    if undescribed:
        defaults_path = role_dir / "defaults" / "main.yml"
        raise InputError(f"{defaults_path}: not described in {spec_path.name}: {', '.join(undescribed)}")
    return tuple(entry_points)


def render_table(entry_points: Sequence[EntryPoint]) -> str:
    """The Markdown between the markers: one table per entry point (headed by its name when several)."""
    parts: list[str] = [NOTICE]
    for entry in entry_points:
        if len(entry_points) > 1:
            parts.append(f"Entry point `{entry.name}`:")
        rows = ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
        rows += [f"| `{v.name}` | {v.type} | {v.default} | {v.description} |" for v in entry.variables]
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def replace_table(readme_text: str, table: str, *, source: Path) -> str:
    """Return readme_text with the part between the markers replaced by table."""
    begin = readme_text.find(BEGIN_MARKER)
    end = readme_text.find(END_MARKER)
    if begin < 0 or end < 0 or end < begin:
        raise InputError(f"{source}: needs the marker comments {BEGIN_MARKER} and then {END_MARKER}")
    return readme_text[: begin + len(BEGIN_MARKER)] + "\n" + table + "\n" + readme_text[end:]


def sync_role(role_dir: Path, *, check: bool) -> bool:
    """Bring one role's README table up to date (with check, only compare). Return True if it was stale."""
    readme = role_dir / "README.md"
    if not readme.is_file():
        raise InputError(f"{readme}: missing; every role has a README with a generated variable table")
    text = readme.read_text(encoding="utf-8")
    updated = replace_table(text, render_table(load_role(role_dir)), source=readme)
    if updated == text:
        return False
    if not check:
        tmp = readme.with_name(f".{readme.name}.tmp")
        tmp.write_text(updated, encoding="utf-8")
        tmp.replace(readme)
    return True


def role_dirs(roles_dir: Path) -> list[Path]:
    if not roles_dir.is_dir():
        raise InputError(f"{roles_dir}: no such roles directory")
    return sorted(path for path in roles_dir.iterdir() if path.is_dir() and not path.name.startswith("."))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="role-readme",
        description="Regenerate the Variables table of every role README from meta/argument_specs.yml.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is stale")
    parser.add_argument(
        "--roles-dir", type=Path, default=DEFAULT_ROLES_DIR, help="roles directory (default: playbooks/roles)"
    )
    args = parser.parse_args(argv)
    check: bool = args.check
    try:
        stale = [role.name for role in role_dirs(args.roles_dir) if sync_role(role, check=check)]
    except ProvsecError as exc:
        print(f"role-readme: {exc}", file=sys.stderr)
        return exc.exit_code
    if stale and check:
        print(
            f"role-readme: stale variable table in {', '.join(stale)}; run scripts/role-readme",
            file=sys.stderr,
        )
        return 1
    for name in stale:
        print(f"role-readme: updated {name}/README.md")
    return 0
