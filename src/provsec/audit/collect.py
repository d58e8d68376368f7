#!/usr/bin/env python3
"""provsec audit collector: read the LIVE security state of this host and print it as one JSON document.

Standalone on purpose: Python 3.11+ standard library only, no provsec import. playbooks/audit.yml copies it
to each host with ansible.builtin.script and runs it as root; it changes nothing on the host.

    collect.py CHECKS.json          # what to gather: the output of `provsec audit checks`
    collect.py - < CHECKS.json      # the same on standard input
    collect.py --checks-b64 DATA    # the same, base64-encoded (how audit.yml passes it)

Every section either holds what was read or {"error": "why not"} (a missing tool is evidence too, e.g.
"sshd not installed"); the collector never stops at one failed probe. Exit 2 only for a bad request.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import glob
import grp
import json
import os
import platform
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

VERSION = 1
TIMEOUT = 30  # seconds for any one probe
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MATCH_LINE_MAX = 200
MATCHES_MAX = 5

Json = dict[str, Any]


class ToolMissing(Exception):
    """The command needed for a probe is not installed."""


class ProbeFailed(Exception):
    """A probe ran but could not give an answer; the message says why."""


# --- running tools -------------------------------------------------------------------------------


def run(argv: list[str], *, ok_codes: Iterable[int] = (0,), package: str = "") -> str:
    """Run a read-only probe; return its stdout. ToolMissing / ProbeFailed say why it gave nothing."""
    env = {"PATH": SBIN_PATH, "LC_ALL": "C", "LANG": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    exe = shutil.which(argv[0], path=SBIN_PATH)
    if exe is None:
        raise ToolMissing(f"{argv[0]} not installed" + (f" (package {package})" if package else ""))
    try:
        proc = subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False,
            stdin=subprocess.DEVNULL, errors="replace",
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"{' '.join(argv)} did not finish in {TIMEOUT} s") from None
    except OSError as exc:
        raise ProbeFailed(f"{' '.join(argv)} could not run: {exc}") from None
    if proc.returncode not in ok_codes:
        detail = " ".join(proc.stderr.split())[:300] or f"exit status {proc.returncode}"
        raise ProbeFailed(f"{' '.join(argv)} failed: {detail}")
    return proc.stdout


def find(pattern: str) -> list[str]:
    """Files matching an absolute glob pattern (from the catalogue), sorted."""
    return sorted(glob.glob(pattern))  # noqa: PTH207 - absolute patterns such as /etc/x.d/*.conf


def read_text(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def guarded(probe: Any, *args: Any) -> Json:
    """Run a probe; a missing tool or a failed probe becomes {"error": …} instead of an exception."""
    try:
        result: Json = probe(*args)
    except (ToolMissing, ProbeFailed) as exc:
        return {"error": str(exc)}
    except OSError as exc:
        return {"error": f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")}
    return result


# --- parsers (pure: unit-tested on sample outputs) -----------------------------------------------


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """`sshd -T`: one `key value` per line; keys repeat for list options (allowgroups, port …)."""
    values: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), []).append(value.strip())
    return values


def parse_login_defs(text: str) -> dict[str, str]:
    """/etc/login.defs: `KEY VALUE` lines, `#` comments; the last setting of a key wins (as in shadow)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        values[parts[0]] = parts[1].strip().strip('"') if len(parts) > 1 else ""
    return values


def parse_conf_equals(text: str) -> dict[str, str]:
    """pwquality.conf / faillock.conf: `key = value` or a bare flag (`enforce_for_root` → "")."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        values[key.strip()] = value.strip() if sep else ""
    return values


def parse_shell_assignments(text: str) -> dict[str, str]:
    """`useradd -D` and /etc/default/*: `KEY=VALUE` lines."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def parse_ini_section(text: str, section: str) -> dict[str, str]:
    """systemd unit-style config (`systemd-analyze cat-config` output or files): keys of one section, last wins."""
    values: dict[str, str] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current == section and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def parse_pam_module(text: str, module: str) -> Json:
    """Is `module` (e.g. pam_pwquality.so) in this PAM file, and with which arguments (later lines win)?"""
    lines: list[str] = []
    args: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        # type control module args…; control may be [bracketed words]
        try:
            idx = next(i for i, w in enumerate(words) if w.rsplit("/", 1)[-1] == module)
        except StopIteration:
            continue
        lines.append(" ".join(words))
        for arg in words[idx + 1:]:
            key, sep, value = arg.partition("=")
            args[key] = value if sep else ""
    return {"present": bool(lines), "lines": lines, "args": args}


def parse_systemctl_show(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p Id,LoadState,ActiveState,UnitFileState U1 U2…`: blocks separated by blank lines."""
    units: dict[str, dict[str, str]] = {}
    block: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if block.get("Id"):
                units[block["Id"]] = block
            block = {}
            continue
        key, _, value = line.partition("=")
        block[key.strip()] = value.strip()
    return units


def parse_dpkg_query(text: str) -> dict[str, Json]:
    """`dpkg-query -W -f '${Package}\\t${db:Status-Status}\\t${Version}\\n' …`."""
    packages: dict[str, Json] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0]:
            continue
        name = parts[0].split(":", 1)[0]  # name:arch for multi-arch packages
        status = parts[1].strip()
        version = parts[2].strip() if len(parts) > 2 else ""
        entry = packages.get(name)
        installed = status in ("installed", "half-installed", "unpacked", "half-configured",
                               "triggers-awaited", "triggers-pending")
        if entry is None or installed:
            packages[name] = {"installed": installed, "status": status, "version": version}
    return packages


CHRONY_SOURCE_DIRECTIVES = ("server", "pool", "peer", "refclock")


def parse_chrony(text: str, origin: str) -> tuple[list[Json], list[tuple[str, str]]]:
    """chrony.conf-style text: its time sources, and the (directive, argument) pairs that include more files."""
    sources: list[Json] = []
    includes: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split("!", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        directive = words[0].lower()
        if directive in CHRONY_SOURCE_DIRECTIVES and len(words) > 1:
            sources.append({"kind": directive, "address": words[1], "options": " ".join(words[2:]),
                            "file": origin})
        elif directive in ("include", "confdir", "sourcedir") and len(words) > 1:
            includes.extend((directive, arg) for arg in words[1:])
    return sources, includes


AUDIT_KEY_RE = re.compile(r"(?:^|\s)(?:-k\s+(\S+)|-F\s+key=(\S+))")


def parse_auditctl(text: str) -> Json:
    """`auditctl -l`: the loaded rules and the keys they carry."""
    rules = [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "No rules"]
    keys: set[str] = set()
    for rule in rules:
        for match in AUDIT_KEY_RE.finditer(rule):
            keys.add(match.group(1) or match.group(2))
    return {"rules": rules, "keys": sorted(keys)}


def format_mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


# --- probes --------------------------------------------------------------------------------------


def probe_virtualization() -> Json:
    result: Json = {}
    try:
        result["virt"] = run(["systemd-detect-virt"], ok_codes=(0, 1)).strip() or "none"
        result["container"] = run(["systemd-detect-virt", "--container"], ok_codes=(0, 1)).strip() or "none"
    except (ToolMissing, ProbeFailed) as exc:
        result["error"] = str(exc)
        marker = Path("/run/systemd/container")
        if marker.exists():
            result["container"] = read_text(marker).strip() or "container-other"
        elif Path("/.dockerenv").exists():
            result["container"] = "docker"
        else:
            result.setdefault("container", "none")
        result.setdefault("virt", result["container"])
    return result


def probe_os() -> Json:
    try:
        info = parse_shell_assignments(read_text("/etc/os-release"))
    except OSError:
        info = {}
    return {"id": info.get("ID", ""), "version_id": info.get("VERSION_ID", ""),
            "pretty_name": info.get("PRETTY_NAME", ""), "kernel": platform.release()}


def probe_sshd() -> Json:
    if shutil.which("sshd", path=SBIN_PATH) is None:
        raise ToolMissing("sshd not installed (package openssh-server)")
    return {"values": parse_sshd_t(run(["sshd", "-T"]))}


def probe_sysctl(keys: list[str]) -> Json:
    """What `sysctl -n KEY` prints, read where sysctl reads it (/proc/sys), one key at a time."""
    values: Json = {}
    for key in keys:
        path = Path("/proc/sys") / key.replace(".", "/")
        try:
            values[key] = {"value": " ".join(read_text(path).split())}
        except FileNotFoundError:
            values[key] = {"error": f"no such kernel parameter ({path} does not exist)"}
        except OSError as exc:
            values[key] = {"error": f"cannot read {path}: {exc.strerror}"}
    return values


def probe_login_defs() -> Json:
    return {"values": parse_login_defs(read_text("/etc/login.defs")), "file": "/etc/login.defs"}


def _conf_with_dropins(main: str, dropin_dir: str) -> Json:
    """Values of a main .conf file and its .d/*.conf files: the drop-ins in name order, the main file last."""
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    files = [*find(f"{dropin_dir}/*.conf"), main]
    read: list[str] = []
    for file in files:
        try:
            parsed = parse_conf_equals(read_text(file))
        except FileNotFoundError:
            continue
        read.append(file)
        for key, value in parsed.items():
            values[key] = value
            origin[key] = file
    return {"values": values, "origin": origin, "files": read}


def probe_pwquality() -> Json:
    result = _conf_with_dropins("/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d")
    result["pam"] = _pam("/etc/pam.d/common-password", "pam_pwquality.so")
    return result


def probe_faillock() -> Json:
    result = _conf_with_dropins("/etc/security/faillock.conf", "/etc/security/faillock.conf.d")
    result["pam"] = _pam("/etc/pam.d/common-auth", "pam_faillock.so")
    return result


def _pam(path: str, module: str) -> Json:
    try:
        result = parse_pam_module(read_text(path), module)
    except OSError as exc:
        return {"present": False, "file": path, "error": f"cannot read {path}: {exc.strerror}"}
    result["file"] = path
    return result


def probe_useradd_default() -> Json:
    return {"values": parse_shell_assignments(run(["useradd", "-D"], package="passwd"))}


def probe_journald() -> Json:
    try:
        text = run(["systemd-analyze", "cat-config", "systemd/journald.conf"], package="systemd")
        source = "systemd-analyze cat-config systemd/journald.conf"
    except (ToolMissing, ProbeFailed):
        # the same order systemd uses: the main file, then drop-ins by name (/etc before /run before /usr/lib)
        dropins: dict[str, str] = {}
        for directory in ("/usr/lib/systemd/journald.conf.d", "/run/systemd/journald.conf.d",
                          "/etc/systemd/journald.conf.d"):
            for file in find(f"{directory}/*.conf"):
                dropins[Path(file).name] = file
        files = ["/etc/systemd/journald.conf"] + [dropins[name] for name in sorted(dropins)]
        text = "\n".join(read_text(f) for f in files if Path(f).exists())
        source = "files: " + ", ".join(f for f in files if Path(f).exists())
    return {"values": parse_ini_section(text, "Journal"), "source": source}


def probe_files(paths: list[str]) -> Json:
    files: Json = {}
    for path in paths:
        try:
            st = Path(path).stat()
        except FileNotFoundError:
            files[path] = {"exists": False}
            continue
        except OSError as exc:
            files[path] = {"error": f"cannot stat {path}: {exc.strerror}"}
            continue
        files[path] = {"exists": True, "mode": format_mode(st.st_mode), "owner": _user(st.st_uid),
                       "group": _group(st.st_gid), "type": "directory" if stat.S_ISDIR(st.st_mode) else "file"}
    return files


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def probe_file_regex(requests: list[Json]) -> list[Json]:
    results: list[Json] = []
    for request in requests:
        path, regex = str(request["path"]), str(request["regex"])
        entry: Json = {"path": path, "regex": regex, "files": [], "matches": [], "errors": []}
        try:
            pattern = re.compile(regex, re.MULTILINE)
        except re.error as exc:
            entry["errors"].append(f"bad regex: {exc}")
            results.append(entry)
            continue
        for file in find(path):
            if not Path(file).is_file():
                continue
            entry["files"].append(file)
            try:
                text = read_text(file)
                public = bool(Path(file).stat().st_mode & stat.S_IROTH)
            except OSError as exc:
                entry["errors"].append(f"cannot read {file}: {exc.strerror}")
                continue
            last_start = -1
            for match in pattern.finditer(text):
                # the line shown is the one of the match's first non-blank character: a leading \s* may have run
                # across blank lines before it
                found = match.group()
                first = match.start() + min(len(found) - len(found.lstrip()), max(len(found) - 1, 0))
                start = text.rfind("\n", 0, first) + 1
                if start == last_start:
                    continue  # one entry per line
                last_start = start
                end = text.find("\n", start)
                line = text[start:end if end >= 0 else len(text)]
                shown = line[:MATCH_LINE_MAX] if public else "(not world-readable: line not shown)"
                entry["matches"].append({"file": file, "line_number": text.count("\n", 0, start) + 1,
                                         "line": shown})
                if len(entry["matches"]) >= MATCHES_MAX:
                    break
        results.append(entry)
    return results


def probe_packages(names: list[str]) -> Json:
    if not names:
        return {"packages": {}}
    out = run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\t${Version}\n", *names],
              ok_codes=(0, 1), package="dpkg")
    found = parse_dpkg_query(out)
    packages = {n: found.get(n, {"installed": False, "status": "not-installed", "version": ""}) for n in names}
    return {"packages": packages}


# Where a command is looked for: root's PATH on Debian.
COMMAND_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def probe_executables(names: list[str]) -> Json:
    """Each command name: the file it runs (symlinks resolved: cc → gcc → x86_64-linux-gnu-gcc-12), its mode and
    owner; {"exists": False} when no directory of root's PATH has it."""
    found: Json = {}
    for name in names:
        for directory in COMMAND_DIRS:
            candidate = Path(directory, name)
            if candidate.exists():
                real = candidate.resolve()
                st = real.stat()
                found[name] = {"exists": True, "path": str(real), "mode": format_mode(st.st_mode),
                               "owner": _user(st.st_uid), "group": _group(st.st_gid)}
                break
        else:
            found[name] = {"exists": False}
    return {"executables": found}


def unit_name(name: str) -> str:
    return name if "." in name.rsplit("@", 1)[-1] else f"{name}.service"


def probe_services(names: list[str]) -> Json:
    if not names:
        return {"units": {}}
    units = [unit_name(n) for n in names]
    out = run(["systemctl", "show", "-p", "Id,Names,LoadState,ActiveState,SubState,UnitFileState", "--", *units],
              package="systemd")
    shown = parse_systemctl_show(out)
    # `systemctl show` reports an alias under its real Id: map back through Names
    by_name: dict[str, dict[str, str]] = {}
    for shown_unit in shown.values():
        for alias in [shown_unit.get("Id", ""), *shown_unit.get("Names", "").split()]:
            by_name[alias] = shown_unit
    result: Json = {}
    for name, unit in zip(names, units, strict=True):
        info = by_name.get(unit, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""})
        result[name] = {"unit": unit, "load_state": info.get("LoadState", ""),
                        "active_state": info.get("ActiveState", ""), "sub_state": info.get("SubState", ""),
                        "unit_file_state": info.get("UnitFileState", "")}
    return {"units": result}


def probe_nft() -> Json:
    out = run(["nft", "-j", "list", "ruleset"], package="nftables")
    try:
        ruleset = json.loads(out) if out.strip() else {"nftables": []}
    except json.JSONDecodeError as exc:
        raise ProbeFailed(f"nft -j list ruleset printed no valid JSON: {exc}") from None
    return {"ruleset": ruleset}


def probe_chrony() -> Json:
    main = next((p for p in ("/etc/chrony/chrony.conf", "/etc/chrony.conf") if Path(p).exists()), None)
    if main is None:
        raise ToolMissing("chrony not installed (no /etc/chrony/chrony.conf)")
    sources: list[Json] = []
    files: list[str] = []
    queue: list[tuple[str, str]] = [("file", main)]
    seen: set[str] = set()
    while queue:
        kind, arg = queue.pop(0)
        if kind == "file":
            candidates = [arg]
        elif kind == "include":
            candidates = find(arg)
        elif kind == "confdir":
            candidates = find(f"{arg}/*.conf")
        else:  # sourcedir
            candidates = find(f"{arg}/*.sources")
        for file in candidates:
            if file in seen or not Path(file).is_file():
                continue
            seen.add(file)
            files.append(file)
            found, includes = parse_chrony(read_text(file), file)
            sources.extend(found)
            queue.extend(includes)
    daemon = shutil.which("chronyd", path=SBIN_PATH) is not None
    return {"sources": sources, "files": files, "chronyd_installed": daemon}


def probe_auditd() -> Json:
    return parse_auditctl(run(["auditctl", "-l"], package="auditd"))


# --- main ----------------------------------------------------------------------------------------


def collect(request: Json) -> Json:
    """Gather what `request` (the output of `provsec audit checks`) asks for."""
    evidence: Json = {
        "collector": {"version": VERSION, "python": platform.python_version()},
        "collected_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": socket.gethostname(),
        "euid": os.geteuid(),
        "os": probe_os(),
        "virtualization": probe_virtualization(),
    }
    probes: dict[str, Any] = {
        "sshd": probe_sshd, "login_defs": probe_login_defs, "pwquality": probe_pwquality,
        "faillock": probe_faillock, "useradd_default": probe_useradd_default, "journald": probe_journald,
        "nft": probe_nft, "chrony": probe_chrony, "auditd": probe_auditd,
    }
    for name, probe in probes.items():
        if request.get(name):
            evidence[name] = guarded(probe)
    if request.get("sysctl"):
        evidence["sysctl"] = probe_sysctl([str(k) for k in request["sysctl"]])
    if request.get("files"):
        evidence["files"] = probe_files([str(p) for p in request["files"]])
    if request.get("file_regex"):
        evidence["file_regex"] = probe_file_regex(list(request["file_regex"]))
    if request.get("packages"):
        evidence["packages"] = guarded(probe_packages, [str(p) for p in request["packages"]])
    if request.get("services"):
        evidence["services"] = guarded(probe_services, [str(s) for s in request["services"]])
    if request.get("executables"):
        evidence["executables"] = guarded(probe_executables, [str(s) for s in request["executables"]])
    return evidence


def read_request(args: argparse.Namespace) -> Json:
    try:
        if args.checks_b64:
            text = base64.b64decode(args.checks_b64, validate=True).decode("utf-8")
        elif args.checks == "-":
            text = sys.stdin.read()
        else:
            text = read_text(args.checks)
        request = json.loads(text)
    except (OSError, ValueError, binascii.Error) as exc:
        raise SystemExit(f"collect.py: cannot read the checks request: {exc}") from None
    if not isinstance(request, dict) or request.get("version") != VERSION:
        raise SystemExit(f"collect.py: the checks request must be a JSON object with \"version\": {VERSION} "
                         "(the output of `provsec audit checks`)")
    return request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print this host's live security state as JSON (read-only).")
    parser.add_argument("checks", nargs="?", help="checks request file (`provsec audit checks`), - for stdin")
    parser.add_argument("--checks-b64", help="the checks request, base64-encoded")
    args = parser.parse_args(argv)
    if not args.checks and not args.checks_b64:
        parser.error("give the checks request: a file, - for stdin, or --checks-b64")
    try:
        request = read_request(args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    json.dump(collect(request), sys.stdout, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
