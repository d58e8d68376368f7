"""Read an inventory directory and check it against the provsec format (see inventory/README.md).

Every problem is collected, then all are raised at once in one InventoryError, one line each:
`FILE: KEY: problem`. Nothing here raises a traceback for bad input.

The check also guarantees that Ansible sees what the model sees: the model keys (provsec_province,
provsec_agencies, provsec_information_systems, provsec_networks) are accepted only in group_vars/all/, and
provsec_security_level, which is computed, is accepted nowhere in the inventory (a host or group variable
would silently override the computed level).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provsec.inventory.model import (
    MAX_LEVEL,
    MIN_LEVEL,
    ROLE_GROUPS,
    Agency,
    Host,
    InformationSystem,
    Inventory,
    InventoryError,
    IPAddress,
    IPNetwork,
    Networks,
    Problem,
    Province,
)

HOSTS_FILE = "hosts.yml"
VAULT_HEADER = "$ANSIBLE_VAULT"
YAML_SUFFIXES = (".yml", ".yaml")
MODEL_KEYS = ("provsec_province", "provsec_agencies", "provsec_information_systems", "provsec_networks")
COMPUTED_KEY = "provsec_security_level"
NETWORK_KEYS = ("admin_subnets", "dc_ranges", "agency_ranges")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MIN_PREFIX = {4: 8, 6: 32}  # a declared range broader than this is almost surely a mistake
LEVEL_RULE = f"an integer from {MIN_LEVEL} to {MAX_LEVEL} (cấp độ, Nghị định 85/2016/NĐ-CP)"

AllVars = dict[str, tuple[object, str]]  # variable -> (value, file that defined it)


def load_inventory(path: str | Path) -> Inventory:
    """Read and check the inventory directory; raise InventoryError (an InputError) listing every problem."""
    return _Checker(Path(path)).run()


# --- YAML reading ------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one; Ansible only warns)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {seen[key] + 1}): give each key once",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _construct_vault(loader: _Loader, node: yaml.Node) -> str:
    """An inline `!vault |` value: encrypted, so only its presence is known."""
    return "<encrypted with ansible-vault>"


def _construct_unsafe(loader: _Loader, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return None


_Loader.add_constructor("!vault", _construct_vault)
_Loader.add_constructor("!unsafe", _construct_unsafe)


# --- helpers -----------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """How a value reads to an operator, for messages: "'3' (a string)", "a list"."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    names = {type(None): "nothing (null)", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_ip(value: object) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


@dataclass
class _RawHost:
    """A host as hosts.yml gives it: its groups, and its variables merged across its group entries."""

    name: str
    groups: list[str] = field(default_factory=list)
    vars: dict[str, object] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # variable -> group entry that gave it

    def key(self, var: str = "") -> str:
        """The KEY naming this host (or one of its variables) in hosts.yml."""
        where = f"all.children.{self.origin.get(var) or self.groups[0]}.hosts.{self.name}"
        return f"{where}.{var}" if var else where


# --- the checker -------------------------------------------------------------------------------


class _Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.all_vars_unread = False  # group_vars/all is missing or a file of it is unreadable

    def _name(self, rel: Path | str) -> str:
        return str(self.root / rel)

    def _add(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    # reading

    def _read_yaml(self, rel: Path) -> tuple[bool, object]:
        """(ok, data). A vault-encrypted file reads as (False, None) without a problem."""
        name = self._name(rel)
        try:
            raw = (self.root / rel).read_bytes()
        except OSError as exc:
            self._add(name, "", f"cannot read: {exc.strerror}")
            return False, None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._add(name, "", f"not UTF-8 text (bad byte at offset {exc.start}): save the file as UTF-8")
            return False, None
        if text.lstrip().startswith(VAULT_HEADER):
            return False, None
        try:
            return True, yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            self._add(name, where, f"YAML syntax error: {exc.problem or exc.context or 'cannot parse'}")
        except yaml.YAMLError as exc:
            self._add(name, "", f"YAML syntax error: {' '.join(str(exc).split())}")
        return False, None

    def _yaml_files(self, directory: Path) -> Iterator[Path]:
        """YAML files under directory, relative to the inventory root, in the order Ansible reads them."""
        for p in sorted(directory.rglob("*")):
            rel = p.relative_to(self.root)
            if p.is_file() and p.suffix in YAML_SUFFIXES and not any(s.startswith(".") for s in rel.parts):
                yield rel

    def _skip_vault_file(self, rel: Path) -> bool:
        """vault*.yml files are ansible-vault encrypted: not read. Warn when one is not encrypted."""
        if not rel.name.startswith("vault"):
            return False
        try:
            head = (self.root / rel).read_bytes()[:64]
        except OSError:
            return True
        if not head.lstrip().startswith(VAULT_HEADER.encode()):
            self.warnings.append(
                Problem(
                    self._name(rel),
                    "",
                    "not encrypted: put the real secrets in it, then encrypt it "
                    f"(ansible-vault encrypt {self._name(rel)})",
                )
            )
        return True

    # the whole check

    def run(self) -> Inventory:
        root = self.root
        if not root.exists():
            raise InventoryError(str(root), [Problem(str(root), "", "no such directory")])
        if not root.is_dir():
            message = (
                "not a directory: give the inventory directory, which holds hosts.yml and group_vars/all/"
            )
            raise InventoryError(str(root), [Problem(str(root), "", message)])

        raw_hosts = self._hosts_file()
        all_vars = self._all_vars()
        self._other_vars(raw_hosts)

        province = self._province(all_vars)
        agencies = self._agencies(all_vars)
        networks = self._networks(all_vars)
        systems = self._systems(all_vars, agencies, raw_hosts)
        hosts = self._hosts(raw_hosts, agencies, systems, networks)

        if (
            self.problems
            or province is None
            or agencies is None
            or networks is None
            or systems is None
            or hosts is None
        ):
            # Every None above comes with a problem; keep the problems of one file together.
            if not self.problems:  # pragma: no cover - a bug, but never a silent pass
                self._add(str(root), "", "incomplete inventory")
            order = {f: i for i, f in enumerate(dict.fromkeys(p.file for p in self.problems))}
            raise InventoryError(str(root), sorted(self.problems, key=lambda p: order[p.file]))
        return Inventory(
            path=root,
            province=province,
            agencies=tuple(agencies.values()),
            systems=tuple(systems),
            hosts=tuple(hosts),
            networks=networks,
            warnings=tuple(self.warnings),
        )

    # hosts.yml

    def _reserved(self, file: str, key: str, mapping: dict[Any, Any], where: str) -> None:
        """Model keys belong in group_vars/all/ only; provsec_security_level is computed, never set."""
        for var in mapping:
            full = f"{key}.{var}" if key else str(var)
            if var == COMPUTED_KEY:
                self._add(
                    file,
                    full,
                    "do not set it: a host's level is computed as the highest level of the information "
                    "systems it serves (provsec_information_systems), and a value here would override that",
                )
            elif var in MODEL_KEYS:
                self._add(
                    file, full, f"define it only in group_vars/all/: {where} it would override the model"
                )

    def _hosts_top(self, name: str) -> dict[Any, Any] | None:
        """The `all` mapping of hosts.yml, or None (with a problem)."""
        rel = Path(HOSTS_FILE)
        if not (self.root / rel).is_file():
            self._add(
                name,
                "",
                "missing file: the inventory needs hosts.yml, an Ansible YAML inventory "
                "(all: children: <role group>: hosts: <host>: {ansible_host: ..., provsec_agency: ...})",
            )
            return None
        before = len(self.problems)
        ok, data = self._read_yaml(rel)
        if not ok:
            if len(self.problems) == before:
                self._add(name, "", "encrypted with ansible-vault: hosts.yml must be plain YAML (no secrets)")
            return None
        if not isinstance(data, dict):
            expected = "all: children: <role group>: hosts: ..."
            self._add(name, "(top level)", f"must be a mapping ({expected}), got {_kind(data)}")
            return None
        for key in data:
            if key != "all":
                self._add(name, str(key), "unknown top-level key: put every role group under all.children")
        top = data.get("all")
        if not isinstance(top, dict):
            self._add(name, "all", "missing" if top is None else f"must be a mapping, got {_kind(top)}")
            return None
        for key, value in top.items():
            if key == "hosts":
                self._add(
                    name,
                    "all.hosts",
                    "hosts directly under all have no role group: list each host under "
                    "all.children.<role group>.hosts",
                )
            elif key == "vars" and isinstance(value, dict):
                self._reserved(name, "all.vars", value, "in hosts.yml")
            elif key not in ("children", "vars"):
                self._add(name, f"all.{key}", "unknown key: expected children (and optionally vars)")
        return top

    def _hosts_file(self) -> dict[str, _RawHost]:
        name = self._name(HOSTS_FILE)
        hosts: dict[str, _RawHost] = {}
        top = self._hosts_top(name)
        if top is None:
            return hosts
        children = top.get("children")
        if not isinstance(children, dict):
            got = (
                "missing" if children is None else f"must be a mapping of role groups, got {_kind(children)}"
            )
            self._add(name, "all.children", got)
            return hosts
        for group, entry in children.items():
            members = self._group(name, str(group), entry)
            if members is not None:
                self._members(name, str(group), members, hosts)
        if not hosts and not any(p.file == name for p in self.problems):
            self._add(name, "all.children", "no hosts: every role group is empty")
        return hosts

    def _group(self, name: str, group: str, entry: object) -> dict[Any, Any] | None:
        """The hosts mapping of one role group entry, or None (with a problem unless the group is empty)."""
        gkey = f"all.children.{group}"
        if group not in ROLE_GROUPS:
            self._add(
                name,
                gkey,
                f"unknown group{_suggest(group, ROLE_GROUPS)}; role groups are: {', '.join(ROLE_GROUPS)}",
            )
            return None
        if entry is None:
            return None
        if not isinstance(entry, dict):
            self._add(name, gkey, f"must be a mapping with the key hosts, got {_kind(entry)}")
            return None
        for key, value in entry.items():
            if key == "children":
                self._add(
                    name,
                    f"{gkey}.children",
                    "nested groups are not part of the provsec format: list each host under every one "
                    "of its role groups directly",
                )
            elif key == "vars" and isinstance(value, dict):
                self._reserved(name, f"{gkey}.vars", value, "in hosts.yml")
            elif key not in ("hosts", "vars"):
                self._add(name, f"{gkey}.{key}", "unknown key: expected hosts (and optionally vars)")
        members = entry.get("hosts")
        if members is not None and not isinstance(members, dict):
            self._add(
                name,
                f"{gkey}.hosts",
                f"must be a mapping of host name to its variables (write `db1:`, not `- db1`), "
                f"got {_kind(members)}",
            )
            return None
        return members

    def _members(self, name: str, group: str, members: dict[Any, Any], hosts: dict[str, _RawHost]) -> None:
        """Add a group's hosts, merging each host's variables across its group entries."""
        for host, hvars in members.items():
            hkey = f"all.children.{group}.hosts.{host}"
            if not isinstance(host, str) or not NAME_RE.match(host):
                self._add(name, hkey, "invalid host name: use letters, digits, '.', '_' and '-'")
                continue
            raw = hosts.setdefault(host, _RawHost(host))
            raw.groups.append(group)
            if hvars is None:
                continue
            if not isinstance(hvars, dict):
                self._add(name, hkey, f"must be a mapping of host variables, got {_kind(hvars)}")
                continue
            self._reserved(name, hkey, hvars, "as a host variable")
            for var, value in hvars.items():
                var_name = str(var)
                if var_name not in raw.vars:
                    raw.vars[var_name] = value
                    raw.origin[var_name] = group
                elif raw.vars[var_name] != value:
                    self._add(
                        name,
                        f"{hkey}.{var_name}",
                        f"differs from the value given under {raw.key(var_name)}: give each host "
                        "variable once, in any one of its group entries",
                    )

    # group_vars / host_vars

    def _all_vars(self) -> AllVars:
        """Variables of group_vars/all/*.yml (and group_vars/all.yml), with the file each came from."""
        files = [
            Path("group_vars") / f"all{suffix}"
            for suffix in YAML_SUFFIXES
            if (self.root / "group_vars" / f"all{suffix}").is_file()
        ]
        directory = self.root / "group_vars" / "all"
        if directory.is_dir():
            files.extend(self._yaml_files(directory))
        merged: AllVars = {}
        if not files:
            self.all_vars_unread = True
            self._add(
                self._name(Path("group_vars") / "all"),
                "",
                "missing: the inventory needs group_vars/all/*.yml defining " + ", ".join(MODEL_KEYS),
            )
            return merged
        for rel in files:
            if self._skip_vault_file(rel):
                continue
            before = len(self.problems)
            ok, data = self._read_yaml(rel)
            if not ok:
                # unreadable (a problem was reported), or vault-encrypted despite its name (skipped)
                self.all_vars_unread = self.all_vars_unread or len(self.problems) > before
                continue
            if data is None:
                continue
            name = self._name(rel)
            if not isinstance(data, dict):
                self._add(name, "(top level)", f"must be a mapping of variables, got {_kind(data)}")
                continue
            for key, value in data.items():
                var = str(key)
                if var == COMPUTED_KEY:
                    self._reserved(name, "", {var: value}, "")
                    continue
                if var in MODEL_KEYS and var in merged:
                    self._add(
                        name,
                        var,
                        f"also defined in {merged[var][1]}: define it in one file "
                        "(Ansible would keep only the last one)",
                    )
                merged[var] = (value, name)
        return merged

    def _other_vars(self, raw_hosts: dict[str, _RawHost]) -> None:
        """group_vars/<group>/ and host_vars/<host>/: YAML syntax, known names, and no model keys."""
        for kind, known in (("group_vars", ("all", *ROLE_GROUPS)), ("host_vars", tuple(raw_hosts))):
            base = self.root / kind
            if not base.is_dir():
                continue
            for rel in self._yaml_files(base):
                owner = rel.parts[1] if len(rel.parts) > 2 else Path(rel.parts[1]).stem
                if kind == "group_vars" and owner == "all":
                    continue  # read by _all_vars
                name = self._name(rel)
                if owner not in known:
                    what = "group" if kind == "group_vars" else "host (not in hosts.yml)"
                    self._add(name, "", f"unknown {what} {owner!r}{_suggest(owner, known)}")
                if self._skip_vault_file(rel):
                    continue
                ok, data = self._read_yaml(rel)
                if ok and isinstance(data, dict):
                    self._reserved(name, "", data, f"in {kind}/{owner}")

    # group_vars/all sections

    def _need(self, all_vars: AllVars, key: str) -> tuple[object, str] | None:
        if key not in all_vars:
            if self.all_vars_unread:  # already reported: missing directory, or a file that cannot be read
                return None
            self._add(self._name(Path("group_vars") / "all"), key, "not defined in any group_vars/all/*.yml")
            return None
        return all_vars[key]

    def _record(
        self, file: str, key: str, value: object, fields: tuple[str, ...]
    ) -> dict[str, object] | None:
        """A mapping with exactly these keys; None when it is not a mapping."""
        if not isinstance(value, dict):
            self._add(file, key, f"must be a mapping with the keys {', '.join(fields)}, got {_kind(value)}")
            return None
        meant: set[str] = set()  # missing keys that a misspelt key explains: reported once, as the typo
        for k in value:
            if k not in fields:
                close = difflib.get_close_matches(str(k), [f for f in fields if f not in value], n=1)
                meant.update(close)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self._add(file, f"{key}.{k}", f"unknown key{hint}; expected {', '.join(fields)}")
        for k in fields:
            if k not in value and k not in meant:
                self._add(file, f"{key}.{k}", "missing")
        return {str(k): v for k, v in value.items()}

    def _text(self, file: str, key: str, value: object) -> str | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None:  # a missing key is reported once, by _record
            self._add(file, key, f"must be a non-empty string, got {_kind(value)}")
        return None

    def _list(self, file: str, key: str, value: object, what: tuple[str, str]) -> list[object] | None:
        """A non-empty list; `what` is the (singular, plural) name of its entries, for messages."""
        if isinstance(value, list) and value:
            return value
        if value is None or isinstance(value, list):
            self._add(file, key, f"must list at least one {what[0]}")
        else:
            self._add(file, key, f"must be a list of {what[1]}, got {_kind(value)}")
        return None

    @staticmethod
    def _labels(items: list[object], ident: str) -> list[str]:
        """How a KEY names each entry: `[its id]`, or `[index]` (from 0) if the id is missing or repeated."""
        ids = [item.get(ident) if isinstance(item, dict) else None for item in items]
        return [
            f"[{x.strip()}]" if isinstance(x, str) and x.strip() and ids.count(x) == 1 else f"[{n}]"
            for n, x in enumerate(ids)
        ]

    def _province(self, all_vars: AllVars) -> Province | None:
        found = self._need(all_vars, "provsec_province")
        if found is None:
            return None
        value, file = found
        rec = self._record(file, "provsec_province", value, ("code", "name"))
        if rec is None:
            return None
        code = self._text(file, "provsec_province.code", rec.get("code"))
        name = self._text(file, "provsec_province.name", rec.get("name"))
        return Province(code, name) if code and name else None

    def _agencies(self, all_vars: AllVars) -> dict[str, Agency] | None:
        found = self._need(all_vars, "provsec_agencies")
        if found is None:
            return None
        value, file = found
        items = self._list(file, "provsec_agencies", value, ("agency", "agencies"))
        if items is None:
            return None
        agencies: dict[str, Agency] = {}
        first: dict[str, int] = {}
        complete = True
        for n, (item, label) in enumerate(zip(items, self._labels(items, "code"), strict=True)):
            key = f"provsec_agencies{label}"
            rec = self._record(file, key, item, ("code", "name"))
            if rec is None:
                complete = False
                continue
            code = self._text(file, f"{key}.code", rec.get("code"))
            name = self._text(file, f"{key}.name", rec.get("name"))
            if code is None or name is None:
                complete = False
                continue
            if code in agencies:
                self._add(
                    file,
                    f"{key}.code",
                    f"duplicate agency code {code!r} (first at provsec_agencies[{first[code]}])",
                )
                complete = False
                continue
            agencies[code] = Agency(code, name)
            first[code] = n
        return agencies if complete else None

    def _networks(self, all_vars: AllVars) -> Networks | None:
        found = self._need(all_vars, "provsec_networks")
        if found is None:
            return None
        value, file = found
        rec = self._record(file, "provsec_networks", value, NETWORK_KEYS)
        if rec is None:
            return None
        parsed: dict[str, list[IPNetwork]] = {}
        complete = True
        for kind in NETWORK_KEYS:
            nets = self._network_list(file, kind, rec) if kind in rec else None
            if nets is None:
                complete = False
            else:
                parsed[kind] = nets
        for n, dc in enumerate(parsed.get("dc_ranges", [])):
            for m, ag in enumerate(parsed.get("agency_ranges", [])):
                if _overlap(dc, ag):
                    self._add(
                        file,
                        f"provsec_networks.agency_ranges[{m}]",
                        f"{ag} overlaps dc_ranges[{n}] {dc}: a range is either DC or agency",
                    )
                    complete = False
        if not complete:
            return None
        return Networks(
            tuple(parsed["admin_subnets"]), tuple(parsed["dc_ranges"]), tuple(parsed["agency_ranges"])
        )

    def _network_list(self, file: str, kind: str, rec: dict[str, object]) -> list[IPNetwork] | None:
        """One list of provsec_networks, parsed; None when any entry is wrong."""
        entries = rec[kind]
        key = f"provsec_networks.{kind}"
        if not isinstance(entries, list):
            self._add(file, key, f'must be a list of CIDRs (e.g. ["10.48.10.0/24"]), got {_kind(entries)}')
            return None
        ok = True
        if not entries and kind != "agency_ranges":
            self._add(file, key, "must list at least one CIDR")
            ok = False
        nets: list[IPNetwork] = []
        for n, entry in enumerate(entries):
            net = self._cidr(file, f"{key}[{n}]", entry)
            if net is None:
                ok = False
            elif net in nets:
                self._add(file, f"{key}[{n}]", f"{net} is listed twice")
            else:
                nets.append(net)
        return nets if ok else None

    def _cidr(self, file: str, key: str, entry: object) -> IPNetwork | None:
        parsed = _parse_cidr(entry)
        if isinstance(parsed, str):
            self._add(file, key, parsed)
            return None
        return parsed

    def _systems(
        self, all_vars: AllVars, agencies: dict[str, Agency] | None, raw_hosts: dict[str, _RawHost]
    ) -> list[InformationSystem] | None:
        found = self._need(all_vars, "provsec_information_systems")
        if found is None:
            return None
        value, file = found
        items = self._list(
            file, "provsec_information_systems", value, ("information system", "information systems")
        )
        if items is None:
            return None
        fields = ("id", "name", "owner", "level", "hosts")
        systems: list[InformationSystem] = []
        first: dict[str, int] = {}
        complete = True
        for n, (item, label) in enumerate(zip(items, self._labels(items, "id"), strict=True)):
            key = f"provsec_information_systems{label}"
            rec = self._record(file, key, item, fields)
            if rec is None:
                complete = False
                continue
            sid = self._text(file, f"{key}.id", rec.get("id"))
            if sid is not None and not NAME_RE.match(sid):
                self._add(
                    file, f"{key}.id", f"{sid!r}: use letters, digits, '.', '_' and '-' (e.g. \"cong-ttdt\")"
                )
                sid = None
            elif sid is not None and sid in first:
                self._add(
                    file,
                    f"{key}.id",
                    f"duplicate id {sid!r} (first at provsec_information_systems[{first[sid]}])",
                )
                sid = None
            elif sid is not None:
                first[sid] = n
            name = self._text(file, f"{key}.name", rec.get("name"))
            owner = self._text(file, f"{key}.owner", rec.get("owner"))
            if owner is not None and agencies is not None and owner not in agencies:
                hint = _suggest(owner, tuple(agencies))
                self._add(
                    file, f"{key}.owner", f"unknown agency code {owner!r}{hint}: not in provsec_agencies"
                )
                owner = None
            level = self._level(file, f"{key}.level", rec.get("level"))
            hosts = self._system_hosts(file, f"{key}.hosts", rec.get("hosts"), raw_hosts)
            if sid is None or name is None or owner is None or level is None or hosts is None:
                complete = False
                continue
            systems.append(InformationSystem(sid, name, owner, level, hosts))
        return systems if complete else None

    def _level(self, file: str, key: str, value: object) -> int | None:
        if value is None:  # a missing key is reported once, by _record
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._add(file, key, f"must be {LEVEL_RULE}, got {_kind(value)}")
            return None
        if not MIN_LEVEL <= value <= MAX_LEVEL:
            self._add(file, key, f"must be {LEVEL_RULE}, got {value}")
            return None
        return value

    def _system_hosts(
        self, file: str, key: str, value: object, raw_hosts: dict[str, _RawHost]
    ) -> tuple[str, ...] | None:
        if value is None:  # a missing key is reported once, by _record
            return None
        items = self._list(file, key, value, ("host name", "host names"))
        if items is None:
            return None
        hosts: list[str] = []
        ok = True
        for n, host in enumerate(items):
            if not isinstance(host, str) or not host.strip():
                self._add(file, f"{key}[{n}]", f"must be a host name from hosts.yml, got {_kind(host)}")
                ok = False
            elif host in hosts:
                self._add(file, f"{key}[{n}]", f"host {host!r} is listed twice")
            elif raw_hosts and host not in raw_hosts:
                hint = _suggest(host, tuple(raw_hosts))
                self._add(file, f"{key}[{n}]", f"unknown host {host!r}{hint}: not in hosts.yml")
                ok = False
            else:
                hosts.append(host)
        return tuple(hosts) if ok else None

    # hosts, against everything else

    def _hosts(
        self,
        raw_hosts: dict[str, _RawHost],
        agencies: dict[str, Agency] | None,
        systems: list[InformationSystem] | None,
        networks: Networks | None,
    ) -> list[Host] | None:
        name = self._name(HOSTS_FILE)
        hosts: list[Host] = []
        owners: dict[IPAddress, str] = {}
        complete = bool(raw_hosts)
        for raw in raw_hosts.values():
            ansible_host = self._host_ip(name, raw)
            agency = self._host_agency(name, raw, agencies)
            addresses = self._host_addresses(name, raw)
            served: tuple[InformationSystem, ...] = ()
            if systems is not None:
                served = tuple(s for s in systems if raw.name in s.hosts)
                if not served:
                    self._add(
                        name,
                        raw.key(),
                        "serves no information system, so its security level is unknown: add it to the hosts "
                        "of a system in provsec_information_systems (a host's level is the highest level of "
                        "the systems it serves, Nghị định 85/2016/NĐ-CP)",
                    )
            located = [(raw.key("ansible_host"), ansible_host)] if ansible_host else []
            located += [(f"{raw.key('provsec_addresses')}.{net}", addr) for net, addr in addresses or ()]
            if not self._host_scope(name, raw.name, located, owners, networks):
                complete = False
            if ansible_host is None or agency is None or addresses is None or not served:
                complete = False
                continue
            level = max(s.level for s in served)
            hosts.append(
                Host(
                    name=raw.name,
                    groups=tuple(raw.groups),
                    ansible_host=ansible_host,
                    agency=agency,
                    addresses=addresses,
                    systems=tuple(s.id for s in served),
                    level=level,
                )
            )
        return hosts if complete else None

    def _host_scope(
        self,
        file: str,
        host: str,
        located: list[tuple[str, IPAddress]],
        owners: dict[IPAddress, str],
        networks: Networks | None,
    ) -> bool:
        """Each address of the host belongs to it alone and lies inside a declared network."""
        ok = True
        for key, addr in located:
            other = owners.setdefault(addr, host)
            if other != host:
                self._add(file, key, f"{addr} is also an address of host {other!r}")
                ok = False
            if networks is not None and not networks.contains(addr):
                self._add(
                    file,
                    key,
                    f"{addr} is outside every declared network (provsec_networks: admin_subnets, "
                    "dc_ranges, agency_ranges): scans may only touch declared ranges",
                )
                ok = False
        return ok

    def _host_ip(self, file: str, raw: _RawHost) -> IPAddress | None:
        value = raw.vars.get("ansible_host")
        key = raw.key("ansible_host")
        if value is None:
            self._add(file, key, "missing: every host needs its IP address as ansible_host")
            return None
        ip = _parse_ip(value)
        if ip is None:
            self._add(
                file,
                key,
                f"must be an IP address, got {_kind(value)} (names are not accepted: the scan scope is "
                "checked by address)",
            )
        return ip

    def _host_agency(self, file: str, raw: _RawHost, agencies: dict[str, Agency] | None) -> str | None:
        value = raw.vars.get("provsec_agency")
        key = raw.key("provsec_agency")
        if value is None:
            self._add(file, key, "missing: every host needs the code of the agency operating it")
            return None
        if not isinstance(value, str) or not value.strip():
            self._add(file, key, f"must be an agency code from provsec_agencies, got {_kind(value)}")
            return None
        code = value.strip()
        if agencies is not None and code not in agencies:
            hint = _suggest(code, tuple(agencies))
            self._add(file, key, f"unknown agency code {code!r}{hint}: not in provsec_agencies")
            return None
        return code

    def _host_addresses(self, file: str, raw: _RawHost) -> tuple[tuple[str, IPAddress], ...] | None:
        value = raw.vars.get("provsec_addresses")
        key = raw.key("provsec_addresses")
        if value is None:
            return ()
        if not isinstance(value, dict):
            self._add(file, key, f"must be a mapping of network name to IP address, got {_kind(value)}")
            return None
        addresses: list[tuple[str, IPAddress]] = []
        ok = True
        for net_name, addr in value.items():
            if not isinstance(net_name, str) or not NAME_RE.match(net_name):
                self._add(
                    file, f"{key}.{net_name}", "invalid network name: use letters, digits, '.', '_' and '-'"
                )
                ok = False
                continue
            ip = _parse_ip(addr)
            if ip is None:
                self._add(file, f"{key}.{net_name}", f"must be an IP address, got {_kind(addr)}")
                ok = False
                continue
            addresses.append((net_name, ip))
        return tuple(addresses) if ok else None


def _parse_cidr(entry: object) -> IPNetwork | str:
    """The network a provsec_networks entry declares, or what is wrong with it."""
    if not isinstance(entry, str):
        return f'must be a CIDR string such as "10.48.10.0/24", got {_kind(entry)}'
    text = entry.strip()
    if "/" not in text:  # a bare address would silently mean /32
        return f'{text!r} has no prefix length: write a CIDR such as "{text}/24"'
    try:
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        return _cidr_mistake(text, exc)
    if net.prefixlen < MIN_PREFIX[net.version]:
        return (
            f"{net} is too broad (shorter than /{MIN_PREFIX[net.version]}): declare the province's own ranges"
        )
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_unspecified:
        return f"{net} is not a range of the province's network (loopback, multicast or link-local)"
    return net


def _cidr_mistake(text: str, exc: ValueError) -> str:
    try:
        fixed = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"not a valid CIDR: {exc}"
    return f'{text!r} has host bits set: did you mean "{fixed}"?'


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    if isinstance(a, ipaddress.IPv4Network) and isinstance(b, ipaddress.IPv4Network):
        return a.overlaps(b)
    if isinstance(a, ipaddress.IPv6Network) and isinstance(b, ipaddress.IPv6Network):
        return a.overlaps(b)
    return False
