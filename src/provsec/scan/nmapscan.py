"""The single call point for nmap, and the only module importing python-nmap: build nmap's arguments, run it
through python-nmap's PortScanner, read its XML report.

nmap runs with `-n` (no DNS: a lookup would be a packet to a resolver outside the scope) and `-oX -` (added
by python-nmap). PortScanner runs `nmap -V` when it is created, so it is created here only, after
provsec.scan.scope has checked every target: a refused scan starts no nmap at all, not even for `-V`.
Both runs are bounded: `-V` by VERSION_TIMEOUT, the scan by ScanOptions.timeout (python-nmap waits for
ever on a timeout of 0, so less than a second is refused).

The XML is parsed here; python-nmap's analyse_nmap_xml_scan result is discarded. That parser drops
<extraports> (nmap lists the ports in the most common state only as a count and, since 7.80, as a list in
<extrareasons ports=…>), and without them an approved port that is now closed or filtered would read as
"not scanned"; and it reports XML it cannot read with the raw output as its message, where this parser
names the problem. python-nmap does not give nmap's exit status: a run that wrote no XML at all is a
CommandError with the end of nmap's stderr.

Targets reach this module only after provsec.scan.scope has checked them; it takes Target values, never text."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nmap

from provsec.errors import CommandError, InputError
from provsec.scan.model import HostResult, PortResult, ScanResult, format_ports, parse_port_list
from provsec.scan.scope import Target

NMAP = "nmap"
TIMINGS = range(6)  # -T0 (paranoid) … -T5 (insane)
MAX_TOP_PORTS = 65535
VERSION_TIMEOUT = 30.0  # seconds `nmap -V` (PortScanner's constructor) may take


@dataclass(frozen=True)
class ScanOptions:
    ports: tuple[int, ...] = ()  # the port list; empty: nmap's top ports
    top_ports: int = 1000
    syn: bool = False  # SYN scan (-sS): raw packets, root only; default TCP connect (-sT)
    service_version: bool = False  # -sV: probe open ports for the service and its version
    timing: int = 3  # nmap's -T template
    no_ping: bool = False  # -Pn: treat every target as up (hosts that drop pings); "down" is then never seen
    host_timeout: int = 900  # seconds nmap gives one host before giving up on it
    timeout: float = 3600.0  # seconds for the whole run; nmap is killed after

    def check(self) -> ScanOptions:
        if self.timing not in TIMINGS:
            raise InputError(f"timing template -T{self.timing}: must be 0 (paranoid) to 5 (insane)")
        if not self.ports and not 1 <= self.top_ports <= MAX_TOP_PORTS:
            raise InputError(f"--top-ports {self.top_ports}: must be 1 to {MAX_TOP_PORTS}")
        if self.syn and os.geteuid() != 0:
            raise InputError("--syn: a SYN scan sends raw packets and needs root; run as root or use the "
                             "default TCP connect scan")
        if self.host_timeout < 1:
            raise InputError(f"--host-timeout {self.host_timeout}: must be at least 1 second")
        if not 1 <= self.timeout <= 7 * 86400:
            raise InputError(f"--timeout {self.timeout:g}: must be 1 second to 7 days (nmap is killed after it)")
        return self


def arguments(targets: Sequence[Target], options: ScanOptions) -> tuple[str, str | None, str]:
    """(hosts, ports, arguments) for PortScanner.scan, which runs `nmap -oX - HOSTS [-p PORTS] ARGUMENTS`;
    ports is None with --top-ports (it is then among the arguments)."""
    args = ["-n", "-sS" if options.syn else "-sT", f"-T{options.timing}", "--host-timeout",
            f"{options.host_timeout}s"]
    ports = format_ports(options.ports) if options.ports else None
    if ports is None:
        args += ["--top-ports", str(options.top_ports)]
    if options.service_version:
        args.append("-sV")
    if options.no_ping:
        args.append("-Pn")
    if any(t.network.version == 6 for t in targets):
        if any(t.network.version == 4 for t in targets):
            raise InputError("IPv4 and IPv6 targets: nmap scans one family per run; give them in two runs")
        args.append("-6")
    hosts = " ".join(str(t.network.network_address) if t.network.num_addresses == 1 else str(t.network)
                     for t in targets)
    return hosts, ports, " ".join(args)


def scan(targets: Sequence[Target], options: ScanOptions, names: Callable[[str], str]) -> ScanResult:
    """Run nmap on scope-checked targets; `names` maps an address to the inventory host name."""
    options.check()
    if not targets:
        raise InputError("no target to scan")
    hosts, ports, args = arguments(targets, options)
    scanner = _scanner()  # `nmap -V`: only now, after the scope check
    started = _now()
    timeout = math.ceil(options.timeout)
    try:
        scanner.scan(hosts, ports, args, sudo=False, timeout=timeout)
    except nmap.PortScannerTimeout:
        raise CommandError(f"nmap did not finish within {timeout} s and was killed; scan fewer targets or "
                           "ports, or raise --timeout") from None
    except OSError as exc:
        raise CommandError(f"cannot run nmap: {exc.strerror or exc}") from None
    except nmap.PortScannerError as exc:
        # python-nmap could not read the output; its message is nmap's stderr (or the output itself). When
        # there is output, the parser below says precisely what is wrong with it.
        if not _text(scanner.get_nmap_last_output()).strip():
            tail = " | ".join(str(exc.value).strip().splitlines()[-3:]) or "no output"
            raise CommandError(f"nmap wrote no XML report: {tail}") from None
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        pass  # python-nmap's own parser choked on the report; ours names the problem below
    return parse_xml(_text(scanner.get_nmap_last_output()), "nmap's XML output", targets, names,
                     started_at=started, finished_at=_now())


def _scanner() -> Any:
    """python-nmap's PortScanner for the `nmap` on PATH. Its constructor runs `nmap -V` and waits for it
    without a time limit, so it runs in a thread given VERSION_TIMEOUT."""
    made: dict[str, Any] = {}

    def create() -> None:
        try:
            made["scanner"] = nmap.PortScanner(nmap_search_path=(NMAP,))
        except Exception as exc:  # handed over to the calling thread
            made["error"] = exc

    worker = threading.Thread(target=create, name="nmap -V", daemon=True)
    worker.start()
    worker.join(VERSION_TIMEOUT)
    if worker.is_alive():
        raise CommandError(f"`{NMAP} -V` did not answer within {VERSION_TIMEOUT:g} s: is the {NMAP} on PATH nmap?")
    error = made.get("error")
    if isinstance(error, nmap.PortScannerError):
        raise CommandError(f"{NMAP}: not on PATH, or `{NMAP} -V` does not print nmap's version "
                           "(install Debian's nmap package)")
    if error is not None:
        raise CommandError(f"cannot run `{NMAP} -V`: {error}")
    return made["scanner"]


def _text(output: str | bytes) -> str:
    """python-nmap keeps nmap's stdout as bytes after a scan (as text after `-V`)."""
    return output.decode("utf-8", errors="replace") if isinstance(output, bytes) else output


def parse_xml(text: str, source: str, targets: Sequence[Target], names: Callable[[str], str], *,
              started_at: str, finished_at: str) -> ScanResult:
    """nmap's XML report as a ScanResult. Not XML, truncated (no <finished exit="success">), or not nmap's:
    an InputError naming `source`; the caller then stores nothing."""
    try:
        root = ET.fromstring(text)  # noqa: S314 - nmap's own output, parsed by expat (entity expansion is limited)
    except ET.ParseError as exc:
        raise InputError(f"{source}: not well-formed XML ({exc}); nmap was cut off or wrote something "
                         "else; nothing was stored") from None
    if root.tag != "nmaprun":
        raise InputError(f"{source}: not an nmap report (root element <{root.tag}>, expected <nmaprun>)")
    finished = root.find("runstats/finished")
    if finished is None:
        raise InputError(f"{source}: truncated nmap report (no <runstats><finished>); nothing was stored")
    if finished.get("exit", "success") != "success":
        raise InputError(f"{source}: nmap reports an error: {finished.get('errormsg', 'no message')}")
    scanned: tuple[int, ...] = ()
    for info in root.findall("scaninfo"):
        if info.get("protocol") == "tcp":
            scanned = parse_port_list(info.get("services", ""), f"{source}: <scaninfo services>")
    if not scanned:
        raise InputError(f"{source}: no TCP <scaninfo services=…>: cannot tell which ports were scanned")
    hosts: dict[str, HostResult] = {}
    for element in root.findall("host"):
        host = _host(element, scanned, source, names)
        if host is not None:
            hosts[host.address] = host
    for t in targets:  # an address that was asked for and is absent: nmap found it down
        addr = str(t.network.network_address)
        if t.network.num_addresses == 1 and addr not in hosts:
            hosts[addr] = HostResult(addr, names(addr), "down")
    return ScanResult(started_at, finished_at, root.get("version", ""), root.get("args", ""),
                      tuple(str(t.network) if t.network.num_addresses > 1 else str(t.network.network_address)
                            for t in targets),
                      scanned, tuple(sorted(hosts.values(), key=lambda h: _sort_key(h.address))))


def _host(element: ET.Element, scanned: tuple[int, ...], source: str,
          names: Callable[[str], str]) -> HostResult | None:
    address = next((a.get("addr", "") for a in element.findall("address")
                    if a.get("addrtype") in ("ipv4", "ipv6")), "")
    status = element.find("status")
    if not address or status is None:
        raise InputError(f"{source}: a <host> without an IP <address> or a <status>")
    if status.get("state") != "up":
        return HostResult(address, names(address), "down")
    listed: dict[int, PortResult] = {}
    for p in element.findall("ports/port"):
        if p.get("protocol") != "tcp":
            continue
        state, service = p.find("state"), p.find("service")
        try:
            number = int(p.get("portid", ""))
        except ValueError:
            raise InputError(f"{source}: host {address}: <port portid={p.get('portid')!r}> is not a number") \
                from None
        if state is None:
            raise InputError(f"{source}: host {address}: port {number} has no <state>")
        svc = service if service is not None else ET.Element("service")
        listed[number] = PortResult(number, "tcp", state.get("state", "unknown"), state.get("reason", ""),
                                    svc.get("name", ""), svc.get("product", ""), svc.get("version", ""))
    extra = _extra(element, address, source)
    ports = [listed.get(n) or extra.get(n) or PortResult(n, "tcp", extra.get(0, _UNKNOWN).state) for n in scanned]
    return HostResult(address, names(address), "up", tuple(ports))


_UNKNOWN = PortResult(0, "tcp", "unknown")


def _extra(host: ET.Element, address: str, source: str) -> dict[int, PortResult]:
    """The scanned ports nmap did not list, by number: they are in the <extraports> groups. nmap ≥ 7.80 names the
    ports of each group (<extrareasons ports=…>); an older nmap only counts them, which settles it when there is
    one group: its state is then under key 0, the state of every port not named. Otherwise a port's state is
    honestly "unknown". Each list is parsed once per host, not once per port."""
    groups = host.findall("ports/extraports")
    found: dict[int, PortResult] = {}
    for group in groups:
        for reasons in group.findall("extrareasons"):
            if reasons.get("proto", "tcp") == "tcp" and reasons.get("ports"):
                state, reason = group.get("state", "unknown"), reasons.get("reason", "")
                for n in parse_port_list(reasons.get("ports", ""), f"{source}: host {address}: <extrareasons ports>"):
                    found.setdefault(n, PortResult(n, "tcp", state, reason))
    if len(groups) == 1:
        found[0] = PortResult(0, "tcp", groups[0].get("state", "unknown"))
    return found


def _sort_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
