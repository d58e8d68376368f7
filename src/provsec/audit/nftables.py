"""Read a loaded nftables ruleset (`nft -j list ruleset`) for the two firewall controls.

- input_policy_drop: inbound traffic is denied by default, for IPv4 and IPv6 (a base chain on the input
  hook with policy drop, in family inet, or in both ip and ip6).
- ssh_only_from: with that, every rule of those chains that accepts new connections to the SSH port,
  followed through jump/goto, is restricted to sources inside the admin subnets.

The reading is conservative: a rule it cannot prove restricted counts against the control.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ChainKey = tuple[str, str, str]  # family, table, chain

MAX_DEPTH = 16
_IGNORED_CT = {"established", "related"}
_OTHER_L4 = {"icmp", "icmpv6", "udp", "udplite", "sctp", "dccp", "igmp", "esp", "ah", "comp", "gre"}


@dataclass
class Ruleset:
    chains: dict[ChainKey, dict[str, Any]] = field(default_factory=dict)
    rules: dict[ChainKey, list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, document: object) -> Ruleset:
        if not isinstance(document, dict) or not isinstance(document.get("nftables"), list):
            raise TypeError("not an `nft -j list ruleset` document (no \"nftables\" list)")
        ruleset = cls()
        for item in document["nftables"]:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("chain"), dict):
                chain = item["chain"]
                key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
                ruleset.chains[key] = chain
                ruleset.rules.setdefault(key, [])
            elif isinstance(item.get("rule"), dict):
                rule = item["rule"]
                key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
                ruleset.rules.setdefault(key, []).append(rule)
            elif isinstance(item.get("set"), dict):
                nft_set = item["set"]
                key = (str(nft_set.get("family")), str(nft_set.get("table")), str(nft_set.get("name")))
                elem = nft_set.get("elem", [])
                ruleset.sets[key] = elem if isinstance(elem, list) else [elem]
        return ruleset

    def input_chains(self) -> list[ChainKey]:
        return [k for k, c in self.chains.items() if c.get("hook") == "input" and k[0] in ("inet", "ip", "ip6")]


def _describe_chain(key: ChainKey, chain: dict[str, Any]) -> str:
    return f"{key[0]} {key[1]} {key[2]} (hook input, policy {chain.get('policy', 'accept')})"


def input_policy_drop(document: object) -> tuple[bool, str]:
    ruleset = Ruleset.parse(document)
    chains = ruleset.input_chains()
    if not chains:
        return False, "no base chain on the input hook: nothing filters inbound traffic (empty ruleset?)"
    drop = [k for k in chains if ruleset.chains[k].get("policy") == "drop"]
    v4 = any(k[0] in ("inet", "ip") for k in drop)
    v6 = any(k[0] in ("inet", "ip6") for k in drop)
    listed = "; ".join(_describe_chain(k, ruleset.chains[k]) for k in chains)
    if v4 and v6:
        return True, f"input chains: {listed}"
    missing = " and ".join(v for v, ok in (("IPv4", v4), ("IPv6", v6)) if not ok)
    return False, f"no drop policy for {missing} inbound traffic; input chains: {listed}"


# --- ssh_only_from -------------------------------------------------------------------------------


@dataclass
class _Match:
    ignore: bool = False  # established/related, loopback, or a protocol/port that is not SSH
    conditional: bool = False  # matches something besides "tcp to the SSH port"
    sources: list[Network] | None = None  # None: any source
    source_text: str = "any source"


def _value_items(right: object, ruleset: Ruleset, family: str, table: str) -> list[Any] | None:
    """A match's right-hand side as a list of elements; None if it cannot be read."""
    if isinstance(right, str) and right.startswith("@"):
        elems = ruleset.sets.get((family, table, right[1:]))
        return None if elems is None else list(elems)
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
        return list(items) if isinstance(items, list) else [items]
    if isinstance(right, list):
        return list(right)
    return [right]


def _elem(item: object) -> object:
    """Set elements may be wrapped as {"elem": {"val": …, "timeout": …}}."""
    if isinstance(item, dict) and "elem" in item and isinstance(item["elem"], dict):
        return item["elem"].get("val")
    return item


def _ports(items: list[Any]) -> Iterator[tuple[int, int]]:
    for raw in items:
        item = _elem(raw)
        if isinstance(item, int):
            yield item, item
        elif isinstance(item, str) and item.isdigit():
            yield int(item), int(item)
        elif isinstance(item, str):
            yield {"ssh": (22, 22)}.get(item, (-1, -1))
        elif isinstance(item, dict) and isinstance(item.get("range"), list) and len(item["range"]) == 2:
            low, high = item["range"]
            yield int(low), int(high)


def _networks(items: list[Any]) -> list[Network] | None:
    nets: list[Network] = []
    for raw in items:
        item = _elem(raw)
        try:
            if isinstance(item, str):
                nets.append(ipaddress.ip_network(item, strict=False))
            elif isinstance(item, dict) and isinstance(item.get("prefix"), dict):
                prefix = item["prefix"]
                nets.append(ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}", strict=False))
            elif isinstance(item, dict) and isinstance(item.get("range"), list):
                low, high = (ipaddress.ip_address(a) for a in item["range"])
                nets.extend(ipaddress.summarize_address_range(low, high))
            else:
                return None
        except (ValueError, KeyError, TypeError):
            return None
    return nets


def _classify(rule: dict[str, Any], ruleset: Ruleset, ssh_ports: set[int]) -> _Match:  # noqa: PLR0912
    # one branch per kind of match nft prints: keeping them side by side reads better than helpers
    family, table = str(rule.get("family")), str(rule.get("table"))
    result = _Match()
    for expr in rule.get("expr", []):
        match = expr.get("match") if isinstance(expr, dict) else None
        if not isinstance(match, dict):
            continue
        left, right, op = match.get("left"), match.get("right"), match.get("op", "==")
        if not isinstance(left, dict):
            continue
        items = _value_items(right, ruleset, family, table)
        negated = op == "!="
        if "ct" in left and left["ct"].get("key") == "state" and items is not None and not negated:
            if {str(_elem(i)) for i in items} <= _IGNORED_CT:
                result.ignore = True
            result.conditional = True
        elif "meta" in left and left["meta"].get("key") in ("iif", "iifname") and items is not None:
            if not negated and {str(_elem(i)) for i in items} == {"lo"}:
                result.ignore = True
            result.conditional = True
        elif "meta" in left and left["meta"].get("key") == "l4proto" and items is not None:
            protos = {str(_elem(i)) for i in items}
            if ("tcp" in protos or "6" in protos) == negated:
                result.ignore = True
        elif "payload" in left:
            payload = left["payload"]
            proto, fld = payload.get("protocol"), payload.get("field")
            if fld == "dport" and proto in ("tcp", "th") and items is not None:
                hit = any(low <= p <= high for low, high in _ports(items) for p in ssh_ports)
                if hit == negated:
                    result.ignore = True
            elif proto in _OTHER_L4:  # a match on an ICMP type, a UDP port …: never SSH
                result.ignore = True
            elif (fld, proto) in (("protocol", "ip"), ("nexthdr", "ip6")) and items is not None:
                if ("tcp" in {str(_elem(i)) for i in items}) == negated:
                    result.ignore = True
            elif fld == "saddr" and proto in ("ip", "ip6") and items is not None and not negated:
                nets = _networks(items)
                if nets is not None:
                    result.sources = nets if result.sources is None else result.sources + nets
                    result.source_text = ", ".join(str(n) for n in result.sources)
                result.conditional = True
            else:
                result.conditional = True
        elif "icmp" in str(left) or "icmpv6" in str(left):
            result.ignore = True
        else:
            result.conditional = True
    return result


def _verdict(rule: dict[str, Any]) -> tuple[str, str]:
    for expr in rule.get("expr", []):
        if not isinstance(expr, dict):
            continue
        for verdict in ("accept", "drop", "reject", "return"):
            if verdict in expr:
                return verdict, ""
        for verdict in ("jump", "goto"):
            if verdict in expr and isinstance(expr[verdict], dict):
                return verdict, str(expr[verdict].get("target", ""))
    return "", ""


def _inside(nets: list[Network], admin: list[Network]) -> bool:
    return bool(nets) and all(
        any(n.version == a.version and n.subnet_of(a) for a in admin)  # type: ignore[arg-type]
        for n in nets
    )


def ssh_only_from(document: object, admin_subnets: list[str], ssh_ports: set[int]) -> tuple[bool, str]:
    ok, policy_text = input_policy_drop(document)
    if not ok:
        return False, f"SSH is not limited by a default-deny input policy: {policy_text}"
    ruleset = Ruleset.parse(document)
    try:
        admin = [ipaddress.ip_network(s, strict=False) for s in admin_subnets]
    except ValueError as exc:
        return False, f"the inventory's admin subnets are not networks: {exc}"
    if not admin:
        return False, "the inventory declares no admin subnets (provsec_networks.admin_subnets)"
    allowed: list[str] = []
    violations: list[str] = []
    ports = "/".join(str(p) for p in sorted(ssh_ports))

    def walk(key: ChainKey, restricted: bool, depth: int) -> None:
        if depth > MAX_DEPTH:
            violations.append(f"{key[0]} {key[1]} {key[2]}: jumps nest deeper than {MAX_DEPTH}")
            return
        for rule in ruleset.rules.get(key, []):
            match = _classify(rule, ruleset, ssh_ports)
            verdict, target = _verdict(rule)
            where = f"{key[0]} {key[1]} {key[2]} rule handle {rule.get('handle', '?')}"
            if match.ignore or not verdict:
                continue
            safe = restricted or (match.sources is not None and _inside(match.sources, admin))
            if verdict == "accept":
                text = f"{where} accepts tcp/{ports} from {match.source_text}"
                (allowed if safe else violations).append(text)
            elif verdict in ("jump", "goto"):
                walk((key[0], key[1], target), safe, depth + 1)
            if not match.conditional and verdict in ("drop", "reject", "goto", "return"):
                return  # nothing after an unconditional drop/reject/goto/return is reached

    for key in ruleset.input_chains():
        if ruleset.chains[key].get("policy") == "drop":
            walk(key, False, 0)
    subnets = ", ".join(str(a) for a in admin)
    if violations:
        return False, f"SSH open beyond the admin subnets ({subnets}): " + "; ".join(violations)
    if not allowed:
        return True, f"no rule accepts tcp/{ports}; input policy drop"
    return True, f"SSH accepted only from the admin subnets ({subnets}): " + "; ".join(allowed)
