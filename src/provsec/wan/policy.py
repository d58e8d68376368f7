"""Judge WAN edge devices' stored configuration (`<device>.cfg`) against the WAN controls (playbooks/controls/wan/).

Each control's `check: {type: router, rule: NAME}` names a rule; each rule is one small pure function per device
family (RULES[rule][family]) that reads the parsed configuration and returns pass, fail or not_applicable with the
lines that prove it (`line 12: ip ssh version 2`) or what is missing (`no line matches …`). The results have the
servers' audit shape (provsec.audit.evaluate.Result), so the compliance report reads both.

A rule never depends on a secret's value: the stored configuration has them replaced by a token
(`<secret:hmac:…>`); only the keyword before it (IOS `secret` vs `password`, type 0/7) counts.
A configuration that cannot be read whole (empty, binary, another family, truncated) is an InputError naming the
file: no partial audit.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.audit import nftables
from provsec.audit.evaluate import STATUSES, ControlException, Result
from provsec.controls import WAN_CHECK_TYPES, Catalogue, Control, load_catalogue
from provsec.errors import InputError
from provsec.wan.parse_ios import Block, IosConfig, parse_ios
from provsec.wan.parse_linux import LinuxEvidence, Section, parse_linux
from provsec.wan.parse_routeros import Command, RouterOsExport, parse_routeros
from provsec.wan.parse_text import Line, decode, evidence

FAMILIES = ("linux", "cisco_ios", "routeros")
DEFAULT_FAMILY = "linux"
DEFAULT_CATALOGUE = "playbooks/controls/wan"

Parsed = IosConfig | RouterOsExport | LinuxEvidence


@dataclass(frozen=True)
class Finding:
    """What one rule found in one configuration."""

    status: str  # pass | fail | not_applicable
    actual: object
    evidence: str
    reason: str = ""


@dataclass(frozen=True)
class Device:
    """What the inventory says about a WAN edge device that the audit needs."""

    name: str
    family: str
    level: int
    admin_subnets: tuple[str, ...] = ()
    exceptions: tuple[ControlException, ...] = ()


def _ok(actual: object, lines: list[Line] | str, reason: str = "") -> Finding:
    return Finding("pass", actual, lines if isinstance(lines, str) else evidence(lines), reason)


def _fail(actual: object, lines: list[Line] | str, reason: str) -> Finding:
    return Finding("fail", actual, lines if isinstance(lines, str) else evidence(lines), reason)


def _inside(item: str, nets: list[nftables.Network]) -> bool:
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return any(net.version == n.version and net.subnet_of(n) for n in nets)  # type: ignore[arg-type]


# --- Cisco IOS -----------------------------------------------------------------------------------


def _ios_vty(cfg: IosConfig) -> list[Block]:
    return cfg.blocks_of(r"line vty\b")


def ios_no_telnet(cfg: IosConfig) -> Finding:
    vtys = _ios_vty(cfg)
    if not vtys:
        return _fail({}, "no line matches `line vty`", "no vty lines: cannot show which transports they accept")
    shown: list[Line] = []
    actual: dict[str, list[str]] = {}
    bad: list[str] = []
    for block in vtys:
        name = block.header.text.strip()
        lines = [ln for ln in block.lines if re.match(r"transport input\b", ln.text.strip())]
        shown.append(block.header)
        if not lines:
            actual[name] = []
            bad.append(f"{name}: no `transport input` (IOS's default on many releases accepts telnet)")
            continue
        words = lines[-1].text.split()[2:]
        actual[name] = words
        shown.append(lines[-1])
        if not set(words) <= {"ssh", "none"}:
            bad.append(f"{name}: transport input {' '.join(words)}")
    return _fail(actual, shown, "; ".join(bad)) if bad else _ok(actual, shown)


def ios_ssh_v2_only(cfg: IosConfig) -> Finding:
    v2 = cfg.top(r"ip ssh version 2$")
    if v2:
        return _ok("2", v2)
    other = cfg.top(r"ip ssh version\b")
    if other:
        return _fail(other[-1].text.split()[-1], other, "SSH version is not 2")
    return _fail(None, "no line matches `ip ssh version 2`",
                 "without `ip ssh version 2` IOS accepts SSH 1 and 2 (1.99)")


_DOTTED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def _ios_source(words: list[str]) -> str:
    """The source of an ACL entry (its words after permit/deny [protocol]) as a prefix; "" when it is not one
    network: any, a wildcard that is not contiguous low bits, an object-group."""
    if words[:1] == ["host"] and len(words) > 1:
        return f"{words[1]}/32"
    wildcard = words[1] if len(words) > 1 and _DOTTED.fullmatch(words[1]) else "0.0.0.0"  # noqa: S104 - one host
    try:
        address, bits = ipaddress.IPv4Address(words[0] if words else ""), int(ipaddress.IPv4Address(wildcard))
    except ValueError:
        return ""
    if bits & (bits + 1):
        return ""
    return str(ipaddress.ip_network(f"{address}/{32 - bits.bit_length()}", strict=False))


def _ios_acl_outside(entries: list[Line], nets: list[nftables.Network]) -> list[Line]:
    """The permit entries of an access list whose source is not inside the admin subnets."""
    outside = []
    for line in entries:
        words = line.text.split()
        if words and words[0].isdigit():
            words = words[1:]  # a sequence number
        if words[:1] == ["access-list"]:
            words = words[2:]  # numbered: access-list N permit …
        if words[:1] != ["permit"]:
            continue
        rest = words[1:]
        if rest and not re.match(r"[0-9.]+$|any$|host$", rest[0]):
            rest = rest[1:]  # extended: the protocol comes first
        source = _ios_source(rest)
        if not source or not _inside(source, nets):
            outside.append(line)
    return outside


def ios_management_acl(cfg: IosConfig, admin: tuple[str, ...] = ()) -> Finding:
    """Every vty line has `access-class ACL in`, ACL is defined, and (with the inventory's admin subnets) every
    permit entry of it has a source inside them."""
    vtys = _ios_vty(cfg)
    if not vtys:
        return _fail({}, "no line matches `line vty`", "no vty lines: cannot show an access-class on them")
    nets = [ipaddress.ip_network(a, strict=False) for a in admin]
    shown: list[Line] = []
    actual: dict[str, str | None] = {}
    bad: list[str] = []
    for block in vtys:
        name = block.header.text.strip()
        shown.append(block.header)
        classes = [ln for ln in block.lines if re.match(r"access-class \S+ in\b", ln.text.strip())]
        if not classes:
            actual[name] = None
            bad.append(f"{name}: no `access-class … in`")
            continue
        acl = classes[-1].text.split()[1]
        actual[name] = acl
        shown.append(classes[-1])
        named = cfg.blocks_of(rf"ip access-list (standard|extended) {re.escape(acl)}$")
        numbered = cfg.top(rf"access-list {re.escape(acl)} ")
        if not named and not numbered:
            bad.append(f"{name}: access-class {acl} names no access list (IOS then lets every address in)")
            continue
        entries = list(named[0].lines) if named else numbered
        definition = named[0].header if named else numbered[0]
        outside = _ios_acl_outside(entries, nets) if nets else []
        shown.extend(ln for ln in [definition, *outside] if ln not in shown)
        if outside:
            bad.append(f"{name}: {acl} permits sources outside the admin subnets {', '.join(admin)}")
    shown.sort(key=lambda ln: ln.number)
    return _fail(actual, shown, "; ".join(bad)) if bad else _ok(actual, shown)


def ios_ntp(cfg: IosConfig) -> Finding:
    servers = cfg.top(r"ntp server\s+\S+")
    if servers:
        addresses = [re.sub(r"^ntp server\s+(vrf \S+\s+)?", "", s.text.strip()).split()[0] for s in servers]
        return _ok(addresses, servers)
    return _fail([], "no line matches `ntp server`", "no NTP server configured")


def ios_remote_syslog(cfg: IosConfig) -> Finding:
    off = cfg.top(r"no logging on$")
    hosts = cfg.top(r"logging (host \S+|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)")
    if off:
        return _fail([], off + hosts, "logging is switched off (`no logging on`)")
    if hosts:
        return _ok([re.sub(r"^logging (host )?", "", h.text.strip()).split()[0] for h in hosts], hosts)
    return _fail([], "no line matches `logging host`", "no remote syslog server configured")


def ios_snmp_v3_only(cfg: IosConfig) -> Finding:
    snmp = cfg.top(r"snmp-server\b")
    if not snmp:
        return _ok("off", "no line matches `snmp-server`: the SNMP agent is off")
    bad: list[Line] = cfg.top(r"snmp-server community\b")
    good: list[Line] = []
    for line in cfg.top(r"snmp-server (group|user) "):
        words = line.text.split()
        version = next((w for w in words[3:] if w in ("v1", "v2c", "v3")), "")
        if version == "v3" and words[words.index("v3") + 1:words.index("v3") + 2] == ["priv"]:
            good.append(line)
        elif line.text.startswith("snmp-server group") or version in ("v1", "v2c"):
            bad.append(line)  # a v3 user's level is its group's; a group below priv, or any v1/v2c, fails
    for line in cfg.top(r"snmp-server host "):
        if not re.search(r"\bversion 3 priv\b", line.text):
            bad.append(line)
    if bad:
        bad.sort(key=lambda ln: ln.number)
        return _fail([ln.text.split(maxsplit=2)[1] for ln in bad], bad,
                     "SNMP v1/v2c (community) or v3 without privacy (auth + encryption) is configured")
    if good:
        return _ok("v3 priv", good)
    return _ok("no access", "no community, group or user among the snmp-server lines: no SNMP access")


def ios_no_default_credentials(cfg: IosConfig) -> Finding:
    bad: list[Line] = []
    why: list[str] = []
    enable_password = cfg.top(r"enable password\b")
    if enable_password:
        bad += enable_password
        why.append("`enable password` (clear or type 7) instead of `enable secret`")
    user_passwords = cfg.top(r"username \S+ .*\b(no)?password\b")
    if user_passwords:
        bad += user_passwords
        names = sorted({ln.text.split()[1] for ln in user_passwords})
        defaults = [n for n in names if n in ("cisco", "admin")]
        why.append("`username … password` (clear or type 7) or `nopassword` instead of `secret`: " + ", ".join(names)
                   + (f" (default account name: {', '.join(defaults)})" if defaults else ""))
    line_passwords = [ln for b in cfg.blocks_of(r"line ") for ln in b.lines if re.match(r"password\b", ln.text.strip())]
    if line_passwords:
        bad += line_passwords
        why.append("a line password (clear or type 7, reversible): use `login local` with `username … secret`")
    if bad:
        bad.sort(key=lambda ln: ln.number)
        actual = {"enable_password": bool(enable_password),
                  "username_password": sorted({ln.text.split()[1] for ln in user_passwords}),
                  "line_passwords": len(line_passwords)}
        return _fail(actual, bad, "; ".join(why))
    secrets = cfg.top(r"(enable secret|username \S+ .*\bsecret)\b")
    return _ok("hashed secrets only", secrets or "no password line",
               "" if secrets else "no enable secret or local user: no password stored")


def ios_http_server_off(cfg: IosConfig) -> Finding:
    on = cfg.top(r"ip http server$")
    if on:
        return _fail("on", on, "the plain HTTP management server is on")
    off = cfg.top(r"no ip http server$")
    if off:
        return _ok("off", off)
    return _fail(None, "no line matches `no ip http server`",
                 "neither `ip http server` nor `no ip http server`: the default depends on the release")


# --- MikroTik RouterOS ---------------------------------------------------------------------------

ROS_SERVICES_ON = ("telnet", "ftp", "www", "ssh", "api", "winbox", "api-ssl")  # on by default; www-ssl is off
ROS_SERVICES = (*ROS_SERVICES_ON, "www-ssl")
ROS_UNSET = "0.0.0.0"  # noqa: S104 - how RouterOS writes "no address" (an NTP server, a remote log host)


@dataclass
class _RosService:
    enabled: bool
    address: str = ""
    lines: tuple[Line, ...] = ()


def _yes(value: str | None) -> bool:
    return value in ("yes", "true")


def _ros_services(exp: RouterOsExport) -> dict[str, _RosService]:
    services = {name: _RosService(name in ROS_SERVICES_ON) for name in ROS_SERVICES}
    for cmd in exp.under("/ip service"):
        name = cmd.find().get("name") or cmd.item
        if cmd.verb != "set" or name not in services:
            continue
        service = services[name]
        if "disabled" in cmd.args:
            service.enabled = not _yes(cmd.args["disabled"])
        if "address" in cmd.args:
            service.address = cmd.args["address"]
        service.lines = (*service.lines, cmd.line)
    return services


def ros_no_telnet(exp: RouterOsExport) -> Finding:
    telnet = _ros_services(exp)["telnet"]
    shown = list(telnet.lines)
    bad = []
    if telnet.enabled:
        bad.append("the telnet service is on (RouterOS's default) — `/ip service set telnet disabled=yes`")
    mac = [c for c in exp.under("/tool mac-server") if c.verb == "set"]
    mac_list = "all"
    for cmd in mac:
        if "allowed-interface-list" in cmd.args:
            mac_list = cmd.args["allowed-interface-list"]
        elif _yes(cmd.args.get("disabled")) and cmd.find().get("default") == "yes":  # RouterOS 6.40 and older
            mac_list = "none"
        shown.append(cmd.line)
    if mac_list != "none":
        bad.append(f"MAC-Telnet is open on interface list {mac_list!r} — "
                   "`/tool mac-server set allowed-interface-list=none`")
    actual = {"telnet": "on" if telnet.enabled else "off", "mac_telnet": mac_list}
    notes = [what for what, silent in (("no /ip service line disables telnet (default: on)", not telnet.lines),
                                       ("no /tool mac-server line (default: all interfaces)", not mac)) if silent]
    shown_text = "; ".join(filter(None, [evidence(sorted(shown, key=lambda ln: ln.number)), *notes]))
    return _fail(actual, shown_text, "; ".join(bad)) if bad else _ok(actual, shown_text)


def ros_ssh_v2_only(exp: RouterOsExport) -> Finding:
    lines = sorted([c.line for c in exp.under("/ip ssh") if c.verb == "set"] + list(_ros_services(exp)["ssh"].lines),
                   key=lambda ln: ln.number)
    note = "RouterOS's SSH server implements protocol 2 only"
    return _ok("2", f"{note}; {evidence(lines)}" if lines else note)


def ros_management_acl(exp: RouterOsExport, admin: tuple[str, ...] = ()) -> Finding:
    """Every enabled service has `address=`; with the inventory's admin subnets, every address lies inside them."""
    services = _ros_services(exp)
    shown = sorted({ln for s in services.values() for ln in s.lines}, key=lambda ln: ln.number)
    actual = {name: (s.address or "any") for name, s in services.items() if s.enabled}
    open_ = [name for name, s in services.items() if s.enabled and not s.address]
    nets = [ipaddress.ip_network(a, strict=False) for a in admin]
    wide = [f"{name} ({s.address})" for name, s in services.items() if s.enabled and s.address and nets
            and not all(_inside(a, nets) for a in s.address.split(",") if a)]
    why = []
    if open_:
        why.append(f"service{'s' if len(open_) > 1 else ''} on without `address=`: {', '.join(open_)}")
    if wide:
        why.append(f"address= reaches outside the admin subnets {', '.join(admin)}: {', '.join(wide)}")
    if why:
        return _fail(actual, shown or "no line in /ip service (RouterOS's default: services on, from any address)",
                     "; ".join(why))
    return _ok(actual, shown, "" if actual else "every management service is off")


def ros_ntp(exp: RouterOsExport) -> Finding:
    client = [c for c in exp.under("/system ntp client") if c.verb == "set"]
    enabled = any(_yes(c.args.get("enabled")) for c in client)
    servers = [c for c in exp.under("/system ntp client servers") if c.verb == "add" and c.args.get("address")
               and not _yes(c.args.get("disabled"))]
    addresses = [c.args["address"] for c in servers]
    for cmd in client:  # RouterOS 6: primary-ntp, secondary-ntp, server-dns-names on the client itself
        for key in ("primary-ntp", "secondary-ntp", "server-dns-names"):
            value = cmd.args.get(key, "")
            if value and value != ROS_UNSET:
                addresses.extend(v for v in value.split(",") if v)
    shown = sorted([c.line for c in client + servers], key=lambda ln: ln.number)
    if enabled and addresses:
        return _ok(addresses, shown)
    why = "the NTP client is off (`/system ntp client set enabled=yes`)" if not enabled else "no NTP server"
    return _fail(addresses, shown or "no line in /system ntp client", why)


def ros_remote_syslog(exp: RouterOsExport) -> Finding:
    actions: dict[str, Command] = {}
    targets: dict[str, str] = {}
    for cmd in exp.under("/system logging action"):
        name = cmd.args.get("name") or cmd.find().get("name") or cmd.item
        target = cmd.args.get("target") or ("remote" if name == "remote" else "")
        remote = cmd.args.get("remote", "")
        if cmd.verb in ("add", "set") and target == "remote" and remote and not remote.startswith(ROS_UNSET):
            actions[name], targets[name] = cmd, remote
    rules = [c for c in exp.under("/system logging") if c.verb == "add" and c.args.get("action") in actions
             and not _yes(c.args.get("disabled"))]
    if rules:
        used = {c.args["action"] for c in rules}
        shown = sorted([actions[a].line for a in used] + [c.line for c in rules], key=lambda ln: ln.number)
        return _ok(sorted(targets[a] for a in used), shown)
    if actions:
        return _fail([], [c.line for c in actions.values()],
                     f"remote action {', '.join(actions)} defined, but no /system logging rule uses it")
    return _fail([], "no /system logging action with target=remote and a remote= address",
                 "no remote syslog server configured")


def ros_snmp_v3_only(exp: RouterOsExport) -> Finding:
    snmp = [c for c in exp.under("/snmp") if c.verb == "set"]
    if not any(_yes(c.args.get("enabled")) for c in snmp):
        return _ok("off", [c.line for c in snmp] or "no line in /snmp: SNMP is off (RouterOS's default)")
    communities: dict[str, dict[str, str]] = {"public": {"security": "none", "disabled": "no"}}  # the default one
    lines: dict[str, list[Line]] = {"public": []}
    for cmd in exp.under("/snmp community"):
        find = cmd.find()
        if cmd.verb == "add":
            name = cmd.args.get("name", "")
            communities[name] = {"security": "none", "disabled": "no", **cmd.args}
        elif cmd.verb == "set":
            name = "public" if find.get("default") == "yes" else find.get("name") or cmd.item
            communities.setdefault(name, {"security": "none", "disabled": "no"}).update(cmd.args)
        else:
            continue
        lines.setdefault(name, []).append(cmd.line)
    active = {n: c for n, c in communities.items() if not _yes(c.get("disabled"))}
    bad = [n for n, c in active.items() if c.get("security") != "private"]
    shown = sorted([c.line for c in snmp] + [ln for n in communities for ln in lines.get(n, [])],
                   key=lambda ln: ln.number)
    actual = {n: c.get("security", "none") for n, c in active.items()}
    if bad:
        why = ", ".join(f"{n} (security={communities[n].get('security', 'none')})" for n in bad)
        return _fail(actual, shown, f"SNMP on with communities answering v1/v2c or v3 without privacy: {why}")
    return _ok(actual, shown)


def ros_no_default_credentials(exp: RouterOsExport) -> Finding:
    """Heuristic: RouterOS ships with the full-rights account `admin`. Only a line of the export that renames,
    disables or removes it proves it gone; a line adding or changing it without that, or no line about it, fails."""
    about = [c for c in exp.under("/user") if c.names("admin") or c.args.get("name") == "admin"]
    for cmd in about:
        renamed = cmd.verb == "set" and cmd.args.get("name", "admin") != "admin"
        if renamed or cmd.verb in ("remove", "disable") or (cmd.verb == "set" and _yes(cmd.args.get("disabled"))):
            return _ok("admin renamed, disabled or removed", [cmd.line])
    if about:
        return _fail("admin", [c.line for c in about], "the default account admin is present and enabled")
    return _fail("admin", "no /user line renames, disables or removes admin",
                 "RouterOS keeps its default full-rights account admin unless it is renamed, disabled or removed")


def ros_http_server_off(exp: RouterOsExport) -> Finding:
    www = _ros_services(exp)["www"]
    if www.enabled:
        return _fail("on", list(www.lines) or "no /ip service line disables www (RouterOS's default: on)",
                     "the plain HTTP management service (www, WebFig) is on")
    return _ok("off", list(www.lines))


# --- Linux edge ----------------------------------------------------------------------------------


def _listeners(section: Section) -> list[tuple[str, int, Line]]:
    """(protocol, port, line) of every listening socket in `ss -ltun` (or -ltn: tcp only) output."""
    out = []
    for line in section.lines:
        words = line.text.split()
        if not words or words[0] in ("Netid", "State"):
            continue
        proto = words[0] if words[0] in ("tcp", "udp") else "tcp"
        local = next((w for w in words if re.search(r":([0-9]+|\*)$", w)), "")
        port = local.rsplit(":", 1)[-1]
        if port.isdigit():
            out.append((proto, int(port), line))
    return out


def _need(ev: LinuxEvidence, kind: str, title: str) -> Section | Finding:
    section = ev.section(kind)
    if section is None:
        return _fail(None, f"no `### {title}` section in the evidence", f"no evidence: {title} was not collected")
    return section


def linux_no_telnet(ev: LinuxEvidence) -> Finding:
    ss = _need(ev, "ss", "ss -ltun")
    if isinstance(ss, Finding):
        return ss
    telnet = [ln for proto, port, ln in _listeners(ss) if proto == "tcp" and port == 23]
    if telnet:
        return _fail("listening", telnet, "something listens on TCP port 23 (telnet)")
    return _ok("not listening", f"{ss.header.text[4:]}: nothing listens on TCP port 23")


def linux_ssh_v2_only(ev: LinuxEvidence) -> Finding:
    sshd = _need(ev, "sshd", "sshd -T")
    if isinstance(sshd, Finding):
        return sshd
    ports = [ln for ln in sshd.lines if ln.text.startswith("port ")]
    return _ok("2", "OpenSSH (sshd -T) implements protocol 2 only (protocol 1 removed in 7.4)"
               + (f"; {evidence(ports)}" if ports else ""))


def _nft_chains(lines: tuple[Line, ...]) -> list[tuple[str, list[Line]]]:
    """(hook, rule lines) of each chain of `nft list ruleset` text; hook "" for a regular chain."""
    chains: list[tuple[str, list[Line]]] = []
    stack: list[str] = []
    for line in lines:
        body = line.text.strip()
        opened = re.match(r"^(table|chain|set|map|flowtable|counter|quota|limit|ct|secmark|synproxy)\b.*\{$", body)
        if opened:
            stack.append(opened.group(1))
            if opened.group(1) == "chain":
                chains.append(("", []))
            continue
        if body == "}":
            if stack:
                stack.pop()
            continue
        if stack and stack[-1] == "chain" and chains:
            hook = re.search(r"\bhook (\w+)", body)
            if hook and body.startswith("type "):
                chains[-1] = (hook.group(1), chains[-1][1])
            chains[-1][1].append(line)
    return chains


def _nft_text_ssh_only_from(section: Section, admin: list[str], ports: set[int]) -> Finding:
    """Heuristic on `nft list ruleset` text: a chain on the input hook with policy drop, and every rule that
    accepts the SSH port in an input or a regular chain (one an input chain may jump to) names a source
    (`ip saddr`, inline or through a named set) inside the admin subnets. Jumps are not followed: a rule that
    jumps elsewhere for the SSH port is reported as unproven. `nft -j` evidence is read exactly instead."""
    nets = [ipaddress.ip_network(a, strict=False) for a in admin]
    text = section.text
    chains = _nft_chains(section.lines)
    hooks = [ln for hook, body in chains if hook == "input" for ln in body
             if re.search(r"\bhook input\b.*\bpolicy drop\b", ln.text)]
    if not hooks:
        return _fail(False, "no chain with `hook input … policy drop`", "no default-deny input chain")
    lines = [ln for hook, body in chains if hook in ("input", "") for ln in body]
    port_re = "|".join(str(p) for p in sorted(ports)) + ("|ssh" if 22 in ports else "")
    bad: list[Line] = []
    good: list[Line] = []
    for line in lines:
        body = line.text.strip()
        if not re.search(rf"\bdport\s+(\{{[^}}]*\b({port_re})\b[^}}]*\}}|({port_re})\b)", body):
            continue
        if not re.search(r"\b(accept|jump|goto)\b", body):
            continue
        source = re.search(r"\bsaddr\s+(\{[^}]*\}|@\S+|\S+)", body)
        if not source or re.search(r"\b(jump|goto)\b", body):
            bad.append(line)
            continue
        value = source.group(1)
        if value.startswith("@"):
            found = re.search(rf"set {re.escape(value[1:])}\s*\{{.*?elements\s*=\s*\{{([^}}]*)\}}", text, re.S)
            value = found.group(1) if found else ""
        items = [v for v in re.split(r"[\s,{}]+", value) if v]
        inside = bool(items) and all(_inside(item, nets) for item in items)
        (good if inside else bad).append(line)
    if bad:
        return _fail(False, hooks + bad, "a rule accepts SSH from sources outside the admin subnets (or unproven)")
    if not good:
        return _ok(True, hooks, "no rule accepts SSH: only the default-deny policy")
    return _ok(True, hooks + good)


def linux_management_acl(ev: LinuxEvidence, admin: tuple[str, ...]) -> Finding:
    if not admin:
        return _fail(None, "the inventory declares no admin subnets",
                     "no provsec_networks.admin_subnets to compare the SSH sources with")
    sshd = ev.section("sshd")
    ports = {int(ln.text.split()[1]) for ln in (sshd.lines if sshd else ()) if re.match(r"port [0-9]+$", ln.text)}
    ports = ports or {22}
    as_json = ev.section("nft_json")
    if as_json is not None:
        try:
            doc = json.loads(as_json.text)
            ok, text = nftables.ssh_only_from(doc, list(admin), ports)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            return _fail(None, f"{as_json.header}", f"the nft JSON cannot be read: {exc}")
        return Finding("pass" if ok else "fail", ok, f"nft: {text}", "" if ok else text)
    as_text = _need(ev, "nft", "nft list ruleset")
    if isinstance(as_text, Finding):
        return as_text
    return _nft_text_ssh_only_from(as_text, list(admin), ports)


def linux_ntp(ev: LinuxEvidence) -> Finding:
    ntp = _need(ev, "ntp", "chrony.conf")
    if isinstance(ntp, Finding):
        return ntp
    sources = [ln for ln in ntp.lines if re.match(r"(server|pool|peer)\s+\S+|NTP=\S+", ln.text.strip())]
    if sources:
        return _ok([s.text.split()[1] if " " in s.text.strip() else s.text.split("=", 1)[1] for s in sources], sources)
    return _fail([], f"{ntp.header.text[4:]}: no line matches server, pool, peer or NTP=", "no NTP source configured")


def linux_remote_syslog(ev: LinuxEvidence) -> Finding:
    syslog = _need(ev, "syslog", "rsyslog.conf")
    if isinstance(syslog, Finding):
        return syslog
    forward = [ln for ln in syslog.lines if not ln.text.lstrip().startswith("#")
               and re.search(r"(^|\s)@@?[\[\w]|type=\"omfwd\"", ln.text)]
    if forward:
        return _ok("forwarded", forward)
    return _fail(None, f"{syslog.header.text[4:]}: no line matches @host, @@host or omfwd",
                 "no forwarding to a remote syslog server")


def linux_snmp_v3_only(ev: LinuxEvidence) -> Finding:
    snmpd = ev.section("snmpd")
    if snmpd is not None:
        bad = [ln for ln in snmpd.lines if re.match(r"(rocommunity6?|rwcommunity6?|com2sec6?)\b", ln.text.strip())
               or (re.match(r"(rouser|rwuser)\b", ln.text.strip()) and not re.search(r"\bpriv\b", ln.text))]
        if bad:
            return _fail("v1/v2c or v3 without priv", bad, "snmpd allows communities (v1/v2c) or v3 without privacy")
        users = [ln for ln in snmpd.lines if re.match(r"(rouser|rwuser)\b", ln.text.strip())]
        return _ok("v3 priv", users or f"{snmpd.header.text[4:]}: no community and no user")
    ss = _need(ev, "ss", "ss -ltun")
    if isinstance(ss, Finding):
        return ss
    title = ss.header.text[4:]
    if not re.search(r"\s-[a-zA-Z]*u|--udp", title) and not any(p == "udp" for p, _, _ in _listeners(ss)):
        return _fail(None, f"{title}: no UDP sockets listed, and no snmpd.conf section",
                     "no evidence: the SNMP agent listens on UDP 161; collect `ss -ltun`")
    agent = [ln for proto, port, ln in _listeners(ss) if proto == "udp" and port == 161]
    if agent:
        return _fail("listening", agent, "something listens on port 161 but the evidence has no snmpd.conf")
    return _ok("off", f"no snmpd.conf section and nothing listens on port 161 ({ss.header.text[4:]})")


def linux_no_default_credentials(ev: LinuxEvidence) -> Finding:
    return Finding("not_applicable", None, "", "a Debian edge ships no factory account; root and password logins "
                   "are the servers' PS-SSH-01/02 (a Linux edge is audited as a server too)")


def linux_http_server_off(ev: LinuxEvidence) -> Finding:
    return Finding("not_applicable", None, "", "a Debian edge has no built-in web management")


# --- the rule table ------------------------------------------------------------------------------

RuleFn = Callable[[Any, Device], Finding]

RULES: dict[str, dict[str, tuple[str, RuleFn]]] = {
    "no_telnet": {
        "cisco_ios": ("every line vty: transport input ssh (or none)", lambda c, d: ios_no_telnet(c)),
        "routeros": ("/ip service telnet disabled; /tool mac-server allowed-interface-list=none",
                     lambda c, d: ros_no_telnet(c)),
        "linux": ("nothing listens on TCP port 23", lambda c, d: linux_no_telnet(c)),
    },
    "ssh_v2_only": {
        "cisco_ios": ("ip ssh version 2", lambda c, d: ios_ssh_v2_only(c)),
        "routeros": ("SSH protocol 2 (RouterOS has no other)", lambda c, d: ros_ssh_v2_only(c)),
        "linux": ("OpenSSH (protocol 2 only)", lambda c, d: linux_ssh_v2_only(c)),
    },
    "management_acl": {
        "cisco_ios": ("every line vty: access-class ACL in, ACL defined, permitting only the admin subnets",
                      lambda c, d: ios_management_acl(c, d.admin_subnets)),
        "routeros": ("every enabled /ip service has address= inside the admin subnets",
                     lambda c, d: ros_management_acl(c, d.admin_subnets)),
        "linux": ("nft: input policy drop, SSH accepted only from the admin subnets",
                  lambda c, d: linux_management_acl(c, d.admin_subnets)),
    },
    "ntp": {
        "cisco_ios": ("ntp server …", lambda c, d: ios_ntp(c)),
        "routeros": ("/system ntp client enabled=yes with a server", lambda c, d: ros_ntp(c)),
        "linux": ("chrony/timesyncd: a server, pool or NTP= line", lambda c, d: linux_ntp(c)),
    },
    "remote_syslog": {
        "cisco_ios": ("logging host …", lambda c, d: ios_remote_syslog(c)),
        "routeros": ("/system logging rule with a remote action", lambda c, d: ros_remote_syslog(c)),
        "linux": ("rsyslog forwarding (@@host, @host or omfwd)", lambda c, d: linux_remote_syslog(c)),
    },
    "snmp_v3_only": {
        "cisco_ios": ("no snmp-server community; groups/users/hosts v3 priv only", lambda c, d: ios_snmp_v3_only(c)),
        "routeros": ("SNMP off, or every community security=private", lambda c, d: ros_snmp_v3_only(c)),
        "linux": ("snmpd: no community, users with priv (or no agent)", lambda c, d: linux_snmp_v3_only(c)),
    },
    "no_default_credentials": {
        "cisco_ios": ("enable secret / username … secret only; no enable password, no line password",
                      lambda c, d: ios_no_default_credentials(c)),
        "routeros": ("the default account admin renamed, disabled or removed",
                     lambda c, d: ros_no_default_credentials(c)),
        "linux": ("(not applicable)", lambda c, d: linux_no_default_credentials(c)),
    },
    "http_server_off": {
        "cisco_ios": ("no ip http server", lambda c, d: ios_http_server_off(c)),
        "routeros": ("/ip service www disabled", lambda c, d: ros_http_server_off(c)),
        "linux": ("(not applicable)", lambda c, d: linux_http_server_off(c)),
    },
}

PARSERS: dict[str, Callable[[str, str], Parsed]] = {
    "cisco_ios": parse_ios, "routeros": parse_routeros, "linux": parse_linux,
}


def load_wan_catalogue(directory: str | Path = DEFAULT_CATALOGUE) -> Catalogue:
    """The WAN controls; InputError when a control names a rule that is not in RULES."""
    catalogue = load_catalogue(directory, check_types=WAN_CHECK_TYPES)
    unknown = [f"{c.source}: {c.id}: check.rule: {c.check.rule!r} is not a rule; rules: {', '.join(RULES)}"
               for c in catalogue.controls if c.check.rule not in RULES]
    if unknown:
        raise InputError(f"{directory}: not a valid WAN control catalogue:\n" + "\n".join(unknown))
    return catalogue


def parse_config(family: str, data: bytes, source: str) -> Parsed:
    """The parsed configuration of one device; InputError naming `source` when it cannot be read whole."""
    if family not in PARSERS:
        raise InputError(f"{source}: unknown device profile {family!r}; profiles: {', '.join(FAMILIES)}")
    return PARSERS[family](decode(data, source), source)


def check_rule(control: Control, parsed: Parsed, device: Device) -> tuple[str, Finding]:
    expected, rule = RULES[str(control.check.rule)][device.family]
    return expected, rule(parsed, device)


def audit_device(catalogue: Catalogue, device: Device, parsed: Parsed, today: dt.date) -> list[Result]:
    """Every WAN control's result for one device (levels and exceptions as in the servers' audit)."""
    results = []
    for control in catalogue.controls:
        title = {"vi": control.title.vi, "en": control.title.en}
        common: dict[str, Any] = {"id": control.id, "concern": control.concern, "title": title, "cis": control.cis,
                                  "tcvn": dict(control.tcvn)}
        if catalogue.value(control.id, device.level) is None:
            level = catalogue.catalogue_level(device.level)
            results.append(Result(status="not_applicable", expected=None, actual=None, evidence="",
                                  reason=f"not required at cấp độ {device.level} (catalogue level {level})", **common))
            continue
        expected, found = check_rule(control, parsed, device)
        status, reason = found.status, found.reason
        if status == "fail":
            status, reason = _excepted(control.id, device.exceptions, today, reason)
        results.append(Result(status=status, expected=expected, actual=found.actual, evidence=found.evidence,
                              reason=reason, **common))
    return results


def _excepted(control_id: str, exceptions: tuple[ControlException, ...], today: dt.date,
              reason: str) -> tuple[str, str]:
    mine = [e for e in exceptions if e.control == control_id]
    if not mine:
        return "fail", reason
    current = sorted((e for e in mine if today <= e.expires), key=lambda e: e.expires)
    if current:
        exc = current[-1]
        return "excepted", (f"exception until {exc.expires.isoformat()} approved by {exc.approved_by}: "
                            f"{exc.reason} (fails: {reason})")
    last = max(mine, key=lambda e: e.expires)
    return "fail", (f"exception expired on {last.expires.isoformat()} ({last.reason}, approved by "
                    f"{last.approved_by}); {reason}")


def counts(results: list[Result]) -> dict[str, int]:
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}


__all__ = [
    "DEFAULT_CATALOGUE", "FAMILIES", "RULES", "Device", "Finding", "audit_device", "counts", "load_wan_catalogue",
    "parse_config",
]

