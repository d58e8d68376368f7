"""SSH posture: what an SSH server offers, read with paramiko without logging in, judged against the policy
of the control catalogue (PS-SSH-08 key exchange, PS-SSH-09 ciphers, PS-SSH-10 MACs).

The only module importing paramiko for posture. paramiko's Transport is a client that negotiates: it keeps
only the algorithms both sides agree on, and a server offering nothing paramiko supports makes it fail. The
server's own offer is its KEXINIT message, which Transport hands to `_parse_kex_init`; `_OfferTransport`
reads a copy of it there and hangs up at once: no key exchange is computed, no credential is ever sent."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import paramiko

from provsec.controls import Catalogue
from provsec.errors import InputError, ProvsecError
from provsec.fileio import read_yaml

# Host key algorithms are not (yet) a control of the catalogue; the ssh role's setting is the one policy.
HOST_KEY_SETTING = "ssh_host_key_algorithms"
SSH_ROLE_DEFAULTS = Path("playbooks/roles/ssh/defaults/main.yml")
CONTROLS = {"kex": "PS-SSH-08", "ciphers": "PS-SSH-09", "macs": "PS-SSH-10"}
# Markers inside the kex list that are not algorithms (RFC 8308 ext-info, OpenSSH strict kex).
PSEUDO_KEX = ("ext-info-", "kex-strict-")

_LOG_CHANNEL = "provsec.scan.paramiko"
logging.getLogger(_LOG_CHANNEL).addHandler(logging.NullHandler())
logging.getLogger(_LOG_CHANNEL).propagate = False  # paramiko logs our hang-up as an error: it is not one


class SshUnreachable(ProvsecError):
    """The SSH port could not be reached or did not speak SSH."""

    exit_code = 3


@dataclass(frozen=True)
class SshPolicy:
    kex: tuple[str, ...]
    host_keys: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    level: int

    def allowed(self, category: str) -> tuple[str, ...]:
        return cast(tuple[str, ...], getattr(self, category))


def policy(catalogue: Catalogue, level: int, role_defaults: Path = SSH_ROLE_DEFAULTS) -> SshPolicy:
    """The allowed algorithms for a host of security level `level`, from the catalogue (and the ssh role's
    host key setting), so the scan judges exactly what the hardening enforces."""
    lists: dict[str, tuple[str, ...]] = {}
    for category, control in CONTROLS.items():
        value = catalogue.value(control, level)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{catalogue.directory}: {control}: the value for cấp độ {level} must be a list "
                             "of algorithms for the SSH posture check")
        lists[category] = tuple(value)
    defaults = read_yaml(role_defaults, "ssh role defaults")
    host_keys = defaults.get(HOST_KEY_SETTING) if isinstance(defaults, dict) else None
    if not isinstance(host_keys, list) or not all(isinstance(v, str) for v in host_keys):
        raise InputError(f"{role_defaults}: {HOST_KEY_SETTING}: must be a list of host key algorithms")
    return SshPolicy(lists["kex"], tuple(host_keys), lists["ciphers"], lists["macs"], level)


@dataclass(frozen=True)
class Weak:
    category: str  # kex | host_keys | ciphers | macs
    algorithm: str
    control: str  # the control that forbids it ("" for host keys: the ssh role's setting)


@dataclass(frozen=True)
class SshOffer:
    """The server's KEXINIT, as offered (in the server's order of preference)."""

    banner: str
    kex: tuple[str, ...]
    host_keys: tuple[str, ...]
    ciphers_c2s: tuple[str, ...]
    ciphers_s2c: tuple[str, ...]
    macs_c2s: tuple[str, ...]
    macs_s2c: tuple[str, ...]
    compression: tuple[str, ...]
    extensions: tuple[str, ...] = ()  # ext-info-s, kex-strict-s-v00@openssh.com, …

    def offered(self, category: str) -> tuple[str, ...]:
        """Both directions together: a weak algorithm in either one can be chosen by a client."""
        if category == "ciphers":
            return tuple(dict.fromkeys(self.ciphers_c2s + self.ciphers_s2c))
        if category == "macs":
            return tuple(dict.fromkeys(self.macs_c2s + self.macs_s2c))
        return cast(tuple[str, ...], getattr(self, category))


@dataclass(frozen=True)
class SshPosture:
    host: str
    address: str
    port: int
    offer: SshOffer
    policy_level: int
    weak: tuple[Weak, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        o = self.offer
        return {"host": self.host, "address": self.address, "port": self.port, "banner": o.banner,
                "kex": list(o.kex), "host_keys": list(o.host_keys),
                "ciphers": {"client_to_server": list(o.ciphers_c2s), "server_to_client": list(o.ciphers_s2c)},
                "macs": {"client_to_server": list(o.macs_c2s), "server_to_client": list(o.macs_s2c)},
                "compression": list(o.compression), "extensions": list(o.extensions),
                "policy_level": self.policy_level,
                "weak": [{"category": w.category, "algorithm": w.algorithm, "control": w.control} for w in self.weak]}


def judge(offer: SshOffer, pol: SshPolicy) -> tuple[Weak, ...]:
    weak = []
    for category in ("kex", "host_keys", "ciphers", "macs"):
        allowed = set(pol.allowed(category))
        weak += [Weak(category, alg, CONTROLS.get(category, "")) for alg in offer.offered(category)
                 if alg not in allowed]
    return tuple(weak)


class _OfferRead(paramiko.SSHException):
    """Raised inside the transport thread once the offer is read: it ends the handshake there."""


class _OfferTransport(paramiko.Transport):
    offer: dict[str, list[str]] | None = None

    def _parse_kex_init(self, m: paramiko.Message) -> None:
        # m is positioned at the start of the KEXINIT payload; parse a copy with paramiko's own parser
        parse = getattr(self, "_really_parse_kex_init")  # noqa: B009 - private, not in the type stubs
        self.offer = parse(paramiko.Message(m.asbytes()))
        raise _OfferRead("server KEXINIT read; closing before key exchange")


def read_offer(address: str, port: int, timeout: float = 10.0) -> SshOffer:
    """Connect, exchange version banners and KEXINIT, hang up. Raises SshUnreachable."""
    where = f"{address}:{port}"
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise SshUnreachable(f"{where}: cannot connect ({exc.strerror or exc})") from None
    transport = _OfferTransport(sock)
    transport.set_log_channel(_LOG_CHANNEL)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
    except _OfferRead:
        pass
    except (paramiko.SSHException, EOFError, OSError) as exc:
        if transport.offer is None:
            raise SshUnreachable(f"{where}: no SSH key exchange offer ({exc})") from None
    finally:
        transport.close()
        sock.close()
    raw = transport.offer
    if raw is None:
        raise SshUnreachable(f"{where}: the server sent no KEXINIT")
    kex = raw["kex_algo_list"]
    return SshOffer(
        banner=transport.remote_version,
        kex=tuple(k for k in kex if not k.startswith(PSEUDO_KEX)),
        host_keys=tuple(raw["server_key_algo_list"]),
        ciphers_c2s=tuple(raw["client_encrypt_algo_list"]),
        ciphers_s2c=tuple(raw["server_encrypt_algo_list"]),
        macs_c2s=tuple(raw["client_mac_algo_list"]),
        macs_s2c=tuple(raw["server_mac_algo_list"]),
        compression=tuple(dict.fromkeys(raw["client_compress_algo_list"] + raw["server_compress_algo_list"])),
        extensions=tuple(k for k in kex if k.startswith(PSEUDO_KEX)),
    )


def posture(host: str, address: str, port: int, pol: SshPolicy, timeout: float = 10.0) -> SshPosture:
    offer = read_offer(address, port, timeout)
    return SshPosture(host, address, port, offer, pol.level, judge(offer, pol))
