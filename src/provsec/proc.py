"""The single call point for external commands (ip, systemd-nspawn, debootstrap, ssh, …).

Every command runs with an argv list (never a shell), a timeout, and captured output; a failure raises
CommandError naming the command and the tail of its error output."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from provsec.errors import CommandError

DEFAULT_TIMEOUT = 120.0


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv and return the finished process; raise CommandError if it fails and check is set."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{args[0]}: not installed (run scripts/bootstrap)") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{shlex.join(args)}: no answer after {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CommandError(f"{shlex.join(args)} exited {proc.returncode}: {' | '.join(tail) or 'no output'}")
    return proc
